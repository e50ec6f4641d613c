"""Commissioning through the API: checklists answered and signed, hardware validation judged from real
result files, the gate into service, and the certificate issued on the way in."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from pypdf import PdfReader

from app.asgi import create_app
from app.core.config import PROJECT_ROOT
from tests.conftest import assert_problem, bearer, make_settings

Client = AsyncTestClient[Litestar]
RESULTS = PROJECT_ROOT / "fixtures" / "validation"


@pytest.fixture
async def client(demo_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(make_settings(demo_url, tmp_path))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, format="PNG")
    return out.getvalue()


def _value(item: dict[str, Any], photo: str) -> Any:
    """A valid, unflagged answer for any item."""
    kind = item["kind"]
    lo, hi = item.get("min"), item.get("max")
    middle = (
        (lo + hi) / 2 if lo is not None and hi is not None else lo if lo is not None else hi if hi is not None else 1
    )
    if kind == "yes_no":
        return item["ok"] if item.get("ok") is not None else True
    if kind == "number":
        return middle
    if kind == "measurement":
        return {"value": middle, "instrument": "FLUKE-1587-4471"}
    if kind == "choice":
        return item["choices"][0]
    if kind == "photo":
        return photo
    if kind == "signature":
        return "Erin Engineer"
    return "checked"


async def _visible_required(client: Client, run_id: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    run = (await client.get(f"/api/v1/checklist-runs/{run_id}", headers=headers)).json()
    items = {i["id"]: i for s in run["template"]["sections"] for i in s["items"]}
    return [items[i] for i in run["missing"]]


async def _complete(client: Client, run_id: int, headers: dict[str, str], photo: str) -> None:
    """Answer every required item until none is missing (answers can reveal further items)."""
    for _ in range(5):
        missing = await _visible_required(client, run_id, headers)
        if not missing:
            return
        for item in missing:
            body = {"value": _value(item, photo), "base_version": 0, "edit_id": uuid.uuid4().hex}
            response = await client.put(
                f"/api/v1/checklist-runs/{run_id}/answers/{item['id']}", json=body, headers=headers
            )
            assert response.status_code == 200, (item, response.text)
    raise AssertionError("answers kept revealing required items")


async def _photo(client: Client, headers: dict[str, str]) -> str:
    response = await client.post("/api/v1/evidence", content=_png(), headers={**headers, "Content-Type": "image/png"})
    assert response.status_code == 201, response.text
    return str(response.json()["sha256"])


async def _transition(client: Client, serial: str, name: str, headers: dict[str, str]) -> Any:
    return await client.post(f"/api/v1/modules/{serial}/transitions", json={"transition": name}, headers=headers)


async def _sign_all(client: Client, serial: str, engineer: dict[str, str], photo: str) -> list[int]:
    status = (await client.get(f"/api/v1/modules/{serial}/commissioning", headers=engineer)).json()
    runs = []
    for checklist in status["checklists"]:
        started = await client.post(
            f"/api/v1/modules/{serial}/checklists", json={"template": checklist["template"]}, headers=engineer
        )
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        await _complete(client, run_id, engineer, photo)
        signed = await client.post(
            f"/api/v1/checklist-runs/{run_id}/signatures",
            json={"kind": "engineer", "name": "Erin Engineer"},
            headers=engineer,
        )
        assert signed.status_code == 201, signed.text
        runs.append(run_id)
    return runs


async def _validate(client: Client, serial: str, engineer: dict[str, str], outcome: str = "pass") -> dict[str, Any]:
    started = await client.post(f"/api/v1/modules/{serial}/validation-runs", headers=engineer)
    assert started.status_code == 201, started.text
    run = started.json()
    files = {
        "dcgm": f"dcgm-diag-{outcome}.json",
        "nccl_all_reduce": f"nccl-all-reduce-hgx-h200-{outcome}.txt",
        "ib_write_bw": f"ib-write-bw-{outcome}.txt",
        "throughput": f"throughput-{outcome}.json",
    }
    for step in run["steps"]:
        body = (RESULTS / files[step["kind"]]).read_bytes()
        response = await client.post(
            f"/api/v1/validation-runs/{run['id']}/results/{step['step']}", content=body, headers=engineer
        )
        assert response.status_code == 201, response.text
        run = response.json()
    return run


async def test_delivered_to_in_service_with_signed_checklists_and_passing_validation(client: Client) -> None:
    engineer = await bearer(client, "engineer")
    serial = "AFM-26-000109"  # HGX-H200-40, delivered at FIKAJ1 (sovereign)
    status = (await client.get(f"/api/v1/modules/{serial}/commissioning", headers=engineer)).json()
    assert {c["stage"] for c in status["checklists"]} == {"delivery", "installation", "functional"}
    assert (await _transition(client, serial, "start_commissioning", engineer)).status_code == 200
    photo = await _photo(client, engineer)
    refused = await _transition(client, serial, "start_validation", engineer)
    assert_problem(refused, 422, "checklist_signed")
    await _sign_all(client, serial, engineer, photo)
    assert (await _transition(client, serial, "start_validation", engineer)).status_code == 200
    assert_problem(await _transition(client, serial, "enter_service", engineer), 422, "validation_passed")

    failing = await _validate(client, serial, engineer, "fail")
    assert failing["verdict"] == "fail"
    assert any("below" in r or "fail" in r for step in failing["steps"] for r in step["reasons"])
    assert_problem(await _transition(client, serial, "enter_service", engineer), 422, "validation_passed")
    passing = await _validate(client, serial, engineer, "pass")
    assert passing["verdict"] == "pass", passing
    entered = await _transition(client, serial, "enter_service", engineer)
    assert entered.status_code == 200, entered.text
    assert entered.json()["state"] == "in_service"

    pdf = await client.get(f"/api/v1/modules/{serial}/certificate.pdf", headers=engineer)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert serial in text and "FIKAJ1" in text and "Erin Engineer" in text
    for checklist in status["checklists"]:
        assert checklist["template"] in text
    assert photo in text.replace(" ", "")
    events = (await client.get(f"/api/v1/modules/{serial}/events", headers=engineer)).json()
    issued = next(e for e in events if e["type"] == "certificate.issued")
    assert issued["payload"]["sha256"] == hashlib.sha256(pdf.content).hexdigest()
    assert sum(1 for e in events if e["type"] == "checklist.signed") == 3
    auditor = await bearer(client, "auditor")
    assert (await client.get("/api/v1/audit/verify", headers=auditor)).json()["ok"] is True


async def test_in_service_is_refused_without_signed_checklists(client: Client) -> None:
    engineer = await bearer(client, "engineer")
    serial = "AFM-25-000142"  # HGX-H200-40 validating at CABHS1: it got there on imported paper records
    run = await _validate(client, serial, engineer, "pass")
    assert run["verdict"] == "pass"
    refused = await _transition(client, serial, "enter_service", engineer)
    assert_problem(refused, 422, "checklist_signed")


async def test_defence_template_refuses_a_single_signature(client: Client) -> None:
    engineer, admin = await bearer(client, "engineer"), await bearer(client, "admin")
    serial = "AFM-26-000115"  # L4-EDGE-20 in transit to AUADL1, a defence site
    assert (await _transition(client, serial, "deliver", engineer)).status_code == 200
    assert (await _transition(client, serial, "start_commissioning", engineer)).status_code == 200
    status = (await client.get(f"/api/v1/modules/{serial}/commissioning", headers=engineer)).json()
    assert status["security_level"] == "defence"
    defence = next(c for c in status["checklists"] if c["template"].endswith("-defence"))
    started = await client.post(
        f"/api/v1/modules/{serial}/checklists", json={"template": defence["template"]}, headers=engineer
    )
    run_id = started.json()["id"]
    assert started.json()["needs_witness"] is True
    await _complete(client, run_id, engineer, await _photo(client, engineer))
    url = f"/api/v1/checklist-runs/{run_id}/signatures"
    once = await client.post(url, json={"kind": "engineer", "name": "Erin Engineer"}, headers=engineer)
    assert once.status_code == 201 and once.json()["status"] == "open"  # one signature is not enough
    assert_problem(
        await client.post(url, json={"kind": "witness", "name": "Erin Engineer"}, headers=engineer),
        422,
        "second person",
    )
    witnessed = await client.post(url, json={"kind": "witness", "name": "Ada Admin"}, headers=admin)
    assert witnessed.status_code == 201, witnessed.text
    assert witnessed.json()["status"] == "signed"
    late = await client.put(
        f"/api/v1/checklist-runs/{run_id}/answers/{(await _visible_items(client, run_id, engineer))[0]}",
        json={"value": True, "base_version": 1, "edit_id": uuid.uuid4().hex},
        headers=engineer,
    )
    assert_problem(late, 409, "read-only")


async def _visible_items(client: Client, run_id: int, headers: dict[str, str]) -> list[str]:
    return list((await client.get(f"/api/v1/checklist-runs/{run_id}", headers=headers)).json()["visible"])


async def test_conflicting_edits_are_visible_and_replays_store_once(client: Client) -> None:
    engineer, admin = await bearer(client, "engineer"), await bearer(client, "admin")
    serial = "AFM-26-000104"
    started = await client.post(
        f"/api/v1/modules/{serial}/checklists", json={"template": "delivery-inspection"}, headers=engineer
    )
    assert started.status_code == 201, started.text
    run = started.json()
    items = {i["id"]: i for s in run["template"]["sections"] for i in s["items"]}
    yes_no = next(i for i in items.values() if i["kind"] == "yes_no" and i.get("ok") is not None)
    url = f"/api/v1/checklist-runs/{run['id']}/answers/{yes_no['id']}"
    mine = {"value": yes_no["ok"], "base_version": 0, "edit_id": "edit-mine-0001"}
    first = await client.put(url, json=mine, headers=engineer)
    assert first.status_code == 200 and first.json()["version"] == 1
    again = await client.put(url, json=mine, headers=engineer)  # the offline queue sent it twice
    assert again.json() == first.json()
    theirs = {"value": yes_no["ok"], "base_version": 0, "edit_id": "edit-theirs-0001"}
    conflict = assert_problem(await client.put(url, json=theirs, headers=admin), 409, "changed by engineer")
    assert conflict["current"]["version"] == 1 and conflict["current"]["answered_by"] == "engineer"
    # the flagged answer (the other one than "ok") needs a comment
    flagged = {"value": not yes_no["ok"], "base_version": 1, "edit_id": "edit-theirs-0002"}
    assert_problem(await client.put(url, json=flagged, headers=admin), 400, "comment")
    with_comment = {**flagged, "comment": "indicator tripped; photos taken, carrier informed"}
    stored = await client.put(url, json=with_comment, headers=admin)
    assert stored.status_code == 200 and stored.json()["flagged"] is True and stored.json()["version"] == 2
    events = (await client.get(f"/api/v1/modules/{serial}/events", headers=engineer)).json()
    assert sum(1 for e in events if e["type"] == "checklist.answered") == 2


async def test_bad_evidence_and_result_files_are_refused(client: Client) -> None:
    engineer = await bearer(client, "engineer")
    png = {**engineer, "Content-Type": "image/png"}
    assert_problem(await client.post("/api/v1/evidence", content=b"not a picture", headers=png), 400)
    assert_problem(
        await client.post("/api/v1/evidence", content=_png(), headers={**engineer, "Content-Type": "image/gif"}),
        415,
        "image/jpeg",
    )
    jpeg_claim = {**engineer, "Content-Type": "image/jpeg"}
    assert_problem(await client.post("/api/v1/evidence", content=_png(), headers=jpeg_claim), 400, "PNG")
    huge = b"\x89PNG\r\n\x1a\n" + b"\0" * (9 * 1024 * 1024)
    assert_problem(await client.post("/api/v1/evidence", content=huge, headers=png), 413)
    serial = "AFM-25-000142"
    run = (await client.post(f"/api/v1/modules/{serial}/validation-runs", headers=engineer)).json()
    step = next(s for s in run["steps"] if s["kind"] == "nccl_all_reduce")
    bad = await client.post(
        f"/api/v1/validation-runs/{run['id']}/results/{step['step']}", content=b"hello", headers=engineer
    )
    assert_problem(bad, 400, step["step"])
    after = (await client.get(f"/api/v1/validation-runs/{run['id']}", headers=engineer)).json()
    assert all(s["verdict"] == "no result" for s in after["steps"])
