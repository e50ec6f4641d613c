"""The webhooks page for admins (auditors read it): subscriptions, their deliveries and attempts,
pause/resume and re-send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Template

from app.core.auth.domain import Principal, Role
from app.core.auth.guards import page
from app.core.db import Database, UnitOfWork
from app.core.errors import DomainError
from app.integration import webhook_service
from app.integration.webhook_schemas import SubscriptionIn, SubscriptionUpdate


class SubscriptionForm(msgspec.Struct):
    name: str = ""
    url: str = ""
    event_types: str = ""  # comma separated: lifecycle.*, custody.handoff
    modules: str = ""
    sites: str = ""
    allow_private: str = ""  # "on" when ticked


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


class WebhookPages(Controller):
    include_in_schema = False

    async def _context(self, db: Database, principal: Principal, selected: int | None) -> dict[str, Any]:
        async with db.read() as uow:
            subscriptions = await webhook_service.list_subscriptions(uow)
            deliveries: list[Any] = []
            if selected is None and subscriptions:
                selected = subscriptions[0].id
            if selected is not None:
                deliveries, _ = await webhook_service.deliveries(
                    uow, selected, status=None, limit=50, offset=0, history=True
                )
        return {
            "principal": principal,
            "subscriptions": subscriptions,
            "selected": selected,
            "deliveries": deliveries,
            "can_edit": Role.ADMIN in principal.roles,
        }

    @get("/admin/webhooks", opt=page(Role.ADMIN, Role.AUDITOR))
    async def index(
        self,
        principal: NamedDependency[Principal],
        db: NamedDependency[Database],
        subscription: FromQuery[int | None] = None,
    ) -> Template:
        context = await self._context(db, principal, subscription)
        return Template(template_name="integration/webhooks.html", context={**context, "created": None, "error": ""})

    @post("/admin/webhooks", opt=page(Role.ADMIN), status_code=200)
    async def create(
        self,
        data: URLEncodedBody[SubscriptionForm],
        principal: NamedDependency[Principal],
        db: NamedDependency[Database],
    ) -> Template:
        created = None
        error = ""
        try:
            request = msgspec.convert(
                {
                    "name": data.name.strip(),
                    "url": data.url.strip(),
                    "event_types": _split(data.event_types),
                    "modules": _split(data.modules),
                    "sites": _split(data.sites),
                    "allow_private": data.allow_private == "on",
                },
                SubscriptionIn,
            )
            async with db.write() as uow:
                created = await webhook_service.create(uow, request, principal)
        except (DomainError, msgspec.ValidationError) as exc:
            error = getattr(exc, "detail", str(exc))
        context = await self._context(db, principal, created.id if created else None)
        return Template(
            template_name="integration/webhooks.html", context={**context, "created": created, "error": error}
        )

    @post("/admin/webhooks/{sub_id:int}/pause", opt=page(Role.ADMIN), status_code=200)
    async def pause(
        self, sub_id: FromPath[int], principal: NamedDependency[Principal], db: NamedDependency[Database]
    ) -> Template:
        return await self._update(sub_id, SubscriptionUpdate(paused=True), principal, db)

    @post("/admin/webhooks/{sub_id:int}/resume", opt=page(Role.ADMIN), status_code=200)
    async def resume(
        self, sub_id: FromPath[int], principal: NamedDependency[Principal], db: NamedDependency[Database]
    ) -> Template:
        return await self._update(sub_id, SubscriptionUpdate(paused=False, active=True), principal, db)

    async def _update(self, sub_id: int, change: SubscriptionUpdate, principal: Principal, db: Database) -> Template:
        async def update(uow: UnitOfWork) -> None:
            await webhook_service.update(uow, sub_id, change, principal)

        return await self._act(sub_id, update, principal, db)

    async def _act(
        self, sub_id: int, action: Callable[[UnitOfWork], Awaitable[None]], principal: Principal, db: Database
    ) -> Template:
        """Run one admin action in its own transaction and show the page again, with the refusal if any."""
        error = ""
        try:
            async with db.write() as uow:
                await action(uow)
        except DomainError as exc:
            error = exc.detail
        context = await self._context(db, principal, sub_id)
        return Template(template_name="integration/webhooks.html", context={**context, "created": None, "error": error})

    @post("/admin/webhooks/{sub_id:int}/deliveries/{delivery_id:int}/resend", opt=page(Role.ADMIN), status_code=200)
    async def resend(
        self,
        sub_id: FromPath[int],
        delivery_id: FromPath[int],
        principal: NamedDependency[Principal],
        db: NamedDependency[Database],
    ) -> Template:
        async def resend(uow: UnitOfWork) -> None:
            await webhook_service.resend(uow, sub_id, delivery_id, principal)

        return await self._act(sub_id, resend, principal, db)
