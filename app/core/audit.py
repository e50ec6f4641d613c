"""The admin audit trail: one row per administrative action (users, credentials, lockouts, specs, tag keys).

A row is added in the caller's write unit of work, so it commits with the action it describes and
vanishes with it when the action is refused or rolled back. Module history is on the ledger; this
table records what changes *who may do what* (and other admin-only writes), which the ledger does not.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import JSON, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app.core.auth.domain import Principal
from app.core.db import Base, UnitOfWork, UTCDateTime, utcnow
from app.core.observability import current_request_id

# The client address of the request being served; set by app.core.security.SecurityHeadersMiddleware.
_client: contextvars.ContextVar[str] = contextvars.ContextVar("afm_client", default="")


def set_current_client(address: str) -> contextvars.Token[str]:
    return _client.set(address)


def reset_current_client(token: contextvars.Token[str]) -> None:
    _client.reset(token)


def current_client() -> str:
    return _client.get()


class AdminAction(Base):
    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    client: Mapped[str] = mapped_column(String(64), default="")


class AdminActionRead(msgspec.Struct):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    request_id: str
    client: str


def record_admin_action(
    uow: UnitOfWork,
    actor: Principal | str,
    action: str,
    target: str = "",
    *,
    client: str | None = None,
    **detail: Any,
) -> AdminAction:
    """Add an audit row to `uow` (a write unit of work): it commits or rolls back with the action.

    `actor` is the acting principal, or a string such as "cli:<os user>" for the command line.
    `action` is "<noun>.<verb>" ("user.create", "tag_key.rotate"); `detail` must be JSON-able and
    must never hold a secret (passwords, tokens, keys)."""
    if not uow.writable:
        raise RuntimeError("record_admin_action needs a write unit of work (db.write())")
    row = AdminAction(
        at=utcnow(),
        actor=actor.username if isinstance(actor, Principal) else actor,
        action=action,
        target=target,
        detail=msgspec.to_builtins(detail),
        request_id=current_request_id(),
        client=(_default_client(actor) if client is None else client)[:64],
    )
    uow.session.add(row)
    return row


def _default_client(actor: Principal | str) -> str:
    if isinstance(actor, str) and actor.startswith("cli:"):
        return "cli"
    return current_client()


def cli_actor() -> str:
    """Who runs the command line: the operating-system user (the CLI has no sign-in)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


async def list_admin_actions(
    uow: UnitOfWork,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AdminActionRead], int]:
    """Newest first."""
    where = []
    if action:
        where.append(AdminAction.action == action)
    if actor:
        where.append(AdminAction.actor == actor)
    if target:
        where.append(AdminAction.target == target)
    total = await uow.session.scalar(select(func.count(AdminAction.id)).where(*where))
    rows = await uow.session.scalars(
        select(AdminAction).where(*where).order_by(AdminAction.id.desc()).limit(limit).offset(offset)
    )
    items = [msgspec.convert(row, AdminActionRead, from_attributes=True) for row in rows]
    return items, int(total or 0)
