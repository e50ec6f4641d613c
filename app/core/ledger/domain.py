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


def _at_text(at: dt.datetime | str) -> str:
    """The event time as canonical text, `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC.

    Accepts SQLite's stored text (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) as is, which spares the
    verifier a datetime round trip per event."""
    if isinstance(at, str):
        if len(at) == 26 and at[10] == " ":
            return f"{at[:10]}T{at[11:]}Z"
        at = dt.datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
    if at.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_payload(payload: Any) -> bytes:
    """The payload's canonical JSON: sorted keys, no spaces. The database stores exactly these bytes
    (see core.db's JSON serializer), so verifying needs no decode and re-encode."""
    return msgspec.json.encode(payload, order="sorted")


def canonical_parts(
    module: str, seq: int, type: str, actor: str, role: str, at: str, place: str, request_id: str, payload: bytes
) -> bytes:
    """The canonical encoding from stored parts; `payload` is already canonical JSON."""
    return msgspec.json.encode(
        {
            "actor": actor,
            "at": at,
            "module": module,
            "payload": msgspec.Raw(payload),
            "place": place,
            "request_id": request_id,
            "role": role,
            "seq": seq,
            "type": type,
        }
    )


def canonical(event: EventRecord) -> bytes:
    return canonical_parts(
        event.module,
        event.seq,
        event.type,
        event.actor,
        event.role,
        _at_text(event.at),
        event.place,
        event.request_id,
        canonical_payload(event.payload),
    )


def chain_hash(prev_hash: str, event: EventRecord) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical(event))
    return digest.hexdigest()


class BrokenLink(msgspec.Struct, frozen=True):
    module: str
    seq: int
    reason: str


class ChainWalker:
    """Verifies rows streamed oldest first, module after module, with as little work per event as the
    chain allows: one canonical encoding and one SHA-256."""

    def __init__(self) -> None:
        self.module: str | None = None
        self.expected_prev = GENESIS
        self.expected_seq = 1
        self.checked = 0
        self.modules = 0
        self.last: tuple[str, int, str] | None = None  # (module, seq, hash) of the newest event seen

    def feed(
        self,
        module: str,
        seq: int,
        type: str,
        actor: str,
        role: str,
        at: dt.datetime | str,
        place: str,
        request_id: str,
        payload: bytes,
        prev_hash: str,
        stored_hash: str,
    ) -> BrokenLink | None:
        if module != self.module:
            self.module, self.expected_prev, self.expected_seq = module, GENESIS, 1
            self.modules += 1
        self.checked += 1
        if seq != self.expected_seq:
            return BrokenLink(module, seq, f"sequence gap: expected seq {self.expected_seq}")
        if prev_hash != self.expected_prev:
            return BrokenLink(module, seq, "prev_hash does not match the previous event")
        body = canonical_parts(module, seq, type, actor, role, _at_text(at), place, request_id, payload)
        if hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest() != stored_hash:
            return BrokenLink(module, seq, "hash does not match the event's content")
        self.expected_prev = stored_hash
        self.expected_seq += 1
        self.last = (module, seq, stored_hash)
        return None


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
