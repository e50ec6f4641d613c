"""Use cases of webhook subscriptions: manage them, read their deliveries, send one again."""

from __future__ import annotations

import asyncio
import secrets
import socket

from sqlalchemy import case, func, select

from app.core.audit import record_admin_action
from app.core.auth.domain import Principal
from app.core.db import UnitOfWork, utcnow
from app.core.errors import NotFound, RuleRefused
from app.core.ledger.models import Event
from app.integration import webhooks
from app.integration.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.integration.webhook_schemas import (
    AttemptRead,
    DeliveryRead,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionRead,
    SubscriptionUpdate,
)


async def check_receiver(url: str, allow_private: bool) -> None:
    """Refuse a receiver afm must not call (422 naming the reason). Resolution is checked here and
    again at every send, since a name can be re-pointed later."""
    try:
        host, port = webhooks.check_url(url)
    except webhooks.ReceiverRefused as exc:
        raise RuleRefused(f"webhook URL refused: {exc}", url=url) from None
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RuleRefused(f"webhook URL refused: {host} does not resolve ({exc.strerror or exc})", url=url) from None
    for info in infos:
        reason = webhooks.private_reason(str(info[4][0]))
        if reason:
            raise RuleRefused(
                f"webhook URL refused: {reason}; an admin may allow private receivers (allow_private)",
                url=url,
            )


def _read(sub: WebhookSubscription, pending: int = 0, delivered: int = 0) -> SubscriptionRead:
    return SubscriptionRead(
        id=sub.id,
        name=sub.name,
        url=sub.url,
        event_types=list(sub.event_types),
        modules=list(sub.modules),
        sites=list(sub.sites),
        allow_private=sub.allow_private,
        active=sub.active,
        paused_reason=sub.paused_reason,
        consecutive_failures=sub.consecutive_failures,
        created_by=sub.created_by,
        created_at=sub.created_at,
        pending=pending,
        delivered=delivered,
    )


async def create(uow: UnitOfWork, data: SubscriptionIn, principal: Principal) -> SubscriptionCreated:
    await check_receiver(data.url, data.allow_private)
    sub = WebhookSubscription(
        name=data.name,
        url=data.url,
        secret="whsec_" + secrets.token_urlsafe(32),
        event_types=sorted(set(data.event_types)),
        modules=sorted(set(data.modules)),
        sites=sorted(set(data.sites)),
        allow_private=data.allow_private,
        active=True,
        paused_reason="",
        consecutive_failures=0,
        created_by=principal.username,
        created_at=utcnow(),
    )
    uow.session.add(sub)
    await uow.session.flush()
    record_admin_action(
        uow, principal, "webhook.create", f"webhook:{sub.id}", url=sub.url, allow_private=sub.allow_private
    )
    read = _read(sub)
    return SubscriptionCreated(**{f: getattr(read, f) for f in read.__struct_fields__}, secret=sub.secret)


async def _counts(uow: UnitOfWork) -> dict[int, tuple[int, int]]:
    rows = await uow.session.execute(
        select(
            WebhookDelivery.subscription_id,
            func.sum(case((WebhookDelivery.status == "pending", 1), else_=0)),
            func.sum(case((WebhookDelivery.status == "delivered", 1), else_=0)),
        ).group_by(WebhookDelivery.subscription_id)
    )
    return {sub_id: (int(p or 0), int(d or 0)) for sub_id, p, d in rows.all()}


async def list_subscriptions(uow: UnitOfWork) -> list[SubscriptionRead]:
    counts = await _counts(uow)
    subs = await uow.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
    return [_read(s, *counts.get(s.id, (0, 0))) for s in subs]


async def _get(uow: UnitOfWork, sub_id: int) -> WebhookSubscription:
    sub = await uow.session.get(WebhookSubscription, sub_id)
    if sub is None:
        raise NotFound(f"no webhook subscription {sub_id}", subscription=sub_id)
    return sub


async def get(uow: UnitOfWork, sub_id: int) -> SubscriptionRead:
    sub = await _get(uow, sub_id)
    return _read(sub, *(await _counts(uow)).get(sub.id, (0, 0)))


async def update(uow: UnitOfWork, sub_id: int, data: SubscriptionUpdate, principal: Principal) -> SubscriptionRead:
    sub = await _get(uow, sub_id)
    url = data.url if data.url is not None else sub.url
    allow_private = data.allow_private if data.allow_private is not None else sub.allow_private
    if data.url is not None or data.allow_private is not None:
        await check_receiver(url, allow_private)
    changed: dict[str, object] = {}
    for field in ("name", "url", "event_types", "modules", "sites", "allow_private", "active"):
        value = getattr(data, field)
        if value is not None and value != getattr(sub, field):
            setattr(sub, field, sorted(set(value)) if isinstance(value, list) else value)
            changed[field] = getattr(sub, field)
    if data.paused is not None:
        if data.paused and not sub.paused_reason:
            sub.paused_reason = f"paused by {principal.username}"
            changed["paused"] = True
        elif not data.paused and sub.paused_reason:
            sub.paused_reason = ""
            sub.consecutive_failures = 0
            changed["paused"] = False
            # Resumed: what waited is due now rather than at the end of its back-off.
            pending = await uow.session.scalars(
                select(WebhookDelivery).where(
                    WebhookDelivery.subscription_id == sub.id, WebhookDelivery.status == "pending"
                )
            )
            now = utcnow()
            for delivery in pending:
                delivery.next_attempt_at = now
    if changed:
        record_admin_action(uow, principal, "webhook.update", f"webhook:{sub.id}", **changed)
    return await get(uow, sub_id)


async def delete(uow: UnitOfWork, sub_id: int, principal: Principal) -> None:
    sub = await _get(uow, sub_id)
    record_admin_action(uow, principal, "webhook.delete", f"webhook:{sub.id}", url=sub.url)
    await uow.session.delete(sub)


async def rotate_secret(uow: UnitOfWork, sub_id: int, principal: Principal) -> SubscriptionCreated:
    sub = await _get(uow, sub_id)
    sub.secret = "whsec_" + secrets.token_urlsafe(32)
    record_admin_action(uow, principal, "webhook.rotate_secret", f"webhook:{sub.id}")
    read = await get(uow, sub_id)
    return SubscriptionCreated(**{f: getattr(read, f) for f in read.__struct_fields__}, secret=sub.secret)


async def deliveries(
    uow: UnitOfWork, sub_id: int, *, status: str | None, limit: int, offset: int, history: bool = False
) -> tuple[list[DeliveryRead], int]:
    await _get(uow, sub_id)
    where = [WebhookDelivery.subscription_id == sub_id]
    if status:
        where.append(WebhookDelivery.status == status)
    total = int(await uow.session.scalar(select(func.count()).select_from(WebhookDelivery).where(*where)) or 0)
    rows = (
        await uow.session.execute(
            select(WebhookDelivery, Event.seq)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(*where)
            .order_by(WebhookDelivery.position.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    attempts: dict[int, list[AttemptRead]] = {}
    if history and rows:
        for attempt in await uow.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d, _ in rows]))
            .order_by(WebhookAttempt.id)
        ):
            attempts.setdefault(attempt.delivery_id, []).append(
                AttemptRead(
                    id=attempt.id,
                    at=attempt.at,
                    status=attempt.status,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                    trigger=attempt.trigger,
                )
            )
    return [
        DeliveryRead(
            id=d.id,
            subscription_id=d.subscription_id,
            event_id=webhooks.event_id(d.module, seq),
            position=d.position,
            module=d.module,
            type=d.type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_status=d.last_status,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            history=attempts.get(d.id, []),
        )
        for d, seq in rows
    ], total


async def resend(uow: UnitOfWork, sub_id: int, delivery_id: int, principal: Principal) -> None:
    """Queue one delivery to be sent again now (delivered or not); receivers drop it by event id if
    they already have it."""
    delivery = await uow.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != sub_id:
        raise NotFound(f"no delivery {delivery_id} of webhook subscription {sub_id}", delivery=delivery_id)
    delivery.status = "pending"
    delivery.next_attempt_at = utcnow()
    record_admin_action(uow, principal, "webhook.resend", f"webhook:{sub_id}", delivery=delivery_id)
