"""HTTP API of integration: webhook subscriptions (admins) and the event stream (everyone signed in)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import allow
from app.core.db import Database
from app.core.errors import InvalidInput
from app.core.schemas import Limit, Offset, Page
from app.integration import outbox, webhook_service, webhooks
from app.integration.webhook_schemas import (
    DeliveryRead,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionRead,
    SubscriptionUpdate,
)

STREAM_POLL_S = 0.25
KEEPALIVE_S = 15.0


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["integration"]

    @get("/", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="ListWebhooks")
    async def list_subscriptions(self, db: NamedDependency[Database]) -> Page[SubscriptionRead]:
        async with db.read() as uow:
            items = await webhook_service.list_subscriptions(uow)
        return Page(items=items, total=len(items), limit=len(items), offset=0)

    @post("/", opt=allow(Role.ADMIN), operation_id="CreateWebhook")
    async def create(
        self, data: JSONBody[SubscriptionIn], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> SubscriptionCreated:
        """Subscribe a receiver. The answer holds the signing secret, shown this once."""
        async with db.write() as uow:
            return await webhook_service.create(uow, data, principal)

    @get("/{sub_id:int}", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="GetWebhook")
    async def get_subscription(self, sub_id: FromPath[int], db: NamedDependency[Database]) -> SubscriptionRead:
        async with db.read() as uow:
            return await webhook_service.get(uow, sub_id)

    @patch("/{sub_id:int}", opt=allow(Role.ADMIN), operation_id="UpdateWebhook")
    async def update(
        self,
        sub_id: FromPath[int],
        data: JSONBody[SubscriptionUpdate],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> SubscriptionRead:
        """Change filters or the URL, switch it off (`active`), pause or resume it (`paused`)."""
        async with db.write() as uow:
            return await webhook_service.update(uow, sub_id, data, principal)

    @delete("/{sub_id:int}", opt=allow(Role.ADMIN), operation_id="DeleteWebhook", status_code=204)
    async def remove(
        self, sub_id: FromPath[int], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> None:
        async with db.write() as uow:
            await webhook_service.delete(uow, sub_id, principal)

    @post("/{sub_id:int}/secret", opt=allow(Role.ADMIN), operation_id="RotateWebhookSecret", status_code=200)
    async def rotate_secret(
        self, sub_id: FromPath[int], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> SubscriptionCreated:
        """A new signing secret, shown this once; the old one stops signing at once."""
        async with db.write() as uow:
            return await webhook_service.rotate_secret(uow, sub_id, principal)

    @get("/{sub_id:int}/deliveries", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="ListWebhookDeliveries")
    async def list_deliveries(
        self,
        sub_id: FromPath[int],
        db: NamedDependency[Database],
        status: FromQuery[Literal["pending", "delivered"] | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[DeliveryRead]:
        """Deliveries, newest first, each with every attempt (time, status, error, duration)."""
        async with db.read() as uow:
            items, total = await webhook_service.deliveries(
                uow, sub_id, status=status, limit=limit, offset=offset, history=True
            )
        return Page(items=items, total=total, limit=limit, offset=offset)

    @post(
        "/{sub_id:int}/deliveries/{delivery_id:int}/resend",
        opt=allow(Role.ADMIN),
        operation_id="ResendWebhookDelivery",
        status_code=202,
    )
    async def resend(
        self,
        sub_id: FromPath[int],
        delivery_id: FromPath[int],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> dict[str, str]:
        """Send one delivery again now (in order after anything older of its module still pending)."""
        async with db.write() as uow:
            await webhook_service.resend(uow, sub_id, delivery_id, principal)
        return {"status": "queued"}


class EventStreamController(Controller):
    path = "/api/v1/events"
    tags = ["integration"]

    @get("/stream", opt=allow(*ALL_ROLES), operation_id="StreamEvents", media_type="text/event-stream")
    async def stream(
        self,
        request: Request,
        db: NamedDependency[Database],
        module: Annotated[str, QueryParameter(max_length=64)] = "",
        shipment: Annotated[str, QueryParameter(max_length=64)] = "",
        area: Annotated[str, QueryParameter(max_length=32)] = "",
        after: Annotated[int | None, QueryParameter(ge=0, le=2**62)] = None,
        follow: FromQuery[bool] = True,
        named: FromQuery[bool] = True,
    ) -> ServerSentEvent:
        """Server-Sent Events: every ledger event as the outbox published it (`id` = its position,
        `event` = its type, `data` = the same JSON a webhook gets). Resume with the `Last-Event-ID`
        header (browsers send it when they reconnect) or `after`; without either the stream starts
        from now. `follow=false` sends what there is and ends; `named=false` leaves out the `event:` name
        (browsers' EventSource then hands every message to `onmessage`)."""
        last = request.headers.get("last-event-id", "").strip()
        if last:
            if not last.isdigit() or len(last) > 18:
                raise InvalidInput("Last-Event-ID must be a position (a whole number) this stream sent")
            after = int(last)
        where = outbox.StreamFilter(module=module, shipment=shipment, area=area)

        async def messages() -> AsyncIterator[ServerSentEventMessage]:
            position = after
            if position is None:
                async with db.read() as uow:
                    position = await outbox.head(uow)
            yield ServerSentEventMessage(comment="afm event stream", retry=2000)
            quiet_since = time.monotonic()
            while True:
                async with db.read() as uow:
                    events = await outbox.read_after(uow, position, limit=200, where=where)
                for event in events:
                    position = event.position
                    yield ServerSentEventMessage(
                        data=webhooks.encode(event).decode(), event=event.type if named else None, id=event.position
                    )
                if len(events) == 200:
                    continue
                if not follow:
                    return
                if events:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_S:
                    quiet_since = time.monotonic()
                    yield ServerSentEventMessage(comment="keepalive")
                await asyncio.sleep(STREAM_POLL_S)

        return ServerSentEvent(messages(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
