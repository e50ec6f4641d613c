"""The lifecycle definition is checked as a whole; each broken file reports its fault at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.definitions import LIFECYCLE_FILE, DefinitionError, check_all, decode_lifecycle, load_lifecycle, locate
from tests.conftest import assert_broken_file_fault

BROKEN = sorted((Path(__file__).parents[1] / "data" / "workflows").glob("*.toml"))


def test_there_is_a_broken_file_per_fault_kind() -> None:
    assert len(BROKEN) >= 10


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_file_reports_one_fault_at_its_line(path: Path) -> None:
    assert_broken_file_fault(path, decode_lifecycle)


def test_several_faults_are_all_reported() -> None:
    text = (BROKEN[0].parent / "unknown_role.toml").read_bytes().replace(b"bom_complete", b"no_such_guard")
    with pytest.raises(DefinitionError) as caught:
        decode_lifecycle(text, "two.toml")
    assert [f.split(": ", 1)[0] for f in caught.value.faults] == ["two.toml:19", "two.toml:20"]


def test_the_shipped_definition_is_sound() -> None:
    ok, faults = check_all()
    assert faults == []
    assert ok == [
        "workflows/module-lifecycle.toml: 17 states, 19 transitions",
        "workflows/burn-in-acceptance.toml: rules version 2026.11-1",
        "workflows/transport-modes.toml: 4 modes",
        "workflows/export-rules.toml: export rules version 2026.11-2, 4 classifications",
        "workflows/checklists/decommissioning.toml: decommissioning 2026.1 (decommissioning, level 1, "
        "commercial/sovereign/defence), 13 items",
        "workflows/checklists/delivery-inspection.toml: delivery-inspection 2026.1 (delivery, level 2, "
        "commercial/sovereign/defence), 20 items",
        "workflows/checklists/functional-test-defence.toml: functional-test-defence 2026.1 (functional, level 4, "
        "defence), 15 items",
        "workflows/checklists/functional-test.toml: functional-test 2026.1 (functional, level 4, "
        "commercial/sovereign), 11 items",
        "workflows/checklists/installation-defence.toml: installation-defence 2026.1 (installation, level 3, "
        "defence), 20 items",
        "workflows/checklists/installation.toml: installation 2026.1 (installation, level 3, "
        "commercial/sovereign), 15 items",
        "workflows/validation/gpu-module.toml: suite gpu-module version 2026.1, 4 steps, 4 specs",
    ]
    lifecycle = load_lifecycle()
    hold = lifecycle.transition("hold")
    assert hold is not None
    assert "retired" not in lifecycle.sources(hold)  # terminal states cannot be held
    assert {t.name for t in lifecycle.available_from("in_service")} == {"start_decommissioning", "hold"}


def test_check_all_names_stray_files(tmp_path: Path) -> None:
    (tmp_path / "module-lifecycle.toml").write_bytes(LIFECYCLE_FILE.read_bytes())
    (tmp_path / "typo.toml").write_text("x = 1\n")
    _ok, faults = check_all(tmp_path)
    assert any("typo.toml:1: unknown definition file" in f for f in faults)


def test_locate_maps_json_paths_to_lines() -> None:
    text = 'initial = "a"\n\n[[states]]\nid = "a"\n\n[[states]]\nid = "b"\ncolor = "x"\n'
    assert locate(text, "$.initial") == 1
    assert locate(text, "$.states[1]") == 6
    assert locate(text, "$.states[1].color") == 8
    assert locate(text, "$.states[7].id") == 1  # past the end: fall back to the top
