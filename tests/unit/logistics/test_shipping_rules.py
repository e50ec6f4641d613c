"""Pure shipping rules: ISO 6346 container numbers, Incoterms 2020, ETAs from legs."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.logistics.domain import (
    ContainerNumberError,
    LegTimes,
    check_container_number,
    check_incoterm,
    container_check_digit,
    estimate,
    eta,
)


@pytest.mark.parametrize("text", ["CSQU3054383", "csqu 305438 3", "CSQU 305438-3"])  # ISO 6346's own example
def test_real_container_numbers(text: str) -> None:
    assert check_container_number(text) == text.upper().replace(" ", "").replace("-", "")


def test_bad_container_numbers_say_why() -> None:
    with pytest.raises(ContainerNumberError, match="ISO 6346 gives 3"):
        check_container_number("CSQU3054384")
    with pytest.raises(ContainerNumberError, match="owner code"):
        check_container_number("CSQ3054383")
    with pytest.raises(ContainerNumberError, match="owner code"):
        check_container_number("CSQX3054383")  # X is no equipment category


def _sum_mod_11(first_ten: str) -> int:
    # ISO 6346 Annex A letter values, written out independently of the code under test.
    values = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", [10, *range(12, 22), *range(23, 33), *range(34, 39)], strict=True))
    return sum((values[c] if c.isalpha() else int(c)) << i for i, c in enumerate(first_ten)) % 11


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
    st.sampled_from("UJZR"),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.integers(4, 9),
    st.integers(1, 9),
)
def test_check_digit_catches_a_changed_serial_digit(owner: str, category: str, serial: str, at: int, plus: int) -> None:
    body = owner + category + serial
    number = body + str(container_check_digit(body))
    assert check_container_number(number) == number
    changed_body = body[:at] + str((int(body[at]) + plus) % 10) + body[at + 1 :]
    changed = changed_body + number[10]
    # A digit change always changes the sum mod 11 (weights 2^i are never 0 mod 11); it escapes only
    # where a sum of 10 folds to check digit 0, which is why ISO 6346 tells owners to avoid such serials.
    if {_sum_mod_11(body), _sum_mod_11(changed_body)} == {0, 10}:
        assert check_container_number(changed) == changed
    else:
        with pytest.raises(ContainerNumberError, match="check digit"):
            check_container_number(changed)


def test_incoterms() -> None:
    assert check_incoterm("fca", ["road", "sea", "road"]).code == "FCA"
    assert check_incoterm("FOB", ["sea"]).name == "Free On Board"
    with pytest.raises(ValueError, match="FCA"):
        check_incoterm("FOB", ["road", "sea", "road"])  # a container handed over inland
    with pytest.raises(ValueError, match="sea and inland waterway only"):
        check_incoterm("CIF", ["sea", "air"])
    with pytest.raises(ValueError, match="not an Incoterms 2020 rule"):
        check_incoterm("DDU", ["sea"])  # withdrawn in 2010


T0 = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
PLAN = [
    LegTimes(T0, T0 + 10 * H),  # road to the port
    LegTimes(T0 + 3 * D, T0 + 33 * D),  # sea: sails three days later (slack)
    LegTimes(T0 + 34 * D, T0 + 34 * D + 6 * H),  # road to the site
]


def test_eta_on_plan_and_slack_absorbs_a_small_delay() -> None:
    assert eta(PLAN, T0 - D) == (T0 + 34 * D + 6 * H, dt.timedelta(0))
    late_truck = [LegTimes(T0, T0 + 10 * H, T0, T0 + 30 * H), *PLAN[1:]]
    assert eta(late_truck, T0 + 31 * H) == (T0 + 34 * D + 6 * H, dt.timedelta(0))  # the ship waits anyway


def test_a_late_ship_moves_the_eta_and_the_legs_after_it() -> None:
    legs = [
        LegTimes(T0, T0 + 10 * H, T0, T0 + 10 * H),
        LegTimes(T0 + 3 * D, T0 + 33 * D, T0 + 5 * D),  # sailed two days late, under way
        PLAN[2],
    ]
    estimates = estimate(legs, T0 + 20 * D)
    assert estimates[1].arrival == T0 + 35 * D and estimates[1].late_by == 2 * D
    assert estimates[2].departure == T0 + 35 * D + 12 * H  # after handling at the port
    assert eta(legs, T0 + 20 * D) == (T0 + 35 * D + 18 * H, D + 12 * H)
    # Still at sea past the planned arrival: due no earlier than now.
    overdue = estimate(legs, T0 + 36 * D)
    assert overdue[1].arrival == T0 + 36 * D and not overdue[1].done
    assert estimate(legs[:1], T0)[0].done
    with pytest.raises(ValueError, match="no ETA"):
        eta([], T0)
