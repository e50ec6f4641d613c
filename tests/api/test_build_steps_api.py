"""Build steps: parts in and out of modules at stations, each a ledger event; the BOM guard is real."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import assert_problem, bearer

Client = AsyncTestClient[Litestar]


async def _assembling(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    module = (await client.get("/api/v1/modules?state=assembling&limit=1", headers=headers)).json()["items"][0]
    spec = (await client.get(f"/api/v1/specs/{module['spec']}", headers=headers)).json()
    return {**module, "bom": spec["bom"]}


async def _missing(client: Client, headers: dict[str, str], module: dict[str, Any]) -> list[tuple[str, str, int]]:
    parts = (await client.get(f"/api/v1/parts?module={module['serial']}&limit=500", headers=headers)).json()["items"]
    have: dict[str, int] = {}
    for p in parts:
        have[p["kind"]] = have.get(p["kind"], 0) + 1
    return [(b["kind"], b["part_numbers"][0], b["quantity"] - have.get(b["kind"], 0)) for b in module["bom"]]


async def test_install_until_bom_complete_then_assemble(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembling(client, floor)
    url = f"/api/v1/modules/{module['serial']}"
    refused = await client.post(f"{url}/transitions", json={"transition": "complete_assembly"}, headers=floor)
    assert_problem(refused, 422, "bom_complete", "missing parts")
    installed = 0
    for kind, part_number, count in await _missing(client, floor, module):
        for i in range(count):
            body = {
                "serial": f"SN-{module['serial']}-{kind}-{i}",
                "kind": kind,
                "part_number": part_number,
                "station": "TWKHH1-ASM-01",
            }
            response = await client.post(f"{url}/parts", json=body, headers=floor)
            assert response.status_code == 201, response.text
            installed += 1
    assert installed > 0
    done = await client.post(f"{url}/transitions", json={"transition": "complete_assembly"}, headers=floor)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "assembled"
    events = (await client.get(f"{url}/events", headers=floor)).json()
    assert sum(e["type"] == "factory.part_installed" for e in events) == installed
    # Once assembled, parts no longer go in.
    extra = {"serial": "SN-EXTRA-1", "kind": "gpu", "part_number": module["bom"][0]["part_numbers"][0]}
    assert_problem(await client.post(f"{url}/parts", json=extra, headers=floor), 409, "assembling")


async def test_part_in_another_module_is_refused_with_where_it_is(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembling(client, floor)
    parts = (await client.get(f"/api/v1/parts?module={module['serial']}&limit=1", headers=floor)).json()["items"]
    taken = parts[0]
    other = (await client.get("/api/v1/modules?state=assembling&limit=2", headers=floor)).json()["items"][1]
    body = {"serial": taken["serial"], "kind": taken["kind"], "part_number": taken["part_number"]}
    problem = assert_problem(
        await client.post(f"/api/v1/modules/{other['serial']}/parts", json=body, headers=floor),
        409,
        module["serial"],
        taken["position"],
    )
    assert problem["module"] == module["serial"]


async def test_bom_rules_refuse_wrong_parts(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembling(client, floor)
    url = f"/api/v1/modules/{module['serial']}/parts"
    line = module["bom"][0]
    assert_problem(
        await client.post(url, json={"serial": "SN-X-1", "kind": "toaster", "part_number": "T1"}, headers=floor),
        422,
        "bom_kind",
    )
    assert_problem(
        await client.post(
            url, json={"serial": "SN-X-2", "kind": line["kind"], "part_number": "NOT-A-PN"}, headers=floor
        ),
        422,
        "bom_part_number",
    )
    assert_problem(
        await client.post(
            url,
            json={"serial": "bad serial", "kind": line["kind"], "part_number": line["part_numbers"][0]},
            headers=floor,
        ),
        400,
    )
    auditor = await bearer(client, "auditor")
    ok = {"serial": "SN-X-3", "kind": line["kind"], "part_number": line["part_numbers"][0]}
    assert_problem(await client.post(url, json=ok, headers=auditor), 403)
    assert (await client.get("/api/v1/parts?kind=toaster", headers=floor)).json()["total"] == 0


async def test_remove_and_replace_are_recorded(client: Client) -> None:
    floor = await bearer(client, "floor")
    module = await _assembling(client, floor)
    url = f"/api/v1/modules/{module['serial']}/parts"
    part = (await client.get(f"/api/v1/parts?module={module['serial']}&kind=gpu&limit=1", headers=floor)).json()
    old = part["items"][0]
    new = {"serial": "SN-GPU-NEW-0001", "kind": "gpu", "part_number": old["part_number"]}
    replaced = await client.post(
        f"{url}/{old['serial']}/replace", json={"new": new, "reason": "Failed DCGM memtest"}, headers=floor
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["position"] == old["position"]
    freed = (await client.get(f"/api/v1/parts?module={module['serial']}&kind=gpu&limit=500", headers=floor)).json()
    assert old["serial"] not in {p["serial"] for p in freed["items"]}
    events = (await client.get(f"/api/v1/modules/{module['serial']}/events", headers=floor)).json()
    assert [e["type"] for e in events[-2:]] == ["factory.part_removed", "factory.part_installed"]
    assert events[-2]["payload"]["reason"] == "Failed DCGM memtest"
    assert events[-1]["payload"]["replaces"] == old["serial"]
    removed = await client.post(f"{url}/SN-GPU-NEW-0001/remove", json={"reason": "Wrong bin"}, headers=floor)
    assert removed.status_code == 200
    assert removed.json()["module"] is None
    assert_problem(await client.post(f"{url}/SN-GPU-NEW-0001/remove", json={"reason": "again"}, headers=floor), 404)
    # The freed part can go back in.
    back = await client.post(url, json=new, headers=floor)
    assert back.status_code == 201
