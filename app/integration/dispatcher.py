"""The outbox dispatcher: positions new outbox rows, fans them out to webhook deliveries, sends the
deliveries that are due, and publishes to NATS JetStream.

Every worker process runs one; only the holder of the `dispatch_leases` row works, so there is one
leader across workers on PostgreSQL (and across processes sharing a SQLite file). The lease is taken
over only once it has expired, and every positioning transaction renews it on the condition that this
process still holds it, so a deposed leader's transaction rolls back instead of handing out positions
twice. Delivery is at least once: a crash between a receiver's 2xx and the commit that records it
sends that event again, with the same `AFM-Event-Id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import socket
import time
from typing import Any

import httpx
import msgspec
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.core.config import Settings
from app.core.db import Database, UnitOfWork, utcnow
from app.core.ledger.models import Event, OutboxEntry
from app.integration import webhooks
from app.integration.models import (
    DispatchCursor,
    DispatchLease,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from app.integration.outbox import read_after, wire
from app.sites.models import Site

log = structlog.get_logger("afm.dispatcher")

LEASE = "outbox"
LEASE_TTL = dt.timedelta(seconds=10)
POSITION_BATCH = 500
SEND_BATCH = 64
SEND_CONCURRENCY = 8
NATS_BATCH = 200
PRUNE_EVERY_S = 60.0

DELIVERIES = Counter("afm_webhook_attempts", "Webhook delivery attempts", ["outcome"])
DELIVERY_LATENCY = Histogram(
    "afm_webhook_delivery_latency_seconds",
    "From an event's commit to its receiver's 2xx",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PUBLISHED = Counter("afm_nats_published", "Events published to NATS JetStream")


class LostLease(Exception):
    """Another process took the dispatcher lease; this one's transaction must not commit."""


class Dispatcher:
    def __init__(self, db: Database, settings: Settings, *, holder: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.leading = False
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._nats: Any = None
        self._js: Any = None
        self._nats_retry_at = 0.0
        self._nats_backoff = 1.0
        self._pruned_at = 0.0
        self._renew_at = 0.0  # monotonic time after which the lease is renewed (a write) again

    # -- the loop -------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if await self.hold_lease():
                        worked = await self.step()
                        if worked:
                            continue
                        await self._sleep(self.settings.dispatch_poll_s)
                    else:
                        await self._sleep(LEASE_TTL.total_seconds() / 4)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a database hiccup must not end delivery for good
                    log.exception("dispatcher step failed; retrying")
                    self.leading = False
                    await self._sleep(1.0)
        finally:
            await self.close()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._nats is not None:
            with contextlib.suppress(Exception):
                await self._nats.close()
            self._nats = self._js = None
        if self.leading:
            with contextlib.suppress(Exception):
                await self.release_lease()

    async def step(self) -> int:
        """One round of everything; the number of things done (0: nothing to do, sleep)."""
        worked = await self.position_new()
        worked += await self.send_due()
        if self.settings.nats_url:
            worked += await self.publish_nats()
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            with contextlib.suppress(LostLease):  # another worker leads now: it prunes
                await self.prune()
        return worked

    # -- leadership -----------------------------------------------------------------------------------
    async def hold_lease(self) -> bool:
        if self.leading and time.monotonic() < self._renew_at:
            return True  # renewed lately (positioning renews it too); spare the database a write per poll
        now = utcnow()
        try:
            async with self.db.write() as uow:
                taken = await uow.session.execute(
                    update(DispatchLease)
                    .where(
                        DispatchLease.name == LEASE,
                        (DispatchLease.holder == self.holder) | (DispatchLease.expires_at < now),
                    )
                    .values(holder=self.holder, expires_at=now + LEASE_TTL)
                )
                if taken.rowcount == 0:  # type: ignore[attr-defined]
                    exists_ = await uow.session.get(DispatchLease, LEASE)
                    if exists_ is None:
                        uow.session.add(DispatchLease(name=LEASE, holder=self.holder, expires_at=now + LEASE_TTL))
                        await uow.session.flush()
                    else:
                        self.leading = False
                        return False
        except IntegrityError:  # another process created the row at the same moment
            self.leading = False
            return False
        if not self.leading:
            log.info("dispatcher leads", holder=self.holder)
        self.leading = True
        self._renew_at = time.monotonic() + LEASE_TTL.total_seconds() / 3
        return True

    async def release_lease(self) -> None:
        async with self.db.write() as uow:
            await uow.session.execute(
                update(DispatchLease)
                .where(DispatchLease.name == LEASE, DispatchLease.holder == self.holder)
                .values(expires_at=utcnow() - dt.timedelta(seconds=1))
            )
        self.leading = False

    async def _fence(self, uow: UnitOfWork) -> None:
        now = utcnow()
        renewed = await uow.session.execute(
            update(DispatchLease)
            .where(DispatchLease.name == LEASE, DispatchLease.holder == self.holder, DispatchLease.expires_at > now)
            .values(expires_at=now + LEASE_TTL)
        )
        if renewed.rowcount != 1:  # type: ignore[attr-defined]
            self.leading = False
            raise LostLease(self.holder)
        self._renew_at = time.monotonic() + LEASE_TTL.total_seconds() / 3

    # -- positions and fan-out ------------------------------------------------------------------------
    async def position_new(self) -> int:
        """Give positions to rows committed since the last round (in id order) and create the webhook
        deliveries they call for, in one transaction."""
        async with self.db.read() as uow:
            waiting = await uow.session.scalar(select(OutboxEntry.id).where(OutboxEntry.position.is_(None)).limit(1))
        if waiting is None:
            return 0
        try:
            async with self.db.write() as uow:
                await self._fence(uow)
                rows = (
                    await uow.session.execute(
                        select(
                            OutboxEntry.id,
                            OutboxEntry.event_id,
                            OutboxEntry.module,
                            OutboxEntry.type,
                            OutboxEntry.site_id,
                            OutboxEntry.created_at,
                        )
                        .where(OutboxEntry.position.is_(None))
                        .order_by(OutboxEntry.id)
                        .limit(POSITION_BATCH)
                    )
                ).all()
                if not rows:
                    return 0
                last = await _cursor(uow, "positions")
                await uow.session.execute(
                    update(OutboxEntry),
                    [{"id": row.id, "position": last + i} for i, row in enumerate(rows, start=1)],
                )
                await _set_cursor(uow, "positions", last + len(rows))
                await self._fan_out(uow, rows, first=last + 1)
        except LostLease:
            log.warning("dispatcher lease lost; another worker leads now", holder=self.holder)
            return 0
        return len(rows)

    async def _fan_out(self, uow: UnitOfWork, rows: list[Any], *, first: int) -> None:
        subscriptions = list(await uow.session.scalars(select(WebhookSubscription).where(WebhookSubscription.active)))
        if not subscriptions:
            return
        sites = dict((await uow.session.execute(select(Site.id, Site.code))).all())
        now = utcnow()
        values = [
            {
                "subscription_id": sub.id,
                "position": position,
                "event_id": row.event_id,
                "module": row.module,
                "type": row.type,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "created_at": now,
            }
            for position, row in enumerate(rows, start=first)
            for sub in subscriptions
            # A subscription hears of what happens from its creation on, not of the history before it.
            if row.created_at >= sub.created_at
            and webhooks.wants(
                sub.event_types,
                sub.modules,
                sub.sites,
                type=row.type,
                module=row.module,
                site=sites.get(row.site_id, "") if row.site_id is not None else "",
            )
        ]
        if values:
            await uow.session.execute(insert(WebhookDelivery), values)

    # -- webhook sending ------------------------------------------------------------------------------
    async def send_due(self) -> int:
        now = utcnow()
        earlier = aliased(WebhookDelivery)
        async with self.db.read() as uow:
            due = (
                await uow.session.execute(
                    select(WebhookDelivery, WebhookSubscription, Event)
                    .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
                    .join(Event, Event.id == WebhookDelivery.event_id)
                    .where(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                        WebhookSubscription.active,
                        WebhookSubscription.paused_reason == "",
                        # per (subscription, module) order: the oldest undelivered event goes first
                        ~exists().where(
                            and_(
                                earlier.subscription_id == WebhookDelivery.subscription_id,
                                earlier.module == WebhookDelivery.module,
                                earlier.status == "pending",
                                earlier.position < WebhookDelivery.position,
                            )
                        ),
                    )
                    .order_by(WebhookDelivery.position)
                    .limit(SEND_BATCH)
                )
            ).all()
        if not due:
            return 0
        # The query gives at most one delivery per (subscription, module) — the oldest — so all of them
        # may go at once without breaking per-module order; the outcomes are recorded in one transaction.
        limit = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(item: tuple[WebhookDelivery, WebhookSubscription, Event]) -> tuple[Outcome, float, dt.datetime]:
            delivery, subscription, event = item
            message = wire(delivery.position, delivery.module, delivery.type.partition(".")[0], event)
            async with limit:
                started = time.perf_counter()
                outcome = await self._post(subscription, delivery, message.id, webhooks.encode(message))
            return outcome, (time.perf_counter() - started) * 1000, utcnow()

        results = await asyncio.gather(*(send(item) for item in due))
        async with self.db.write() as uow:
            for (delivery, subscription, event), (outcome, elapsed_ms, at) in zip(due, results, strict=True):
                await self._record(uow, delivery, subscription, event, outcome, elapsed_ms, at)
        return len(due)

    async def _record(
        self,
        uow: UnitOfWork,
        delivery: WebhookDelivery,
        subscription: WebhookSubscription,
        event: Event,
        outcome: Outcome,
        elapsed_ms: float,
        at: dt.datetime,
    ) -> None:
        """One attempt's outcome: the attempt row, the delivery's state, the subscription's failure count."""
        DELIVERIES.labels("delivered" if outcome.ok else "failed").inc()
        row = await uow.session.get(WebhookDelivery, delivery.id)
        sub = await uow.session.get(WebhookSubscription, subscription.id)
        if row is None or sub is None:
            return  # deleted meanwhile
        row.attempts += 1
        row.last_status = outcome.status
        row.last_error = outcome.error[:500]
        uow.session.add(
            WebhookAttempt(
                delivery_id=row.id,
                at=at,
                status=outcome.status,
                error=outcome.error[:500],
                duration_ms=round(elapsed_ms, 2),
                response_excerpt=outcome.excerpt,
                trigger="resend" if delivery.delivered_at is not None else "dispatch",
            )
        )
        if outcome.ok:
            if row.delivered_at is None:
                DELIVERY_LATENCY.observe(max(0.0, (at - event.at).total_seconds()))
            row.status = "delivered"
            row.delivered_at = at
            sub.consecutive_failures = 0
            return
        if row.status == "pending":
            wait = webhooks.backoff_s(
                row.attempts, base_s=self.settings.webhook_backoff_base_s, cap_s=self.settings.webhook_backoff_cap_s
            )
            row.next_attempt_at = at + dt.timedelta(seconds=wait)
        sub.consecutive_failures += 1
        if sub.consecutive_failures >= self.settings.webhook_pause_after and not sub.paused_reason:
            sub.paused_reason = (
                f"paused after {sub.consecutive_failures} failed attempts in a row; last: {outcome.error}"
            )[:300]
            log.warning("webhook subscription paused", subscription=sub.id, reason=sub.paused_reason)

    async def _post(
        self, subscription: WebhookSubscription, delivery: WebhookDelivery, event_id: str, body: bytes
    ) -> Outcome:
        try:
            host, port = webhooks.check_url(subscription.url)
            if not subscription.allow_private:
                # Resolved at send time too: a public name may have been pointed at an inside address since.
                for info in await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM):
                    reason = webhooks.private_reason(str(info[4][0]))
                    if reason:
                        return Outcome(error=f"refused: {reason} (the subscription does not allow private receivers)")
        except (webhooks.ReceiverRefused, OSError) as exc:
            return Outcome(error=f"refused: {exc}")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "afm-webhooks/1",
            webhooks.SIGNATURE_HEADER: webhooks.sign(subscription.secret, int(time.time()), body),
            webhooks.EVENT_ID_HEADER: event_id,
            webhooks.EVENT_TYPE_HEADER: delivery.type,
            webhooks.DELIVERY_HEADER: str(delivery.id),
        }
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s, follow_redirects=False)
        try:
            response = await self._http.post(subscription.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        excerpt = response.text[:300] if response.content else ""
        if 200 <= response.status_code < 300:
            return Outcome(ok=True, status=response.status_code, excerpt=excerpt)
        return Outcome(status=response.status_code, error=f"HTTP {response.status_code}", excerpt=excerpt)

    # -- NATS -----------------------------------------------------------------------------------------
    async def publish_nats(self) -> int:
        if time.monotonic() < self._nats_retry_at:
            return 0
        try:
            async with self.db.read() as uow:
                after = await _cursor(uow, "nats")
                events = await read_after(uow, after, limit=NATS_BATCH)
            if not events:
                return 0
            js = await self._jetstream()
            for event in events:
                await js.publish(
                    nats_subject(event.area, event.module),
                    webhooks.encode(event),
                    # JetStream drops a re-publish within its window. The hash, not serial:seq, so that two
                    # deployments (or test databases) with the same serials never drop each other's events.
                    headers={"Nats-Msg-Id": event.hash, "AFM-Event-Id": event.id},
                )
                PUBLISHED.inc()
            async with self.db.write() as uow:
                await _set_cursor(uow, "nats", events[-1].position)
        except Exception as exc:  # NATS down: keep the cursor, try again later, never block webhooks
            log.warning("NATS publish failed; will retry", error=str(exc), retry_in_s=self._nats_backoff)
            self._nats_retry_at = time.monotonic() + self._nats_backoff
            self._nats_backoff = min(60.0, self._nats_backoff * 2)
            if self._nats is not None:
                with contextlib.suppress(Exception):
                    await self._nats.close()
            self._nats = self._js = None
            return 0
        self._nats_backoff = 1.0
        return len(events)

    async def _jetstream(self) -> Any:
        if self._js is None:
            import nats
            from nats.js.api import StreamConfig

            self._nats = await nats.connect(self.settings.nats_url, connect_timeout=2, max_reconnect_attempts=2)
            self._js = self._nats.jetstream(timeout=5)
            config = StreamConfig(name=NATS_STREAM, subjects=["afm.events.>"], duplicate_window=300.0)
            try:
                await self._js.add_stream(config)
            except Exception:
                await self._js.update_stream(config)
        return self._js

    # -- housekeeping ---------------------------------------------------------------------------------
    async def prune(self) -> None:
        """Drop outbox rows, deliveries and attempts older than the retention that every consumer has
        passed (the ledger keeps the events themselves forever)."""
        cutoff = utcnow() - dt.timedelta(days=self.settings.outbox_retention_days)
        async with self.db.write() as uow:
            await self._fence(uow)
            passed = await _cursor(uow, "positions")
            if self.settings.nats_url:
                passed = min(passed, await _cursor(uow, "nats"))
            await uow.session.execute(
                delete(WebhookAttempt).where(
                    WebhookAttempt.delivery_id.in_(
                        select(WebhookDelivery.id).where(
                            WebhookDelivery.status == "delivered", WebhookDelivery.created_at < cutoff
                        )
                    )
                )
            )
            await uow.session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status == "delivered", WebhookDelivery.created_at < cutoff
                )
            )
            await uow.session.execute(
                delete(OutboxEntry).where(OutboxEntry.position <= passed, OutboxEntry.created_at < cutoff)
            )


NATS_STREAM = "AFM_EVENTS"


def nats_subject(area: str, serial: str) -> str:
    """afm.events.<area>.<serial>; characters NATS gives a meaning to are replaced."""
    safe = "".join("_" if ch in ".*> \t\r\n" else ch for ch in serial)
    return f"afm.events.{area}.{safe}"


class Outcome(msgspec.Struct):
    ok: bool = False
    status: int | None = None
    error: str = ""
    excerpt: str = ""


async def _cursor(uow: UnitOfWork, name: str) -> int:
    value = await uow.session.scalar(select(DispatchCursor.position).where(DispatchCursor.name == name))
    return int(value or 0)


async def _set_cursor(uow: UnitOfWork, name: str, position: int) -> None:
    row = await uow.session.get(DispatchCursor, name)
    if row is None:
        uow.session.add(DispatchCursor(name=name, position=position, updated_at=utcnow()))
    else:
        row.position = position
        row.updated_at = utcnow()


async def positions_waiting(uow: UnitOfWork) -> int:
    """Outbox rows not yet positioned (for /readyz-style checks and tests)."""
    return int(await uow.session.scalar(select(func.count()).where(OutboxEntry.position.is_(None))) or 0)
