"""Burn-in acceptance: pure rules over the telemetry summary, DCGM results and Xid lines.

Every reason is stated in words and numbers, the way a quality engineer would write it, and the
verdict carries the version of the rules it was judged by.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import msgspec

from app.burnin.dcgm import DcgmResult
from app.burnin.telemetry import GpuSummary, TelemetrySummary
from app.burnin.xid import XidEvent
from app.core.definitions import TOML_FAULTS, DefinitionError, locate, schema_fault

Share = msgspec.Meta(ge=0, le=1)


class ThermalRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_temperature_c: float
    max_memory_temperature_c: float
    max_hw_thermal_slowdown_share: float
    max_sw_thermal_slowdown_share: float
    max_power_brake_share: float


class MemoryRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_ecc_uncorrected: int
    warn_ecc_corrected: int
    fail_on_retired_pages_pending: bool
    fail_on_remapped_rows_pending: bool
    fail_on_remapped_rows_failure: bool


class XidRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fail: tuple[int, ...]
    warn: tuple[int, ...] = ()


class PerformanceRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    warn_below: float
    fail_below: float


class AcceptanceRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    min_soak_s: float
    min_sample_coverage: float
    min_dcgm_level: int
    thermal: ThermalRules
    memory: MemoryRules
    xid: XidRules
    performance: PerformanceRules


def dump_summary(summary: TelemetrySummary) -> dict[str, Any]:
    """JSON-ready builtins for storing a summary (GPU indexes become string keys, as JSON requires)."""
    return msgspec.to_builtins(summary, str_keys=True)  # type: ignore[no-any-return]


def load_summary(data: dict[str, Any]) -> TelemetrySummary:
    return msgspec.convert(data, TelemetrySummary, str_keys=True)


def decode_rules(text: bytes, source: str) -> AcceptanceRules:
    try:
        rules = msgspec.toml.decode(text, type=AcceptanceRules)
    except TOML_FAULTS as exc:
        raise DefinitionError([schema_fault(source, text.decode("utf-8", "replace"), exc)]) from exc
    # TOML has nan and inf; a nan limit makes every comparison false, so nothing would ever fail.
    faults = [
        f"{source}:{locate(text.decode('utf-8', 'replace'), path)}: {path[2:]} is {value}, not a finite number"
        for path, value in _numbers(msgspec.to_builtins(rules), "$")
        if not math.isfinite(value)
    ]
    if faults:
        raise DefinitionError(faults)
    return rules


def _numbers(value: Any, path: str) -> list[tuple[str, float]]:
    """(JSON path, number) of every float in a decoded definition."""
    if isinstance(value, float):
        return [(path, value)]
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in _numbers(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [n for i, item in enumerate(value) for n in _numbers(item, f"{path}[{i}]")]
    return []


class GpuVerdict(msgspec.Struct, frozen=True):
    index: int
    uuid: str
    serial: str
    verdict: str  # pass | warn | fail
    reasons: list[str]
    samples: int
    max_temperature_c: float | None
    median_sm_clock_mhz: float | None
    clock_vs_fleet: float | None
    ecc_uncorrected: float | None


class RunVerdict(msgspec.Struct, frozen=True):
    verdict: str  # pass | fail
    reasons: list[str]  # run-level
    warnings: list[str]
    gpus: list[GpuVerdict]
    rules_version: str
    duration_s: float
    dcgm_level: int | None


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def _hms(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def run_duration(summary: TelemetrySummary | None) -> float:
    if summary is None:
        return 0.0
    firsts = [g.first_s for g in summary.gpus.values() if g.first_s is not None]
    lasts = [g.last_s for g in summary.gpus.values() if g.last_s is not None]
    return max(lasts) - min(firsts) if firsts and lasts else 0.0


def fleet_median(history: list[float], current: list[float]) -> float | None:
    """The fleet's median SM clock for a GPU model: past passed runs' GPU medians plus this run's."""
    values = [v for v in (*history, *current) if v]
    return statistics.median(values) if values else None


def judge_gpu(gpu: GpuSummary, rules: AcceptanceRules, *, duration_s: float, fleet_clock: float | None) -> GpuVerdict:
    fails: list[str] = []
    warns: list[str] = []
    who = f"GPU {gpu.index} ({gpu.uuid or 'no UUID'})"
    t, m = rules.thermal, rules.memory
    if gpu.max_temperature_c is not None and gpu.max_temperature_c > t.max_temperature_c:
        fails.append(f"{who}: max temperature {gpu.max_temperature_c:.0f} °C > {t.max_temperature_c:.0f} °C")
    if gpu.max_memory_temperature_c is not None and gpu.max_memory_temperature_c > t.max_memory_temperature_c:
        fails.append(
            f"{who}: max memory temperature {gpu.max_memory_temperature_c:.0f} °C > {t.max_memory_temperature_c:.0f} °C"
        )
    if gpu.slowdown_known_samples:
        for label, count, limit in (
            ("hw_thermal_slowdown", gpu.hw_thermal_slowdown_samples, t.max_hw_thermal_slowdown_share),
            ("sw_thermal_slowdown", gpu.sw_thermal_slowdown_samples, t.max_sw_thermal_slowdown_share),
            ("hw_power_brake_slowdown", gpu.hw_power_brake_samples, t.max_power_brake_share),
        ):
            share = count / gpu.slowdown_known_samples
            if share > limit:
                fails.append(f"{who}: {label} active {_pct(share)} of samples > {_pct(limit)}")
    if gpu.max_ecc_uncorrected is not None and gpu.max_ecc_uncorrected > m.max_ecc_uncorrected:
        fails.append(
            f"{who}: {gpu.max_ecc_uncorrected:.0f} uncorrected ECC errors (volatile) > {m.max_ecc_uncorrected}"
        )
    if gpu.max_ecc_corrected is not None and gpu.max_ecc_corrected > m.warn_ecc_corrected:
        warns.append(f"{who}: {gpu.max_ecc_corrected:.0f} corrected ECC errors (volatile) > {m.warn_ecc_corrected}")
    if m.fail_on_retired_pages_pending and gpu.retired_pages_pending:
        fails.append(f"{who}: page retirement pending (retired_pages.pending = Yes)")
    if m.fail_on_remapped_rows_pending and gpu.remapped_rows_pending:
        fails.append(f"{who}: row remapping pending (remapped_rows.pending = Yes); reset and retest")
    if m.fail_on_remapped_rows_failure and gpu.remapped_rows_failure:
        fails.append(f"{who}: row remapping failed (remapped_rows.failure = Yes): RMA")
    if duration_s > 0 and gpu.samples < rules.min_sample_coverage * duration_s:
        fails.append(
            f"{who}: {gpu.samples} samples cover {_pct(gpu.samples / duration_s)} of the soak "
            f"< {_pct(rules.min_sample_coverage)}"
        )
    median = gpu.median_sm_clock()
    ratio = median / fleet_clock if median is not None and fleet_clock else None
    if ratio is not None and fleet_clock is not None and median is not None:
        p = rules.performance
        text = f"median SM clock under load {median:.0f} MHz is {ratio:.2f} of the fleet median {fleet_clock:.0f} MHz"
        if ratio < p.fail_below:
            fails.append(f"{who}: {text} < {p.fail_below:.2f}")
        elif ratio < p.warn_below:
            warns.append(f"{who}: {text} < {p.warn_below:.2f}")
    elif median is None and gpu.samples:
        warns.append(f"{who}: no samples under load (utilization >= 90 %); clocks not judged")
    verdict = "fail" if fails else "warn" if warns else "pass"
    return GpuVerdict(
        index=gpu.index,
        uuid=gpu.uuid,
        serial=gpu.serial,
        verdict=verdict,
        reasons=fails + warns,
        samples=gpu.samples,
        max_temperature_c=gpu.max_temperature_c,
        median_sm_clock_mhz=median,
        clock_vs_fleet=round(ratio, 4) if ratio is not None else None,
        ecc_uncorrected=gpu.max_ecc_uncorrected,
    )


def judge(
    summary: TelemetrySummary | None,
    dcgm: DcgmResult | None,
    xids: list[XidEvent],
    rules: AcceptanceRules,
    *,
    expected_gpus: int,
    fleet_history: list[float] = (),  # type: ignore[assignment]
) -> RunVerdict:
    """The verdict of one run: per GPU, and for the run as a whole."""
    reasons: list[str] = []
    warnings: list[str] = []
    duration = run_duration(summary)
    gpus = sorted(summary.gpus.values(), key=lambda g: g.index) if summary else []
    if not gpus:
        reasons.append("no telemetry was recorded")
    elif duration < rules.min_soak_s:
        reasons.append(f"soak {_hms(duration)} < minimum {_hms(rules.min_soak_s)}")
    if gpus and len(gpus) != expected_gpus:
        reasons.append(f"{len(gpus)} GPUs reported telemetry; the spec has {expected_gpus}")
    current = [m for g in gpus if (m := g.median_sm_clock()) is not None]
    fleet_clock = fleet_median(list(fleet_history), current)
    verdicts = [judge_gpu(g, rules, duration_s=duration, fleet_clock=fleet_clock) for g in gpus]
    level = dcgm.level if dcgm else None
    if rules.min_dcgm_level:
        if dcgm is None:
            reasons.append(f"no DCGM diagnostics recorded (level {rules.min_dcgm_level} required)")
        elif level is None or level < rules.min_dcgm_level:
            reasons.append(f"DCGM diagnostics at level {level or 'unknown'} < required level {rules.min_dcgm_level}")
    if dcgm is not None:
        for test in dcgm.tests:
            on = f" on GPUs {', '.join(map(str, test.gpus))}" if test.gpus else ""
            detail = f": {test.messages[0]}" if test.messages else ""
            if test.status == "fail":
                reasons.append(f"DCGM {test.name} failed{on}{detail}")
            elif test.status == "warn":
                warnings.append(f"DCGM {test.name} warned{on}{detail}")
    for event in xids:
        text = f"Xid {event.xid} on {event.pci} ({event.meaning}), kernel log line {event.line}"
        if event.xid in rules.xid.fail:
            reasons.append(f"{text}: hardware-class error")
        elif event.xid in rules.xid.warn:
            warnings.append(text)
    failed = bool(reasons) or any(v.verdict == "fail" for v in verdicts)
    return RunVerdict(
        verdict="fail" if failed else "pass",
        reasons=reasons,
        warnings=warnings,
        gpus=verdicts,
        rules_version=rules.version,
        duration_s=duration,
        dcgm_level=level,
    )
