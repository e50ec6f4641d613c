"""The hash chain, pure."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.ledger.domain import GENESIS, EventRecord, canonical, chain_hash, verify_chain

AT = dt.datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=dt.UTC)


def _event(seq: int, **changes: object) -> EventRecord:
    base = EventRecord(module="AFM-26-000001", seq=seq, type="module.registered", actor="floor", role="floor", at=AT)
    return msgspec.structs.replace(base, **changes) if changes else base


def _chain(n: int) -> list[tuple[EventRecord, str, str]]:
    links, prev = [], GENESIS
    for seq in range(1, n + 1):
        event = _event(seq, payload={"n": seq})
        digest = chain_hash(prev, event)
        links.append((event, prev, digest))
        prev = digest
    return links


def test_hash_is_deterministic_and_order_free() -> None:
    a = _event(1, payload={"b": 1, "a": [1, 2]})
    b = _event(1, payload={"a": [1, 2], "b": 1})
    assert canonical(a) == canonical(b)
    assert chain_hash(GENESIS, a) == chain_hash(GENESIS, b)
    assert len(chain_hash(GENESIS, a)) == 64


def test_time_is_normalised_to_utc() -> None:
    local = AT.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert chain_hash(GENESIS, _event(1, at=local)) == chain_hash(GENESIS, _event(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        canonical(_event(1, at=AT.replace(tzinfo=None)))


def test_intact_chain_verifies() -> None:
    assert verify_chain(_chain(5)) == (5, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "mallory"),
        ("type", "module.retired"),
        ("payload", {"n": 99}),
        ("place", "X"),
        ("role", "admin"),
    ],
)
def test_any_edit_is_found_at_that_event(field: str, value: object) -> None:
    links = _chain(5)
    event, prev, digest = links[2]
    links[2] = (msgspec.structs.replace(event, **{field: value}), prev, digest)
    checked, broken = verify_chain(links)
    assert broken is not None and broken.seq == 3 and checked == 3
    assert "hash does not match" in broken.reason


def test_dropped_and_relinked_events_are_found() -> None:
    links = _chain(4)
    del links[1]
    _, broken = verify_chain(links)
    assert broken is not None and broken.seq == 3 and "sequence gap" in broken.reason
    links = _chain(3)
    event, _prev, digest = links[1]
    links[1] = (event, "f" * 64, digest)
    _, broken = verify_chain(links)
    assert broken is not None and broken.seq == 2 and "prev_hash" in broken.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(payload=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_hash_survives_a_json_round_trip(payload: dict) -> None:
    """What the database gives back (JSON text) hashes the same as what was appended."""
    event = _event(1, payload=payload)
    restored = _event(1, payload=msgspec.json.decode(msgspec.json.encode(payload)))
    assert chain_hash(GENESIS, restored) == chain_hash(GENESIS, event)
