"""The transactional outbox and what it feeds: positions, webhooks (signed, retried, in order per
module, paused, re-sent, SSRF refused), the event stream and NATS JetStream, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.asgi import create_app
from app.core.db import Database
from app.core.ledger.models import Event, OutboxEntry
from app.integration.dispatcher import Dispatcher
from app.integration.models import DispatchLease, WebhookDelivery
from tests.conftest import assert_problem, bearer, make_settings
from tests.integration.webhook_receiver import Receiver

Client = AsyncTestClient[Litestar]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _settings(url: str, tmp_path: Path, **extra: Any) -> Any:
    return make_settings(
        url, tmp_path, webhook_backoff_base_s=0.05, webhook_backoff_cap_s=0.2, dispatch_poll_s=0.02, **extra
    )


async def _until(check: Callable[[], Awaitable[bool]], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def _planned_module(client: Client, admin: dict[str, str]) -> str:
    response = await client.post("/api/v1/modules", json={"spec": "HGX-H200-40"}, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


async def _move(client: Client, headers: dict[str, str], serial: str, transition: str, **payload: str) -> None:
    response = await client.post(
        f"/api/v1/modules/{serial}/transitions", json={"transition": transition, "payload": payload}, headers=headers
    )
    assert response.status_code == 200, response.text


HOLD = {"reason": "Coolant loop pressure drop seen on inspection"}


def _docs_example() -> dict[str, Any]:
    """The receiver example of docs/webhooks.md, run as written."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    return namespace


async def test_every_event_writes_one_outbox_row_in_its_transaction(client: Client, admin: dict[str, str]) -> None:
    serial = await _planned_module(client, admin)
    await _move(client, admin, serial, "start_assembly")
    refused = await client.post(
        f"/api/v1/modules/{serial}/transitions", json={"transition": "pass_burn_in"}, headers=admin
    )
    assert refused.status_code == 409
    db = Database(client.app.state.db.url, pool_size=1)  # its own engine: the app's pool is the client's loop's
    async with db.read() as uow:
        events = await uow.session.scalar(
            select(func.count()).select_from(Event).join(OutboxEntry, OutboxEntry.event_id == Event.id)
        )
        rows = list(await uow.session.scalars(select(OutboxEntry).where(OutboxEntry.module == serial)))
    await db.dispose()
    assert [(r.area, r.type, r.position) for r in rows] == [
        ("module", "module.registered", None),
        ("lifecycle", "lifecycle.start_assembly", None),
    ]
    assert events is not None and events >= len(rows)


async def test_webhooks_delivered_once_in_order_after_failures_and_restart(
    demo_url: str, tmp_path: Path, dialect: str
) -> None:
    """A receiver that fails its first 3 attempts gets every event of a module's journey, in order,
    exactly once after dropping duplicates by event id, across a restart of the service; every
    signature verifies with the docs' example."""
    example = _docs_example()
    with Receiver(fail_first=3) as receiver:
        app = create_app(_settings(demo_url, tmp_path, dispatcher=True))
        async with AsyncTestClient(app=app) as client:
            admin = await bearer(client, "admin")
            created = await client.post(
                "/api/v1/webhooks",
                json={"name": "cmdb", "url": receiver.url, "event_types": ["lifecycle.*"], "allow_private": True},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            serial = await _planned_module(client, admin)
            await _move(client, admin, serial, "start_assembly")
            await _move(client, admin, serial, "hold", **HOLD)

            async def first_part() -> bool:
                got = {e["id"] for e in receiver.events() if e["module"] == serial}
                return {f"{serial}:2", f"{serial}:3"} <= got

            await _until(first_part)
        # The service stops (the dispatcher with it) and starts again: a new process, a new holder.
        app = create_app(_settings(demo_url, tmp_path, dispatcher=True))
        async with AsyncTestClient(app=app) as client:
            admin = await bearer(client, "admin")
            await _move(client, admin, serial, "release")
            await _move(client, admin, serial, "hold", **HOLD)
            await _move(client, admin, serial, "release")

            async def all_done() -> bool:
                return len({e["id"] for e in receiver.events() if e["module"] == serial}) == 5

            await _until(all_done)
            deliveries = await client.get("/api/v1/webhooks/1/deliveries?status=delivered", headers=admin)
            assert deliveries.json()["total"] >= 5
    bodies = [(headers, body) for headers, body in receiver.requests]
    assert len(bodies) >= 5 + 3  # the three failures were retried
    for headers, body in bodies:
        assert example["verify_afm_signature"](secret, headers["AFM-Signature"], body)
        assert not example["verify_afm_signature"]("whsec_wrong", headers["AFM-Signature"], body)
        assert headers["AFM-Event-Id"] == msgspec.json.decode(body)["id"]
    statuses = [example["handle_delivery"](secret, headers, body) for headers, body in bodies]
    assert set(statuses) == {200}
    unique: dict[str, dict[str, Any]] = {}
    for event in receiver.events():
        unique.setdefault(event["id"], event)
    mine = [e for e in unique.values() if e["module"] == serial]
    assert [e["type"] for e in mine] == [
        "lifecycle.start_assembly",
        "lifecycle.hold",
        "lifecycle.release",
        "lifecycle.hold",
        "lifecycle.release",
    ]
    assert [e["seq"] for e in mine] == [2, 3, 4, 5, 6]  # arrival order is ledger order
    first_seen = [
        msgspec.json.decode(body)["seq"] for _, body in bodies if msgspec.json.decode(body)["module"] == serial
    ]
    assert first_seen == sorted(first_seen)  # never a later event before an earlier one was accepted


async def test_failing_receiver_is_paused_then_resumed(demo_url: str, tmp_path: Path, dialect: str) -> None:
    with Receiver(fail_first=4, status_when_failing=500) as receiver:
        app = create_app(_settings(demo_url, tmp_path, dispatcher=True, webhook_pause_after=3))
        async with AsyncTestClient(app=app) as client:
            admin = await bearer(client, "admin")
            sub = (
                await client.post(
                    "/api/v1/webhooks",
                    json={"name": "flaky", "url": receiver.url, "allow_private": True},
                    headers=admin,
                )
            ).json()
            serial = await _planned_module(client, admin)

            async def paused() -> bool:
                got = (await client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin)).json()
                return bool(got["paused_reason"])

            await _until(paused)
            state = (await client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin)).json()
            assert "3 failed attempts" in state["paused_reason"] and state["pending"] == 1
            tried = len(receiver.requests)
            await asyncio.sleep(0.3)
            assert len(receiver.requests) == tried  # paused: nothing is sent
            page = await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin)
            delivery = page.json()["items"][0]
            assert [a["status"] for a in delivery["history"]] == [500, 500, 500]
            resumed = await client.patch(f"/api/v1/webhooks/{sub['id']}", json={"paused": False}, headers=admin)
            assert resumed.status_code == 200

            async def delivered() -> bool:
                got = (await client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin)).json()
                return bool(got["delivered"] == 1)

            await _until(delivered)
            resend = await client.post(
                f"/api/v1/webhooks/{sub['id']}/deliveries/{delivery['id']}/resend", headers=admin
            )
            assert resend.status_code == 202

            async def resent() -> bool:
                items = (await client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin)).json()["items"]
                return [a["trigger"] for a in items[0]["history"]][-1:] == ["resend"]

            await _until(resent)
            audit = (await client.get("/api/v1/audit/admin-actions", headers=admin)).json()
            actions = {item["action"] for item in audit["items"]}
            assert {"webhook.create", "webhook.update", "webhook.resend"} <= actions
    assert {msgspec.json.decode(body)["id"] for _, body in receiver.requests} == {f"{serial}:1"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::1]/hook", "loopback"),
        ("ftp://example.com/hook", "http"),
        ("http://user:pw@example.com/hook", "credentials"),
    ],
)
async def test_private_receivers_refused_unless_allowed(
    client: Client, admin: dict[str, str], url: str, reason: str
) -> None:
    body = {"name": "x", "url": url}
    assert_problem(await client.post("/api/v1/webhooks", json=body, headers=admin), 422, reason)
    listed = (await client.get("/api/v1/webhooks", headers=admin)).json()
    assert listed["total"] == 0
    planner = await bearer(client, "planner")
    assert_problem(await client.post("/api/v1/webhooks", json=body, headers=planner), 403)


async def test_one_leader_and_fencing(db: Database, tmp_path: Path, demo_url: str) -> None:
    settings = make_settings(demo_url, tmp_path)
    first, second = Dispatcher(db, settings, holder="a"), Dispatcher(db, settings, holder="b")
    assert await first.hold_lease()
    assert not await second.hold_lease()
    async with db.write() as uow:  # a's lease runs out (a paused past it) and b takes over
        lease = await uow.session.get(DispatchLease, "outbox")
        assert lease is not None
        lease.expires_at = lease.expires_at - dt.timedelta(minutes=1)
    assert await second.hold_lease()
    # a does not know yet; its next positioning transaction is fenced off and writes nothing.
    async with db.write() as uow:
        from app.core.ledger import service as ledger
        from app.factory.service import load_module

        module = await load_module(uow, await _any_serial(db))
        await ledger.append(uow, module, "scan.recorded", actor="floor", role="floor", payload={"code": "t"})
    assert await first.position_new() == 0
    assert not first.leading
    assert await second.position_new() >= 1
    async with db.read() as uow:
        assert await uow.session.scalar(select(func.count()).where(OutboxEntry.position.is_(None))) == 0


async def _any_serial(db: Database) -> str:
    from app.factory.models import Module

    async with db.read() as uow:
        return str(await uow.session.scalar(select(Module.serial).limit(1)))


async def test_event_stream_resumes_from_last_event_id(client: Client, admin: dict[str, str], tmp_path: Path) -> None:
    db = Database(client.app.state.db.url, pool_size=1)
    dispatcher = Dispatcher(db, make_settings(db.url, tmp_path))
    serial = await _planned_module(client, admin)
    await _move(client, admin, serial, "start_assembly")
    assert await dispatcher.hold_lease()
    await dispatcher.position_new()
    url = f"/api/v1/events/stream?module={serial}&follow=false&after=0"
    messages = _sse((await client.get(url, headers=admin)).text)
    assert [m["event"] for m in messages] == ["module.registered", "lifecycle.start_assembly"]
    last = messages[0]["id"]
    await _move(client, admin, serial, "hold", **HOLD)
    await dispatcher.position_new()
    resumed = _sse(
        (
            await client.get(
                f"/api/v1/events/stream?module={serial}&follow=false", headers={**admin, "Last-Event-ID": last}
            )
        ).text
    )
    assert [m["event"] for m in resumed] == ["lifecycle.start_assembly", "lifecycle.hold"]
    data = msgspec.json.decode(resumed[-1]["data"])
    assert data["id"] == f"{serial}:3" and data["payload"]["reason"] == HOLD["reason"]
    assert_problem(await client.get("/api/v1/events/stream?follow=false", headers={**admin, "Last-Event-ID": "x"}), 400)
    assert (await client.get("/api/v1/events/stream?follow=false")).status_code == 401
    await dispatcher.close()
    await db.dispose()


def _sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "id" in fields:  # the opening comment (and keepalives) carry no id
            messages.append(fields)
    return messages


async def _nats_up() -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 4222), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def test_nats_subscriber_sees_each_event_once_in_order(demo_url: str, tmp_path: Path, dialect: str) -> None:
    """Every event of a module's journey reaches a NATS subscriber once, in order, across a restart."""
    if not await _nats_up():
        pytest.skip("no NATS server at 127.0.0.1:4222 (the python-svc machine runs one with JetStream)")
    import nats

    connection = await nats.connect("nats://127.0.0.1:4222")
    received: list[tuple[str, dict[str, Any]]] = []

    async def collect(msg: Any) -> None:
        received.append((msg.subject, msgspec.json.decode(msg.data)))

    subscription = await connection.subscribe("afm.events.>", cb=collect)
    settings = _settings(demo_url, tmp_path, dispatcher=True, nats_url="nats://127.0.0.1:4222")
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            admin = await bearer(client, "admin")
            serial = await _planned_module(client, admin)
            await _move(client, admin, serial, "start_assembly")
            await _until(lambda: _count(received, serial, 2))
        async with AsyncTestClient(app=create_app(settings)) as client:  # the service restarts
            admin = await bearer(client, "admin")
            await _move(client, admin, serial, "hold", **HOLD)
            await _move(client, admin, serial, "release")
            await _until(lambda: _count(received, serial, 4))
            info = await connection.jetstream().stream_info("AFM_EVENTS")
            assert "afm.events.>" in info.config.subjects
    finally:
        await subscription.unsubscribe()
        await connection.close()
    mine = [(subject, event["type"], event["seq"]) for subject, event in received if event["module"] == serial]
    assert mine == [
        (f"afm.events.module.{serial}", "module.registered", 1),
        (f"afm.events.lifecycle.{serial}", "lifecycle.start_assembly", 2),
        (f"afm.events.lifecycle.{serial}", "lifecycle.hold", 3),
        (f"afm.events.lifecycle.{serial}", "lifecycle.release", 4),
    ]


async def _count(received: list[tuple[str, dict[str, Any]]], serial: str, n: int) -> bool:
    return sum(1 for _, event in received if event["module"] == serial) >= n


async def test_webhook_deliveries_table_is_per_subscription(demo_url: str, tmp_path: Path, dialect: str) -> None:
    """Fan-out: one delivery per matching subscription and event, none for the others."""
    app = create_app(_settings(demo_url, tmp_path))
    async with AsyncTestClient(app=app) as client:
        admin = await bearer(client, "admin")
        for name, types in (("all", []), ("custody", ["custody.*"]), ("assembly", ["lifecycle.start_assembly"])):
            body = {"name": name, "url": "http://127.0.0.1:9/x", "event_types": types, "allow_private": True}
            assert (await client.post("/api/v1/webhooks", json=body, headers=admin)).status_code == 201
        serial = await _planned_module(client, admin)
        await _move(client, admin, serial, "start_assembly")
        db = Database(app.state.db.url, pool_size=1)
        dispatcher = Dispatcher(db, app.state.settings)
        assert await dispatcher.hold_lease()
        assert await dispatcher.position_new() >= 2  # the demo fleet's history is in the outbox too
        async with db.read() as uow:
            rows = (
                await uow.session.execute(
                    select(WebhookDelivery.subscription_id, WebhookDelivery.type).order_by(WebhookDelivery.id)
                )
            ).all()
        assert sorted(rows) == [
            (1, "lifecycle.start_assembly"),
            (1, "module.registered"),
            (3, "lifecycle.start_assembly"),
        ]
        await dispatcher.close()
