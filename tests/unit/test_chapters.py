"""A module's ledger split into its factory build and one chapter per deployment."""

from __future__ import annotations

from typing import Any

import msgspec

from app.factory.domain import chapters


class E(msgspec.Struct):
    seq: int
    type: str
    payload: dict[str, Any] = {}
    place: str = ""


def test_each_pack_or_redeploy_to_a_site_opens_a_deployment() -> None:
    events = [
        E(1, "module.registered"),
        E(2, "lifecycle.start_assembly"),
        E(3, "lifecycle.pack", {"site": "ISKEF1"}),
        E(4, "lifecycle.depart"),
        E(5, "lifecycle.enter_service"),
        E(6, "lifecycle.complete_decommissioning"),
        E(7, "lifecycle.redeploy", {"site": "NONVK1"}),
        E(8, "lifecycle.deliver"),
    ]
    found = chapters(events)
    assert [(c.number, c.title, c.site, c.first_seq, c.last_seq) for c in found] == [
        (0, "Factory build", None, 1, 2),
        (1, "Deployment 1: ISKEF1", "ISKEF1", 3, 6),
        (2, "Deployment 2: NONVK1", "NONVK1", 7, 8),
    ]
    assert sum(len(c.events) for c in found) == len(events)  # nothing lost, nothing twice
    assert chapters([]) == []
