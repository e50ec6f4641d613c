"""Each telemetry fixture gets the verdict and the reasons a quality engineer would give."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from app.burnin import domain
from app.burnin.dcgm import parse_dcgm
from app.burnin.rules import load_rules
from app.burnin.telemetry import TelemetrySummary, summarise_nvidia_smi
from app.burnin.xid import parse_xid

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "telemetry"
# The shipped rules, with a soak short enough for these 2-10 minute captures.
RULES = msgspec.structs.replace(load_rules(), min_soak_s=60.0, min_dcgm_level=0, version="fixture-rules")


def summary(*names: str) -> TelemetrySummary:
    result: TelemetrySummary | None = None
    for name in names:
        part = summarise_nvidia_smi((FIXTURES / name).read_bytes(), start=result.start if result else None)
        result = part if result is None else result.merge(part)
    assert result is not None
    return result


def reasons_of(verdict: domain.RunVerdict) -> list[str]:
    return verdict.reasons + [r for g in verdict.gpus for r in g.reasons]


def test_healthy_run_passes() -> None:
    s = summary("healthy_h200_8gpu_part1.csv", "healthy_h200_8gpu_part2.csv", "healthy_h200_8gpu_part3.csv")
    dcgm = parse_dcgm((FIXTURES / "dcgm_3x_level3_pass.json").read_bytes())
    verdict = domain.judge(s, dcgm, [], msgspec.structs.replace(RULES, min_dcgm_level=3), expected_gpus=8)
    assert verdict.verdict == "pass", reasons_of(verdict)
    assert reasons_of(verdict) == []
    assert {g.verdict for g in verdict.gpus} == {"pass"}
    assert verdict.rules_version == "fixture-rules"
    assert verdict.dcgm_level == 3
    assert 590 <= verdict.duration_s <= 610


def test_thermal_throttling_fails_that_gpu_only() -> None:
    verdict = domain.judge(summary("thermal_throttle_gpu5.csv"), None, [], RULES, expected_gpus=8)
    assert verdict.verdict == "fail"
    failing = [g for g in verdict.gpus if g.verdict == "fail"]
    assert [g.index for g in failing] == [5]
    text = "\n".join(failing[0].reasons)
    assert "hw_thermal_slowdown active 7.3 % of samples > 1.0 %" in text
    assert "max temperature 92 °C > 87 °C" in text
    assert failing[0].reasons[0].startswith(f"GPU 5 ({failing[0].uuid}): ")


def test_slow_gpu_is_judged_against_the_fleet_median() -> None:
    verdict = domain.judge(summary("slow_gpu6_clock.csv"), None, [], RULES, expected_gpus=8)
    gpu6 = next(g for g in verdict.gpus if g.index == 6)
    assert gpu6.verdict == "fail"
    assert gpu6.clock_vs_fleet == pytest.approx(0.87, abs=0.01)
    assert "is 0.87 of the fleet median 1980 MHz < 0.90" in gpu6.reasons[0]
    # Against a fleet history that runs slower, the same GPU only warns.
    history = [1820.0] * 40
    warned = domain.judge(summary("slow_gpu6_clock.csv"), None, [], RULES, expected_gpus=8, fleet_history=history)
    assert next(g for g in warned.gpus if g.index == 6).verdict == "warn"


def test_ecc_and_xid_79_fail() -> None:
    xids = parse_xid((FIXTURES / "ecc_xid79_gpu2_dmesg.log").read_bytes())
    verdict = domain.judge(summary("ecc_xid79_gpu2.csv"), None, xids, RULES, expected_gpus=8)
    assert verdict.verdict == "fail"
    assert any(r.startswith("Xid 79 on PCI:0000:3a:00 (GPU has fallen off the bus)") for r in verdict.reasons)
    gpu2 = next(g for g in verdict.gpus if g.index == 2)
    assert any("uncorrected ECC errors (volatile) > 0" in r for r in gpu2.reasons)


def test_short_run_fails_on_soak() -> None:
    verdict = domain.judge(summary("short_run_90s.csv"), None, [], load_rules(), expected_gpus=8)
    assert verdict.verdict == "fail"
    assert verdict.reasons[0] == "soak 0:01:30 < minimum 4:00:00"
    assert "no DCGM diagnostics recorded (level 3 required)" in verdict.reasons


def test_dcgm_4x_failed_test_fails_the_run() -> None:
    dcgm = parse_dcgm((FIXTURES / "dcgm_4x_level3_memory_fail.json").read_bytes())
    s = summary("healthy_h200_8gpu_part1.csv", "healthy_h200_8gpu_part2.csv", "healthy_h200_8gpu_part3.csv")
    verdict = domain.judge(s, dcgm, [], RULES, expected_gpus=8)
    assert verdict.verdict == "fail"
    assert any(r.startswith("DCGM ") and "failed" in r for r in verdict.reasons), verdict.reasons


def test_na_values_are_missing_not_zero() -> None:
    s = summary("vm_na_not_supported.csv")
    verdict = domain.judge(s, None, [], RULES, expected_gpus=len(s.gpus))
    for g in s.gpus.values():
        assert g.max_ecc_uncorrected is None  # [N/A] on a board without ECC, never 0
    assert not any("ECC" in r for r in reasons_of(verdict))


def test_no_telemetry_is_a_fail() -> None:
    verdict = domain.judge(None, None, [], RULES, expected_gpus=8)
    assert verdict.verdict == "fail"
    assert verdict.reasons == ["no telemetry was recorded"]


def test_the_rules_file_is_valid_and_versioned() -> None:
    rules = load_rules()
    assert rules.version == "2026.11-1"
    assert 79 in rules.xid.fail
    assert rules.performance.fail_below < rules.performance.warn_below
