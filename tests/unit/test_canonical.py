"""The fast verify path must encode exactly what appending hashed."""

from __future__ import annotations

import datetime as dt

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from app.core.ledger.domain import (
    GENESIS,
    ChainWalker,
    EventRecord,
    _at_text,
    canonical,
    canonical_parts,
    canonical_payload,
    chain_hash,
)

times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))
texts = st.text(max_size=30)
payloads = st.dictionaries(texts, st.none() | st.integers() | texts | st.lists(texts, max_size=3), max_size=5)


@given(at=times)
def test_sqlite_text_and_datetime_give_the_same_time(at: dt.datetime) -> None:
    stored = at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLite keeps it
    assert _at_text(stored) == _at_text(at)
    assert _at_text(at.isoformat()) == _at_text(at)


@given(at=times, payload=payloads, actor=texts, place=texts)
def test_parts_encoding_equals_record_encoding(at: dt.datetime, payload: dict, actor: str, place: str) -> None:
    record = EventRecord(
        module="AFM-26-000001",
        seq=3,
        type="lifecycle.hold",
        actor=actor,
        role="floor",
        at=at,
        place=place,
        request_id="r1",
        payload=payload,
    )
    parts = canonical_parts(
        record.module, 3, record.type, actor, "floor", _at_text(at), place, "r1", canonical_payload(payload)
    )
    assert parts == canonical(record)
    first = msgspec.structs.replace(record, seq=1)
    walker = ChainWalker()
    stored = (first.module, 1, first.type, actor, "floor", at, place, "r1", canonical_payload(payload))
    assert walker.feed(*stored, GENESIS, chain_hash(GENESIS, first)) is None
    assert walker.feed(*stored, GENESIS, "0" * 64) is not None  # a second seq 1 is a gap
