"""nvidia-smi burn-in telemetry: from `nvidia-smi --query-gpu=... --format=csv -l 1` bytes to a per-GPU summary.

The summary is made of mergeable accumulators (counts, maxima, a clock histogram, a down-sampled
series), so a run uploaded in chunks is summarised chunk by chunk and merged, and a 24 h capture is
read block by block without ever holding the whole table. Pure: bytes or a binary file in, values out.

Speed: pandas' C parser reads the stream itself, chunk by chunk, with every column as a categorical,
so each token is hashed once and we convert only a chunk's distinct values (a few thousand): units
stripped, enums mapped, timestamps parsed — then gathered back by code and reduced per GPU with numpy.
Validation is the same vectorised pass (a value that did not convert marks its line), and with one
row per line (blank lines kept) a row number is a line number, so the first fault is reported with
its exact line and column. Measured: faster than a plain `pandas.read_csv` of the same file, with a
fraction of its memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.errors import ParserError

from app.core.errors import InvalidInput

__all__ = [
    "ALIASES",
    "FIELDS",
    "LOAD_UTILIZATION_PCT",
    "MAX_SERIES_POINTS",
    "GpuSummary",
    "TelemetrySummary",
    "summarise_nvidia_smi",
]

MAX_SERIES_POINTS: Final = 720  # per GPU: one point every 2 min over 24 h, every 10 min over 72 h
LOAD_UTILIZATION_PCT: Final = 90.0  # a sample is "under load" from this utilization.gpu up
TIMESTAMP_FORMAT: Final = "%Y/%m/%d %H:%M:%S.%f"
# What nvidia-smi prints instead of a value; all of them mean "unknown", never 0.
MISSING: Final = frozenset(
    {
        "[N/A]",
        "N/A",
        "[Not Supported]",
        "[Unknown Error]",
        "[GPU is lost]",
        "[GPU requires reset]",
        "[Insufficient Permissions]",
        "[Not Found]",
    }
)
MAX_LINE_BYTES: Final = 1 << 20  # a "line" longer than this is not nvidia-smi output


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: str  # timestamp | index | text | number | yes_no | active
    unit: str | None = None  # as printed after values and in the header's " [unit]"


FIELDS: Final[dict[str, FieldSpec]] = {
    "timestamp": FieldSpec("timestamp"),
    "index": FieldSpec("index"),
    "uuid": FieldSpec("text"),
    "serial": FieldSpec("text"),
    "temperature.gpu": FieldSpec("number"),  # °C, printed without a unit
    "temperature.memory": FieldSpec("number"),
    "power.draw": FieldSpec("number", "W"),
    "power.limit": FieldSpec("number", "W"),
    "clocks.current.sm": FieldSpec("number", "MHz"),
    "clocks.current.memory": FieldSpec("number", "MHz"),
    "clocks.current.graphics": FieldSpec("number", "MHz"),
    "utilization.gpu": FieldSpec("number", "%"),
    "utilization.memory": FieldSpec("number", "%"),
    "memory.used": FieldSpec("number", "MiB"),
    "ecc.errors.corrected.volatile.total": FieldSpec("number"),
    "ecc.errors.uncorrected.volatile.total": FieldSpec("number"),
    "retired_pages.pending": FieldSpec("yes_no"),
    "remapped_rows.pending": FieldSpec("yes_no"),
    "remapped_rows.failure": FieldSpec("yes_no"),
    "clocks_event_reasons.hw_thermal_slowdown": FieldSpec("active"),
    "clocks_event_reasons.sw_thermal_slowdown": FieldSpec("active"),
    "clocks_event_reasons.hw_power_brake_slowdown": FieldSpec("active"),
    "pcie.link.gen.current": FieldSpec("number"),
    "pcie.link.width.current": FieldSpec("number"),
}
# nvidia-smi's short names; its own header prints the long ones, hand-made captures may not.
ALIASES: Final[dict[str, str]] = {
    "clocks.sm": "clocks.current.sm",
    "clocks.mem": "clocks.current.memory",
    "clocks.gr": "clocks.current.graphics",
}
THROTTLE_PREFIX: Final = "clocks_throttle_reasons."  # renamed clocks_event_reasons. in driver 535
EVENT_PREFIX: Final = "clocks_event_reasons."
_ENUMS: Final[dict[str, dict[str, float]]] = {
    "yes_no": {"Yes": 1.0, "No": 0.0},
    "active": {"Active": 1.0, "Not Active": 0.0},
}
_HEADER_FIELD = re.compile(r"(?P<name>[^\[\]]*?)\s*(?:\[(?P<unit>[^\]]*)\])?")
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


# ---------------------------------------------------------------------------------------------
# The summary: per-GPU accumulators that merge exactly.

SeriesPoint = tuple[float, float | None, float | None, float | None]  # (t_s, temp C, power W, SM MHz)


class GpuSummary(msgspec.Struct):
    """One GPU over (part of) a run. Every field merges exactly with the same GPU's summary of another chunk."""

    index: int
    uuid: str = ""
    serial: str = ""
    samples: int = 0
    first_s: float | None = None  # seconds since the run's first timestamp (TelemetrySummary.start)
    last_s: float | None = None
    max_temperature_c: float | None = None
    max_memory_temperature_c: float | None = None
    hw_thermal_slowdown_samples: int = 0
    sw_thermal_slowdown_samples: int = 0
    hw_power_brake_samples: int = 0
    slowdown_known_samples: int = 0  # samples where a slowdown reason column was present and not [N/A]
    max_ecc_corrected: float | None = None
    max_ecc_uncorrected: float | None = None
    retired_pages_pending: bool = False
    remapped_rows_pending: bool = False
    remapped_rows_failure: bool = False
    sm_clock_hist: dict[int, int] = {}  # MHz -> samples under load (utilization.gpu >= 90 %)
    power_sum_w: float = 0.0
    power_samples: int = 0
    # Lowest PCIe link under load: an idle GPU drops its link to gen 1 to save power, which is no fault.
    min_pcie_gen: int | None = None
    min_pcie_width: int | None = None
    # Down-sampled to <= MAX_SERIES_POINTS: each point is a time bucket (t_s = bucket start, the width a
    # power of two seconds) holding the bucket's worst case — highest temperature, highest power,
    # lowest SM clock — so throttling dips survive down-sampling and merging is exact.
    series: list[SeriesPoint] = []

    def median_sm_clock(self) -> float | None:
        """The exact median SM clock under load (mean of the two middle samples for an even count)."""
        total = sum(self.sm_clock_hist.values())
        if total == 0:
            return None
        ranks = ((total - 1) // 2, total // 2)  # 0-based ranks of the middle sample(s)
        middle: list[int] = []
        seen = 0
        for mhz, count in sorted(self.sm_clock_hist.items()):
            seen += count
            while len(middle) < 2 and seen > ranks[len(middle)]:
                middle.append(mhz)
            if len(middle) == 2:
                break
        return (middle[0] + middle[1]) / 2

    def mean_power_w(self) -> float | None:
        return self.power_sum_w / self.power_samples if self.power_samples else None

    def shifted(self, seconds: float) -> GpuSummary:
        """The same summary with its times moved by `seconds` (to re-base onto an earlier run start)."""
        if not seconds:
            return self
        return msgspec.structs.replace(
            self,
            first_s=None if self.first_s is None else self.first_s + seconds,
            last_s=None if self.last_s is None else self.last_s + seconds,
            series=[(t + seconds, a, b, c) for t, a, b, c in self.series],
        )

    def merge(self, other: GpuSummary) -> GpuSummary:
        """Both chunks of the same GPU, as one summary (times must share the same run start)."""
        hist = dict(self.sm_clock_hist)
        for mhz, count in other.sm_clock_hist.items():
            hist[mhz] = hist.get(mhz, 0) + count
        first_s = _opt(min, self.first_s, other.first_s)
        last_s = _opt(max, self.last_s, other.last_s)
        return GpuSummary(
            index=self.index,
            uuid=self.uuid or other.uuid,
            serial=self.serial or other.serial,
            samples=self.samples + other.samples,
            first_s=first_s,
            last_s=last_s,
            max_temperature_c=_opt(max, self.max_temperature_c, other.max_temperature_c),
            max_memory_temperature_c=_opt(max, self.max_memory_temperature_c, other.max_memory_temperature_c),
            hw_thermal_slowdown_samples=self.hw_thermal_slowdown_samples + other.hw_thermal_slowdown_samples,
            sw_thermal_slowdown_samples=self.sw_thermal_slowdown_samples + other.sw_thermal_slowdown_samples,
            hw_power_brake_samples=self.hw_power_brake_samples + other.hw_power_brake_samples,
            slowdown_known_samples=self.slowdown_known_samples + other.slowdown_known_samples,
            max_ecc_corrected=_opt(max, self.max_ecc_corrected, other.max_ecc_corrected),
            max_ecc_uncorrected=_opt(max, self.max_ecc_uncorrected, other.max_ecc_uncorrected),
            retired_pages_pending=self.retired_pages_pending or other.retired_pages_pending,
            remapped_rows_pending=self.remapped_rows_pending or other.remapped_rows_pending,
            remapped_rows_failure=self.remapped_rows_failure or other.remapped_rows_failure,
            sm_clock_hist=dict(sorted(hist.items())),
            power_sum_w=self.power_sum_w + other.power_sum_w,
            power_samples=self.power_samples + other.power_samples,
            min_pcie_gen=_opt(min, self.min_pcie_gen, other.min_pcie_gen),
            min_pcie_width=_opt(min, self.min_pcie_width, other.min_pcie_width),
            series=_merge_series(self.series + other.series, first_s, last_s),
        )


class TelemetrySummary(msgspec.Struct):
    """A run's telemetry so far. Store it with `to_builtins()` and load it with `from_builtins()`: GPU
    indices and clock bins are int keys, which canonical (key-sorted) JSON needs as strings."""

    gpus: dict[int, GpuSummary] = {}
    rows: int = 0
    columns: list[str] = []  # canonical field names present, in first-seen order
    start: dt.datetime | None = None  # naive (nvidia-smi prints local time without a zone): the run's first sample

    def merge(self, other: TelemetrySummary) -> TelemetrySummary:
        """This run's summary with another chunk's. Times are re-based onto the earlier of the two starts, so
        chunks merge in any order; pass the run's `start` when summarising later chunks and nothing moves."""
        starts = [s for s in (self.start, other.start) if s is not None]
        start = min(starts) if starts else None
        mine, theirs = self._rebased(start), other._rebased(start)
        gpus = dict(mine)
        for index, gpu in theirs.items():
            gpus[index] = gpus[index].merge(gpu) if index in gpus else gpu
        return TelemetrySummary(
            gpus=dict(sorted(gpus.items())),
            rows=self.rows + other.rows,
            columns=self.columns + [c for c in other.columns if c not in self.columns],
            start=start,
        )

    def _rebased(self, start: dt.datetime | None) -> dict[int, GpuSummary]:
        if start is None or self.start is None or self.start == start:
            return self.gpus
        seconds = (self.start - start).total_seconds()
        return {i: g.shifted(seconds) for i, g in self.gpus.items()}

    def duration_s(self) -> float:
        """Seconds from the earliest to the latest sample of any GPU (0 without timestamps)."""
        firsts = [g.first_s for g in self.gpus.values() if g.first_s is not None]
        lasts = [g.last_s for g in self.gpus.values() if g.last_s is not None]
        return max(lasts) - min(firsts) if firsts and lasts else 0.0

    def to_builtins(self) -> dict[str, Any]:
        """JSON-ready builtins with string keys (for a canonical-JSON column)."""
        return msgspec.to_builtins(self, str_keys=True)  # type: ignore[no-any-return]

    @classmethod
    def from_builtins(cls, data: Any) -> TelemetrySummary:
        """The inverse of `to_builtins()`; also accepts int keys."""
        return msgspec.convert(data, cls, str_keys=True)


def _opt(pick: Any, a: Any, b: Any) -> Any:
    """min/max ignoring None."""
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


def series_width(first_s: float, last_s: float) -> float:
    """The smallest power-of-two bucket width (s) that fits [first_s, last_s] into MAX_SERIES_POINTS buckets.
    A chunk's width never exceeds the width of the whole run, so re-bucketing while merging is exact."""
    width = 1.0
    while math.floor(last_s / width) - math.floor(first_s / width) + 1 > MAX_SERIES_POINTS:
        width *= 2
    return width


def _merge_series(points: list[SeriesPoint], first_s: float | None, last_s: float | None) -> list[SeriesPoint]:
    """Re-bucket points onto the width that fits [first_s, last_s]; each bucket keeps its worst case."""
    if not points:
        return []
    table = np.array([[np.nan if v is None else v for v in p] for p in points], dtype=np.float64)
    return _rebucket(table, first_s, last_s)


def _rebucket(table: npt.NDArray[np.float64], first_s: float | None, last_s: float | None) -> list[SeriesPoint]:
    """Points as rows (t_s, temp, power, sm; NaN = none) onto the width fitting [first_s, last_s]."""
    if not len(table) or first_s is None or last_s is None:
        return []
    width = series_width(first_s, last_s)
    keys, slot = np.unique(np.floor(table[:, 0] / width), return_inverse=True)
    n = len(keys)
    temp, power, sm = np.full(n, -np.inf), np.full(n, -np.inf), np.full(n, np.inf)
    np.fmax.at(temp, slot, table[:, 1])
    np.fmax.at(power, slot, table[:, 2])
    np.fmin.at(sm, slot, table[:, 3])
    columns = [[None if math.isinf(v) else v for v in x.tolist()] for x in (temp, power, sm)]
    return list(zip((keys * width).tolist(), *columns, strict=True))


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else x


# ---------------------------------------------------------------------------------------------
# The header.


@dataclass(frozen=True, slots=True)
class Column:
    position: int  # 0-based field position in the line
    label: str  # as printed in the header, e.g. "power.draw [W]"
    field: str  # canonical name, e.g. "power.draw"
    spec: FieldSpec
    last: bool = False  # the line's last field (carries the CR of a CRLF capture)

    @property
    def key(self) -> str:
        return f"c{self.position}"

    def where(self, line: int) -> str:
        return f"telemetry line {line}, column {self.position + 1} ({self.label})"


def canonical_field(name: str) -> str | None:
    """The canonical nvidia-smi field for a header name (aliases and pre-535 names accepted), or None."""
    name = ALIASES.get(name, name)
    if name.startswith(THROTTLE_PREFIX):
        name = EVENT_PREFIX + name.removeprefix(THROTTLE_PREFIX)
    return name if name in FIELDS else None


def parse_header(text: str, line: int = 1) -> list[Column]:
    labels = [label.strip() for label in text.split(",")]
    columns: list[Column] = []
    unknown: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for position, label in enumerate(labels):
        match = _HEADER_FIELD.fullmatch(label)
        name = match["name"] if match else label
        field = canonical_field(name)
        if field is None:
            unknown.append((position, label))
            continue
        spec = FIELDS[field]
        unit = match["unit"] if match else None
        if unit is not None and unit != spec.unit:
            expected = f"[{spec.unit}]" if spec.unit else "no unit"
            raise InvalidInput(
                f"telemetry line {line}, column {position + 1}: {label!r} has unit [{unit}], expected {expected}",
                line=line,
                column=position + 1,
            )
        if field in seen:
            raise InvalidInput(
                f"telemetry line {line}, column {position + 1}: {label!r} repeats column {seen[field] + 1}",
                line=line,
                column=position + 1,
            )
        seen[field] = position
        columns.append(Column(position, label, field, spec, last=position == len(labels) - 1))
    if unknown:
        names = ", ".join(repr(label) for _, label in unknown)
        raise InvalidInput(
            f"telemetry line {line}: unknown field(s) {names} in the header; expected nvidia-smi --format=csv "
            f"output of: {', '.join(FIELDS)}",
            line=line,
            column=unknown[0][0] + 1,
            unknown=[label for _, label in unknown],
        )
    if "index" not in seen:
        raise InvalidInput(
            f"telemetry line {line}: the header has no 'index' field; each line must say which GPU it is",
            line=line,
            column=1,
        )
    return columns


# ---------------------------------------------------------------------------------------------
# Values: converted on a chunk's distinct values (categories), then gathered back by code.


@dataclass(slots=True)
class Table:
    """One column's distinct values, converted: `values[code]` (NaN = missing), `bad[code]` (not a valid
    value) and `empty[code]` (no value at all). Each carries one extra trailing slot for code -1 (a field
    the line did not have), so gathering by code never fails."""

    values: npt.NDArray[np.float64]
    bad: npt.NDArray[np.bool_]
    empty: npt.NDArray[np.bool_]


def shown(column: Column, raw: object) -> str:
    """A field's text as printed, without the separator's space (and a CRLF capture's CR)."""
    text = str(raw).lstrip(" ")
    return text.removesuffix("\r") if column.last else text


def convert(column: Column, categories: pd.Index, start_ns: int = 0) -> Table:
    """Convert a column's distinct values: numbers lose their unit, enums map to 1/0, timestamps become
    seconds since `start_ns`, and [N/A]-style markers become NaN (missing) — never 0."""
    kind, unit = column.spec.kind, column.spec.unit
    n = len(categories)
    values = np.full(n + 1, np.nan)
    bad = np.zeros(n + 1, dtype=bool)
    empty = np.zeros(n + 1, dtype=bool)
    empty[n] = True
    # pandas infers numeric (or boolean) categories when every distinct value parses as one.
    numeric = categories.dtype.kind in "iuf"
    if categories.dtype.kind in "iufb":
        text = categories.astype(str)
    else:
        text = categories.str.lstrip(" ")  # ", " separates fields: the space is no part of the value
        if column.last:
            text = text.str.removesuffix("\r")  # CRLF captures
        empty[:n] = np.asarray(text == "", dtype=bool)
    if kind == "text":
        return Table(values, bad, empty)
    missing = np.zeros(n, dtype=bool) if numeric else np.asarray(text.isin(MISSING), dtype=bool)
    if kind in ("number", "index"):
        if numeric:
            found = categories.to_numpy(dtype=np.float64, na_value=np.nan)
        elif categories.dtype.kind == "b":
            found = np.full(n, np.nan)
        else:
            stripped = text.str.removesuffix(f" {unit}") if unit else text
            found = pd.to_numeric(pd.Series(stripped, copy=False), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        ok = np.isfinite(found)
        if kind == "index":
            ok &= (found >= 0) & (found < 2**31) & (np.floor(found) == found)
            missing[:] = False  # a line must say which GPU it is
        values[:n] = np.where(ok, found, np.nan)
        bad[:n] = ~ok & ~missing
    elif kind in _ENUMS:
        mapping = _ENUMS[kind]
        found = np.array([mapping.get(s, np.nan) for s in text.tolist()], dtype=np.float64)
        values[:n] = found
        bad[:n] = np.isnan(found) & ~missing
    elif kind == "timestamp":
        ns = timestamps_ns(text) if not numeric and categories.dtype.kind != "b" else np.full(n, NAT)
        ok = ns != NAT
        values[:n] = np.where(ok, (ns - start_ns) / 1e9, np.nan)
        bad[:n] = ~ok
    bad[:n] &= ~empty[:n]
    return Table(values, bad, empty)


NAT: Final = np.iinfo(np.int64).min


def timestamps_ns(text: pd.Index) -> npt.NDArray[np.int64]:
    """nvidia-smi timestamps (YYYY/MM/DD HH:MM:SS.mmm, local time, no zone) as naive ns; NAT where not one."""
    ns = np.asarray(pd.to_datetime(text, format=TIMESTAMP_FORMAT, errors="coerce").as_unit("ns").asi8)
    if (ns == NAT).any():  # whole seconds too
        whole = np.asarray(pd.to_datetime(text, format="%Y/%m/%d %H:%M:%S", errors="coerce").as_unit("ns").asi8)
        ns = np.where(ns == NAT, whole, ns)
    return ns.astype(np.int64, copy=False)


def _fault(column: Column, line: int, raw: str) -> InvalidInput:
    what = {
        "index": "is not a GPU index",
        "number": "is not a number",
        "timestamp": "is not a timestamp YYYY/MM/DD HH:MM:SS.mmm",
        "active": "is not Active or Not Active",
        "yes_no": "is not Yes or No",
    }[column.spec.kind]
    return InvalidInput(f"{column.where(line)}: {raw!r} {what}", line=line, column=column.position + 1, value=raw)


def _field_count_fault(line: int, found: int, expected: int) -> InvalidInput:
    return InvalidInput(
        f"telemetry line {line}: {found} fields, the header has {expected}",
        line=line,
        column=min(found, expected) + 1,
    )


# ---------------------------------------------------------------------------------------------
# Reading: pandas' C parser reads the stream itself, chunk by chunk; one row per line.


class _Prefixed:
    """A binary stream with some bytes we already read put back in front (pandas only calls read)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self.prefix = prefix
        self.stream = stream

    def read(self, size: int | None = -1) -> bytes:
        if not self.prefix:
            return self.stream.read(size if size is not None else -1)
        if size is None or size < 0:
            out, self.prefix = self.prefix + self.stream.read(), b""
        else:
            out, self.prefix = self.prefix[:size], self.prefix[size:]
        return out


def _readline(stream: BinaryIO, number: int) -> bytes:
    line = stream.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise InvalidInput(
            f"telemetry line {number}: longer than {MAX_LINE_BYTES:,} bytes; not nvidia-smi CSV", line=number, column=1
        )
    return line


@dataclass(slots=True)
class _Chunk:
    """One parsed chunk: per column its category codes, categories and converted table."""

    rows: int  # lines, blank ones included
    line0: int  # number of its first line
    codes: dict[str, npt.NDArray[np.integer[Any]]]
    tables: dict[str, Table]
    categories: dict[str, pd.Index]
    keep: npt.NDArray[np.bool_] | None = None  # the lines that are samples (None: all of them)


class _TooManyFields(Exception):
    """pandas' C parser stopped at a line with more fields than the header."""


class _Reader:
    """Parses and validates chunks; raises for the first faulty line with its number and column."""

    def __init__(self, columns: list[Column], start_ns: int | None) -> None:
        self.columns = columns
        self.by_field = {c.field: c for c in columns}
        self.start_ns = start_ns

    def chunks(self, stream: Any, first_line: int, chunk_rows: int, nrows: int | None = None) -> Iterator[_Chunk]:
        """Each validated chunk of the stream, in order; `first_line` is the number of the stream's first line."""
        line = first_line
        frames = pd.read_csv(
            stream,
            header=None,
            names=[c.key for c in self.columns],
            # Categoricals: the parser hashes each token once and we convert only the distinct values.
            dtype=dict.fromkeys((c.key for c in self.columns), "category"),
            sep=",",  # not skipinitialspace: stripping the space from a few thousand categories is cheaper
            skip_blank_lines=False,  # one row per line, so a row number is a line number
            keep_default_na=False,
            na_values=[""],  # only a field the line lacks is NaN; [N/A] and friends are ours to convert
            quoting=csv.QUOTE_NONE,
            lineterminator="\n",  # a stray CR stays in its field and is reported, not taken for a line break
            index_col=False,
            engine="c",
            encoding_errors="replace",  # bytes that are not UTF-8 end up in a reported value, not a crash
            low_memory=True,  # tokenise in cache-sized pieces (measured: faster despite the categorical unions)
            chunksize=chunk_rows,
            nrows=nrows,
        )
        with frames:
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                except ParserError as exc:
                    raise _TooManyFields(str(exc)) from None
                chunk = self._parse(frame, line)
                self._validate(chunk)
                yield chunk
                line += chunk.rows

    def _parse(self, frame: pd.DataFrame, line0: int) -> _Chunk:
        chunk = _Chunk(len(frame), line0, {}, {}, {})
        for column in self.columns:
            array = frame[column.key].array
            chunk.codes[column.field] = array.codes
            chunk.categories[column.field] = array.categories
            chunk.tables[column.field] = convert(column, array.categories, self.start_ns or 0)
        return chunk

    def rebase(self, chunk: _Chunk, start_ns: int) -> None:
        """Measure times from `start_ns` (known only once the first sample has been read)."""
        self.start_ns = start_ns
        chunk.tables["timestamp"] = convert(self.by_field["timestamp"], chunk.categories["timestamp"], start_ns)

    def _validate(self, chunk: _Chunk) -> None:
        """Raise for the chunk's first faulty line; mark blank lines (and repeated headers) as no samples."""
        skip = self._blank(chunk) if bool(self._empty_rows(chunk, "index").any()) else None
        fault = self._first_fault(chunk, skip)
        if fault is not None:
            repeated = self._repeated_headers(chunk)
            if repeated is not None and repeated[fault[0]]:
                # `cat part1.csv part2.csv`: a header line in the middle is no sample and no fault.
                skip = repeated if skip is None else skip | repeated
                fault = self._first_fault(chunk, skip)
        if fault is not None:
            raise self._fault(chunk, *fault)
        if skip is not None:
            chunk.keep = ~skip

    @staticmethod
    def _empty_rows(chunk: _Chunk, field: str) -> npt.NDArray[np.bool_]:
        return chunk.tables[field].empty[chunk.codes[field]]

    def _blank(self, chunk: _Chunk) -> npt.NDArray[np.bool_]:
        blank = np.ones(chunk.rows, dtype=bool)
        for column in self.columns:
            blank &= self._empty_rows(chunk, column.field)
        return blank

    def _first_fault(self, chunk: _Chunk, skip: npt.NDArray[np.bool_] | None) -> tuple[int, Column] | None:
        """(row, column) of the earliest fault, ignoring `skip` rows."""
        best: tuple[int, Column] | None = None
        for column in self.columns:
            codes, table = chunk.codes[column.field], chunk.tables[column.field]
            if skip is None and not table.bad.any() and not table.empty[:-1].any() and not (codes < 0).any():
                continue  # the common case: nothing to look at row by row
            faulty = table.bad[codes] | table.empty[codes]
            if skip is not None:
                faulty &= ~skip
            rows = np.flatnonzero(faulty)
            if rows.size and (best is None or rows[0] < best[0]):
                best = (int(rows[0]), column)
        return best

    def _repeated_headers(self, chunk: _Chunk) -> npt.NDArray[np.bool_] | None:
        rows = np.ones(chunk.rows, dtype=bool)
        for column in self.columns:
            categories = chunk.categories[column.field]
            if categories.dtype.kind in "iufb":
                return None
            where = [code for code, raw in enumerate(categories) if shown(column, raw) == column.label]
            if not where:
                return None
            rows &= chunk.codes[column.field] == where[0]
        return rows if rows.any() else None

    def _fault(self, chunk: _Chunk, row: int, column: Column) -> InvalidInput:
        line = chunk.line0 + row
        if self._empty_rows(chunk, column.field)[row]:
            later = [c for c in self.columns if c.position > column.position]
            if all(self._empty_rows(chunk, c.field)[row] for c in later):
                # Nothing after it either: the line ends early (a truncated write).
                return _field_count_fault(line, column.position, len(self.columns))
            return InvalidInput(f"{column.where(line)}: empty value", line=line, column=column.position + 1, value="")
        raw = chunk.categories[column.field][int(chunk.codes[column.field][row])]
        return _fault(column, line, shown(column, raw))


# ---------------------------------------------------------------------------------------------
# Summarising one chunk, vectorised: gathers by code and ufunc.at reductions per GPU.


def _summarise_chunk(
    chunk: _Chunk,
) -> tuple[int, dict[int, GpuSummary], dict[int, tuple[npt.NDArray[np.float64], int]]]:
    """(samples, per-GPU summaries without series or identity, per GPU: (series points, first line)) of a
    validated chunk. The series points (rows t_s, temp, power, sm) are bucketed at the chunk's own width
    and re-bucketed once at the end, so a long capture is not re-bucketed chunk after chunk."""
    keep = chunk.keep
    codes = chunk.codes if keep is None else {f: c[keep] for f, c in chunk.codes.items()}
    n = len(codes["index"])
    if n == 0:
        return 0, {}, {}

    def rows(field: str) -> npt.NDArray[np.float64] | None:
        return chunk.tables[field].values[codes[field]] if field in codes else None

    # Dense group ids over the GPU indices ("1" and "1.0" are one GPU).
    gpu_of_code = np.nan_to_num(chunk.tables["index"].values[:-1], nan=-1).astype(np.int64)
    appears = np.bincount(codes["index"], minlength=len(gpu_of_code)) > 0  # not a skipped header's "index"
    gpus = np.unique(gpu_of_code[appears])
    gid = np.searchsorted(gpus, gpu_of_code)[codes["index"]]
    n_gpus = len(gpus)
    zeros = np.zeros(n_gpus, dtype=np.int64)

    def count(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        return np.bincount(gid[mask], minlength=n_gpus)

    def reduce(values: npt.NDArray[np.float64] | None, ufunc: np.ufunc, mask: Any = None) -> list[float | None]:
        if values is None:
            return [None] * n_gpus
        out = np.full(n_gpus, -np.inf if ufunc is np.fmax else np.inf)
        if mask is None:
            ufunc.at(out, gid, values)
        else:
            ufunc.at(out, gid[mask], values[mask])
        return [_finite(x) for x in out.tolist()]

    samples = np.bincount(gid, minlength=n_gpus)
    temp, power, sm, util = (
        rows("temperature.gpu"),
        rows("power.draw"),
        rows("clocks.current.sm"),
        rows("utilization.gpu"),
    )
    loaded = util >= LOAD_UTILIZATION_PCT if util is not None else None

    # Slowdown reasons: Active samples per reason, and samples where any reason was known at all.
    reasons = {name: rows(EVENT_PREFIX + name) for name in _REASONS}
    active = {name: count(v == 1.0) if v is not None else zeros for name, v in reasons.items()}
    known_masks = [~np.isnan(v) for v in reasons.values() if v is not None]
    known = count(np.logical_or.reduce(known_masks)) if known_masks else zeros
    flags = {field: reduce(rows(field), np.fmax) for field in _FLAGS}

    # Clock histogram under load, counted by (GPU, clock category).
    hists: list[dict[int, int]] = [{} for _ in range(n_gpus)]
    if sm is not None and loaded is not None:
        table = chunk.tables["clocks.current.sm"].values
        pick = loaded & ~np.isnan(sm)
        pairs = np.bincount(gid[pick] * len(table) + codes["clocks.current.sm"][pick], minlength=n_gpus * len(table))
        for flat in np.flatnonzero(pairs).tolist():
            g, c = divmod(flat, len(table))
            mhz = round(float(table[c]))
            hists[g][mhz] = hists[g].get(mhz, 0) + int(pairs[flat])

    if power is not None:
        power_known = ~np.isnan(power)
        power_sum = np.bincount(gid[power_known], weights=power[power_known], minlength=n_gpus)
        power_count = count(power_known)
    else:
        power_sum, power_count = np.zeros(n_gpus), zeros
    gen = reduce(rows("pcie.link.gen.current"), np.fmin, loaded)  # under load when the load is known
    width = reduce(rows("pcie.link.width.current"), np.fmin, loaded)

    # Times, and the series at this chunk's own (per-GPU) bucket width.
    t = rows("timestamp")
    firsts, lasts = reduce(t, np.fmin), reduce(t, np.fmax)
    series: list[npt.NDArray[np.float64]] = [np.empty((0, 4)) for _ in range(n_gpus)]
    if t is not None:
        widths = np.array([series_width(a, b) for a, b in zip(firsts, lasts, strict=True)])  # type: ignore[arg-type]
        base = np.floor(np.array(firsts, dtype=np.float64) / widths).astype(np.int64)
        key = gid * MAX_SERIES_POINTS + (np.floor(t / widths[gid]).astype(np.int64) - base[gid])
        size = n_gpus * MAX_SERIES_POINTS
        occupied = np.flatnonzero(np.bincount(key, minlength=size))
        g_of, b_of = np.divmod(occupied, MAX_SERIES_POINTS)
        points = np.full((len(occupied), 4), np.nan)
        points[:, 0] = (base[g_of] + b_of) * widths[g_of]
        for i, (values, ufunc) in enumerate(((temp, np.fmax), (power, np.fmax), (sm, np.fmin)), start=1):
            if values is not None:
                out = np.full(size, -np.inf if ufunc is np.fmax else np.inf)
                ufunc.at(out, key, values)
                points[:, i] = out[occupied]
        points[np.isinf(points)] = np.nan
        bounds = np.searchsorted(g_of, np.arange(n_gpus + 1))
        series = [points[bounds[g] : bounds[g + 1]] for g in range(n_gpus)]

    # Each GPU's first line in the chunk, for its uuid and serial.
    first_row = np.full(n_gpus, n)
    np.minimum.at(first_row, gid, np.arange(n))
    lines = chunk.line0 + (first_row if keep is None else np.flatnonzero(keep)[first_row])

    temp_max, mem_temp_max = reduce(temp, np.fmax), reduce(rows("temperature.memory"), np.fmax)
    ecc_c = reduce(rows("ecc.errors.corrected.volatile.total"), np.fmax)
    ecc_u = reduce(rows("ecc.errors.uncorrected.volatile.total"), np.fmax)
    out: dict[int, GpuSummary] = {}
    for g, index in enumerate(gpus.tolist()):
        out[index] = GpuSummary(
            index=index,
            samples=int(samples[g]),
            first_s=firsts[g],
            last_s=lasts[g],
            max_temperature_c=temp_max[g],
            max_memory_temperature_c=mem_temp_max[g],
            hw_thermal_slowdown_samples=int(active["hw_thermal_slowdown"][g]),
            sw_thermal_slowdown_samples=int(active["sw_thermal_slowdown"][g]),
            hw_power_brake_samples=int(active["hw_power_brake_slowdown"][g]),
            slowdown_known_samples=int(known[g]),
            max_ecc_corrected=ecc_c[g],
            max_ecc_uncorrected=ecc_u[g],
            retired_pages_pending=(flags["retired_pages.pending"][g] or 0) > 0,
            remapped_rows_pending=(flags["remapped_rows.pending"][g] or 0) > 0,
            remapped_rows_failure=(flags["remapped_rows.failure"][g] or 0) > 0,
            sm_clock_hist=dict(sorted(hists[g].items())),
            power_sum_w=float(power_sum[g]),
            power_samples=int(power_count[g]),
            min_pcie_gen=None if gen[g] is None else int(gen[g]),
            min_pcie_width=None if width[g] is None else int(width[g]),
        )
    return n, out, dict(zip(gpus.tolist(), zip(series, lines.tolist(), strict=True), strict=True))


_REASONS: Final = ("hw_thermal_slowdown", "sw_thermal_slowdown", "hw_power_brake_slowdown")
_FLAGS: Final = ("retired_pages.pending", "remapped_rows.pending", "remapped_rows.failure")


# ---------------------------------------------------------------------------------------------


def _start_ns(start: dt.datetime) -> int:
    return int(pd.Timestamp(start.replace(tzinfo=None)).as_unit("ns").value)


def _from_ns(ns: int) -> dt.datetime:
    return pd.Timestamp(ns, unit="ns").to_pydatetime(warn=False)


def summarise_nvidia_smi(
    stream: BinaryIO | bytes, *, start: dt.datetime | None = None, chunk_rows: int = 200_000
) -> TelemetrySummary:
    """Summarise one nvidia-smi CSV capture (header + rows) per GPU.

    `start` is the run's first sample (an earlier chunk's `TelemetrySummary.start`): times are measured
    from it so this chunk merges onto the run. Without it the capture's own first timestamp is the start.
    Raises InvalidInput naming the first faulty line (1-based; the header is line 1) and its column.
    (One exception: on a stream that cannot seek, a line with too many fields is reported even when an
    earlier line of the same chunk has a fault — bytes and files can seek.)
    """
    if isinstance(stream, bytes | bytearray | memoryview):
        stream = io.BytesIO(bytes(stream))
    header_line, header_raw = _header(stream)
    columns = parse_header(header_raw.decode("utf-8", errors="replace"), header_line)
    data_at = stream.tell() if getattr(stream, "seekable", lambda: False)() else None
    prefix = _first_lines(stream, header_line, len(columns))

    reader = _Reader(columns, _start_ns(start) if start is not None else None)
    has_time = any(c.field == "timestamp" for c in columns)
    points_of: dict[int, list[npt.NDArray[np.float64]]] = {}
    first_line_of: dict[int, int] = {}
    summary = TelemetrySummary(columns=[c.field for c in columns], start=start.replace(tzinfo=None) if start else None)
    try:
        for chunk in reader.chunks(_Prefixed(prefix, stream), header_line + 1, chunk_rows):
            if reader.start_ns is None and has_time:
                stamps = chunk.codes["timestamp"] if chunk.keep is None else chunk.codes["timestamp"][chunk.keep]
                if stamps.size:  # no start given: the capture's first sample is the run's start
                    raw = chunk.categories["timestamp"][int(stamps[0])]
                    ns = int(timestamps_ns(pd.Index([shown(reader.by_field["timestamp"], raw)]))[0])
                    reader.rebase(chunk, ns)
                    summary = msgspec.structs.replace(summary, start=_from_ns(ns))
            samples, gpus, series = _summarise_chunk(chunk)
            summary = summary.merge(TelemetrySummary(gpus=gpus, rows=samples, columns=[], start=summary.start))
            for index, (points, line) in series.items():
                points_of.setdefault(index, []).append(points)
                first_line_of.setdefault(index, line)
    except _TooManyFields as exc:
        raise _too_many_fields(exc, reader, stream, data_at, header_line, chunk_rows) from None
    identities = _identities(prefix.splitlines(), columns)
    late = {first_line_of[i] for i in summary.gpus if i not in identities}
    if late and data_at is not None:  # a GPU first seen past the first 64 KiB: fetch its first line
        stream.seek(data_at)
        identities |= _identities(_lines_numbered(stream, header_line + 1, late), columns)
    for index, gpu in summary.gpus.items():
        gpu.series = _rebucket(np.concatenate(points_of[index]), gpu.first_s, gpu.last_s)
        gpu.uuid, gpu.serial = identities.get(index, ("", ""))
    return summary


def _header(stream: BinaryIO) -> tuple[int, bytes]:
    """(line number, text) of the header: the first non-blank line, after a byte-order mark if any."""
    number = 1
    while True:
        raw = _readline(stream, number)
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw:
            raise InvalidInput("telemetry is empty: no header line", line=number, column=1)
        if raw.strip(b" \t\r\n"):
            return number, raw.rstrip(b"\r\n")
        number += 1


def _first_lines(stream: BinaryIO, header_line: int, fields: int) -> bytes:
    """Read the first data lines (about 64 KiB: every GPU's first sample) and check the first non-blank
    one's field count — pandas would take extra leading fields of that line for an index instead of
    failing. Returns the bytes read, to hand on to pandas."""
    read = b""
    number = header_line
    checked = False
    while len(read) < 1 << 16 and (raw := _readline(stream, number + 1)):
        number += 1
        read += raw
        if not checked and raw.strip(b" \t\r\n"):
            checked = True
            found = raw.rstrip(b"\r\n").count(b",") + 1
            if found > fields:
                raise _field_count_fault(number, found, fields)
    return read


def _lines_numbered(stream: BinaryIO, first: int, wanted: set[int]) -> list[bytes]:
    """The lines numbered `wanted` of a stream whose next line is number `first`."""
    found: list[bytes] = []
    number = first
    while len(found) < len(wanted) and (raw := stream.readline()):
        if number in wanted:
            found.append(raw)
        number += 1
    return found


def _identities(lines: list[bytes], columns: list[Column]) -> dict[int, tuple[str, str]]:
    """(uuid, serial) as printed on each GPU's first line among `lines`. Read here rather than by the
    parser: they are free text (an all-digit serial would become a number and lose its leading zeros)."""
    position = {c.field: c.position for c in columns}
    found: dict[int, tuple[str, str]] = {}
    for line in lines:
        cells = [cell.strip(" \t\r\n") for cell in line.decode("utf-8", errors="replace").split(",")]
        index = cells[position["index"]] if len(cells) == len(columns) else ""
        if index.isdigit() and int(index) not in found:
            uuid, serial = (cells[position[f]] if f in position else "" for f in ("uuid", "serial"))
            found[int(index)] = (uuid if uuid not in MISSING else "", serial if serial not in MISSING else "")
    return found


def _too_many_fields(
    exc: _TooManyFields, reader: _Reader, stream: BinaryIO, data_at: int | None, header_line: int, chunk_rows: int
) -> InvalidInput:
    """The C parser stopped at a line with too many fields; a line before it in the same chunk may hold
    an earlier fault. Re-read up to that line (when the stream can seek) so the first fault is reported."""
    match = _FIELD_COUNT.search(str(exc))
    if match is None:
        return InvalidInput(f"telemetry: not nvidia-smi CSV ({exc})", line=header_line + 1, column=1)
    expected, at, found = (int(g) for g in match.groups())
    line = header_line + at
    if data_at is not None and at > 1:
        stream.seek(data_at)
        for _ in reader.chunks(stream, header_line + 1, chunk_rows, nrows=at - 1):
            pass  # raises for an earlier fault
    return _field_count_fault(line, found, expected)
