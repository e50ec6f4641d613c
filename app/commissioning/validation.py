"""Hardware validation at the site: suites as data (workflows/validation/*.toml) and pure verdicts over the
result files a field engineer uploads — `dcgmi diag -j` JSON, nccl-tests `all_reduce_perf` stdout, perftest
`ib_write_bw` stdout, and the small throughput JSON our benchmark runner writes.

A suite names its steps; each step has one kind and the thresholds of that kind, either one number for
every spec or a table by spec code (`[steps.min_busbw_gbps]` / `HGX-H200-40 = 400.0`). Suite faults are
`file:line: message`, like every definition file. A result file that is not what the step takes raises
ResultFileError (HTTP 400 through InvalidInput); a file that is what it claims but falls short is a "fail"
verdict whose reasons state the measured and the required numbers.

Pure: no I/O except `load_suites`/`check_suites` reading the suite files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from app.burnin.dcgm import parse_dcgm
from app.core.definitions import TOML_FAULTS, WORKFLOWS_DIR, DefinitionError, load_folder, locate, schema_fault
from app.core.errors import InvalidInput

__all__ = [
    "KINDS",
    "SUITES_DIR",
    "IbResult",
    "IbRow",
    "IbRun",
    "NcclPlace",
    "NcclResult",
    "NcclRow",
    "ResultFileError",
    "Step",
    "StepVerdict",
    "SuiteVerdict",
    "ThroughputResult",
    "ValidationSuite",
    "check_suites",
    "decode_suite",
    "describe_thresholds",
    "judge_step",
    "load_suites",
    "parse_ib_write_bw",
    "parse_nccl",
    "parse_throughput",
    "suite_for",
    "suite_verdict",
]

SUITES_DIR: Final = WORKFLOWS_DIR / "validation"

Kind = Literal["dcgm", "nccl_all_reduce", "ib_write_bw", "throughput"]
KINDS: Final[tuple[str, ...]] = ("dcgm", "nccl_all_reduce", "ib_write_bw", "throughput")

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$")]
SpecCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]  # as app/factory/schemas.py
Positive = Annotated[float, msgspec.Meta(gt=0)]
# A threshold: one number for every spec the suite applies to, or a table by spec code.
PerSpec = Positive | dict[str, Positive]


class ResultFileError(InvalidInput, ValueError):
    """A result file that is not what the step takes (wrong tool, truncated, malformed). An InvalidInput, so
    the API answers 400 with `detail` (and `line` where one helps) without mapping it itself."""


# --- the suite -----------------------------------------------------------------------------------------


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    title: str
    kind: Kind
    min_level: Annotated[int, msgspec.Meta(ge=1, le=4)] = 3  # dcgm: the `dcgmi diag -r` level required
    min_busbw_gbps: PerSpec | None = None  # nccl_all_reduce: bus bandwidth, GB/s
    min_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1 << 30  # nccl_all_reduce: judge at the largest size >= this
    min_bw_gbps: PerSpec | None = None  # ib_write_bw: BW average at the largest message size, Gb/s
    metric: str = ""  # throughput: the metric the runner reports ("tokens_per_second")
    unit: str = ""  # throughput: the unit the baselines are in ("tok/s"); the result must say the same
    baseline: dict[str, Positive] = {}  # throughput: the owner's site-acceptance baseline by spec code
    min_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.90  # throughput: measured / baseline
    gpus: Annotated[int, msgspec.Meta(ge=1)] | None = None  # throughput: the GPU count the baseline is for
    required: bool = True
    guidance: str = ""  # how to produce the file, shown next to the upload

    def threshold(self, spec_code: str) -> float | None:
        """The number this step holds a module of `spec_code` to: the DCGM level, the minimum bandwidth, or
        the throughput baseline; None where the suite sets none."""
        if self.kind == "dcgm":
            return float(self.min_level)
        if self.kind == "throughput":
            return self.baseline.get(spec_code)
        value = self.min_busbw_gbps if self.kind == "nccl_all_reduce" else self.min_bw_gbps
        return value.get(spec_code) if isinstance(value, dict) else value


class ValidationSuite(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    version: Annotated[str, msgspec.Meta(min_length=1)]
    title: str
    applies_to: tuple[SpecCode, ...]
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


# The fields each kind reads (besides id, title, kind, required, guidance): a field of another kind in a
# step is a misplaced threshold, and it would otherwise be ignored in silence.
FIELDS_OF_KIND: Final[dict[str, frozenset[str]]] = {
    "dcgm": frozenset({"min_level"}),
    "nccl_all_reduce": frozenset({"min_busbw_gbps", "min_bytes"}),
    "ib_write_bw": frozenset({"min_bw_gbps"}),
    "throughput": frozenset({"metric", "unit", "baseline", "min_ratio", "gpus"}),
}
_KIND_FIELDS: Final = frozenset().union(*FIELDS_OF_KIND.values())
# The threshold a kind cannot do without, for every spec the suite applies to.
NEEDED: Final[dict[str, str]] = {
    "nccl_all_reduce": "min_busbw_gbps",
    "ib_write_bw": "min_bw_gbps",
    "throughput": "baseline",
}

_STEP_HEADER = re.compile(r"^\s*\[\[\s*steps\s*\]\]")
_ANY_HEADER = re.compile(r"^\s*\[")


def _step_span(lines: list[str], index: int) -> tuple[int, int] | None:
    """0-based [start, end) of the index-th `[[steps]]` table with its `[steps.x]` sub-tables."""
    starts = [n for n, line in enumerate(lines) if _STEP_HEADER.match(line)]
    if index >= len(starts):
        return None
    start = starts[index]
    end = next(
        (
            n
            for n in range(start + 1, len(lines))
            if _ANY_HEADER.match(lines[n]) and not re.match(r"^\s*\[\s*steps\.", lines[n])
        ),
        len(lines),
    )
    return start, end


def _step_line(text: str, index: int, field: str | None = None, key: str | None = None) -> int:
    """The 1-based line of step `index`, of its `field` (a `field =` line or a `[steps.field]` table) and of
    `key` inside that table. `locate` cannot do this: it finds `[steps.field]` tables anywhere in the file,
    not under the step the path names."""
    lines = text.splitlines()
    span = _step_span(lines, index)
    if span is None:
        return locate(text, f"$.steps[{index}]" + (f".{field}" if field else ""))
    start, end = span
    if field is None:
        return start + 1
    table = next(
        (n for n in range(start + 1, end) if re.match(rf"^\s*\[\s*steps\.{re.escape(field)}\s*\]", lines[n])), None
    )
    if table is not None:
        if key is not None:
            stop = next((n for n in range(table + 1, end) if _ANY_HEADER.match(lines[n])), end)
            pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
            found = next((n for n in range(table + 1, stop) if pattern.match(lines[n])), None)
            if found is not None:
                return found + 1
        return table + 1
    own = next((n for n in range(start + 1, end) if _ANY_HEADER.match(lines[n])), end)  # the step's own keys
    found = next((n for n in range(start + 1, own) if re.match(rf"^\s*{re.escape(field)}\s*=", lines[n])), None)
    return found + 1 if found is not None else start + 1


def _schema_fault(source: str, text: str, exc: Exception) -> str:
    """schema_fault, with faults inside a step placed by the step-aware locator."""
    message = str(exc)
    path = re.search(r"at `\$\.steps\[(\d+)\](?:\.(\w+))?([^`]*)`", message)
    if path is None or "(at line" in message:
        return schema_fault(source, text, exc)
    index = int(path.group(1))
    unknown = re.search(r"unknown field `([^`]+)`", message)
    field = unknown.group(1) if unknown else path.group(2)
    key = None
    if path.group(3) == "[...]" and field:  # msgspec does not name the key of a bad table value: find it
        table = msgspec.toml.decode(text.encode())["steps"][index].get(field, {})
        key = next(
            (k for k, v in table.items() if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0), None
        )
    return f"{source}:{_step_line(text, index, field, key)}: {message.split(' - at `')[0]}"


def decode_suite(text: bytes, source: str) -> ValidationSuite:
    """Decode and check one suite file; raises DefinitionError listing every fault as file:line."""
    decoded = text.decode("utf-8", errors="replace")
    try:
        suite = msgspec.toml.decode(text, type=ValidationSuite)
    except TOML_FAULTS as exc:
        raise DefinitionError([_schema_fault(source, decoded, exc)]) from exc
    raw = msgspec.toml.decode(text)  # to tell a field written in the file from a default
    faults: list[str] = []

    def fault(line: int, message: str) -> None:
        faults.append(f"{source}:{line}: {message}")

    if not suite.applies_to:
        fault(locate(decoded, "$.applies_to"), "applies_to names no spec code: the suite would apply to no module")
    for i, code in enumerate(suite.applies_to):
        if suite.applies_to.index(code) != i:
            fault(locate(decoded, "$.applies_to"), f"spec {code} is listed twice in applies_to")
    if not suite.steps:
        fault(locate(decoded, "$.steps"), "the suite has no steps")
    ids = [s.id for s in suite.steps]
    for i, step in enumerate(suite.steps):
        written = set(raw["steps"][i]) if isinstance(raw.get("steps"), list) else set()
        if ids.index(step.id) != i:
            fault(_step_line(decoded, i, "id"), f"duplicate step id {step.id!r}")
        for name in sorted((written & _KIND_FIELDS) - FIELDS_OF_KIND[step.kind]):
            fault(_step_line(decoded, i, name), f"step {step.id!r}: {name} does not apply to a {step.kind} step")
        if step.kind == "throughput" and not step.metric:
            fault(_step_line(decoded, i, "kind"), f"step {step.id!r}: a throughput step names its metric")
        needed = NEEDED.get(step.kind)
        if needed is None:
            continue
        value = getattr(step, needed)
        if value is None or (value == {} and needed not in written):
            what = "one number, or a table by spec code" if needed != "baseline" else "a table by spec code"
            fault(_step_line(decoded, i, "kind"), f"step {step.id!r}: a {step.kind} step needs {needed} ({what})")
            continue
        table = value if isinstance(value, dict) else {}
        for code in suite.applies_to:
            if isinstance(value, dict) and code not in table:
                fault(
                    _step_line(decoded, i, needed),
                    f"step {step.id!r}: no {needed} for {code}, which the suite applies to",
                )
        for code in table:
            if code not in suite.applies_to:
                fault(
                    _step_line(decoded, i, needed, code),
                    f"step {step.id!r}: {needed} for {code}, which is not in applies_to",
                )
    if faults:
        raise DefinitionError(faults)
    return suite


def _load(directory: Path) -> tuple[dict[str, tuple[ValidationSuite, str]], list[str]]:
    return load_folder(directory, decode_suite, key="id", item="suite", plural="validation suites", extra=_specs_taken)


def _specs_taken(
    suite: ValidationSuite, source: str, text: str, loaded: dict[str, tuple[ValidationSuite, str]]
) -> list[str]:
    # Two suites for one spec would make the suite of a module a matter of file order.
    return [
        f"{source}:{locate(text, '$.applies_to')}: spec {code} already has a suite in {other}"
        for code in suite.applies_to
        if (other := next((src for s, src in loaded.values() if code in s.applies_to), None)) is not None
    ]


def load_suites(directory: Path = SUITES_DIR) -> dict[str, ValidationSuite]:
    """Every suite in `directory` by id; raises DefinitionError with the faults of all files."""
    suites, faults = _load(directory)
    if faults:
        raise DefinitionError(faults)
    return {suite_id: suite for suite_id, (suite, _) in suites.items()}


def check_suites(directory: Path = SUITES_DIR) -> tuple[list[str], list[str]]:
    """(ok lines, fault lines) for `afm workflows check`, like app.core.definitions.check_all."""
    suites, faults = _load(directory)
    ok = [
        f"{source}: suite {s.id} version {s.version}, {len(s.steps)} steps, {len(s.applies_to)} specs"
        for s, source in suites.values()
    ]
    return ok, faults


def suite_for(suites: Mapping[str, ValidationSuite], spec_code: str) -> ValidationSuite:
    """The one suite that applies to a spec; ValueError when none or several do."""
    found = [s for s in suites.values() if spec_code in s.applies_to]
    if not found:
        raise ValueError(f"no validation suite applies to spec {spec_code}")
    if len(found) > 1:
        raise ValueError(f"several validation suites apply to spec {spec_code}: {', '.join(s.id for s in found)}")
    return found[0]


# --- formatting numbers in reasons --------------------------------------------------------------------


def _num(value: float, digits: int = 2) -> str:
    """12345.6 -> "12,345.6", 10000.0 -> "10,000"."""
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _size(size: int) -> str:
    """Message sizes as nccl-tests and perftest step through them: 8589934592 -> "8 GiB"."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def _text(data: bytes, what: str) -> str:
    if b"\x00" in data[:4096]:
        raise ResultFileError(f"{what}: a binary file, not the text output of the tool")
    return data.decode("utf-8", errors="replace")


def _number(token: str, where: str, line: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise ResultFileError(f"{where} line {line}: {token!r} is not a number", line=line) from None
    return value


# --- nccl-tests -----------------------------------------------------------------------------------------


class NcclPlace(msgspec.Struct, frozen=True):
    """One of a row's two measurements (out-of-place or in-place)."""

    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    wrong: int | None  # #wrong: elements that failed the check; None for "N/A" (not checked) or an old file
    max_error: float | None = None  # nccl-tests before 2.13 printed the largest error instead of #wrong


class NcclRow(msgspec.Struct, frozen=True):
    size: int  # bytes
    count: int  # elements
    type: str
    redop: str
    root: int | None  # absent before nccl-tests 2.13
    out_of_place: NcclPlace
    in_place: NcclPlace | None  # None where the header has one measurement group
    line: int


class NcclResult(msgspec.Struct, frozen=True):
    rows: tuple[NcclRow, ...]
    collective: str | None  # "all_reduce_perf" where the file says (nccl-tests >= 2.14)
    version: str | None
    ranks: int  # "#  Rank ..." lines: one per GPU taking part
    devices: tuple[str, ...]  # the GPU model of each rank
    hosts: tuple[str, ...]
    gpus_per_process: int | None  # nGpus (-g)
    validation: bool | None  # the `validation:` flag (-c); off means #wrong is N/A
    out_of_bounds: int | None  # "# Out of bounds values : N OK|FAILED"; None when the run did not finish
    avg_busbw_gbps: float | None  # "# Avg bus bandwidth : X"

    def largest(self, min_bytes: int = 1) -> NcclRow | None:
        """The row to judge: at the largest size measured (the worst one if the size ran more than once,
        e.g. with `-d all`), None if no size reaches `min_bytes`."""
        if not self.rows:
            return None
        size = max(r.size for r in self.rows)
        if size < min_bytes:
            return None
        return min((r for r in self.rows if r.size == size), key=lambda r: r.out_of_place.busbw_gbps)


# mpirun --tag-output prefixes every line of every rank: "[1,0]<stdout>:".
_MPI_TAG = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:")
_RANK = re.compile(
    r"^#\s*Rank\s+\d+\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^\]]*\]\s+(.+?)\s*$"
)
_WRONG_HEADS: Final = ("#wrong", "wrong", "error")


def _nccl_header(tokens: list[str], line: int) -> tuple[list[str], list[str]]:
    """(leading column names, the check column of each measurement group) of a header row such as
    `size count type redop root time algbw busbw #wrong time algbw busbw #wrong` (nccl-tests >= 2.13) or
    `size count type redop time algbw busbw error time algbw busbw error` (older)."""
    if "time" not in tokens:
        raise ResultFileError(f"nccl-tests line {line}: a column header without a time column", line=line)
    lead = tokens[: tokens.index("time")]
    rest = tokens[len(lead) :]
    groups = len(rest) // 4
    ok = lead[:3] == ["size", "count", "type"] and set(lead[3:]) <= {"redop", "root"} and len(rest) % 4 == 0
    for g in range(groups):
        ok = ok and rest[4 * g : 4 * g + 3] == ["time", "algbw", "busbw"] and rest[4 * g + 3] in _WRONG_HEADS
    if not ok or groups not in (1, 2):
        raise ResultFileError(f"nccl-tests line {line}: unrecognised column header {' '.join(tokens)!r}", line=line)
    return lead, [rest[4 * g + 3] for g in range(groups)]


def parse_nccl(text: str) -> NcclResult:
    """Read the stdout of nccl-tests `all_reduce_perf` (e.g. `-b 8 -e 8G -f 2 -g 8`).

    Layouts read, as published outputs show them: nccl-tests >= 2.13 with `redop root` and `#wrong` columns
    (lessizzmore/create-a3mega-ztan-fork `ztan-NCCL-test-result`, H100 2 x 8 GPUs; skypilot-org/skypilot
    `examples/nebius_infiniband/README.md`, H200), "N/A" in #wrong where a measurement is not checked
    (an A100 `sendrecv_perf` capture in the same layout), and older files with `redop` but no `root` and a
    max `error` per measurement (rccl-tests / nccl-tests 2.10 outputs quoted in aws-parallelcluster's NCCL
    test). NCCL INFO lines between rows and mpirun's `[1,0]<stdout>:` tags are skipped.
    """
    rows: list[NcclRow] = []
    ranks: list[tuple[str, str]] = []
    collective = version = None
    gpus_per_process: int | None = None
    validation: bool | None = None
    out_of_bounds: int | None = None
    avg: float | None = None
    header: tuple[list[str], list[str], int] | None = None  # (lead columns, check columns, line)
    for n, original in enumerate(text.splitlines(), 1):
        line = _MPI_TAG.sub("", original).strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            tokens = body.split()
            if tokens[:2] == ["size", "count"]:
                lead, checks = _nccl_header(tokens, n)
                header = (lead, checks, n)
            elif m := re.search(r"Collective test (?:starting|concluded):\s*(\S+)", body):
                if m.group(1) != "all_reduce_perf":  # one test of several in the file is enough to refuse
                    raise ResultFileError(
                        f"nccl-tests line {n}: this is the output of {m.group(1)}, not all_reduce_perf", line=n
                    )
                collective = m.group(1)
            elif m := re.search(r"nccl-tests version\s+(\S+)", body):
                version = m.group(1)
            elif m := _RANK.match(line):
                ranks.append((m.group(1), m.group(2)))
            elif m := re.search(r"Out of bounds values\s*:\s*(\d+)", body):
                out_of_bounds = int(m.group(1))
            elif m := re.search(r"Avg bus bandwidth\s*:\s*(\S+)", body):
                try:
                    avg = float(m.group(1))
                except ValueError:
                    avg = None
                avg = avg if avg is not None and math.isfinite(avg) else None
            if m := re.search(r"nGpus:?\s*(\d+)", body):
                gpus_per_process = int(m.group(1))
            if m := re.search(r"validation:?\s*(\d+)", body):
                validation = m.group(1) != "0"
            continue
        tokens = line.split()
        if header is None or not tokens[0].isdigit():
            continue  # NCCL INFO/WARN lines, the command line, anything before the table
        lead, checks, at = header
        expected = len(lead) + 4 * len(checks)
        if len(tokens) != expected:
            raise ResultFileError(
                f"nccl-tests line {n}: {len(tokens)} columns, the header at line {at} has {expected}", line=n
            )
        named = dict(zip(lead, tokens, strict=False))
        places: list[NcclPlace] = []
        for g, check in enumerate(checks):
            time, algbw, busbw, wrong = tokens[len(lead) + 4 * g : len(lead) + 4 * g + 4]
            checked = wrong.upper() != "N/A"
            if check != "error" and checked and not wrong.isdigit():
                raise ResultFileError(f"nccl-tests line {n}: #wrong {wrong!r} is not a count", line=n)
            places.append(
                NcclPlace(
                    time_us=_number(time, "nccl-tests", n),
                    algbw_gbps=_number(algbw, "nccl-tests", n),
                    busbw_gbps=_number(busbw, "nccl-tests", n),
                    wrong=int(wrong) if check != "error" and checked else None,
                    max_error=_number(wrong, "nccl-tests", n) if check == "error" and checked else None,
                )
            )
        root = named.get("root")
        if root is not None and not re.fullmatch(r"-?\d+", root):
            raise ResultFileError(f"nccl-tests line {n}: root {root!r} is not a number", line=n)
        if not named["count"].isdigit():
            raise ResultFileError(f"nccl-tests line {n}: count {named['count']!r} is not a number", line=n)
        rows.append(
            NcclRow(
                size=int(named["size"]),
                count=int(named["count"]),
                type=named["type"],
                redop=named.get("redop", ""),
                root=int(root) if root is not None else None,
                out_of_place=places[0],
                in_place=places[1] if len(places) == 2 else None,
                line=n,
            )
        )
    if header is None:
        raise ResultFileError(
            "not nccl-tests output: no result table header ('#  size  count  type  redop ... busbw') found"
        )
    if not rows:
        at = header[2]
        raise ResultFileError(f"nccl-tests line {at}: the result table has no rows", line=at)
    return NcclResult(
        rows=tuple(rows),
        collective=collective,
        version=version,
        ranks=len(ranks),
        devices=tuple(d for _, d in ranks),
        hosts=tuple(dict.fromkeys(h for h, _ in ranks)),
        gpus_per_process=gpus_per_process,
        validation=validation,
        out_of_bounds=out_of_bounds,
        avg_busbw_gbps=avg,
    )


# --- perftest ib_write_bw -------------------------------------------------------------------------------

# perftest divides bytes by 0x100000 for its MB/sec (MiB/sec in newer releases) and by 125,000,000 for
# Gb/sec (linux-rdma/perftest src/perftest_resources.c, `format_factor`), so 1 MB/sec = 8 * 2**20 / 1e9 Gb/s.
MB_PER_SEC_TO_GBPS: Final = 8 * 0x100000 / 1e9


class IbRow(msgspec.Struct, frozen=True):
    bytes: int
    iterations: int
    bw_peak_gbps: float  # 0.00 in a run by duration (-D), which measures no peak
    bw_avg_gbps: float
    msg_rate_mpps: float | None
    line: int


class IbRun(msgspec.Struct, frozen=True):
    """One ib_write_bw run: its settings block and its table. A file may hold several (one per NIC)."""

    device: str | None
    link_type: str | None  # IB | Ethernet (RoCE)
    transport: str | None
    connection: str | None  # RC | UC | ...
    mtu: str | None
    qps: int | None
    bidirectional: bool  # -b: the table is the sum of both directions
    unit: str  # the unit printed: Gb/sec, MB/sec or MiB/sec (values are converted to Gb/s)
    rows: tuple[IbRow, ...]

    def largest(self) -> IbRow:
        return max(self.rows, key=lambda r: r.bytes)


class IbResult(msgspec.Struct, frozen=True):
    runs: tuple[IbRun, ...]

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(r.device or "?" for r in self.runs)


_IB_TITLE = re.compile(r"^\s*(\S.*?)\s+(BW|Latency) Test\s*$")
_IB_SETTING = re.compile(r"([A-Za-z][\w .*\-]*?)\s+:\s+(\S+)")
_IB_SETTINGS: Final = {
    "Device": "device",
    "Link type": "link_type",
    "Transport type": "transport",
    "Connection type": "connection",
    "Mtu": "mtu",
    "Number of qps": "qps",
}


def parse_ib_write_bw(text: str) -> IbResult:
    """Read perftest `ib_write_bw` output (client or server side; --report_gbits or the default MB/sec).

    The table is perftest's RESULT_FMT(_G): `#bytes  #iterations  BW peak[Gb/sec]  BW average[Gb/sec]
    MsgRate[Mpps]` (columns found by name, so the QoS variant's `#sl` column is skipped), rows in its
    REPORT_FMT; settings are the `Key : value` lines above it (Device, Link type, Mtu, ...). Seen in
    published outputs: skypilot-org/skypilot `examples/nebius_infiniband/README.md` (an NDR send_bw run,
    353.53 Gb/s), and `-a` tables from 2 B to 8 MiB. Several runs one after another (one per NIC) are read
    as several runs; warnings printed between rows ("Conflicting CPU frequency values") are skipped.
    """
    runs: list[IbRun] = []
    settings: dict[str, str] = {}
    bidirectional = False
    table: _IbTable | None = None
    rows: list[IbRow] = []

    def close() -> None:
        nonlocal rows, table, settings, bidirectional
        if rows and table is not None:
            qps = settings.get("qps")
            runs.append(
                IbRun(
                    device=settings.get("device"),
                    link_type=settings.get("link_type"),
                    transport=settings.get("transport"),
                    connection=settings.get("connection"),
                    mtu=settings.get("mtu"),
                    qps=int(qps) if qps and qps.isdigit() else None,
                    bidirectional=bidirectional,
                    unit=table.unit,
                    rows=tuple(rows),
                )
            )
            settings, bidirectional = {}, False
        rows, table = [], None

    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if m := _IB_TITLE.match(line):
            close()
            title = f"{m.group(1)} {m.group(2)} Test"
            if m.group(2) != "BW" or not m.group(1).startswith("RDMA_Write"):
                raise ResultFileError(
                    f"ib_write_bw line {n}: this is the output of {title!r}, not ib_write_bw (RDMA_Write BW Test)",
                    line=n,
                )
            settings, bidirectional = {}, "Bidirectional" in m.group(1)
        elif stripped.startswith("#bytes"):
            if rows:
                close()
            table = _IbTable.of(stripped, n)  # perftest may print the header twice (server and client)
        elif table is None:
            for key, value in _IB_SETTING.findall(line):
                if (name := _IB_SETTINGS.get(key.strip())) is not None:
                    settings[name] = value
        elif stripped.startswith("---"):
            close()
        elif stripped[:1].isdigit():  # else a warning printed inside the table
            rows.append(table.row(stripped.split(), n))
    close()
    if not runs:
        raise ResultFileError(
            "not ib_write_bw output: no result table ('#bytes  #iterations  BW peak[Gb/sec]  BW average[Gb/sec]')"
        )
    return IbResult(runs=tuple(runs))


class _IbTable(msgspec.Struct, frozen=True):
    """Where the columns of one perftest table are, and its unit."""

    columns: int
    size: int
    iterations: int
    peak: int
    average: int
    rate: int | None
    unit: str

    @classmethod
    def of(cls, header: str, line: int) -> _IbTable:
        names = re.split(r"\s{2,}", header)  # column titles hold single spaces ("BW peak[Gb/sec]")
        peak = next((i for i, c in enumerate(names) if c.startswith("BW peak[")), None)
        average = next((i for i, c in enumerate(names) if c.startswith("BW average[")), None)
        if peak is None or average is None or "#iterations" not in names:
            raise ResultFileError(f"ib_write_bw line {line}: unrecognised table header {header!r}", line=line)
        unit = names[average][len("BW average[") : -1]
        if unit not in ("Gb/sec", "MB/sec", "MiB/sec"):
            raise ResultFileError(f"ib_write_bw line {line}: unknown bandwidth unit {unit!r}", line=line)
        return cls(
            columns=len(names),
            size=names.index("#bytes"),
            iterations=names.index("#iterations"),
            peak=peak,
            average=average,
            rate=next((i for i, c in enumerate(names) if c.startswith("MsgRate")), None),
            unit=unit,
        )

    def row(self, tokens: list[str], line: int) -> IbRow:
        if len(tokens) < self.columns:
            raise ResultFileError(
                f"ib_write_bw line {line}: {len(tokens)} columns, the table header has {self.columns}", line=line
            )
        factor = 1.0 if self.unit == "Gb/sec" else MB_PER_SEC_TO_GBPS
        iterations = tokens[self.iterations]
        if not iterations.isdigit():
            raise ResultFileError(f"ib_write_bw line {line}: #iterations {iterations!r} is not a count", line=line)
        return IbRow(
            bytes=int(tokens[self.size]),
            iterations=int(iterations),
            bw_peak_gbps=round(_number(tokens[self.peak], "ib_write_bw", line) * factor, 2),
            bw_avg_gbps=round(_number(tokens[self.average], "ib_write_bw", line) * factor, 2),
            msg_rate_mpps=_number(tokens[self.rate], "ib_write_bw", line) if self.rate is not None else None,
            line=line,
        )


# --- the benchmark runner's throughput JSON --------------------------------------------------------------


class ThroughputResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    metric: Annotated[str, msgspec.Meta(min_length=1)]  # "tokens_per_second"
    value: Annotated[float, msgspec.Meta(ge=0)]
    unit: Annotated[str, msgspec.Meta(min_length=1)]  # "tok/s"
    benchmark: str  # what ran: model, engine, input/output lengths
    gpus: Annotated[int, msgspec.Meta(ge=1)]


def parse_throughput(data: bytes) -> ThroughputResult:
    """The runner's JSON, strictly: every field, no others, numbers as numbers."""
    if not data.strip():
        raise ResultFileError("throughput JSON: the file is empty")
    try:
        return msgspec.json.decode(data, type=ThroughputResult)
    except msgspec.ValidationError as exc:
        raise ResultFileError(f"throughput JSON: {exc}") from None
    except msgspec.DecodeError as exc:
        found = re.search(r"\(byte (\d+)\)", str(exc))
        offset = min(int(found.group(1)), len(data)) if found else len(data)
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        reason = str(exc).split(" (byte")[0]
        raise ResultFileError(f"throughput JSON line {line}, column {column}: {reason}", line=line) from None


# --- verdicts -------------------------------------------------------------------------------------------


class StepVerdict(msgspec.Struct, frozen=True):
    step: str
    kind: str
    verdict: Literal["pass", "fail"]
    reasons: tuple[str, ...]  # a fail's reasons; on a pass, what was measured and any warnings
    metrics: dict[str, float | int | str]


class SuiteVerdict(msgspec.Struct, frozen=True):
    verdict: Literal["pass", "fail", "incomplete"]
    reasons: tuple[str, ...]
    failed: tuple[str, ...] = ()  # required steps that failed
    missing: tuple[str, ...] = ()  # required steps without a result


def _judge_dcgm(step: Step, data: bytes) -> StepVerdict:
    try:
        result = parse_dcgm(data)
    except InvalidInput as exc:
        raise ResultFileError(exc.detail, **exc.extra) from None
    fails: list[str] = []
    notes: list[str] = []
    if result.level is None:
        fails.append(f"the DCGM run level is unknown (level {step.min_level} required)")
    elif result.level < step.min_level:
        fails.append(
            f"DCGM ran at level {result.level}; level {step.min_level} is required (dcgmi diag -r {step.min_level})"
        )
    for test in result.tests:
        on = f" on GPU {', '.join(map(str, test.gpus))}" if test.gpus else ""
        detail = f": {test.messages[0]}" if test.messages else ""
        if test.status == "fail":
            fails.append(f"DCGM {test.name} failed{on}{detail}")
        elif test.status == "warn":
            notes.append(f"warning: DCGM {test.name} warned{on}{detail}")
    ran = [t for t in result.tests if t.status in ("pass", "warn", "fail")]
    metrics: dict[str, float | int | str] = {
        "required_level": step.min_level,
        "tests": len(ran),
        "failed": sum(t.status == "fail" for t in result.tests),
        "warned": sum(t.status == "warn" for t in result.tests),
    }
    if result.level is not None:
        metrics["level"] = result.level
    if result.version:
        metrics["dcgm_version"] = result.version
    if fails:
        return StepVerdict(step.id, step.kind, "fail", tuple(fails + notes), metrics)
    summary = f"DCGM level {result.level}: {len(ran)} tests passed"
    return StepVerdict(step.id, step.kind, "pass", (summary, *notes), metrics)


def _judge_nccl(step: Step, spec_code: str, data: bytes) -> StepVerdict:
    result = parse_nccl(_text(data, "nccl-tests"))
    required = step.threshold(spec_code)
    assert required is not None  # decode_suite refuses a suite without it
    fails: list[str] = []
    metrics: dict[str, float | int | str] = {"required_busbw_gbps": required, "ranks": result.ranks}
    if result.avg_busbw_gbps is not None:
        metrics["avg_busbw_gbps"] = result.avg_busbw_gbps
    row = result.largest(step.min_bytes)
    biggest = max(r.size for r in result.rows)
    if row is None:
        fails.append(
            f"the largest message size is {_size(biggest)}; the check needs {_size(step.min_bytes)} or more "
            "(run all_reduce_perf with -e 8G)"
        )
    else:
        place = row.out_of_place
        metrics |= {"size_bytes": row.size, "busbw_gbps": place.busbw_gbps, "algbw_gbps": place.algbw_gbps}
        if place.busbw_gbps < required:
            fails.append(
                f"bus bandwidth {_num(place.busbw_gbps, 2)} GB/s at {_size(row.size)} is below the required "
                f"{_num(required)} GB/s"
            )
    wrong = [
        (r, label, p.wrong)
        for r in result.rows
        for label, p in (("out-of-place", r.out_of_place), ("in-place", r.in_place))
        if p is not None and p.wrong
    ]
    for r, label, count in wrong[:3]:
        fails.append(f"{count} wrong values at {_size(r.size)} {label} (nccl-tests line {r.line})")
    if len(wrong) > 3:
        fails.append(f"wrong values at {len(wrong) - 3} more sizes")
    if result.out_of_bounds is None:
        fails.append("no 'Out of bounds values' line: the run did not finish")
    elif result.out_of_bounds:
        fails.append(f"{result.out_of_bounds} out-of-bounds values reported: the results were wrong")
    checked = [p for r in result.rows for p in (r.out_of_place, r.in_place) if p is not None and p.wrong is not None]
    old_format = any(r.out_of_place.max_error is not None for r in result.rows)
    if not checked and not old_format:
        fails.append("no result was checked (#wrong is N/A everywhere): run without -c 0")
    if result.out_of_bounds is not None:
        metrics["out_of_bounds"] = result.out_of_bounds
    if fails:
        return StepVerdict(step.id, step.kind, "fail", tuple(fails), metrics)
    assert row is not None
    summary = (
        f"bus bandwidth {_num(row.out_of_place.busbw_gbps, 2)} GB/s at {_size(row.size)} "
        f"(required {_num(required)} GB/s), no wrong values"
    )
    return StepVerdict(step.id, step.kind, "pass", (summary,), metrics)


def _judge_ib(step: Step, spec_code: str, data: bytes) -> StepVerdict:
    result = parse_ib_write_bw(_text(data, "ib_write_bw"))
    required = step.threshold(spec_code)
    assert required is not None  # decode_suite refuses a suite without it
    fails: list[str] = []
    worst: tuple[float, IbRun, IbRow] | None = None
    for run in result.runs:
        row = run.largest()
        name = run.device or "the device"
        if run.bidirectional:
            fails.append(f"{name}: a bidirectional run (-b) sums both directions; the check needs a one-way run")
        if row.bw_avg_gbps < required:
            fails.append(
                f"{name}: average {_num(row.bw_avg_gbps, 2)} Gb/s at {_size(row.bytes)} is below the required "
                f"{_num(required)} Gb/s"
            )
        if worst is None or row.bw_avg_gbps < worst[0]:
            worst = (row.bw_avg_gbps, run, row)
    assert worst is not None
    metrics: dict[str, float | int | str] = {
        "bw_avg_gbps": worst[0],
        "size_bytes": worst[2].bytes,
        "required_bw_gbps": required,
        "runs": len(result.runs),
        "devices": ", ".join(result.devices),
    }
    if worst[1].link_type:
        metrics["link_type"] = worst[1].link_type
    if fails:
        return StepVerdict(step.id, step.kind, "fail", tuple(fails), metrics)
    lowest = f"lowest average {_num(worst[0], 2)} Gb/s ({worst[1].device or 'device'}, {_size(worst[2].bytes)})"
    summary = f"{len(result.runs)} run(s), {lowest}, required {_num(required)} Gb/s"
    return StepVerdict(step.id, step.kind, "pass", (summary,), metrics)


def _judge_throughput(step: Step, spec_code: str, data: bytes) -> StepVerdict:
    result = parse_throughput(data)
    if result.metric != step.metric:
        raise ResultFileError(f"throughput JSON: the file measures {result.metric!r}; this step takes {step.metric!r}")
    if step.unit and result.unit != step.unit:
        raise ResultFileError(f"throughput JSON: the value is in {result.unit!r}; the baseline is in {step.unit!r}")
    baseline = step.threshold(spec_code)
    assert baseline is not None  # decode_suite refuses a suite without it
    ratio = result.value / baseline
    unit = result.unit
    metrics: dict[str, float | int | str] = {
        "value": result.value,
        "unit": unit,
        "baseline": baseline,
        "ratio": round(ratio, 4),
        "min_ratio": step.min_ratio,
        "gpus": result.gpus,
        "benchmark": result.benchmark,
    }
    fails: list[str] = []
    if step.gpus is not None and result.gpus != step.gpus:
        fails.append(f"the benchmark ran on {result.gpus} GPUs; the baseline is for {step.gpus}")
    line = (
        f"throughput {_num(result.value)} {unit} is {_ratio(ratio, step.min_ratio)} of the {spec_code} baseline "
        f"{_num(baseline)} {unit} (minimum {step.min_ratio:.2f})"
    )
    if ratio < step.min_ratio:
        fails.append(line)
    if fails:
        return StepVerdict(step.id, step.kind, "fail", tuple(fails), metrics)
    return StepVerdict(step.id, step.kind, "pass", (line,), metrics)


def _ratio(ratio: float, minimum: float) -> str:
    """Two decimals, or as many more as it takes not to print a ratio below the minimum as equal to it."""
    for digits in range(2, 7):
        text = f"{ratio:.{digits}f}"
        if (float(text) < minimum) == (ratio < minimum):
            return text
    return f"{ratio:.6f}"


def judge_step(step: Step, spec_code: str, data: bytes, suite: ValidationSuite) -> StepVerdict:
    """The verdict of one result file for one step of `suite`, for a module of `spec_code`. Raises
    ResultFileError for a file that is not what the step takes, ValueError where the suite does not apply
    to the spec or does not hold the step."""
    if spec_code not in suite.applies_to:
        raise ValueError(f"suite {suite.id} does not apply to spec {spec_code}")
    if step not in suite.steps:
        raise ValueError(f"suite {suite.id} has no step {step.id!r}")
    if step.kind == "dcgm":
        return _judge_dcgm(step, data)
    if step.kind == "nccl_all_reduce":
        return _judge_nccl(step, spec_code, data)
    if step.kind == "ib_write_bw":
        return _judge_ib(step, spec_code, data)
    return _judge_throughput(step, spec_code, data)


def suite_verdict(suite: ValidationSuite, verdicts: Mapping[str, StepVerdict]) -> SuiteVerdict:
    """fail when a required step failed; else incomplete while a required step has no result; else pass.
    An optional step's failure is reported but fails nothing; verdicts of steps the suite lacks are ignored."""
    reasons: list[str] = []
    failed: list[str] = []
    missing: list[str] = []
    for step in suite.steps:
        verdict = verdicts.get(step.id)
        if verdict is None:
            if step.required:
                missing.append(step.id)
            continue
        if verdict.verdict != "fail":
            continue
        if step.required:
            failed.append(step.id)
        prefix = f"{step.id}" if step.required else f"{step.id} (optional)"
        reasons += [f"{prefix}: {reason}" for reason in verdict.reasons if not reason.startswith("warning: ")]
    if missing:
        reasons.append(f"no result yet for {', '.join(missing)}")
    state: Literal["pass", "fail", "incomplete"] = "fail" if failed else "incomplete" if missing else "pass"
    return SuiteVerdict(state, tuple(reasons), tuple(failed), tuple(missing))


def describe_thresholds(suite: ValidationSuite, spec_code: str) -> dict[str, str]:
    """What each step holds a module of `spec_code` to, in words (for pages and the start of a run)."""
    out: dict[str, str] = {}
    for step in suite.steps:
        limit = step.threshold(spec_code)
        if step.kind == "dcgm":
            out[step.id] = f"dcgmi diag level {step.min_level} or higher, no failed test"
        elif limit is None:
            out[step.id] = "no threshold for this spec"
        elif step.kind == "nccl_all_reduce":
            out[step.id] = (
                f"bus bandwidth at least {_num(limit)} GB/s at {_size(step.min_bytes)} or more, no wrong values"
            )
        elif step.kind == "ib_write_bw":
            out[step.id] = f"BW average at least {_num(limit)} Gb/s at the largest message size, every run"
        else:
            out[step.id] = f"{step.metric} at least {step.min_ratio:.2f} of {_num(limit)} {step.unit}".rstrip()
    return out
