"""DCGM diagnostics in both JSON shapes (a missing test is "not run", never "pass"), and Xid lines from
kernel logs with their class and PCI id."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.burnin import xid as xid_module
from app.burnin.dcgm import DcgmResult, DcgmTest, normalise_name, parse_dcgm
from app.burnin.xid import XidEvent, classify, parse_xid
from app.core.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "telemetry"


def dcgm(doc: Any) -> DcgmResult:
    return parse_dcgm(json.dumps(doc).encode())


def v3(*tests: tuple[str, str, list[dict[str, Any]]]) -> dict[str, Any]:
    categories: dict[str, list[dict[str, Any]]] = {}
    for category, name, results in tests:
        categories.setdefault(category, []).append({"name": name, "results": results})
    return {
        "DCGM GPU Diagnostic": {
            "test_categories": [{"category": c, "tests": t} for c, t in categories.items()],
            "version": "3.1.8",
        }
    }


def invalid_dcgm(data: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_dcgm(data)
    return caught.value


# ---------------------------------------------------------------------------------------------
# DCGM


def test_dcgm_3x_level_3_all_pass() -> None:
    result = parse_dcgm((FIXTURES / "dcgm_3x_level3_pass.json").read_bytes())
    assert (result.level, result.version) == (3, "3.3.9")
    assert len(result.tests) == 15
    assert result.failed() == []
    assert {t.status for t in result.tests} == {"pass"}
    denylist = result.tests[0]
    assert (denylist.name, denylist.category, denylist.gpus) == ("Denylist", "Deployment", list(range(8)))
    assert result.status_for("Targeted Power") == "pass"
    assert result.status_for("targeted_power") == "pass"  # the 4.x spelling of the same test
    assert result.status_for("memory") == "pass"  # 3.x "GPU Memory"
    assert result.status_for("Pulse Test") == "not run"  # a level-4 test: absent, so not run
    assert result.status_for("memtest") == "not run"


def test_dcgm_4x_with_one_failed_test() -> None:
    result = parse_dcgm((FIXTURES / "dcgm_4x_level3_memory_fail.json").read_bytes())
    assert (result.level, result.version) == (3, "4.2.3")
    [failed] = result.failed()
    assert (failed.name, failed.category, failed.status, failed.gpus) == ("memory", "Hardware", "fail", [2])
    assert failed.messages[0].startswith("GPU 2: Found 2 faulty memory elements on GPU 2")
    assert failed.messages[0].endswith("(DCGM_FR_FAULTY_MEMORY)")
    assert result.status_for("memory") == "fail"
    assert result.status_for("GPU Memory") == "fail"
    assert result.status_for("diagnostic") == "pass"
    assert result.status_for("pulse_test") == "not run"
    software = result.tests[0]
    assert (software.status, software.gpus) == ("pass", list(range(8)))


def test_dcgm_result_round_trips_through_the_database() -> None:
    result = parse_dcgm((FIXTURES / "dcgm_4x_level3_memory_fail.json").read_bytes())
    stored = msgspec.json.encode(msgspec.to_builtins(result), order="sorted")
    assert msgspec.convert(msgspec.json.decode(stored), DcgmResult) == result


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("PASS", "pass"),
        ("Pass", "pass"),
        ("pass", "pass"),
        ("FAIL", "fail"),
        ("Fail", "fail"),
        ("WARN", "warn"),
        ("Warning", "warn"),
        ("SKIPPED", "skip"),
        ("Skip", "skip"),
        ("Not Run", "skip"),
    ],
)
def test_status_spellings(raw: str, status: str) -> None:
    result = dcgm(v3(("Hardware", "Diagnostic", [{"gpu_ids": "0", "status": raw}])))
    assert result.tests[0].status == status
    assert result.status_for("Diagnostic") == status


def test_unknown_status_is_a_failure_that_says_so() -> None:
    result = dcgm(v3(("Hardware", "Diagnostic", [{"gpu_ids": "0", "status": "Exploded"}])))
    [test] = result.failed()
    assert test.messages[0] == "unrecognised DCGM status 'Exploded'; counted as a failure"


def test_worst_result_wins_and_names_its_gpus() -> None:
    results = [
        {"gpu_ids": "0", "status": "PASS", "info": ["GPU 0 fine"]},
        {"gpu_ids": "1", "status": "WARN", "warnings": ["GPU 1 is warm"]},
        {"gpu_ids": "2", "status": "FAIL", "warnings": ["GPU 2 cannot hit the target power"], "info": ["noise"]},
        {"gpu_ids": "3", "status": "FAIL", "warnings": ["GPU 3 cannot hit the target power"]},
    ]
    [test] = dcgm(v3(("Stress", "Targeted Power", results))).tests
    assert (test.status, test.gpus) == ("fail", [2, 3])
    assert test.messages == ["GPU 2 cannot hit the target power", "GPU 3 cannot hit the target power"]


def test_3x_output_with_a_warning_line_and_nulls() -> None:
    doc = v3(("Deployment", "Denylist", [{"gpu_ids": "0,1", "status": "PASS"}]))
    doc["DCGM GPU Diagnostic"]["test_categories"][0]["tests"].insert(0, None)
    data = b"WARNING: THIS SHOULD NOT HAPPEN\n" + json.dumps(doc, indent=2).encode()
    result = parse_dcgm(data)
    assert [(t.name, t.gpus) for t in result.tests] == [("Denylist", [0, 1])]
    assert result.level == 1


def test_4x_hoisted_tests_and_error_objects() -> None:
    doc = {
        "DCGM Diagnostic": {
            "tests": [
                {
                    "name": "targeted_power",
                    "category": "Stress",
                    "results": [
                        {"entity_group": "GPU", "entity_id": 0, "status": "Pass"},
                        {
                            "entity_group": "GPU",
                            "entity_id": 1,
                            "status": "Fail",
                            "errors": [{"error_code": "DCGM_FR_TARGET_POWER", "message": "GPU 1 reached 520 W"}],
                        },
                        {"entity_group": "CPU", "entity_id": 0, "status": "Fail", "warnings": [{"error_id": 9999}]},
                    ],
                }
            ]
        },
        "metadata": {"version": "4.1.0"},
    }
    result = dcgm(doc)
    [test] = result.tests
    assert (test.name, test.category, test.status, test.gpus) == ("targeted_power", "Stress", "fail", [1])
    assert test.messages == ["GPU 1 reached 520 W (DCGM_FR_TARGET_POWER)", "DCGM error 9999"]
    assert (result.level, result.version) == (3, "4.1.0")
    top_level = dcgm({"tests": [{"name": "pcie", "results": [{"status": "Pass"}]}]})
    assert (top_level.level, top_level.tests[0].status) == (2, "pass")


def test_summary_status_counts_when_results_are_missing() -> None:
    doc = {"DCGM Diagnostic": {"test_categories": [{"category": "Stress", "tests": [
        {"name": "pulse_test", "results": [], "test_summary": {"status": "Fail"}},
        {"name": "memtest", "results": []},
    ]}]}}  # fmt: skip
    result = dcgm(doc)
    assert result.status_for("pulse_test") == "fail"
    assert result.status_for("memtest") == "skip"  # listed without results: it did not run, it did not pass
    assert result.level == 4


def test_runtime_error_fails_the_run() -> None:
    result = dcgm({"DCGM Diagnostic": {"runtime_error": "Unable to run diagnostic on unsupported GPU 0."}})
    assert result.level is None
    [test] = result.failed()
    assert (test.name, test.messages) == ("diagnostic run", ["Unable to run diagnostic on unsupported GPU 0."])


def test_a_document_with_nothing_run() -> None:
    result = dcgm({"DCGM GPU Diagnostic": {"version": "4.2.3"}})
    assert (result.level, result.version, result.tests) == (None, "4.2.3", [])
    assert result.status_for("software") == "not run"


@pytest.mark.parametrize(
    ("names", "level"),
    [
        (["Denylist", "Persistence Mode"], 1),
        (["software", "context_create"], 1),
        (["software", "pcie", "memory"], 2),
        (["Denylist", "PCIe", "GPU Memory"], 2),
        (["software", "pcie", "memory", "memory_bandwidth", "targeted_power"], 3),
        (["Denylist", "SM Stress"], 3),
        (["software", "pulse_test"], 4),
        (["software", "memtest"], 4),
    ],
)
def test_level_inferred_from_the_tests_that_ran(names: list[str], level: int) -> None:
    result = dcgm(v3(*(("X", n, [{"gpu_ids": "0", "status": "PASS"}]) for n in names)))
    assert result.level == level


def test_skipped_tests_do_not_raise_the_level_and_a_stated_level_wins() -> None:
    skipped = v3(("Deployment", "Denylist", [{"gpu_ids": "0", "status": "PASS"}]),
                 ("Stress", "Targeted Power", [{"gpu_ids": "0", "status": "SKIPPED"}]))  # fmt: skip
    assert dcgm(skipped).level == 1
    skipped["DCGM GPU Diagnostic"]["level"] = "3"
    assert dcgm(skipped).level == 3
    everything_skipped = v3(("Stress", "Targeted Power", [{"gpu_ids": "0", "status": "SKIPPED"}]))
    assert dcgm(everything_skipped).level is None


def test_names_normalise_across_versions() -> None:
    assert normalise_name("Targeted Power") == normalise_name("targeted_power") == "targetedpower"
    assert normalise_name("Page Retirement/Row Remap") == "pageretirementrowremap"
    assert normalise_name("GPU Memory") == "memory"
    empty = DcgmResult(level=None, version=None, tests=[])
    assert empty.status_for("Diagnostic") == "not run"
    one = DcgmResult(level=3, version=None, tests=[DcgmTest("Diagnostic", "Hardware", "warn")])
    assert one.status_for("diagnostic") == "warn"


def test_broken_json_fixture_line_and_column() -> None:
    error = invalid_dcgm((FIXTURES / "broken_dcgm.json").read_bytes())
    assert error.detail == "DCGM JSON line 5, column 38: JSON is malformed: expected ',' or '}'"
    assert error.extra == {"line": 5, "column": 38}


def test_json_errors_are_located() -> None:
    assert invalid_dcgm(b'{"a": [1, 2,\n  3,, 4]}').extra == {"line": 2, "column": 5}
    truncated = b'{\n  "DCGM GPU Diagnostic": {\n    "test_categories": ['
    assert invalid_dcgm(truncated).extra == {"line": 3, "column": 25}
    assert invalid_dcgm(b'{"caf\xc3\xa9": 1,\n "\xc3\xa9\xc3\xa9": x}').extra == {"line": 2, "column": 8}
    assert invalid_dcgm(b"").extra == {"line": 1, "column": 1}
    assert "expected a JSON object" in invalid_dcgm(b"[1, 2]").detail
    assert "not `dcgmi diag -j` output" in invalid_dcgm(b'{"hello": "world"}').detail


# ---------------------------------------------------------------------------------------------
# Xid


def test_ecc_fixture_kernel_log() -> None:
    events = parse_xid((FIXTURES / "ecc_xid79_gpu2_dmesg.log").read_bytes())
    assert [(e.line, e.xid, e.kind) for e in events] == [
        (5, 48, "hardware"),
        (6, 63, "watch"),
        (7, 48, "hardware"),
        (8, 48, "hardware"),
        (11, 79, "hardware"),
    ]
    assert {e.pci for e in events} == {"PCI:0000:3a:00"}
    assert events[-1].meaning == "GPU has fallen off the bus"
    assert events[-1].text.endswith(
        "NVRM: Xid (PCI:0000:3a:00): 79, pid=4411, name=python3, GPU has fallen off the bus."
    )
    assert events[-1].text.startswith("[86552.800000]")


def test_mixed_journal_every_class() -> None:
    with (FIXTURES / "xid_mixed_journal.log").open("rb") as fh:
        events = parse_xid(fh)
    assert [(e.line, e.pci, e.xid, e.kind) for e in events] == [
        (2, "PCI:0000:18:00", 13, "application"),
        (3, "PCI:0000:18:00", 31, "application"),
        (4, "PCI:0000:2a:00", 43, "application"),
        (6, "PCI:0000:10:1c", 63, "watch"),  # pid='<unknown>', name=<unknown>
        (7, "PCI:0000:5d:00", 92, "watch"),
        (8, "PCI:0000:9a:00", 94, "hardware"),
        (9, "PCI:0000:ab:00", 119, "hardware"),
        (11, "PCI:0000:ba:00", 74, "hardware"),  # an older driver: no "PCI:" in the id
        (12, "PCI:0000:db:00", 154, "other"),  # upper-case hex in the log
    ]
    assert events[0].text.startswith("Nov 20 10:00:03 hgx-b07 kernel: NVRM: Xid (PCI:0000:18:00): 13, pid=2211")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        *((c, "hardware") for c in (48, 64, 74, 79, 94, 95, 119, 120, 140, 171, 172)),
        *((c, "application") for c in (13, 31, 43)),
        *((c, "watch") for c in (63, 92)),
        *((c, "other") for c in (32, 45, 62, 154, 999)),
    ],
)
def test_xid_classes(code: int, kind: str) -> None:
    assert classify(code)[0] == kind
    assert classify(code)[1]


def test_non_utf8_and_odd_lines() -> None:
    log = (
        b"[    5.000000] usb 1-1: caf\xe9 \xff\xfe\n"
        b"[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=1896, name=pyth\xffon3, GPU has fallen off the bus.\n"
        b"NVRM: Xid (PCI:0000:3b:00.0): 95, pid=7, Uncontained: FBHUB. RST: Yes, D-RST: No\n"
        b'apparmor: operation="Xid test"\n'
        b"NVRM: Xid (garbage): 12\r\n"
        b"[ 99.0] NVRM: Xid (PCI:0000:3b:00): 48, no newline at the end"
    )
    events = parse_xid(log)
    assert [(e.line, e.pci, e.xid) for e in events] == [
        (2, "PCI:0000:3b:00", 79),
        (3, "PCI:0000:3b:00", 95),
        (5, "garbage", 12),
        (6, "PCI:0000:3b:00", 48),
    ]
    assert "pyth\ufffdon3" in events[0].text
    assert events[2].text == "NVRM: Xid (garbage): 12"
    assert parse_xid(b"") == []


def test_xid_event_round_trip() -> None:
    events = parse_xid((FIXTURES / "ecc_xid79_gpu2_dmesg.log").read_bytes())
    assert msgspec.convert(msgspec.to_builtins(events), list[XidEvent]) == events


def test_too_many_lines() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_xid(b"line\n" * 11, max_lines=10)
    assert caught.value.extra == {"line": 11}
    assert parse_xid(b"line\n" * 10, max_lines=10) == []


@settings(max_examples=40, deadline=None)
@given(
    layout=st.lists(st.tuples(st.booleans(), st.integers(0, 300), st.sampled_from([13, 48, 63, 79, 94])), max_size=40),
    block=st.integers(16, 300),
)
def test_line_numbers_survive_any_block_size(layout: list[tuple[bool, int, int]], block: int) -> None:
    lines, expected = [], []
    for number, (is_xid, noise, code) in enumerate(layout, start=1):
        if is_xid:
            lines.append(f"[{number:6d}.000000] NVRM: Xid (PCI:0000:{number % 256:02x}:00): {code}, pid=1, x".encode())
            expected.append((number, f"PCI:0000:{number % 256:02x}:00", code))
        else:
            lines.append(b"k" * noise)
    data = b"\n".join(lines)
    original = xid_module.BLOCK_BYTES
    xid_module.BLOCK_BYTES = block
    try:
        events = parse_xid(io.BytesIO(data))
    finally:
        xid_module.BLOCK_BYTES = original
    assert [(e.line, e.pci, e.xid) for e in events] == expected
