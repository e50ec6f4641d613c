"""Site hardware validation: suites as data, parsers over real-shaped result files, verdicts with numbers."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest

from app.commissioning import validation as vs
from app.core.definitions import DefinitionError
from app.core.errors import InvalidInput
from tests.conftest import assert_broken_file_fault

ROOT = Path(__file__).resolve().parents[3]
FIX = ROOT / "fixtures" / "validation"
SPEC = "HGX-H200-40"


@pytest.fixture(scope="module")
def suite() -> vs.ValidationSuite:
    return vs.load_suites()["gpu-module"]


def judge(suite: vs.ValidationSuite, step_id: str, data: bytes, spec: str = SPEC) -> vs.StepVerdict:
    return vs.judge_step(suite.step(step_id), spec, data, suite)


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


# --- the shipped suite --------------------------------------------------------------------------------


def test_the_shipped_suite_loads_and_checks(suite: vs.ValidationSuite) -> None:
    assert vs.check_suites() == (
        ["workflows/validation/gpu-module.toml: suite gpu-module version 2026.1, 4 steps, 4 specs"],
        [],
    )
    assert suite.version == "2026.1"
    assert suite.applies_to == ("GB200-NVL72-40", "GB200-NVL72-20", "HGX-H200-40", "L4-EDGE-20")
    assert [(s.id, s.kind, s.required) for s in suite.steps] == [
        ("dcgm-diag", "dcgm", True),
        ("nccl-all-reduce", "nccl_all_reduce", True),
        ("ib-write-bw", "ib_write_bw", True),
        ("throughput", "throughput", True),
    ]
    limits = {code: [s.threshold(code) for s in suite.steps] for code in suite.applies_to}
    assert limits == {
        "GB200-NVL72-40": [3.0, 650.0, 370.0, 320000.0],
        "GB200-NVL72-20": [3.0, 650.0, 370.0, 320000.0],
        "HGX-H200-40": [3.0, 400.0, 370.0, 200000.0],
        "L4-EDGE-20": [3.0, 16.0, 90.0, 20000.0],
    }
    assert all(s.guidance for s in suite.steps)


def test_the_suite_survives_the_json_column_it_is_stored_in(suite: vs.ValidationSuite) -> None:
    # A validation run keeps its suite as JSON; converting it back must give the same suite.
    stored = msgspec.json.decode(msgspec.json.encode(msgspec.to_builtins(suite)))
    assert msgspec.convert(stored, vs.ValidationSuite) == suite


def test_suite_for_picks_the_one_suite_of_a_spec(suite: vs.ValidationSuite) -> None:
    suites = vs.load_suites()
    assert vs.suite_for(suites, "L4-EDGE-20") is suites["gpu-module"]
    with pytest.raises(ValueError, match="no validation suite applies to spec MI300X-40"):
        vs.suite_for(suites, "MI300X-40")
    twin = msgspec.structs.replace(suite, id="gpu-module-b")
    with pytest.raises(
        ValueError, match="several validation suites apply to spec HGX-H200-40: gpu-module, gpu-module-b"
    ):
        vs.suite_for({**suites, "gpu-module-b": twin}, SPEC)


def test_describe_thresholds_in_words(suite: vs.ValidationSuite) -> None:
    assert vs.describe_thresholds(suite, "L4-EDGE-20") == {
        "dcgm-diag": "dcgmi diag level 3 or higher, no failed test",
        "nccl-all-reduce": "bus bandwidth at least 16 GB/s at 1 GiB or more, no wrong values",
        "ib-write-bw": "BW average at least 90 Gb/s at the largest message size, every run",
        "throughput": "tokens_per_second at least 0.90 of 20,000 tok/s",
    }


# --- broken suite files: one fault each, at its line ---------------------------------------------------

HEAD = """id = "mini"
version = "1"
title = "Mini"
applies_to = ["HGX-H200-40"]
"""
DCGM = """
[[steps]]
id = "dcgm"
title = "DCGM"
kind = "dcgm"
"""
NCCL = """
[[steps]]
id = "nccl"
title = "NCCL"
kind = "nccl_all_reduce"

[steps.min_busbw_gbps]
HGX-H200-40 = 400.0
"""
# Each case: (name, file text after the `# expect:` line, line, fragment). Lines count the expect line.
BROKEN: list[tuple[str, str, int, str]] = [
    ("syntax_error", HEAD + DCGM.replace('kind = "dcgm"', 'kind = "dcgm'), 10, "Illegal character"),
    ("wrong_type", HEAD + DCGM + 'min_level = "three"\n', 11, "Expected `int`, got `str`"),
    ("level_out_of_range", HEAD + DCGM + "min_level = 5\n", 11, "Expected `int` <= 4"),
    ("unknown_kind", HEAD + DCGM.replace('"dcgm"\n', '"gemm"\n'), 10, "Invalid enum value 'gemm'"),
    ("misspelt_field", HEAD + DCGM + "min_levl = 3\n", 11, "unknown field `min_levl`"),
    # In the second step, after the first step's table: the step-aware locator, not the first match.
    ("misspelt_field_second_step", HEAD + NCCL + DCGM + "min_levl = 3\n", 19, "unknown field `min_levl`"),
    ("negative_threshold_in_table", HEAD + DCGM + NCCL.replace("400.0", "-1.0"), 18, "Expected `float` > 0.0"),
    ("bad_step_id", HEAD + DCGM.replace('id = "dcgm"', 'id = "DCGM test"'), 8, "Expected `str` matching regex"),
    ("bad_spec_code", HEAD.replace('["HGX-H200-40"]', '["hgx h200"]') + DCGM, 5, "Expected `str` matching regex"),
    (
        "ratio_above_one",
        HEAD
        + '\n[[steps]]\nid = "tp"\ntitle = "TP"\nkind = "throughput"\nmetric = "tokens_per_second"\nmin_ratio = 1.5\n'
        + "\n[steps.baseline]\nHGX-H200-40 = 1.0\n",
        12,
        "Expected `float` <= 1.0",
    ),
    ("duplicate_step_id", HEAD + DCGM + DCGM, 13, "duplicate step id 'dcgm'"),
    ("empty_applies_to", HEAD.replace('["HGX-H200-40"]', "[]") + DCGM, 5, "applies_to names no spec code"),
    (
        "spec_listed_twice",
        HEAD.replace('["HGX-H200-40"]', '["HGX-H200-40", "HGX-H200-40"]') + DCGM,
        5,
        "spec HGX-H200-40 is listed twice",
    ),
    ("no_steps", HEAD + "steps = []\n", 6, "the suite has no steps"),
    ("nccl_without_threshold", HEAD + NCCL.split("\n[steps.")[0] + "\n", 10, "needs min_busbw_gbps"),
    (
        "threshold_missing_for_a_spec",
        HEAD.replace('["HGX-H200-40"]', '["HGX-H200-40", "L4-EDGE-20"]') + NCCL,
        12,
        "no min_busbw_gbps for L4-EDGE-20, which the suite applies to",
    ),
    (
        "threshold_for_a_spec_not_applied_to",
        HEAD + NCCL + '"GB200-NVL72-40" = 650.0\n',
        14,
        "min_busbw_gbps for GB200-NVL72-40, which is not in applies_to",
    ),
    ("field_of_another_kind", HEAD + DCGM + "min_bw_gbps = 370.0\n", 11, "min_bw_gbps does not apply to a dcgm step"),
    (
        "throughput_without_metric",
        HEAD + '\n[[steps]]\nid = "tp"\ntitle = "TP"\nkind = "throughput"\n\n[steps.baseline]\nHGX-H200-40 = 1.0\n',
        10,
        "a throughput step names its metric",
    ),
    (
        "throughput_baseline_missing_for_a_spec",
        HEAD.replace('["HGX-H200-40"]', '["HGX-H200-40", "L4-EDGE-20"]')
        + '\n[[steps]]\nid = "tp"\ntitle = "TP"\nkind = "throughput"\nmetric = "tokens_per_second"\n'
        + "\n[steps.baseline]\nHGX-H200-40 = 1.0\n",
        13,
        "no baseline for L4-EDGE-20",
    ),
    (
        "throughput_without_baselines",
        HEAD + '\n[[steps]]\nid = "tp"\ntitle = "TP"\nkind = "throughput"\nmetric = "tokens_per_second"\n',
        10,
        "a throughput step needs baseline (a table by spec code)",
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "fragment"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_suite_reports_one_fault_at_its_line(
    tmp_path: Path, name: str, text: str, line: int, fragment: str
) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"# expect: {line}: {fragment}\n{text}")
    assert_broken_file_fault(path, vs.decode_suite)


def test_several_faults_are_reported_together() -> None:
    text = HEAD.replace('["HGX-H200-40"]', "[]") + DCGM + DCGM + "min_bw_gbps = 1.0\n"
    with pytest.raises(DefinitionError) as caught:
        vs.decode_suite(text.encode(), "two.toml")
    assert caught.value.faults == [
        "two.toml:4: applies_to names no spec code: the suite would apply to no module",
        "two.toml:12: duplicate step id 'dcgm'",
        "two.toml:15: step 'dcgm': min_bw_gbps does not apply to a dcgm step",
    ]


def test_one_number_serves_every_spec() -> None:
    text = HEAD.replace('["HGX-H200-40"]', '["HGX-H200-40", "L4-EDGE-20"]') + NCCL.split("\n[steps.")[0]
    suite = vs.decode_suite((text + "\nmin_busbw_gbps = 100\n").encode(), "one.toml")
    assert [suite.steps[0].threshold(c) for c in suite.applies_to] == [100.0, 100.0]


def test_a_directory_of_suites(tmp_path: Path, suite: vs.ValidationSuite) -> None:
    shipped = (ROOT / "workflows" / "validation" / "gpu-module.toml").read_text()
    (tmp_path / "a.toml").write_text(shipped)
    (tmp_path / "b.toml").write_text(shipped.replace('id = "gpu-module"', 'id = "gpu-module-b"'))
    (tmp_path / "c.toml").write_text(shipped)
    ok, faults = vs.check_suites(tmp_path)
    assert ok == [f"{tmp_path / 'a.toml'}: suite gpu-module version 2026.1, 4 steps, 4 specs"]
    assert faults[0] == f"{tmp_path / 'b.toml'}:15: spec GB200-NVL72-40 already has a suite in {tmp_path / 'a.toml'}"
    assert len(faults) == 5  # b: four specs already covered; c: the same suite id again
    assert faults[-1].endswith(f"c.toml:12: duplicate suite id 'gpu-module' (also {tmp_path / 'a.toml'})")
    with pytest.raises(DefinitionError):
        vs.load_suites(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert vs.check_suites(empty) == ([], [f"{empty / '*.toml'}:1: no validation suites"])


# --- nccl-tests -----------------------------------------------------------------------------------------


def test_parse_nccl_pass_fixture() -> None:
    result = vs.parse_nccl(fixture("nccl-all-reduce-hgx-h200-pass.txt").decode())
    assert (result.collective, result.version) == ("all_reduce_perf", "2.14.1")
    assert (result.ranks, result.gpus_per_process, result.validation) == (8, 8, True)
    assert result.devices == ("NVIDIA H200",) * 8
    assert result.hosts == ("afm-h200-n03",)
    assert (result.out_of_bounds, result.avg_busbw_gbps) == (0, 152.92)
    assert len(result.rows) == 31
    first, last = result.rows[0], result.rows[-1]
    assert (first.size, first.count, first.type, first.redop, first.root, first.line) == (8, 2, "float", "sum", -1, 18)
    assert first.out_of_place == vs.NcclPlace(time_us=24.10, algbw_gbps=0.0, busbw_gbps=0.0, wrong=0)
    assert last.size == 8589934592 and last.line == 48
    assert last.out_of_place == vs.NcclPlace(time_us=31383.0, algbw_gbps=273.72, busbw_gbps=479.00, wrong=0)
    assert last.in_place == vs.NcclPlace(time_us=31196.0, algbw_gbps=275.36, busbw_gbps=481.87, wrong=0)
    assert result.largest(1 << 30) is last


def test_nccl_pass_and_fail_verdicts(suite: vs.ValidationSuite) -> None:
    good = judge(suite, "nccl-all-reduce", fixture("nccl-all-reduce-hgx-h200-pass.txt"))
    assert good.verdict == "pass"
    assert good.reasons == ("bus bandwidth 479 GB/s at 8 GiB (required 400 GB/s), no wrong values",)
    assert good.metrics == {
        "required_busbw_gbps": 400.0,
        "ranks": 8,
        "avg_busbw_gbps": 152.92,
        "size_bytes": 8589934592,
        "busbw_gbps": 479.0,
        "algbw_gbps": 273.72,
        "out_of_bounds": 0,
    }
    bad = judge(suite, "nccl-all-reduce", fixture("nccl-all-reduce-hgx-h200-fail.txt"))
    assert bad.verdict == "fail"
    assert bad.reasons == ("bus bandwidth 313.01 GB/s at 8 GiB is below the required 400 GB/s",)
    assert bad.metrics["busbw_gbps"] == 313.01
    # The same node would pass an L4 module's threshold; a GB200 one it fails by more.
    assert judge(suite, "nccl-all-reduce", fixture("nccl-all-reduce-hgx-h200-fail.txt"), "L4-EDGE-20").verdict == "pass"
    assert judge(suite, "nccl-all-reduce", fixture("nccl-all-reduce-hgx-h200-pass.txt"), "GB200-NVL72-20").reasons == (
        "bus bandwidth 479 GB/s at 8 GiB is below the required 650 GB/s",
    )


def test_wrong_values_fail_the_step(suite: vs.ValidationSuite) -> None:
    text = fixture("nccl-all-reduce-hgx-h200-pass.txt").decode()
    last = "  8589934592    2147483648     float     sum      -1    31383  273.72  479.00      0    31196  275.36  481.87      0"
    assert last in text
    text = text.replace(last, last[:-6] + "     12").replace("values : 0 OK", "values : 12 FAILED")
    verdict = judge(suite, "nccl-all-reduce", text.encode())
    assert verdict.verdict == "fail"
    assert verdict.reasons == (
        "12 wrong values at 8 GiB in-place (nccl-tests line 48)",
        "12 out-of-bounds values reported: the results were wrong",
    )


def test_a_run_that_did_not_finish_or_was_too_short(suite: vs.ValidationSuite) -> None:
    lines = fixture("nccl-all-reduce-hgx-h200-pass.txt").decode().splitlines()
    cut = "\n".join(lines[:42]) + "\n"  # stopped after 128 MiB: no summary
    verdict = judge(suite, "nccl-all-reduce", cut.encode())
    assert verdict.reasons == (
        "the largest message size is 128 MiB; the check needs 1 GiB or more (run all_reduce_perf with -e 8G)",
        "no 'Out of bounds values' line: the run did not finish",
    )


# Older nccl-tests (before 2.13): no root column, a max `error` per measurement instead of #wrong. Layout
# as quoted for NCCL_BENCHMARKS_VERSION 2.10.0 in aws-parallelcluster's NCCL test and in rccl-tests runs.
OLD = """# nThread: 1 nGpus: 8 minBytes: 8 maxBytes: 2147483648 step: 2(factor) warmupIters: 5 iters: 20 validation: 1
#
#                                                     out-of-place                       in-place
#       size         count      type   redop     time   algbw   busbw  error     time   algbw   busbw  error
#        (B)    (elements)                       (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
           8             2     float     sum    41.99    0.00    0.00  0e+00    42.18    0.00    0.00  0e+00
  1073741824     268435456     float     sum    79531   13.50   26.58  2e-06    79371   13.53   26.63  2e-06
  2147483648     536870912     float     sum   158420   13.56   23.72  2e-06   158390   13.56   23.73  2e-06
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 16.7433
"""


def test_the_older_layout_without_root_and_with_max_error(suite: vs.ValidationSuite) -> None:
    result = vs.parse_nccl(OLD)
    row = result.rows[-1]
    assert (row.size, row.root, row.out_of_place.wrong, row.out_of_place.max_error) == (2147483648, None, None, 2e-06)
    assert (result.gpus_per_process, result.validation, result.ranks, result.collective) == (8, True, 0, None)
    verdict = judge(suite, "nccl-all-reduce", OLD.encode(), "L4-EDGE-20")
    assert verdict.verdict == "pass"
    assert verdict.reasons == ("bus bandwidth 23.72 GB/s at 2 GiB (required 16 GB/s), no wrong values",)


# "N/A" where a measurement is not checked (in-place of sendrecv, or every row with -c 0); mpirun's
# --tag-output prefixes and NCCL INFO lines between rows.
TAGGED = """[1,0]<stdout>:# nThread 1 nGpus 1 minBytes 1073741824 maxBytes 2147483648 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 0 graph: 0
[1,0]<stdout>:#  Rank  0 Group  0 Pid   6899 on l4-n01 device  0 [0000:04:00] NVIDIA L4
[1,0]<stdout>:#  Rank  1 Group  0 Pid   6733 on l4-n02 device  0 [0000:04:00] NVIDIA L4
[1,0]<stdout>:#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
[1,0]<stdout>:#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
l4-n01:6899:6950 [0] NCCL INFO comm 0x55d1 rank 0 nranks 2 cudaDev 0 busId 4000 - Init COMPLETE
[1,0]<stdout>:  1073741824     268435456     float     sum      -1    55301   19.42   19.42    N/A    55290   19.42   19.42    N/A
[1,0]<stdout>:  2147483648     536870912     float     sum      -1   110412   19.45   19.45    N/A   110398   19.45   19.45    N/A
[1,0]<stdout>:# Out of bounds values : 0 OK
[1,0]<stdout>:# Avg bus bandwidth    : 19.435
"""


def test_tagged_output_and_unchecked_results(suite: vs.ValidationSuite) -> None:
    result = vs.parse_nccl(TAGGED)
    assert (result.ranks, result.hosts, result.validation, len(result.rows)) == (2, ("l4-n01", "l4-n02"), False, 2)
    assert result.rows[1].out_of_place.wrong is None and result.rows[1].in_place is not None
    verdict = judge(suite, "nccl-all-reduce", TAGGED.encode(), "L4-EDGE-20")
    assert verdict.reasons == ("no result was checked (#wrong is N/A everywhere): run without -c 0",)
    checked = TAGGED.replace("19.42    N/A", "19.42      0").replace("19.45    N/A", "19.45      0")
    assert judge(suite, "nccl-all-reduce", checked.encode(), "L4-EDGE-20").verdict == "pass"


def _pass_lines() -> list[str]:
    return fixture("nccl-all-reduce-hgx-h200-pass.txt").decode().splitlines()


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (fixture("ib-write-bw-pass.txt").decode(), "not nccl-tests output: no result table header", None),
        ("\n".join(_pass_lines()[:17]) + "\n", "nccl-tests line 16: the result table has no rows", 16),
        (
            "\n".join(_pass_lines()).replace("    24.10    0.00", "    24.10"),
            "nccl-tests line 18: 12 columns, the header at line 16 has 13",
            18,
        ),
        ("\n".join(_pass_lines()).replace("24.10", "24.1O"), "nccl-tests line 18: '24.1O' is not a number", 18),
        (
            "\n".join(_pass_lines()).replace("      0    23.93", "      x    23.93"),
            "nccl-tests line 18: #wrong 'x' is not a count",
            18,
        ),
        (
            "\n".join(_pass_lines()).replace("starting: all_reduce_perf", "starting: all_gather_perf"),
            "nccl-tests line 2: this is the output of all_gather_perf, not all_reduce_perf",
            2,
        ),
        (
            "\n".join(_pass_lines()).replace("#wrong     time", "#wrong     time   extra"),
            "nccl-tests line 16: unrecognised column header",
            16,
        ),
    ],
    ids=["ib-file", "no-rows", "short-row", "bad-number", "bad-wrong", "other-collective", "bad-header"],
)
def test_bad_nccl_files_are_refused_with_their_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(vs.ResultFileError) as caught:
        vs.parse_nccl(text)
    assert str(caught.value).startswith(message)
    assert caught.value.extra.get("line") == line


def test_a_result_file_error_is_a_400() -> None:
    with pytest.raises(vs.ResultFileError) as caught:
        vs.parse_nccl("hello\n")
    assert isinstance(caught.value, InvalidInput) and isinstance(caught.value, ValueError)
    assert caught.value.status == 400


def test_a_binary_file_is_not_a_text_output(suite: vs.ValidationSuite) -> None:
    with pytest.raises(vs.ResultFileError, match="nccl-tests: a binary file"):
        judge(suite, "nccl-all-reduce", b"\x89PNG\r\n\x1a\n\x00\x00")


# --- ib_write_bw ----------------------------------------------------------------------------------------


def test_parse_ib_write_bw_pass_fixture() -> None:
    (run,) = vs.parse_ib_write_bw(fixture("ib-write-bw-pass.txt").decode()).runs
    assert (run.device, run.link_type, run.transport, run.connection, run.mtu, run.qps) == (
        "mlx5_0",
        "IB",
        "IB",
        "RC",
        "4096[B]",
        1,
    )
    assert (run.bidirectional, run.unit, len(run.rows)) == (False, "Gb/sec", 23)
    assert run.rows[0] == vs.IbRow(
        bytes=2, iterations=5000, bw_peak_gbps=0.13, bw_avg_gbps=0.13, msg_rate_mpps=8.125, line=21
    )
    assert run.largest() == vs.IbRow(
        bytes=8388608, iterations=5000, bw_peak_gbps=393.89, bw_avg_gbps=392.32, msg_rate_mpps=0.005846, line=43
    )


def test_ib_pass_and_fail_verdicts(suite: vs.ValidationSuite) -> None:
    good = judge(suite, "ib-write-bw", fixture("ib-write-bw-pass.txt"))
    assert good.verdict == "pass"
    assert good.reasons == ("1 run(s), lowest average 392.32 Gb/s (mlx5_0, 8 MiB), required 370 Gb/s",)
    bad = judge(suite, "ib-write-bw", fixture("ib-write-bw-fail.txt"))
    assert bad.verdict == "fail"
    assert bad.reasons == ("mlx5_1: average 196.34 Gb/s at 1 MiB is below the required 370 Gb/s",)
    assert bad.metrics == {
        "bw_avg_gbps": 196.34,
        "size_bytes": 1048576,
        "required_bw_gbps": 370.0,
        "runs": 2,
        "devices": "mlx5_0, mlx5_1",
        "link_type": "IB",
    }
    assert judge(suite, "ib-write-bw", fixture("ib-write-bw-fail.txt"), "L4-EDGE-20").verdict == "pass"


# perftest without --report_gbits prints MB/sec (bytes / 2**20 per second; "MiB/sec" in newer releases);
# a CPU-frequency warning inside the table, as perftest prints it.
MB = """---------------------------------------------------------------------------------------
                    RDMA_Write BW Test
 Dual-port       : OFF          Device         : mlx5_2
 Link type       : Ethernet
---------------------------------------------------------------------------------------
 #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]
Conflicting CPU frequency values detected: 5008.116000 != 3295.212000. CPU Frequency is not max.
 65536      1000             46567.34            46557.03\t\t     0.744912
---------------------------------------------------------------------------------------
"""


@pytest.mark.parametrize("unit", ["MB/sec", "MiB/sec"])
def test_mb_per_sec_is_converted_to_gbits(unit: str) -> None:
    (run,) = vs.parse_ib_write_bw(MB.replace("MB/sec", unit)).runs
    assert (run.device, run.link_type, run.unit) == ("mlx5_2", "Ethernet", unit)
    row = run.rows[0]
    assert row.bw_avg_gbps == round(46557.03 * 8 * 2**20 / 1e9, 2) == 390.55
    assert row.bw_peak_gbps == 390.64 and row.line == 8


def test_a_bidirectional_run_is_not_judged_as_one_way(suite: vs.ValidationSuite) -> None:
    text = fixture("ib-write-bw-pass.txt").decode().replace("RDMA_Write BW Test", "RDMA_Write Bidirectional BW Test")
    assert vs.parse_ib_write_bw(text).runs[0].bidirectional
    assert judge(suite, "ib-write-bw", text.encode()).reasons == (
        "mlx5_0: a bidirectional run (-b) sums both directions; the check needs a one-way run",
    )


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (
            MB.replace("RDMA_Write BW Test", "Send BW Test"),
            "ib_write_bw line 2: this is the output of 'Send BW Test'",
            2,
        ),
        (MB.replace("RDMA_Write BW Test", "RDMA_Write Latency Test"), "ib_write_bw line 2: this is the output of", 2),
        (fixture("nccl-all-reduce-hgx-h200-pass.txt").decode(), "not ib_write_bw output: no result table", None),
        (
            MB.replace("MsgRate[Mpps]", "").replace("[MB/sec]", "[kB/sec]"),
            "ib_write_bw line 6: unknown bandwidth unit",
            6,
        ),
        (MB.replace("BW peak[MB/sec]", "Peak"), "ib_write_bw line 6: unrecognised table header", 6),
        (MB.replace("\t\t     0.744912", ""), "ib_write_bw line 8: 4 columns, the table header has 5", 8),
        (MB.replace("46557.03", "46557,03"), "ib_write_bw line 8: '46557,03' is not a number", 8),
    ],
    ids=["send-bw", "latency", "nccl-file", "unit", "header", "short-row", "bad-number"],
)
def test_bad_ib_files_are_refused_with_their_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(vs.ResultFileError) as caught:
        vs.parse_ib_write_bw(text)
    assert str(caught.value).startswith(message)
    assert caught.value.extra.get("line") == line


# --- throughput -----------------------------------------------------------------------------------------


def test_parse_throughput_fixture() -> None:
    assert vs.parse_throughput(fixture("throughput-pass.json")) == vs.ThroughputResult(
        metric="tokens_per_second",
        value=203417.6,
        unit="tok/s",
        benchmark="offline generation, Llama-3.1-8B-Instruct FP8, 128 in / 2048 out tokens, 8 replicas x 1 GPU",
        gpus=8,
    )


def test_throughput_verdicts(suite: vs.ValidationSuite) -> None:
    good = judge(suite, "throughput", fixture("throughput-pass.json"))
    assert good.verdict == "pass"
    assert good.reasons == (
        "throughput 203,417.6 tok/s is 1.02 of the HGX-H200-40 baseline 200,000 tok/s (minimum 0.90)",
    )
    bad = judge(suite, "throughput", fixture("throughput-fail.json"))
    assert bad.verdict == "fail"
    assert bad.reasons == ("throughput 168,420 tok/s is 0.84 of the HGX-H200-40 baseline 200,000 tok/s (minimum 0.90)",)
    assert (bad.metrics["ratio"], bad.metrics["baseline"], bad.metrics["gpus"]) == (0.8421, 200000.0, 8)
    # Just under the band is not printed as the band itself.
    near = fixture("throughput-fail.json").replace(b"168420.0", b"179980.0")
    assert judge(suite, "throughput", near).reasons == (
        "throughput 179,980 tok/s is 0.8999 of the HGX-H200-40 baseline 200,000 tok/s (minimum 0.90)",
    )
    four = fixture("throughput-pass.json").replace(b'"gpus": 8', b'"gpus": 4')
    assert judge(suite, "throughput", four).reasons == ("the benchmark ran on 4 GPUs; the baseline is for 8",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "throughput JSON: the file is empty"),
        (
            b'{"metric": "tokens_per_second", "value": "fast"}',
            "throughput JSON: Expected `float`, got `str` - at `$.value`",
        ),
        (
            fixture("throughput-pass.json").replace(b'"gpus": 8', b'"gpus": 8, "model": "x"'),
            "throughput JSON: Object contains unknown field `model`",
        ),
        (b'{"metric": "tokens_per_second"}', "throughput JSON: Object missing required field `value`"),
        (
            b'{\n  "metric": "tokens_per_second",\n  "value": 1,,\n}',
            "throughput JSON line 3, column 14: JSON is malformed",
        ),
        (
            fixture("throughput-pass.json").replace(b"tokens_per_second", b"images_per_second"),
            "throughput JSON: the file measures 'images_per_second'; this step takes 'tokens_per_second'",
        ),
        (
            fixture("throughput-pass.json").replace(b'"tok/s"', b'"tok/min"'),
            "throughput JSON: the value is in 'tok/min'; the baseline is in 'tok/s'",
        ),
    ],
    ids=["empty", "string-value", "unknown-field", "missing-field", "malformed", "other-metric", "other-unit"],
)
def test_bad_throughput_files_are_refused(suite: vs.ValidationSuite, data: bytes, message: str) -> None:
    with pytest.raises(vs.ResultFileError) as caught:
        judge(suite, "throughput", data)
    assert str(caught.value).startswith(message)


# --- DCGM -----------------------------------------------------------------------------------------------


def test_dcgm_verdicts(suite: vs.ValidationSuite) -> None:
    good = judge(suite, "dcgm-diag", fixture("dcgm-diag-pass.json"))
    assert (good.verdict, good.reasons) == ("pass", ("DCGM level 3: 15 tests passed",))
    assert good.metrics == {
        "required_level": 3,
        "tests": 15,
        "failed": 0,
        "warned": 0,
        "level": 3,
        "dcgm_version": "3.3.9",
    }
    bad = judge(suite, "dcgm-diag", fixture("dcgm-diag-fail.json"))
    assert bad.verdict == "fail"
    assert bad.reasons == (
        "DCGM memory failed on GPU 2: GPU 2: Found 2 faulty memory elements on GPU 2; the GPU needs reset. "
        "Run a field diagnostic on the GPU. (DCGM_FR_FAULTY_MEMORY)",
    )
    level4 = msgspec.structs.replace(suite.step("dcgm-diag"), min_level=4)
    suite4 = msgspec.structs.replace(suite, steps=(level4, *suite.steps[1:]))
    low = vs.judge_step(level4, SPEC, fixture("dcgm-diag-pass.json"), suite4)
    assert low.reasons == ("DCGM ran at level 3; level 4 is required (dcgmi diag -r 4)",)


def test_dcgm_warnings_are_reasons_that_fail_nothing(suite: vs.ValidationSuite) -> None:
    doc = {
        "DCGM GPU Diagnostic": {
            "version": "3.3.9",
            "test_categories": [
                {
                    "category": "Hardware",
                    "tests": [
                        {
                            "name": "Diagnostic",
                            "results": [{"gpu_ids": "5", "status": "Warn", "warnings": ["GPU 5 clocks throttled"]}],
                        }
                    ],
                }
            ],
        }
    }
    verdict = judge(suite, "dcgm-diag", msgspec.json.encode(doc))
    assert verdict.verdict == "pass"
    assert verdict.reasons == (
        "DCGM level 3: 1 tests passed",
        "warning: DCGM Diagnostic warned on GPU 5: GPU 5 clocks throttled",
    )


def test_a_broken_dcgm_file_is_a_result_file_error(suite: vs.ValidationSuite) -> None:
    with pytest.raises(vs.ResultFileError) as caught:
        judge(suite, "dcgm-diag", (ROOT / "fixtures" / "telemetry" / "broken_dcgm.json").read_bytes())
    assert str(caught.value) == "DCGM JSON line 5, column 38: JSON is malformed: expected ',' or '}'"
    assert caught.value.extra == {"line": 5, "column": 38}
    with pytest.raises(vs.ResultFileError, match="DCGM JSON line 1, column 1"):
        judge(suite, "dcgm-diag", fixture("nccl-all-reduce-hgx-h200-pass.txt"))


def test_judge_step_refuses_a_spec_or_step_the_suite_lacks(suite: vs.ValidationSuite) -> None:
    with pytest.raises(ValueError, match="suite gpu-module does not apply to spec MI300X-40"):
        vs.judge_step(suite.steps[0], "MI300X-40", b"{}", suite)
    stray = msgspec.structs.replace(suite.steps[0], id="other")
    with pytest.raises(ValueError, match="suite gpu-module has no step 'other'"):
        vs.judge_step(stray, SPEC, b"{}", suite)


# --- the suite's verdict --------------------------------------------------------------------------------

PASS_FILES = {
    "dcgm-diag": "dcgm-diag-pass.json",
    "nccl-all-reduce": "nccl-all-reduce-hgx-h200-pass.txt",
    "ib-write-bw": "ib-write-bw-pass.txt",
    "throughput": "throughput-pass.json",
}


def _verdicts(suite: vs.ValidationSuite, **files: str) -> dict[str, vs.StepVerdict]:
    return {step: judge(suite, step, fixture(name)) for step, name in files.items()}


def test_suite_pass(suite: vs.ValidationSuite) -> None:
    assert vs.suite_verdict(suite, _verdicts(suite, **PASS_FILES)) == vs.SuiteVerdict("pass", ())


def test_suite_fail_names_the_step_and_its_reason(suite: vs.ValidationSuite) -> None:
    files = PASS_FILES | {"ib-write-bw": "ib-write-bw-fail.txt", "dcgm-diag": "dcgm-diag-fail.json"}
    verdict = vs.suite_verdict(suite, _verdicts(suite, **files))
    assert verdict.verdict == "fail"
    assert verdict.failed == ("dcgm-diag", "ib-write-bw") and verdict.missing == ()
    assert verdict.reasons[1] == "ib-write-bw: mlx5_1: average 196.34 Gb/s at 1 MiB is below the required 370 Gb/s"
    assert verdict.reasons[0].startswith("dcgm-diag: DCGM memory failed on GPU 2")


def test_suite_incomplete_names_the_missing_steps(suite: vs.ValidationSuite) -> None:
    verdict = vs.suite_verdict(suite, _verdicts(suite, **{"dcgm-diag": PASS_FILES["dcgm-diag"]}))
    assert verdict == vs.SuiteVerdict(
        "incomplete",
        ("no result yet for nccl-all-reduce, ib-write-bw, throughput",),
        missing=("nccl-all-reduce", "ib-write-bw", "throughput"),
    )
    assert vs.suite_verdict(suite, {}).missing == ("dcgm-diag", "nccl-all-reduce", "ib-write-bw", "throughput")


def test_a_failure_outranks_missing_steps(suite: vs.ValidationSuite) -> None:
    verdict = vs.suite_verdict(suite, _verdicts(suite, throughput="throughput-fail.json"))
    assert verdict.verdict == "fail"
    assert verdict.reasons == (
        "throughput: throughput 168,420 tok/s is 0.84 of the HGX-H200-40 baseline 200,000 tok/s (minimum 0.90)",
        "no result yet for dcgm-diag, nccl-all-reduce, ib-write-bw",
    )


def test_an_optional_step_reports_but_fails_nothing(suite: vs.ValidationSuite) -> None:
    optional = msgspec.structs.replace(suite.step("throughput"), required=False)
    relaxed = msgspec.structs.replace(suite, steps=(*suite.steps[:3], optional))
    files = {k: v for k, v in PASS_FILES.items() if k != "throughput"}
    verdicts = _verdicts(relaxed, **files) | {
        "throughput": vs.judge_step(optional, SPEC, fixture("throughput-fail.json"), relaxed)
    }
    verdict = vs.suite_verdict(relaxed, verdicts)
    assert verdict.verdict == "pass"
    assert verdict.reasons == (
        "throughput (optional): throughput 168,420 tok/s is 0.84 of the HGX-H200-40 baseline 200,000 tok/s "
        "(minimum 0.90)",
    )
    assert vs.suite_verdict(relaxed, _verdicts(relaxed, **files)).verdict == "pass"  # optional, not missing


def test_verdicts_rebuilt_from_storage_give_the_same_suite_verdict(suite: vs.ValidationSuite) -> None:
    # The service stores reasons and metrics as JSON and rebuilds StepVerdicts by keyword.
    verdicts = _verdicts(suite, **(PASS_FILES | {"nccl-all-reduce": "nccl-all-reduce-hgx-h200-fail.txt"}))
    rebuilt = {
        k: vs.StepVerdict(
            step=v.step,
            kind=v.kind,
            verdict=v.verdict,
            reasons=tuple(v.reasons),
            metrics=msgspec.json.decode(msgspec.json.encode(v.metrics)),
        )
        for k, v in verdicts.items()
    }
    assert vs.suite_verdict(suite, rebuilt) == vs.suite_verdict(suite, verdicts)
    assert all(not (isinstance(x, float) and math.isnan(x)) for v in rebuilt.values() for x in v.metrics.values())
