"""Idempotency keys: a write that may arrive twice (a scan replayed after a phone was offline)
carries a key; the first answer is stored with it, and a replay returns that answer unchanged."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import msgspec
from sqlalchemy import JSON, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UnitOfWork, UTCDateTime, utcnow
from app.core.errors import Conflict, InvalidInput

MAX_KEY = 200


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("actor", "key", name="uq_idempotency_actor_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def request_fingerprint(method: str, path: str, body: Any) -> str:
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(msgspec.json.encode(body, order="sorted"))
    return digest.hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1-{MAX_KEY} printable characters")
    return key


async def recall(uow: UnitOfWork, actor: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    """The stored answer for this key, or None. The same key for another request is a conflict."""
    stored = await uow.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
    )
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise Conflict(f"Idempotency-Key {key!r} was already used for a different request", idempotency_key=key)
    return stored.response


def remember(uow: UnitOfWork, actor: str, key: str, fingerprint: str, status: int, response: Any) -> None:
    uow.session.add(
        IdempotencyKey(
            actor=actor,
            key=key,
            request_hash=fingerprint,
            status=status,
            response=msgspec.to_builtins(response),
        )
    )
