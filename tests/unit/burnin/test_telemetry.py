"""nvidia-smi telemetry reader: every fixture gives the facts a quality engineer reads off it; faults are
reported at their exact line and column; chunked uploads merge to exactly the single-pass summary."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import io
import re
import statistics
import sys
from pathlib import Path
from types import ModuleType

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.burnin.telemetry import (
    MAX_SERIES_POINTS,
    GpuSummary,
    TelemetrySummary,
    parse_header,
    series_width,
    summarise_nvidia_smi,
)
from app.core.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "telemetry"
HEALTHY = ("healthy_h200_8gpu_part1.csv", "healthy_h200_8gpu_part2.csv", "healthy_h200_8gpu_part3.csv")
UUID = re.compile(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEADER = (
    "timestamp, index, uuid, serial, temperature.gpu, power.draw [W], clocks.current.sm [MHz], utilization.gpu [%], "
    "clocks_event_reasons.hw_thermal_slowdown, remapped_rows.pending, pcie.link.gen.current"
)
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def generator() -> ModuleType:
    """fixtures/telemetry/generate.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("telemetry_fixtures_generate", FIXTURES / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def summary(*names: str) -> TelemetrySummary:
    """The fixtures uploaded one after the other, as the service does it (each later chunk gets the start)."""
    result: TelemetrySummary | None = None
    for name in names:
        part = summarise_nvidia_smi((FIXTURES / name).read_bytes(), start=result.start if result else None)
        result = part if result is None else result.merge(part)
    assert result is not None
    return result


def row(t: str, index: int, *, temp: str = "60", power: str = "650.00 W", sm: str = "1980 MHz", util: str = "100 %",
        hw: str = "Not Active", pending: str = "No", gen: str = "5") -> str:  # fmt: skip
    return f"2026/11/20 10:00:{t}, {index}, GPU-{index:08x}-0000-0000-0000-000000000000, 16500000000{index:02d}, " + (
        f"{temp}, {power}, {sm}, {util}, {hw}, {pending}, {gen}"
    )


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


def invalid(data: bytes, **kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        summarise_nvidia_smi(data, **kwargs)  # type: ignore[arg-type]
    return caught.value


def same(a: TelemetrySummary, b: TelemetrySummary) -> None:
    """Equal, except float sums of power whose addition order differs between chunkings."""
    assert a.rows == b.rows
    assert a.columns == b.columns
    assert a.start == b.start
    assert a.gpus.keys() == b.gpus.keys()
    for index, gpu in a.gpus.items():
        other = b.gpus[index]
        assert gpu.power_sum_w == pytest.approx(other.power_sum_w, rel=1e-12)
        assert msgspec.structs.replace(gpu, power_sum_w=0.0) == msgspec.structs.replace(other, power_sum_w=0.0)


# ---------------------------------------------------------------------------------------------
# The fixtures, read the way a quality engineer reads them.


def test_healthy_run_in_three_uploads() -> None:
    s = summary(*HEALTHY)
    assert sorted(s.gpus) == list(range(8))
    assert s.rows == 4800
    assert s.start == dt.datetime(2026, 11, 20, 10, 0, 0, 109000)
    assert s.duration_s() == pytest.approx(599.0, abs=0.1)
    assert len(s.columns) == 23
    assert s.columns[8] == "clocks.current.sm"
    for g in s.gpus.values():
        assert g.samples == 600
        assert UUID.fullmatch(g.uuid)
        assert re.fullmatch(r"\d{13}", g.serial)
        assert 55 <= (g.max_temperature_c or 0) <= 75
        assert g.median_sm_clock() == 1980.0
        assert g.hw_thermal_slowdown_samples == g.sw_thermal_slowdown_samples == g.hw_power_brake_samples == 0
        assert g.slowdown_known_samples == 600
        assert g.max_ecc_corrected == 0.0
        assert g.max_ecc_uncorrected == 0.0
        assert not (g.retired_pages_pending or g.remapped_rows_pending or g.remapped_rows_failure)
        assert (g.min_pcie_gen, g.min_pcie_width) == (5, 16)
        assert g.power_samples == 600
        assert 660 < (g.mean_power_w() or 0) < 700  # near the 700 W limit under load
        assert sum(g.sm_clock_hist.values()) < 600  # the ramp-up seconds are not "under load"
        assert 0 < len(g.series) <= MAX_SERIES_POINTS
        assert g.series[0][0] <= (g.first_s or 0) and g.series[-1][0] <= (g.last_s or 0)
    uuids = {g.uuid for g in s.gpus.values()}
    assert len(uuids) == 8


def test_thermal_throttling_share_of_the_hot_gpu() -> None:
    s = summary("thermal_throttle_gpu5.csv")
    hot = s.gpus[5]
    assert 88 <= (hot.max_temperature_c or 0) <= 92
    assert hot.hw_thermal_slowdown_samples == 11
    assert hot.slowdown_known_samples == 150
    assert hot.hw_thermal_slowdown_samples / hot.slowdown_known_samples == pytest.approx(0.0733, abs=0.001)
    assert min(p[3] for p in hot.series if p[3] is not None) < 1700  # the dips survive down-sampling
    for index, g in s.gpus.items():
        if index != 5:
            assert g.hw_thermal_slowdown_samples == 0
            assert (g.max_temperature_c or 0) <= 75


def test_slow_gpu_median_clock_ratio() -> None:
    s = summary("slow_gpu6_clock.csv")
    others = statistics.median(g.median_sm_clock() or 0 for i, g in s.gpus.items() if i != 6)
    assert others == 1980.0
    assert (s.gpus[6].median_sm_clock() or 0) / others == pytest.approx(0.87, abs=0.005)


def test_ecc_errors_and_the_gpu_that_fell_off() -> None:
    s = summary("ecc_xid79_gpu2.csv")
    bad = s.gpus[2]
    assert bad.max_ecc_uncorrected == 3.0
    assert (bad.max_ecc_corrected or 0) > 0
    assert bad.remapped_rows_pending
    assert not bad.remapped_rows_failure
    assert bad.samples == 141  # it dropped out of nvidia-smi with Xid 79
    assert bad.last_s is not None and bad.last_s < 141
    for index, g in s.gpus.items():
        if index != 2:
            assert (g.samples, g.max_ecc_uncorrected, g.remapped_rows_pending) == (150, 0.0, False)


def test_short_run_duration() -> None:
    s = summary("short_run_90s.csv")
    assert s.duration_s() == pytest.approx(90.0, abs=1e-6)
    assert {g.samples for g in s.gpus.values()} == {91}
    assert all((g.first_s, g.last_s) == (0.0, 90.0) for g in s.gpus.values())


def test_not_available_is_missing_never_zero() -> None:
    s = summary("vm_na_not_supported.csv")
    assert sorted(s.gpus) == [0, 1, 2, 3]
    for g in s.gpus.values():
        assert g.max_ecc_corrected is None
        assert g.max_ecc_uncorrected is None
        assert g.slowdown_known_samples == 0  # [Not Supported]: nothing known, not "never throttled"
        assert not g.retired_pages_pending
    assert s.gpus[1].samples == 120
    assert s.gpus[1].power_samples == 109  # 11 reads were [N/A]
    assert (s.gpus[1].mean_power_w() or 0) > 600  # not dragged down by zeros
    assert s.gpus[3].max_memory_temperature_c is None
    assert s.gpus[3].serial == ""
    assert s.gpus[0].max_memory_temperature_c is not None


def test_aliases_subset_and_other_order() -> None:
    s = summary("aliases_reordered.csv")
    assert s.columns == [
        "index",
        "timestamp",
        "clocks.current.sm",
        "clocks.current.memory",
        "clocks.current.graphics",
        "utilization.gpu",
        "temperature.gpu",
        "power.draw",
        "clocks_event_reasons.hw_thermal_slowdown",
        "clocks_event_reasons.sw_thermal_slowdown",
        "uuid",
    ]
    assert s.gpus[1].sw_thermal_slowdown_samples == 3
    assert s.gpus[1].slowdown_known_samples == 120
    assert s.gpus[0].median_sm_clock() == 1980.0
    assert UUID.fullmatch(s.gpus[0].uuid)
    assert s.gpus[0].serial == ""
    assert s.gpus[0].min_pcie_gen is None
    assert s.gpus[0].max_ecc_uncorrected is None


def test_fixtures_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = generator().main(tmp_path)
    assert len(written) >= 15
    for path in written:
        assert path.read_bytes() == (FIXTURES / path.name).read_bytes(), path.name
        assert path.stat().st_size < 400_000
    assert sum(p.stat().st_size for p in written) < 3_000_000


# ---------------------------------------------------------------------------------------------
# Header: aliases, pre-535 names, units, unknown fields.


def test_header_aliases_and_throttle_names() -> None:
    columns = parse_header(
        "index, clocks.sm [MHz], clocks.mem [MHz], clocks.gr [MHz], clocks_throttle_reasons.hw_thermal_slowdown, "
        "clocks_throttle_reasons.hw_power_brake_slowdown"
    )
    assert [c.field for c in columns] == [
        "index",
        "clocks.current.sm",
        "clocks.current.memory",
        "clocks.current.graphics",
        "clocks_event_reasons.hw_thermal_slowdown",
        "clocks_event_reasons.hw_power_brake_slowdown",
    ]
    assert columns[1].label == "clocks.sm [MHz]"


def test_unknown_header_fields_are_named() -> None:
    error = invalid(b"index, fan.speed [%], temperature.gpu, name\n0, 30 %, 60, NVIDIA H200\n")
    assert "'fan.speed [%]', 'name'" in error.detail
    assert error.extra["line"] == 1
    assert error.extra["column"] == 2
    assert error.extra["unknown"] == ["fan.speed [%]", "name"]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("timestamp, temperature.gpu", "no 'index' field"),
        ("index, power.draw [kW]", "has unit [kW], expected [W]"),
        ("index, temperature.gpu [C]", "expected no unit"),
        ("index, clocks.sm [MHz], clocks.current.sm [MHz]", "repeats column 2"),
    ],
)
def test_header_faults(header: str, words: str) -> None:
    error = invalid(f"{header}\n".encode())
    assert words in error.detail
    assert error.extra["line"] == 1


def test_empty_and_header_only() -> None:
    assert invalid(b"").extra == {"line": 1, "column": 1}
    assert invalid(b"\n\n  \n").extra["line"] == 4
    s = summarise_nvidia_smi(HEADER.encode() + b"\n")
    assert (s.rows, s.gpus, s.start) == (0, {}, None)
    assert s.duration_s() == 0.0


def test_without_timestamps_there_is_no_time() -> None:
    s = summarise_nvidia_smi(b"index, temperature.gpu\n0, 61\n1, 64\n0, 66\n")
    assert s.start is None
    assert s.gpus[0].samples == 2
    assert s.gpus[0].max_temperature_c == 66.0
    assert (s.gpus[0].first_s, s.gpus[0].series) == (None, [])
    assert s.gpus[0].median_sm_clock() is None  # no clocks, no load: not judged


# ---------------------------------------------------------------------------------------------
# Values.


def test_units_enums_and_load() -> None:
    data = csv_of(
        row("01.000", 0, util="40 %", sm="1410 MHz", gen="1"),  # idle: neither the clock nor PCIe gen 1 count
        row("02.000", 0, hw="Active", pending="Yes", sm="1755 MHz"),
        row("03.000", 0, power="[N/A]", sm="1980 MHz"),
        row("04.000", 0, temp="[N/A]", hw="[N/A]"),
        row("04.500", 0),
    )
    g = summarise_nvidia_smi(data).gpus[0]
    assert g.samples == 5
    assert g.sm_clock_hist == {1755: 1, 1980: 3}
    assert g.median_sm_clock() == 1980.0
    assert (g.hw_thermal_slowdown_samples, g.slowdown_known_samples) == (1, 4)
    assert g.remapped_rows_pending
    assert (g.power_samples, g.power_sum_w) == (4, 2600.0)
    assert g.max_temperature_c == 60.0
    assert g.min_pcie_gen == 5
    assert (g.first_s, g.last_s) == (0.0, 3.5)
    assert g.series[0] == (0.0, 60.0, 650.0, 1410.0)


def test_median_is_exact() -> None:
    assert GpuSummary(index=0, sm_clock_hist={1965: 1, 1980: 1}).median_sm_clock() == 1972.5
    assert GpuSummary(index=0, sm_clock_hist={1965: 1, 1980: 3}).median_sm_clock() == 1980.0
    assert GpuSummary(index=0, sm_clock_hist={1700: 2, 1965: 1, 1980: 2}).median_sm_clock() == 1965.0
    assert GpuSummary(index=0).median_sm_clock() is None


@given(st.lists(st.integers(1000, 2100), min_size=1, max_size=60))
def test_histogram_median_matches_statistics(clocks: list[int]) -> None:
    hist: dict[int, int] = {}
    for mhz in clocks:
        hist[mhz] = hist.get(mhz, 0) + 1
    assert GpuSummary(index=0, sm_clock_hist=hist).median_sm_clock() == statistics.median(clocks)


def test_blank_lines_crlf_bom_and_repeated_headers() -> None:
    lines = (FIXTURES / "short_run_90s.csv").read_bytes().splitlines(keepends=True)
    plain = summarise_nvidia_smi(b"".join(lines))
    same(summarise_nvidia_smi(b"".join(lines).replace(b"\n", b"\r\n")), plain)
    same(summarise_nvidia_smi(b"\xef\xbb\xbf" + b"".join(lines)), plain)
    with_blanks = [b"\n", lines[0], b"\n", *lines[1:300], b"\n", b"   \n", *lines[300:], b"\n"]
    same(summarise_nvidia_smi(b"".join(with_blanks), chunk_rows=64), plain)
    # `cat part1 part2`: the second header is skipped, not a fault.
    same(summarise_nvidia_smi(b"".join([*lines[:400], lines[0], *lines[400:]]), chunk_rows=128), plain)


def test_a_binary_file_and_bytes_agree(tmp_path: Path) -> None:
    path = FIXTURES / "thermal_throttle_gpu5.csv"
    with path.open("rb") as fh:
        same(summarise_nvidia_smi(fh), summarise_nvidia_smi(path.read_bytes()))


def test_long_runs_keep_at_most_720_points(tmp_path: Path) -> None:
    path = tmp_path / "soak.csv"
    rows = generator().write_large(path, gpus=2, hours=3.0)
    assert rows == 2 * 3 * 3600
    with path.open("rb") as fh:
        s = summarise_nvidia_smi(fh, chunk_rows=5000)
    assert s.rows == rows
    for g in s.gpus.values():
        width = series_width(g.first_s or 0, g.last_s or 0)
        assert width == 16.0
        assert len(g.series) <= MAX_SERIES_POINTS
        assert all(t % width == 0 for t, *_ in g.series)
        assert g.median_sm_clock() == 1980.0
    with path.open("rb") as fh:
        same(summarise_nvidia_smi(fh), s)


# ---------------------------------------------------------------------------------------------
# Faults: the first one, its line and its column.


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5, 200_000])
def test_broken_fixture_reports_the_first_fault(chunk_rows: int) -> None:
    # Line 5 has a bad number; line 7 (a later fault) has a field too many.
    error = invalid((FIXTURES / "broken_not_a_number.csv").read_bytes(), chunk_rows=chunk_rows)
    assert error.detail == "telemetry line 5, column 7 (power.draw [W]): '12x.4 W' is not a number"
    assert error.extra == {"line": 5, "column": 7, "value": "12x.4 W"}


def test_truncated_line() -> None:
    error = invalid((FIXTURES / "broken_short_line.csv").read_bytes())
    assert error.detail == "telemetry line 4: 21 fields, the header has 23"
    assert (error.extra["line"], error.extra["column"]) == (4, 22)


@pytest.mark.parametrize(
    ("bad_row", "line", "column", "detail"),
    [
        (
            row("02.000", 1, hw="Maybe"),
            3,
            9,
            "(clocks_event_reasons.hw_thermal_slowdown): 'Maybe' is not Active or Not Active",
        ),
        (row("02.000", 1, pending="Active"), 3, 10, "(remapped_rows.pending): 'Active' is not Yes or No"),
        (row("02.000", 1, sm="19x0 MHz"), 3, 7, "(clocks.current.sm [MHz]): '19x0 MHz' is not a number"),
        (row("02.000", 1, sm="1980 GHz"), 3, 7, "(clocks.current.sm [MHz]): '1980 GHz' is not a number"),
        (row("02.000", 1, temp="inf"), 3, 5, "(temperature.gpu): 'inf' is not a number"),
        (row("02.000", 1, util=""), 3, 8, "(utilization.gpu [%]): empty value"),
        (row("99.000", 1), 3, 1, "(timestamp): '2026/11/20 10:00:99.000' is not a timestamp YYYY/MM/DD HH:MM:SS.mmm"),
        (row("02.000", 1).replace(", 1, GPU", ", [N/A], GPU"), 3, 2, "(index): '[N/A]' is not a GPU index"),
        (row("02.000", 1).replace(", 1, GPU", ", 1.5, GPU"), 3, 2, "(index): '1.5' is not a GPU index"),
        (row("02.000", 1) + ", 7", 3, 12, "telemetry line 3: 12 fields, the header has 11"),
        (row("02.000", 1).rsplit(", ", 3)[0], 3, 9, "telemetry line 3: 8 fields, the header has 11"),
    ],
)
def test_fault_line_and_column(bad_row: str, line: int, column: int, detail: str) -> None:
    data = csv_of(row("01.000", 0), bad_row, row("03.000", 0), row("04.000", 1).replace("60", "6o"))
    error = invalid(data)
    assert detail in error.detail
    assert error.detail.startswith(f"telemetry line {line}")
    assert (error.extra["line"], error.extra["column"]) == (line, column)


def test_first_data_line_with_extra_fields() -> None:
    error = invalid(csv_of(row("01.000", 0) + ", 1, 2", row("02.000", 0)))
    assert error.extra == {"line": 2, "column": 12}


def test_invalid_utf8_is_a_fault_not_a_crash() -> None:
    data = csv_of(row("01.000", 0)).replace(b"650.00 W", b"65\xff.00 W")
    error = invalid(data)
    assert (error.extra["line"], error.extra["column"]) == (2, 6)


def test_a_stray_carriage_return_is_a_fault_not_a_line() -> None:
    data = csv_of(row("01.000", 0), row("02.000", 0).replace("650.00 W", "650.\r00 W"), row("03.000", 0))
    assert invalid(data).extra["line"] == 3


NUMERIC_COLUMNS = (1, 4, 5, 6, 7, 10)  # 0-based: index, temperature, power, SM clock, utilization, PCIe gen


@FAST
@given(
    bad_line=st.integers(0, 79),
    column=st.sampled_from(NUMERIC_COLUMNS),
    junk=st.sampled_from(["x1", "1.2.3", "NaN", "--", "12x.4 W", "[N/A"]),
    chunk_rows=st.integers(1, 100),
    later=st.booleans(),
)
def test_any_fault_is_reported_where_it_is(bad_line: int, column: int, junk: str, chunk_rows: int, later: bool) -> None:
    rows = [row(f"{i // 8:02d}.{i:03d}", i % 8) for i in range(80)]
    cells = rows[bad_line].split(", ")
    cells[column] = junk
    rows[bad_line] = ", ".join(cells)
    if later and bad_line < 79:
        rows[-1] += ", extra"  # a later fault must not hide the first one
    error = invalid(csv_of(*rows), chunk_rows=chunk_rows)
    assert (error.extra["line"], error.extra["column"]) == (bad_line + 2, column + 1)
    assert f"telemetry line {bad_line + 2}, column {column + 1} (" in error.detail


# ---------------------------------------------------------------------------------------------
# Chunks: uploads of one run (each with its header) merge to exactly the single-pass summary.


def _split(data: bytes, at: int) -> tuple[bytes, bytes]:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: at + 1]), lines[0] + b"".join(lines[at + 1 :])


@FAST
@given(at=st.integers(1, 1199), chunk_rows=st.sampled_from([97, 500, 200_000]))
def test_two_uploads_merge_to_the_single_pass(at: int, chunk_rows: int) -> None:
    data = (FIXTURES / "thermal_throttle_gpu5.csv").read_bytes()
    whole = summarise_nvidia_smi(data)
    first, second = _split(data, at)
    a = summarise_nvidia_smi(first, chunk_rows=chunk_rows)
    b = summarise_nvidia_smi(second, start=a.start, chunk_rows=chunk_rows)
    same(a.merge(b), whole)


@settings(max_examples=10, deadline=None)
@given(chunk_rows=st.integers(40, 1300))
def test_chunk_size_does_not_change_the_summary(chunk_rows: int) -> None:
    data = (FIXTURES / "ecc_xid79_gpu2.csv").read_bytes()
    same(summarise_nvidia_smi(data, chunk_rows=chunk_rows), summarise_nvidia_smi(data))


def test_uploads_merge_in_any_order_without_a_start() -> None:
    parts = [summarise_nvidia_smi((FIXTURES / name).read_bytes()) for name in HEALTHY]
    forward = parts[0].merge(parts[1]).merge(parts[2])
    backward = parts[2].merge(parts[1]).merge(parts[0])
    chained = summary(*HEALTHY)
    for merged in (forward, backward):
        assert merged.start == chained.start
        assert merged.rows == chained.rows
        for index, g in merged.gpus.items():
            c = chained.gpus[index]
            assert (g.samples, g.sm_clock_hist, g.max_temperature_c) == (
                c.samples,
                c.sm_clock_hist,
                c.max_temperature_c,
            )
            assert g.first_s == pytest.approx(c.first_s, abs=1e-6)
            assert g.last_s == pytest.approx(c.last_s, abs=1e-6)
            assert len(g.series) <= MAX_SERIES_POINTS


def test_summary_survives_the_database_round_trip() -> None:
    s = summary(*HEALTHY)
    # The run's JSON column holds canonical JSON: sorted keys, which must be strings.
    stored = msgspec.json.encode(s.to_builtins(), order="sorted")
    assert TelemetrySummary.from_builtins(msgspec.json.decode(stored)) == s
    assert msgspec.json.decode(msgspec.json.encode(s), type=TelemetrySummary) == s
    assert TelemetrySummary.from_builtins(msgspec.to_builtins(s)) == s  # int keys are fine too


def test_later_upload_measured_from_the_run_start() -> None:
    first = summarise_nvidia_smi((FIXTURES / HEALTHY[0]).read_bytes())
    second = summarise_nvidia_smi((FIXTURES / HEALTHY[1]).read_bytes(), start=first.start)
    assert second.start == first.start
    assert second.gpus[0].first_s == pytest.approx(200.0, abs=0.02)
    aware = first.start.replace(tzinfo=dt.UTC) if first.start else None
    assert summarise_nvidia_smi((FIXTURES / HEALTHY[1]).read_bytes(), start=aware).start == first.start


def test_stream_position_is_respected() -> None:
    data = (FIXTURES / "short_run_90s.csv").read_bytes()
    stream = io.BytesIO(b"junk before\n" + data)
    stream.readline()
    same(summarise_nvidia_smi(stream), summarise_nvidia_smi(data))


def test_serials_keep_their_leading_zeros() -> None:
    data = csv_of(row("01.000", 0).replace("1650000000000", "0323118012345"), row("02.000", 0))
    assert summarise_nvidia_smi(data).gpus[0].serial == "0323118012345"


def test_a_gpu_first_seen_deep_in_the_capture() -> None:
    rows = [row(f"{i // 60:02d}.{i % 60:03d}", 0) for i in range(2000)] + [row("59.000", 7)]
    s = summarise_nvidia_smi(csv_of(*rows), chunk_rows=300)
    assert s.gpus[7].serial == "1650000000007"
    assert s.gpus[7].uuid == "GPU-00000007-0000-0000-0000-000000000000"
    assert s.gpus[7].samples == 1
