"""Shipping rules that need no database: ISO 6346 container numbers, Incoterms 2020, and a shipment's ETA
recomputed from its legs when one runs late. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import msgspec

# --- ISO 6346 container numbers --------------------------------------------------------------------

_CONTAINER = re.compile(r"^([A-Z]{3})([UJZR])(\d{6})(\d)$")
# Letters count 10 upwards, skipping 11, 22 and 33 (multiples of 11), per ISO 6346 Annex A.
_LETTER_VALUES: dict[str, int] = {}
_value = 10
for _letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _value % 11 == 0:
        _value += 1
    _LETTER_VALUES[_letter] = _value
    _value += 1


class ContainerNumberError(ValueError):
    """A container number that is not ISO 6346; the message says what is wrong."""


def container_check_digit(first_ten: str) -> int:
    """The ISO 6346 check digit of owner code + category + serial (10 characters)."""
    if len(first_ten) != 10:
        raise ContainerNumberError(f"{first_ten!r}: the check digit covers exactly 10 characters")
    total = 0
    for position, char in enumerate(first_ten):
        value = _LETTER_VALUES[char] if char.isalpha() else int(char)
        total += value * (1 << position)
    return total % 11 % 10


def check_container_number(text: str) -> str:
    """A container number as written on the box (`MSCU 123456 5`, `mscu1234565`), checked and returned
    in its compact form; ContainerNumberError names the fault."""
    compact = re.sub(r"[\s\-/]", "", text).upper()
    match = _CONTAINER.match(compact)
    if match is None:
        raise ContainerNumberError(
            f"{text!r} is not an ISO 6346 container number: 3-letter owner code, category U, J, Z or R,"
            " 6-digit serial, check digit (e.g. MSCU 123456 5)"
        )
    expected = container_check_digit(compact[:10])
    if int(match.group(4)) != expected:
        raise ContainerNumberError(f"{compact}: the check digit is {match.group(4)}, ISO 6346 gives {expected}")
    return compact


# --- Incoterms 2020 ---------------------------------------------------------------------------------


class Incoterm(msgspec.Struct, frozen=True):
    code: str
    name: str
    any_mode: bool  # False: sea and inland waterway only
    seller_clears_import: bool
    risk_passes: str


INCOTERMS_2020: dict[str, Incoterm] = {
    t.code: t
    for t in (
        Incoterm("EXW", "Ex Works", True, False, "at the seller's premises, goods made available"),
        Incoterm("FCA", "Free Carrier", True, False, "on delivery to the buyer's carrier"),
        Incoterm("CPT", "Carriage Paid To", True, False, "on handing to the first carrier"),
        Incoterm("CIP", "Carriage and Insurance Paid To", True, False, "on handing to the first carrier"),
        Incoterm("DAP", "Delivered at Place", True, False, "at the named place, ready for unloading"),
        Incoterm("DPU", "Delivered at Place Unloaded", True, False, "at the named place, unloaded"),
        Incoterm("DDP", "Delivered Duty Paid", True, True, "at the named place, import cleared"),
        Incoterm("FAS", "Free Alongside Ship", False, False, "alongside the vessel at the port of shipment"),
        Incoterm("FOB", "Free On Board", False, False, "on board the vessel at the port of shipment"),
        Incoterm("CFR", "Cost and Freight", False, False, "on board the vessel at the port of shipment"),
        Incoterm("CIF", "Cost, Insurance and Freight", False, False, "on board the vessel at the port of shipment"),
    )
}


def check_incoterm(code: str, modes: Sequence[str]) -> Incoterm:
    """The Incoterms 2020 rule for a shipment whose legs use `modes`; sea-only rules on a multimodal
    shipment are refused (ICC's own guidance: FCA, not FOB, for containers handed over inland)."""
    term = INCOTERMS_2020.get(code.strip().upper())
    if term is None:
        raise ValueError(f"{code!r} is not an Incoterms 2020 rule; rules: {', '.join(INCOTERMS_2020)}")
    if not term.any_mode and any(m not in ("sea",) for m in modes if m != "road"):
        raise ValueError(f"{term.code} is for sea and inland waterway only; this shipment also goes by air or rail")
    if not term.any_mode and modes and modes[0] == "road":
        raise ValueError(f"{term.code} passes risk at the ship; a container handed over inland calls for FCA")
    return term


# --- ETA ---------------------------------------------------------------------------------------------


class LegTimes(msgspec.Struct, frozen=True):
    planned_departure: dt.datetime
    planned_arrival: dt.datetime
    actual_departure: dt.datetime | None = None
    actual_arrival: dt.datetime | None = None


class LegEstimate(msgspec.Struct, frozen=True):
    departure: dt.datetime
    arrival: dt.datetime
    late_by: dt.timedelta  # estimated arrival minus planned arrival (zero or more)
    done: bool


def estimate(
    legs: Sequence[LegTimes], now: dt.datetime, transfer: dt.timedelta = dt.timedelta(hours=12)
) -> list[LegEstimate]:
    """Each leg's expected departure and arrival from what has happened so far. A leg leaves at its
    planned departure, or later if the previous leg arrives less than `transfer` (handling) before it
    — slack in the plan absorbs a delay — and never before now; it takes its planned duration. A leg
    under way past its planned arrival is due no earlier than now."""
    out: list[LegEstimate] = []
    previous_arrival: dt.datetime | None = None
    for leg in legs:
        duration = leg.planned_arrival - leg.planned_departure
        if leg.actual_arrival is not None:
            departure = leg.actual_departure or leg.actual_arrival - duration
            arrival = leg.actual_arrival
            done = True
        elif leg.actual_departure is not None:  # under way: due after its planned duration, and not before now
            departure = leg.actual_departure
            arrival = max(departure + duration, now)
            done = False
        else:  # not yet left
            ready = leg.planned_departure
            if previous_arrival is not None:
                ready = max(ready, previous_arrival + transfer)
            departure = max(ready, now)
            arrival = departure + duration
            done = False
        out.append(LegEstimate(departure, arrival, max(arrival - leg.planned_arrival, dt.timedelta(0)), done))
        previous_arrival = arrival
    return out


def eta(
    legs: Sequence[LegTimes], now: dt.datetime, transfer: dt.timedelta = dt.timedelta(hours=12)
) -> tuple[dt.datetime, dt.timedelta]:
    """The shipment's expected arrival and how late that is against the plan."""
    if not legs:
        raise ValueError("a shipment without legs has no ETA")
    last = estimate(legs, now, transfer)[-1]
    return last.arrival, last.late_by
