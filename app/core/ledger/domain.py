"""The hash chain: pure functions over plain values, no I/O.

hash = SHA-256( prev_hash || canonical(event) ) where canonical is msgspec JSON with sorted keys of
every field that carries meaning. Editing any field, reordering or dropping an event breaks the chain
from that event on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec

GENESIS = "0" * 64


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    module: str
    seq: int
    type: str
    actor: str
    role: str
    at: dt.datetime
    place: str = ""
    request_id: str = ""
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


def _at_text(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: EventRecord) -> bytes:
    body = {
        "module": event.module,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "role": event.role,
        "at": _at_text(event.at),
        "place": event.place,
        "request_id": event.request_id,
        "payload": event.payload,
    }
    return msgspec.json.encode(body, order="sorted")


def chain_hash(prev_hash: str, event: EventRecord) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical(event))
    return digest.hexdigest()


class BrokenLink(msgspec.Struct, frozen=True):
    module: str
    seq: int
    reason: str


def verify_chain(links: Iterable[tuple[EventRecord, str, str]]) -> tuple[int, BrokenLink | None]:
    """Check (event, prev_hash, hash) triples of one module, oldest first.

    Returns (events checked, first broken link or None).
    """
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    for event, prev_hash, stored_hash in links:
        checked += 1
        if event.seq != expected_seq:
            return checked, BrokenLink(event.module, event.seq, f"sequence gap: expected seq {expected_seq}")
        if prev_hash != expected_prev:
            return checked, BrokenLink(event.module, event.seq, "prev_hash does not match the previous event")
        if chain_hash(prev_hash, event) != stored_hash:
            return checked, BrokenLink(event.module, event.seq, "hash does not match the event's content")
        expected_prev = stored_hash
        expected_seq += 1
    return checked, None
