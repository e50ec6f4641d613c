"""CSV and XLSX imports of sites, module specs, modules and parts: reading the file, mapping columns by
header name, typing and checking every row, and the plan (create / change / unchanged / refused, row by
row with the reason). Pure: bytes and plain values in, plain values out; the database side is
app/integration/import_service.py.

The rules an import file follows (the same for CSV and XLSX):

- Columns are found by their header, in any order. Headers are compared without case, with spaces,
  hyphens, dots and slashes read as `_`; each column has a few aliases (`site`, `site_code`, `code`;
  `pn`, `part_no`, `part_number` …). An unknown header, two headers for one column, or no key column
  refuses the whole file (nothing is guessed). A file may leave out other columns, even required ones:
  existing rows keep those fields, and a new row is refused for the columns it lacks.
- Quantities name their unit, in the header: `power_kw`, `power (kW)`, `power [kW]`, `power_w`. The
  unit afm stores is always accepted; other units of the same dimension are converted exactly (decimal
  arithmetic), and only these: power W / kW / MW (stored in kW), mass kg / t (kg), length mm / cm / m
  (mm), energy Wh / kWh (Wh). Units are compared without case (`mw` is MW). A quantity header with no
  unit (`power`), another unit (`power (hp)`, `weight (lb)`) or a unit of another dimension
  (`power (kg)`) refuses the file, naming the units accepted: a silent ×1000 error is worse than none.
- Numbers use a point as the decimal separator and no thousands separators (`1,5` and `1,500` are
  refused rather than guessed). A whole-number column (mm, counts) refuses a fraction, also after a
  conversion (12.1925 m is not a whole number of mm).
- Text cells are trimmed. A leading `'` before `= + - @`, a tab, CR, LF, NUL or another `'` is dropped:
  that is how afm's exports (app/fleet/exports.py) stop a spreadsheet from running a cell as a
  formula, so an export imports back unchanged.
- Blank lines are skipped. A blank optional cell means its default (`""`, 0); a blank required cell
  refuses the row. A column the file does not have is left as it is on existing rows (so a file of
  `serial,description` updates descriptions only) and takes its default on new ones.
- Keys: sites and specs by `code`, modules and parts by `serial`; a key twice in one file refuses the
  second row. Serials must make a valid GS1 GIAI (AI 8004) with this service's company prefix: at
  most 30 characters together, GS1 character set 82. An optional `giai` column must equal prefix +
  serial (its `(8004)` HRI form is accepted).
- What an import may change: every field of a site and of a spec but its code; a part's manufacturer
  and description. A part not in a module may be installed (module, position), through the same build
  step as the station (a ledger event). Anything else that differs refuses the row with the reason: a
  module's spec, factory, state and site move only through the lifecycle (a blank factory, state or
  site of an existing module states nothing and is not compared), a part's kind and part number are
  its identity, and moving or removing an installed part is a build step with a reason.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import gc
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal, get_args

import msgspec

from app.core.errors import DomainError, InvalidInput, RuleRefused, TooLarge
from app.factory.domain import check_build_state, check_part_fits, next_position
from app.factory.schemas import BomLine, SpecCreate
from app.sites.domain import check_country
from app.sites.schemas import SiteCreate
from app.tags import payload

Table = Literal["sites", "specs", "modules", "parts"]
TABLES: Final[tuple[str, ...]] = get_args(Table)
Action = Literal["create", "change", "unchanged", "refused"]

CSV_MEDIA_TYPES: Final = frozenset({"text/csv", "application/csv", "text/plain"})
XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

MAX_ROWS: Final = 100_000  # data rows (blank ones included) in one file
MAX_COLUMNS: Final = 100
MAX_CELL_CHARS: Final = 100_000
# XLSX is a zip of XML: bounded before openpyxl opens it (a zip bomb inflates kilobytes into gigabytes).
MAX_XLSX_MEMBERS: Final = 1_000
MAX_XLSX_UNCOMPRESSED: Final = 256 * 1024 * 1024
MAX_XLSX_RATIO: Final = 200  # per member over 1 MiB; real sheets compress 5-30x
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


class ImportFileError(DomainError):
    """The file as a whole cannot be imported (unreadable, or its header breaks a rule): nothing is planned.
    `faults` lists `{"line", "message"}`, header faults on line 1."""

    status = 422
    slug = "rule-refused"
    title = "The import file was refused"

    def __init__(self, faults: list[tuple[int, str]], *, status: int = 422) -> None:
        detail = "; ".join(f"line {line}: {message}" for line, message in faults)
        super().__init__(detail, faults=[{"line": line, "message": message} for line, message in faults])
        self.faults = faults
        self.status = status  # type: ignore[misc]
        self.slug = _SLUGS.get(status, "rule-refused")  # type: ignore[misc]
        if status != 422:
            self.title = "The import file cannot be read"  # type: ignore[misc]


_SLUGS: Final = {400: "invalid-input", 413: "too-large", 415: "unsupported-media-type", 422: "rule-refused"}


# --- units ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    dimension: str
    unit: str  # the unit afm stores, as written in docs and exports
    factors: Mapping[str, Decimal]  # accepted unit (lower case) -> multiply by this to get `unit`

    @property
    def accepted(self) -> str:
        spelled = {"kw": "kW", "w": "W", "mw": "MW", "kg": "kg", "t": "t", "mm": "mm", "cm": "cm", "m": "m"}
        spelled |= {"wh": "Wh", "kwh": "kWh"}
        return ", ".join(spelled.get(u, u) for u in self.factors)


POWER_KW = Quantity("power", "kW", {"kw": Decimal(1), "w": Decimal("0.001"), "mw": Decimal(1000)})
MASS_KG = Quantity("mass", "kg", {"kg": Decimal(1), "t": Decimal(1000)})
LENGTH_MM = Quantity("length", "mm", {"mm": Decimal(1), "cm": Decimal(10), "m": Decimal(1000)})
ENERGY_WH = Quantity("energy", "Wh", {"wh": Decimal(1), "kwh": Decimal(1000)})
# "ton(s)" is not here: a US short ton is 907 kg.
UNIT_SPELLINGS: Final = {"tonne": "t", "tonnes": "t", "metre": "m", "meter": "m", "watt": "w"}


# --- columns -------------------------------------------------------------------------------------------

Kind = Literal["text", "int", "float", "json"]


@dataclass(frozen=True)
class Column:
    name: str  # the field afm stores, and the header afm's exports write
    kind: Kind = "text"
    aliases: tuple[str, ...] = ()
    quantity: Quantity | None = None
    stems: tuple[str, ...] = ()  # for quantities: names that take a unit (`power` in `power (kW)`)
    required: bool = False  # the header must have it (every row needs it)


def _q(name: str, kind: Kind, quantity: Quantity, *stems: str, required: bool = True) -> Column:
    return Column(name, kind, quantity=quantity, stems=stems, required=required)


COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    "sites": (
        Column("code", required=True, aliases=("site", "site_code")),
        Column("name", required=True, aliases=("site_name",)),
        Column("operator"),
        Column("country", required=True, aliases=("country_code", "iso_country")),
        Column("city"),
        Column("lat", "float", required=True, aliases=("latitude",)),
        Column("lon", "float", required=True, aliases=("lng", "longitude")),
        _q("power_kw", "float", POWER_KW, "power", "power_capacity"),
        Column("module_slots", "int", required=True, aliases=("slots",)),
        Column("renewable_source", required=True, aliases=("energy_source", "renewable")),
        Column("cooling", required=True),
        Column("security_level", required=True, aliases=("security",)),
        Column("unlocode", aliases=("port", "un_locode")),
        Column("airport", aliases=("iata",)),
    ),
    "specs": (
        Column("code", required=True, aliases=("spec", "spec_code")),
        Column("name", required=True, aliases=("spec_name",)),
        Column("gpu_model", required=True),
        Column("gpu_count", "int", required=True, aliases=("gpus",)),
        _q("power_kw", "float", POWER_KW, "power"),
        _q("weight_kg", "float", MASS_KG, "weight", "mass", "gross_weight"),
        _q("length_mm", "int", LENGTH_MM, "length"),
        _q("width_mm", "int", LENGTH_MM, "width"),
        _q("height_mm", "int", LENGTH_MM, "height"),
        Column("hs_code", required=True, aliases=("hs",)),
        Column("export_class", required=True, aliases=("eccn",)),
        Column("cooling", required=True),
        _q("battery_wh", "float", ENERGY_WH, "battery", "battery_energy", required=False),
        Column("battery_un_number", aliases=("un_number",)),
        Column("bom", "json", aliases=("bill_of_materials",)),
    ),
    "modules": (
        Column("serial", required=True, aliases=("module", "module_serial")),
        Column("giai"),
        Column("spec", required=True, aliases=("spec_code",)),
        Column("factory", aliases=("factory_code",)),
        Column("state"),
        Column("site", aliases=("site_code",)),
    ),
    "parts": (
        Column("serial", required=True, aliases=("part_serial", "serial_number", "sn")),
        Column("giai"),
        Column("kind", required=True, aliases=("part_kind", "type")),
        Column("part_number", required=True, aliases=("pn", "part_no", "mpn")),
        Column("manufacturer", aliases=("maker", "vendor", "mfr")),
        Column("description"),
        Column("module", aliases=("module_serial", "installed_in")),
        Column("position", aliases=("slot",)),
    ),
}
KEYS: Final[dict[str, str]] = {"sites": "code", "specs": "code", "modules": "serial", "parts": "serial"}


def export_columns(table: str) -> list[str]:
    """The headers afm's export of a table writes: exactly what its import reads."""
    return [c.name for c in COLUMNS[table]]


_SEPARATORS = re.compile(r"[\s\-./]+")
_BRACKETED_UNIT = re.compile(r"^(?P<base>.*?)\s*[(\[](?P<unit>[^)\]]*)[)\]]\s*$")


def normalise_header(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip().lstrip("\ufeff").lower()).strip("_")


@dataclass(frozen=True)
class Mapped:
    index: int  # the column's position in the file
    column: Column
    factor: Decimal  # the unit conversion (1 where the header's unit is the stored one)
    header: str


@dataclass(frozen=True)
class ColumnMap:
    table: str
    fields: tuple[Mapped, ...]
    unnamed: tuple[int, ...]  # columns without a header: their cells must be blank
    notes: tuple[str, ...]  # conversions, for the person importing
    absent: tuple[str, ...] = ()  # required columns the file leaves out: only existing rows can do without


def map_columns(table: str, header: list[str]) -> ColumnMap:
    """Each header to its column and unit factor; every fault of the header at once (ImportFileError)."""
    if table not in COLUMNS:
        raise InvalidInput(f"no import for {table!r}; tables: {', '.join(TABLES)}")
    columns = COLUMNS[table]
    by_name: dict[str, Column] = {}
    by_stem: dict[str, Column] = {}
    for col in columns:
        by_name[col.name] = col
        for alias in col.aliases:
            by_name[alias] = col
        for stem in col.stems:
            by_stem[stem] = col
    faults: list[str] = []
    fields: list[Mapped] = []
    unnamed: list[int] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(header):
        text = (raw or "").strip().lstrip("\ufeff")
        if not text:
            unnamed.append(index)
            continue
        found = _resolve(table, text, by_name, by_stem)
        if isinstance(found, str):
            faults.append(found)
            continue
        col, factor = found
        if col.name in seen:
            faults.append(f"columns {seen[col.name]!r} and {text!r} are both {col.name}")
            continue
        seen[col.name] = text
        if factor != 1 and col.quantity is not None:
            notes.append(f"{text!r}: converted to {col.quantity.unit} (x {factor.normalize():f})")
        fields.append(Mapped(index, col, factor, text))
    if KEYS[table] not in seen:
        faults.append(f"no {KEYS[table]} column: every {table} row is found by its {KEYS[table]}")
    absent = tuple(c.name for c in columns if c.required and c.name not in seen)
    if faults:
        raise ImportFileError([(1, f) for f in faults])
    return ColumnMap(table, tuple(fields), tuple(unnamed), tuple(notes), absent)


def _resolve(
    table: str, text: str, by_name: Mapping[str, Column], by_stem: Mapping[str, Column]
) -> tuple[Column, Decimal] | str:
    match = _BRACKETED_UNIT.match(text)
    base = normalise_header(match.group("base") if match else text)
    unit = match.group("unit").strip() if match else None
    col = by_name.get(base)
    if col is not None:
        if unit is None:
            return col, Decimal(1)
        if col.quantity is None:
            return f"column {text!r}: {col.name} takes no unit"
        return _unit_factor(text, col, unit, stored_name=True)
    col = by_stem.get(base)
    if col is not None:
        if unit is None:
            return (
                f"column {text!r}: say the unit, e.g. '{base} ({col.quantity.unit if col.quantity else ''})' "
                f"or '{col.name}'"
            )
        return _unit_factor(text, col, unit, stored_name=False)
    stem, _, suffix = base.rpartition("_")
    col = by_stem.get(stem)
    if col is not None and unit is None:
        return _unit_factor(text, col, suffix, stored_name=False)
    known = ", ".join(c.name for c in COLUMNS[table])
    return f"unknown column {text!r}; columns of {table}: {known}"


def _unit_factor(text: str, col: Column, unit: str, *, stored_name: bool) -> tuple[Column, Decimal] | str:
    assert col.quantity is not None
    q = col.quantity
    key = unit.strip().lower().replace(" ", "")
    key = UNIT_SPELLINGS.get(key, key)
    factor = q.factors.get(key)
    if factor is None:
        return f"column {text!r}: unit {unit!r} is not accepted for {q.dimension}; use {q.accepted}"
    if stored_name and factor != 1:
        return f"column {text!r}: {col.name} is in {q.unit}; the unit {unit!r} contradicts it"
    return col, factor


# --- reading files -------------------------------------------------------------------------------------


@dataclass
class RawTable:
    """Cells as read, before mapping: the header and each data row with its line (CSV) or row (XLSX)."""

    header: list[str]
    rows: list[tuple[int, list[Any]]]
    source: Literal["csv", "xlsx"]
    header_line: int = 1


def read_file(data: bytes, media_type: str = "", *, table: str = "") -> RawTable:
    """A CSV or XLSX body as a RawTable, told apart by its first bytes (the declared type must be a CSV or
    XLSX type, or octet-stream)."""
    media = media_type.split(";")[0].strip().lower()
    if media and media not in CSV_MEDIA_TYPES | {XLSX_MEDIA_TYPE, "application/octet-stream"}:
        raise ImportFileError([(1, f"content type {media!r}: send text/csv (UTF-8) or {XLSX_MEDIA_TYPE}")], status=415)
    if data.startswith(b"PK\x03\x04"):
        return read_xlsx(data, table=table)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            [(1, "this is an old binary Excel file (.xls): save it as .xlsx or CSV UTF-8")], status=415
        )
    return read_csv(data)


def read_csv(data: bytes) -> RawTable:
    try:
        text = codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            [(line, f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}): save as 'CSV UTF-8'")],
            status=400,
        ) from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise ImportFileError([(line, "the file holds a NUL byte: it is not a CSV text file")], status=400)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)  # Excel in many locales writes ';'
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[Any]]] = []
    header: list[str] | None = None
    header_line = 1
    try:
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            if header is None:
                if not any(c.strip() for c in cells):
                    continue  # blank lines before the header
                header, header_line = cells, start
                if len(header) > MAX_COLUMNS:
                    raise ImportFileError([(start, f"{len(header)} columns; at most {MAX_COLUMNS}")], status=400)
                continue
            if len(rows) >= MAX_ROWS:
                raise TooLarge(f"more than {MAX_ROWS:,} rows: split the file", max_rows=MAX_ROWS)
            rows.append((start, cells))
    except csv.Error as exc:
        raise ImportFileError([(reader.line_num, f"CSV syntax: {exc}")], status=400) from None
    if header is None:
        raise ImportFileError([(1, "the file is empty: it needs a header row")], status=400)
    return RawTable(header, rows, "csv", header_line)


def check_zip(data: bytes) -> None:
    """Refuse an XLSX whose zip would inflate beyond the limits, from the sizes its directory declares
    (zipfile never reads past a member's declared size, so these bound what openpyxl can inflate)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ImportFileError([(1, f"not a readable XLSX (zip) file: {exc}")], status=400) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_XLSX_MEMBERS:
            raise ImportFileError([(1, f"the XLSX holds {len(members)} parts; at most {MAX_XLSX_MEMBERS}")], status=413)
        total = 0
        for info in members:
            total += info.file_size
            ratio = info.file_size // max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > MAX_XLSX_RATIO:
                raise ImportFileError(
                    [
                        (
                            1,
                            f"the XLSX part {info.filename!r} inflates {ratio}x: refused",
                        )
                    ],
                    status=413,
                )
        if total > MAX_XLSX_UNCOMPRESSED:
            raise ImportFileError(
                [(1, f"the XLSX inflates to {total:,} bytes; at most {MAX_XLSX_UNCOMPRESSED:,}")], status=413
            )


def read_xlsx(data: bytes, *, table: str = "") -> RawTable:
    """The sheet named after the table if there is one (afm's exports name it so), else the first sheet;
    cached values of formulas, never the formulas. Bounded before and while reading (check_zip)."""
    check_zip(data)
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise ImportFileError([(1, f"not a readable XLSX workbook: {type(exc).__name__}: {exc}")], status=400) from None
    try:
        names = {n.lower(): n for n in wb.sheetnames}
        if not names:
            raise ImportFileError([(1, "the workbook has no sheet")], status=400)
        ws = wb[names.get(table.lower(), wb.sheetnames[0])]
        header: list[str] | None = None
        rows: list[tuple[int, list[Any]]] = []
        header_line = 1
        width = MAX_COLUMNS
        for number, values in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1):
            if header is None:
                if not any(v not in (None, "") for v in values):
                    if number > 100:
                        break
                    continue
                header = ["" if v is None else str(v) for v in values]
                while header and not header[-1].strip():
                    header.pop()  # read-only sheets pad rows to the sheet's declared width
                width, header_line = len(header), number
                continue
            if len(rows) >= MAX_ROWS:
                raise TooLarge(f"more than {MAX_ROWS:,} rows: split the file", max_rows=MAX_ROWS)
            cells = list(values[:width])
            if any(v not in (None, "") for v in values[width:]):
                cells += list(values[width:])
            rows.append((number, cells))
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        raise ImportFileError([(1, f"not a readable XLSX workbook: {type(exc).__name__}: {exc}")], status=400) from None
    finally:
        wb.close()
    if header is None:
        raise ImportFileError([(1, "the sheet is empty: it needs a header row")], status=400)
    return RawTable(header, rows, "xlsx", header_line)


# --- cells and rows ------------------------------------------------------------------------------------


class CellError(ValueError):
    pass


def unescape(text: str) -> str:
    """Undo the exporter's formula guard: a leading ' before a formula trigger or another '."""
    if text.startswith("'") and text[1:2] and (text[1] in FORMULA_TRIGGERS or text[1] == "'"):
        return text[1:]
    return text


def escape(text: str) -> str:
    """The inverse of `unescape`, applied by afm's import exports before the shared formula guard, so text
    that starts with a quote survives the round trip too."""
    if text.startswith(FORMULA_TRIGGERS) or unescape(text) != text:
        return "'" + text
    return text


_EXCEL_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+\d+$", re.IGNORECASE)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # a serial Excel turned into a number: 1652923033041.0 -> "1652923033041"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    text = str(value)
    if len(text) > MAX_CELL_CHARS:
        raise CellError(f"{len(text):,} characters; at most {MAX_CELL_CHARS:,}")
    return unescape(text.strip())


def cell_number(value: Any, factor: Decimal, *, whole: bool) -> int | float:
    if isinstance(value, bool):
        raise CellError("true/false is not a number")
    if isinstance(value, (int, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        text = cell_text(value).replace(" ", "")
        if "," in text:
            raise CellError(f"{text!r}: use a point as the decimal separator and no thousands separators")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CellError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise CellError(f"{value!r} is not a finite number")
    number *= factor
    if whole:
        if number != number.to_integral_value():
            raise CellError(f"{number.normalize():f} is not a whole number")
        return int(number)
    return float(number)


def cell_value(column: Column, value: Any, factor: Decimal) -> Any:
    if column.kind == "int":
        return cell_number(value, factor, whole=True)
    if column.kind == "float":
        return cell_number(value, factor, whole=False)
    text = cell_text(value)
    if column.kind == "json":
        if not text:
            return []
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CellError(f"not JSON: {exc}") from None
    return text


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass
class Row:
    """One data row, typed: `values` holds the columns the file has (blank optional cells omitted, so the
    schema's default applies on create), `blank` the optional columns left blank (their default on create,
    and compared as the default on change)."""

    line: int
    key: str | None
    values: dict[str, Any]
    blank: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    absent: tuple[str, ...] = ()  # required columns the file leaves out


def type_rows(columns: ColumnMap, raw: RawTable) -> Iterator[Row]:
    key_name = KEYS[columns.table]
    for line, cells in raw.rows:
        if all(_blank(c) for c in cells):
            continue
        row = Row(line=line, key=None, values={}, absent=columns.absent)
        for index in columns.unnamed:
            if index < len(cells) and not _blank(cells[index]):
                row.errors.append(f"a value in column {index + 1}, which has no header")
        if len(cells) > len(raw.header) and any(not _blank(c) for c in cells[len(raw.header) :]):
            row.errors.append(f"{len(cells)} cells but the header has {len(raw.header)} columns")
        for mapped in columns.fields:
            col = mapped.column
            value = cells[mapped.index] if mapped.index < len(cells) else None
            if _blank(value):
                if col.required:
                    row.errors.append(f"{col.name} is required")
                else:
                    row.blank.add(col.name)
                continue
            try:
                row.values[col.name] = cell_value(col, value, mapped.factor)
            except CellError as exc:
                row.errors.append(f"{col.name} ({mapped.header}): {exc}")
        key = row.values.get(key_name)
        row.key = key if isinstance(key, str) and key else None
        yield row


# --- per-row checks without the database ---------------------------------------------------------------

Serial = msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{3,31}$")
PartSerial = msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{2,63}$")


class _ModuleSchema(msgspec.Struct, forbid_unknown_fields=True):
    serial: Annotated[str, Serial]
    spec: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    giai: str = ""
    factory: Annotated[str, msgspec.Meta(max_length=16)] = ""
    state: Annotated[str, msgspec.Meta(max_length=32)] = ""
    site: Annotated[str, msgspec.Meta(max_length=16)] = ""


PartKind = Literal["gpu", "cpu", "nic", "dpu", "switch", "psu", "battery", "cdu", "pdu", "bmc", "ssd"]


class _PartSchema(msgspec.Struct, forbid_unknown_fields=True):
    serial: Annotated[str, PartSerial]
    kind: PartKind
    part_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    giai: str = ""
    manufacturer: Annotated[str, msgspec.Meta(max_length=64)] = ""
    description: Annotated[str, msgspec.Meta(max_length=200)] = ""
    module: Annotated[str, msgspec.Meta(max_length=32)] = ""
    position: Annotated[str, msgspec.Meta(max_length=32)] = ""


SCHEMAS: Final[dict[str, type[msgspec.Struct]]] = {
    "sites": SiteCreate,
    "specs": SpecCreate,
    "modules": _ModuleSchema,
    "parts": _PartSchema,
}
_AT = re.compile(r"^(?P<msg>.*?) - at `\$\.(?P<path>[^`]*)`$")


def _schema_reason(exc: msgspec.ValidationError) -> str:
    match = _AT.match(str(exc))
    if not match:
        return str(exc)
    path = match.group("path")
    return f"{path}: {match.group('msg')}"


def check_row(
    table: str, row: Row, company_prefix: str, current: Mapping[str, Any] | None = None
) -> msgspec.Struct | None:
    """The row as its table's schema (afm's own API rules: patterns, ranges, choices), every fault added to
    row.errors; None when it has any."""
    values = dict(row.values)
    if row.absent and not row.errors:
        if current is None:
            row.errors.append(f"a new row needs the column(s) the file leaves out: {', '.join(row.absent)}")
        else:
            values = {**{n: current[n] for n in row.absent}, **values}
    if table == "sites" and isinstance(values.get("country"), str):
        values["country"] = values["country"].upper()
    if table == "parts" and isinstance(values.get("kind"), str):
        values["kind"] = values["kind"].lower()
    if row.errors:
        return None
    try:
        typed = msgspec.convert(values, SCHEMAS[table], strict=False)
    except msgspec.ValidationError as exc:
        reason = _schema_reason(exc)
        serial = values.get("serial")
        if isinstance(serial, str) and _EXCEL_SCIENTIFIC.match(serial):
            reason += " (a number a spreadsheet wrote in scientific notation: format the column as text)"
        row.errors.append(reason)
        return None
    try:
        if table == "sites":
            typed = msgspec.structs.replace(typed, country=check_country(typed.country))  # type: ignore[attr-defined]
        if table == "specs":
            gpus = sum(line.quantity for line in typed.bom if line.kind == "gpu")  # type: ignore[attr-defined]
            if typed.bom and gpus != typed.gpu_count:  # type: ignore[attr-defined]
                raise RuleRefused(
                    f"bom_gpu_count: the bill of materials lists {gpus} GPUs but gpu_count is {typed.gpu_count}"  # type: ignore[attr-defined]
                )
    except DomainError as exc:
        row.errors.append(exc.detail)
        return None
    if table in ("modules", "parts"):
        serial: str = typed.serial  # type: ignore[attr-defined]
        try:
            identifier = payload.giai(company_prefix, serial)
        except ValueError as exc:
            row.errors.append(f"serial {serial!r} makes no valid GS1 GIAI: {exc}")
            return None
        given: str = typed.giai.removeprefix("(8004)").strip()  # type: ignore[attr-defined]
        if given and given != identifier.value:
            row.errors.append(
                f"giai {given!r} is not company prefix {company_prefix} + serial {serial} ({identifier.value})"
            )
            return None
    return typed


# --- the plan ------------------------------------------------------------------------------------------


class RowResult(msgspec.Struct):
    """One row of the plan: what applying the file would do with it, and why a refused row is refused."""

    row: int  # the line of a CSV (multi-line cells counted), the row of an XLSX sheet
    action: Action
    key: str | None
    changes: dict[str, dict[str, Any]] = {}  # field -> {"from": now, "to": after}
    reason: str = ""


@dataclass
class ModuleState:
    """What the plan needs to know of a module that parts are installed in."""

    serial: str
    state: str
    bom: list[dict[str, Any]]
    counts: dict[str, int]
    positions: set[str]


@dataclass
class Context:
    """What the database says, loaded by the service, for the rows of one file."""

    table: str
    existing: dict[str, dict[str, Any]]  # key -> the row as the export writes it
    specs: frozenset[str] = frozenset()
    factories: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    initial_state: str = "planned"
    qualified: dict[str, frozenset[str]] = field(default_factory=dict)  # part kind -> qualified part numbers
    modules: dict[str, ModuleState] = field(default_factory=dict)


@dataclass
class Planned:
    """A row of the plan with what apply needs: the typed row and the operation."""

    result: RowResult
    typed: msgspec.Struct | None = None
    install: tuple[str, str] | None = None  # parts: (module serial, position) to install into


DEFAULTS: Final[dict[str, Any]] = {"bom": [], "battery_wh": 0.0}


def _comparable(table: str, name: str, value: Any) -> Any:
    if name == "bom":
        return msgspec.to_builtins(msgspec.convert(value or [], list[BomLine]))
    if value is None:
        return ""
    return value


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Reading and planning allocate a few acyclic objects per row; meanwhile the cyclic collector would walk
    the whole (large) heap again and again as it grows: a third of a 10,000-row dry run, and nothing to find.
    Reference counting still frees everything; the collector runs as before once the block ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_rows(table: str, rows: Iterable[Row], context: Context, company_prefix: str) -> list[Planned]:
    """Every row's action, in file order. Rows are judged against the database and the rows above them
    (a key twice refuses the second; parts installed by earlier rows fill their modules)."""
    with cyclic_gc_paused():
        return _plan_rows(table, rows, context, company_prefix)


def _plan_rows(table: str, rows: Iterable[Row], context: Context, company_prefix: str) -> list[Planned]:
    seen: dict[str, int] = {}
    out: list[Planned] = []
    for row in rows:
        typed = check_row(table, row, company_prefix, context.existing.get(row.key or ""))
        if row.key is not None:
            if row.key in seen and typed is not None:
                row.errors.append(f"{KEYS[table]} {row.key} is also on line {seen[row.key]}")
                typed = None
            seen.setdefault(row.key, row.line)
        if typed is None:
            out.append(Planned(RowResult(row.line, "refused", row.key, reason="; ".join(row.errors))))
            continue
        try:
            out.append(_plan_one(table, row, typed, context))
        except DomainError as exc:
            out.append(Planned(RowResult(row.line, "refused", row.key, reason=exc.detail)))
    return out


def _present(row: Row, typed: msgspec.Struct) -> dict[str, Any]:
    """The fields the file has for this row (blank ones as their default), typed."""
    names = set(row.values) | row.blank
    return {n: getattr(typed, n) for n in typed.__struct_fields__ if n in names and n != "giai"}


def _plan_one(table: str, row: Row, typed: msgspec.Struct, context: Context) -> Planned:
    key = row.key or ""
    current = context.existing.get(key)
    present = _present(row, typed)
    if table == "modules":
        return _plan_module(row, typed, present, current, context)
    if table == "parts":
        return _plan_part(row, typed, present, current, context)
    if current is None:
        changes = _created(present, KEYS[table])
        return Planned(RowResult(row.line, "create", key, changes), typed)
    changes = _diff(table, present, current)
    if table == "specs" and ("bom" in changes or "gpu_count" in changes):
        bom = msgspec.convert(present.get("bom", current["bom"]), list[BomLine])
        count = present.get("gpu_count", current["gpu_count"])
        gpus = sum(line.quantity for line in bom if line.kind == "gpu")
        if bom and gpus != count:
            raise RuleRefused(f"bom_gpu_count: the bill of materials lists {gpus} GPUs but gpu_count is {count}")
    return Planned(RowResult(row.line, "change" if changes else "unchanged", key, changes), typed)


def _created(present: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """A new row's fields as changes from nothing; blank ones left out (they stay blank)."""
    return {
        n: {"from": None, "to": msgspec.to_builtins(v)} for n, v in present.items() if n != key and v not in ("", [])
    }


def _diff(table: str, present: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    changes = {}
    for name, value in present.items():
        new, old = _comparable(table, name, value), _comparable(table, name, current.get(name))
        if new != old:
            changes[name] = {"from": old, "to": new}
    return changes


def _plan_module(
    row: Row, typed: msgspec.Struct, present: dict[str, Any], current: dict[str, Any] | None, context: Context
) -> Planned:
    serial = row.key or ""
    if current is None:
        if typed.spec not in context.specs:  # type: ignore[attr-defined]
            known = ", ".join(sorted(context.specs)) or "none registered"
            raise RuleRefused(f"known_spec: no module spec {typed.spec!r}; known: {known}")  # type: ignore[attr-defined]
        if typed.factory and typed.factory not in context.factories:  # type: ignore[attr-defined]
            raise RuleRefused(f"known_factory: no factory {typed.factory!r}")  # type: ignore[attr-defined]
        if typed.state and typed.state != context.initial_state:  # type: ignore[attr-defined]
            raise RuleRefused(
                f"initial_state: a new module enters the registry as {context.initial_state}; "
                f"state {typed.state!r} would need its history (leave state blank)"  # type: ignore[attr-defined]
            )
        if typed.site:  # type: ignore[attr-defined]
            raise RuleRefused("initial_place: a new module is at its factory; leave site blank (pack it for a site)")
        return Planned(RowResult(row.line, "create", serial, _created(present, "serial")), typed)
    # factory, state and site only say where a module is: a blank one states nothing, so is not compared
    stated = {n: v for n, v in present.items() if v != "" or n not in ("factory", "state", "site")}
    changes = _diff("modules", stated, current)
    if changes:
        reasons = []
        for name, change in changes.items():
            how = {
                "spec": "a module's spec is fixed when it is registered",
                "factory": "a module's factory is fixed when it is registered",
                "state": f"states change through transitions (POST /api/v1/modules/{serial}/transitions)",
                "site": "a module reaches a site through a shipment (pack, deliver)",
            }[name]
            reasons.append(f"{name} is {change['from'] or 'blank'}, the file says {change['to'] or 'blank'}: {how}")
        raise RuleRefused("; ".join(reasons))
    return Planned(RowResult(row.line, "unchanged", serial), typed)


def _plan_part(
    row: Row, typed: msgspec.Struct, present: dict[str, Any], current: dict[str, Any] | None, context: Context
) -> Planned:
    serial = row.key or ""
    kind: str = typed.kind  # type: ignore[attr-defined]
    part_number: str = typed.part_number  # type: ignore[attr-defined]
    module: str = present.get("module", "")
    position: str = present.get("position", "")
    if current is None:
        qualified = context.qualified.get(kind, frozenset())
        if part_number not in qualified:
            listed = ", ".join(sorted(qualified)) or "none"
            raise RuleRefused(
                f"qualified_part: part number {part_number!r} is on no spec's bill of materials for {kind} "
                f"(qualified: {listed})"
            )
        changes = _created(present, "serial")
        install = None
        if module:
            position = _check_install(context, module, kind, part_number, position)
            changes["position"] = {"from": None, "to": position}
            install = (module, position)
        elif position:
            raise RuleRefused("position without module: a part has a position only in a module")
        return Planned(RowResult(row.line, "create", serial, changes), typed, install)
    fixed = [n for n in ("kind", "part_number") if n in present and present[n] != current[n]]
    if fixed:
        raise RuleRefused(
            f"part_identity: {serial} is recorded as {current['kind']} {current['part_number']}, not "
            f"{kind} {part_number}; a part's kind and part number are its identity"
        )
    catalogue = {n: v for n, v in present.items() if n in ("manufacturer", "description")}
    changes = _diff("parts", catalogue, current)
    install = None
    if "module" in present or "position" in present:
        now_in, now_at = current.get("module") or "", current.get("position") or ""
        wanted_at = position if "position" in present else now_at
        if now_in and (module != now_in or ("position" in present and wanted_at != now_at)):
            raise RuleRefused(
                f"build_step: {serial} is installed in {now_in} at {now_at}; moving or removing it is a build "
                f"step with a reason (POST /api/v1/modules/{now_in}/parts/{serial}/remove or /replace)"
            )
        if not now_in and module:
            position = _check_install(context, module, current["kind"], current["part_number"], position)
            changes["module"] = {"from": None, "to": module}
            changes["position"] = {"from": None, "to": position}
            install = (module, position)
        elif not now_in and position:
            raise RuleRefused("position without module: a part has a position only in a module")
    return Planned(RowResult(row.line, "change" if changes else "unchanged", serial, changes), typed, install)


def _check_install(context: Context, serial: str, kind: str, part_number: str, position: str) -> str:
    """The checks of the station's build step (app.factory.domain), against the module as the rows above
    leave it; returns the position and records the part in the module."""
    module = context.modules.get(serial)
    if module is None:
        raise RuleRefused(f"known_module: no module {serial!r}")
    check_build_state(serial, module.state)
    check_part_fits(serial, module.bom, module.counts, kind, part_number)
    position = position or next_position(kind, module.positions)
    if position in module.positions:
        raise RuleRefused(f"position_free: position {position} of {serial} is taken")
    module.positions.add(position)
    module.counts[kind] = module.counts.get(kind, 0) + 1
    return position


def summary(results: Iterable[RowResult]) -> dict[str, int]:
    counts = {"rows": 0, "create": 0, "change": 0, "unchanged": 0, "refused": 0}
    for r in results:
        counts["rows"] += 1
        counts[r.action] += 1
    return counts
