"""Pure rules of the module registry: serials and where a module is. No I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from app.core.definitions import Lifecycle
from app.core.errors import Conflict, InvalidInput, RuleRefused

SERIAL_RE = re.compile(r"^AFM-(\d{2})-(\d{6})$")


def serial_prefix(year: int) -> str:
    return f"AFM-{year % 100:02d}-"


def next_serial(year: int, last_serial: str | None) -> str:
    """AFM-YY-NNNNNN: the next number after the highest one issued in that year."""
    last = 0
    if last_serial is not None:
        match = SERIAL_RE.match(last_serial)
        if match is None:
            raise InvalidInput(f"unexpected serial {last_serial!r}")
        last = int(match.group(2))
    if last >= 999_999:
        raise InvalidInput(f"serial numbers for {year} are exhausted")
    return f"{serial_prefix(year)}{last + 1:06d}"


def location_kind(lifecycle: Lifecycle, state: str, hold_return_state: str | None) -> str:
    """'factory', 'transit' or 'site', from the state's `where` (a held module is where it was)."""
    where = lifecycle.state(state).where
    if where == "held":
        where = lifecycle.state(hold_return_state).where if hold_return_state else "factory"
    if where == "held":
        where = "factory"
    return "transit" if where == "transit" else where


BUILD_STATES = ("assembling", "rework")


def check_build_state(serial: str, state: str) -> None:
    """Parts go in and out only while a module is being assembled or reworked."""
    if state not in BUILD_STATES:
        raise Conflict(
            f"{serial} is {state}; parts can be installed or removed only while assembling or in rework",
            serial=serial,
            state=state,
        )


def check_part_fits(
    serial: str, bom: list[dict[str, object]], installed: dict[str, int], kind: str, part_number: str
) -> None:
    """The part must be on the spec's bill of materials and its kind not yet complete."""
    line = next((b for b in bom if b["kind"] == kind), None)
    if line is None:
        kinds = ", ".join(str(b["kind"]) for b in bom)
        raise RuleRefused(f"bom_kind: {kind!r} is not on the bill of materials of {serial} ({kinds})", rule="bom_kind")
    numbers = [str(n) for n in line["part_numbers"]]  # type: ignore[attr-defined]
    if part_number not in numbers:
        raise RuleRefused(
            f"bom_part_number: part number {part_number!r} does not qualify for {kind}; "
            f"qualified: {', '.join(numbers)}",
            rule="bom_part_number",
        )
    quantity = int(line["quantity"])  # type: ignore[call-overload]
    if installed.get(kind, 0) >= quantity:
        raise RuleRefused(
            f"bom_quantity: {serial} already has all {quantity} {kind} parts of its bill of materials",
            rule="bom_quantity",
        )


def next_position(kind: str, taken: set[str]) -> str:
    n = 1
    while f"{kind}-{n:03d}" in taken:
        n += 1
    return f"{kind}-{n:03d}"


# --- deployments ---------------------------------------------------------------------------------------


class Chapter(msgspec.Struct, frozen=True):
    """One part of a module's life: its factory build, then each deployment to a site."""

    number: int  # 0: the factory build; 1, 2, …: deployments
    title: str
    site: str | None
    first_seq: int
    last_seq: int
    events: tuple[Any, ...]


def chapters(events: Sequence[Any]) -> list[Chapter]:
    """Split a module's ledger (oldest first; each event with `seq`, `type`, `payload`, `place`) into
    chapters: the factory build until it is first packed for a site, then one chapter per `pack` or
    `redeploy` to a site. The module keeps one serial and one unbroken chain across all of them."""
    out: list[Chapter] = []
    current: list[Any] = []
    number, site, title = 0, None, "Factory build"
    for event in events:
        opens = event.type in ("lifecycle.pack", "lifecycle.redeploy") and (event.payload or {}).get("site")
        if opens and current:
            out.append(Chapter(number, title, site, current[0].seq, current[-1].seq, tuple(current)))
            current = []
        if opens:
            number += 1
            site = str(event.payload["site"])
            title = f"Deployment {number}: {site}"
        current.append(event)
    if current:
        out.append(Chapter(number, title, site, current[0].seq, current[-1].seq, tuple(current)))
    return out
