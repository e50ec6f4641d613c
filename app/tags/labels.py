"""Label templates are data: labels/*.toml decoded into frozen, typed Structs and checked as a whole.

A template places a QR code and text fields on a label of a given size, in millimetres from the label's
top-left corner (y grows downwards, as on the printed label and in ZPL). msgspec checks the types; the
cross-checks here see what types cannot: a QR code or a field that leaves the label or covers the QR's
quiet zone, a QR too small to print at 203 dpi, a sheet grid that does not fit its page, a `value` the
asset kind does not have, two templates with one name. Every fault is `file:line: message` and all faults
of a file are reported together, like workflows/ (app.core.definitions).

Pure: no rendering library is imported here; app.documents.labels draws templates as PDF, PNG and ZPL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from app.core.config import PROJECT_ROOT
from app.core.definitions import TOML_FAULTS, DefinitionError, load_folder, locate, schema_fault

LABELS_DIR = PROJECT_ROOT / "labels"

AssetKind = Literal["module", "part", "crate", "package"]
Ecc = Literal["L", "M", "Q", "H"]
Align = Literal["left", "center", "right"]
Output = Literal["pdf", "png", "zpl"]

# What a label can print per asset kind: the keys of LabelData.values. `hri` is the human-readable GS1 form,
# e.g. `(8004)0614141AFM-24-000101`; `uri` the GS1 Digital Link URI the QR code encodes.
VALUE_KEYS: dict[str, tuple[str, ...]] = {
    "module": (
        "serial",
        "spec",
        "spec_name",
        "gpu_model",
        "gpu_count",
        "weight_kg",
        "dimensions",
        "factory",
        "hri",
        "uri",
    ),
    "part": ("serial", "kind", "part_number", "module", "hri", "uri"),
    "crate": ("serial", "asset_type", "description", "hri", "uri"),
    "package": ("sscc", "shipment", "contents", "gross_kg", "hri", "uri"),
}

MM_PER_PT = 25.4 / 72
# The smallest QR module a template may print: 2 dots at 203 dpi (8 dots/mm). One-dot modules smear on
# thermal printers and phone cameras struggle below ~0.25 mm at arm's length.
MIN_MODULE_MM = 0.25
# Text is never shrunk below this share of its template size; past it, it is cut short with an ellipsis.
MIN_TEXT_SCALE = 0.7

# ISO/IEC 18004 byte-mode capacity (characters) of QR versions 1-40 per error-correction level; a GS1
# Digital Link URI is encoded as bytes in the worst case (an encoder may pick denser segments).
_BYTE_CAPACITY: dict[str, tuple[int, ...]] = {
    "L": (17, 32, 53, 78, 106, 134, 154, 192, 230, 271, 321, 367, 425, 458, 520, 586, 644, 718, 792, 858,
          929, 1003, 1091, 1171, 1273, 1367, 1465, 1528, 1628, 1732, 1840, 1952, 2068, 2188, 2303, 2431, 2563,
          2699, 2809, 2953),
    "M": (14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
          711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809, 1911, 1989,
          2099, 2213, 2331),
    "Q": (11, 20, 32, 46, 60, 74, 86, 108, 130, 151, 177, 203, 241, 258, 292, 322, 364, 394, 442, 482,
          509, 565, 611, 661, 715, 751, 805, 868, 908, 982, 1030, 1112, 1168, 1228, 1283, 1351, 1423, 1499,
          1579, 1663),
    "H": (7, 14, 24, 34, 44, 58, 64, 84, 98, 119, 137, 155, 177, 194, 220, 250, 280, 310, 338, 382, 403,
          439, 461, 511, 535, 593, 625, 658, 698, 742, 790, 842, 898, 958, 983, 1051, 1093, 1139, 1219,
          1273),
}  # fmt: skip

Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$")]
Mm = Annotated[float, msgspec.Meta(ge=0)]
Size = Annotated[float, msgspec.Meta(gt=0, le=1000)]


class QrSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The QR code's square, quiet zone included: `size_mm` is the outer size, the code is centred in it."""

    x_mm: Mm
    y_mm: Mm
    size_mm: Size
    quiet_zone: Annotated[int, msgspec.Meta(ge=4, le=16)] = 4  # light modules around the code; ISO asks for 4
    ecc: Ecc = "M"
    # The longest text the size is checked for at template load; longer text is refused when printed if
    # its modules come out smaller than MIN_MODULE_MM.
    payload_chars: Annotated[int, msgspec.Meta(ge=1, le=2953)] = 100


class FieldSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One line of text: a literal `text` or the asset's `value`. (x_mm, y_mm) is the top of the line at its
    left edge, centre or right edge (`align`); text wider than `max_width_mm` (default: up to the label's
    edge) is shrunk to MIN_TEXT_SCALE of its size, then cut short with an ellipsis."""

    x_mm: Mm
    y_mm: Mm
    text: str | None = None
    value: str | None = None
    font_size: Annotated[float, msgspec.Meta(ge=4, le=96)] = 8.0  # points
    bold: bool = False
    max_width_mm: Size | None = None
    align: Align = "left"

    @property
    def height_mm(self) -> float:
        return self.font_size * MM_PER_PT

    def span_mm(self, label_width_mm: float) -> tuple[float, float]:
        """(left, right) of the box the text may occupy."""
        if self.align == "left":
            width = self.max_width_mm if self.max_width_mm is not None else label_width_mm - self.x_mm
            return self.x_mm, self.x_mm + width
        if self.align == "right":
            width = self.max_width_mm if self.max_width_mm is not None else self.x_mm
            return self.x_mm - width, self.x_mm
        half = self.max_width_mm / 2 if self.max_width_mm is not None else min(self.x_mm, label_width_mm - self.x_mm)
        return self.x_mm - half, self.x_mm + half


class SheetSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Labels in a grid on sheet stock (PDF only): left to right, then top to bottom, page after page."""

    page_width_mm: Size = 210.0  # A4
    page_height_mm: Size = 297.0
    columns: Annotated[int, msgspec.Meta(ge=1, le=50)] = 1
    rows: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    margin_left_mm: Mm = 0.0
    margin_top_mm: Mm = 0.0
    pitch_x_mm: Size | None = None  # label to label, left edges; default: the label width (no gap)
    pitch_y_mm: Size | None = None

    def pitch(self, width_mm: float, height_mm: float) -> tuple[float, float]:
        return (self.pitch_x_mm or width_mm, self.pitch_y_mm or height_mm)

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


class LabelTemplate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    asset: AssetKind
    width_mm: Size
    height_mm: Size
    qr: QrSpec
    description: str = ""
    fields: tuple[FieldSpec, ...] = ()
    sheet: SheetSpec | None = None
    outputs: tuple[Output, ...] = ("pdf", "png", "zpl")

    @property
    def value_keys(self) -> tuple[str, ...]:
        """The asset values the template prints, in field order, without repeats."""
        return tuple(dict.fromkeys(f.value for f in self.fields if f.value is not None))


class LabelData(msgspec.Struct, frozen=True):
    """One label's content: `qr` is the exact text the QR code holds (the tag's URI); `values` the asset's
    printable values, keyed as in VALUE_KEYS."""

    qr: str
    values: dict[str, str]


# --- QR sizing ---------------------------------------------------------------------------------------


def qr_version(chars: int, ecc: Ecc) -> int:
    """The smallest QR version that holds `chars` bytes at `ecc` (ValueError past version 40)."""
    for version, capacity in enumerate(_BYTE_CAPACITY[ecc], start=1):
        if chars <= capacity:
            return version
    raise ValueError(f"{chars} bytes do not fit a QR code at error correction {ecc}")


def qr_modules(version: int) -> int:
    """Modules along one side of a QR code of this version, quiet zone excluded."""
    return 17 + 4 * version


def module_mm(qr: QrSpec, modules: int) -> float:
    """The printed module size when a code of `modules` (quiet zone excluded) fills the QR square."""
    return qr.size_mm / (modules + 2 * qr.quiet_zone)


# --- text fitting --------------------------------------------------------------------------------------

ELLIPSIS = "…"


def fit_text(
    text: str, size: float, max_width: float, measure: Callable[[str, float], float], *, ellipsis: str = ELLIPSIS
) -> tuple[str, float]:
    """(text, size) that fits `max_width`: as is, else shrunk down to MIN_TEXT_SCALE of `size`, else at that
    size cut short with `ellipsis`. `measure(text, size)` is the renderer's width in max_width's unit."""
    width = measure(text, size)
    if width <= max_width or not text:
        return text, size
    smaller = max(size * MIN_TEXT_SCALE, size * max_width / width * 0.999)
    if measure(text, smaller) <= max_width:
        return text, smaller
    # Longest prefix that fits with the ellipsis: binary search, since width grows with length.
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid].rstrip() + ellipsis, smaller) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return (text[:lo].rstrip() + ellipsis if lo else ellipsis), smaller


# --- mapping a JSON path back to a TOML line -----------------------------------------------------------

# --- decoding and checking -----------------------------------------------------------------------------

_EPS = 1e-6  # millimetre comparisons: 0.1 + 0.2 must still fit in 0.3


def check_template(template: LabelTemplate, text: str, source: str) -> list[str]:
    """Every fault of one template beyond its types, each `file:line: message`."""
    faults: list[str] = []

    def fault(path: str, message: str) -> None:
        faults.append(f"{source}:{locate(text, path)}: {message}")

    w, h = template.width_mm, template.height_mm
    qr = template.qr
    if qr.x_mm + qr.size_mm > w + _EPS or qr.y_mm + qr.size_mm > h + _EPS:
        fault(
            "$.qr.size_mm",
            f"the QR code ({qr.x_mm:g}+{qr.size_mm:g} x {qr.y_mm:g}+{qr.size_mm:g} mm, quiet zone included) "
            f"does not fit the {w:g}x{h:g} mm label",
        )
    try:
        modules = qr_modules(qr_version(qr.payload_chars, qr.ecc))
    except ValueError as exc:
        fault("$.qr.payload_chars", str(exc))
    else:
        pitch = module_mm(qr, modules)
        if pitch < MIN_MODULE_MM - _EPS:
            need = MIN_MODULE_MM * (modules + 2 * qr.quiet_zone)
            fault(
                "$.qr.size_mm",
                f"a {qr.payload_chars}-character URI at error correction {qr.ecc} needs {modules}+2x{qr.quiet_zone} "
                f"modules: {qr.size_mm:g} mm prints them at {pitch:.3f} mm, under the {MIN_MODULE_MM} mm minimum "
                f"(2 dots at 203 dpi); make size_mm >= {math.ceil(need * 10) / 10:g}",
            )

    known = VALUE_KEYS[template.asset]
    for i, field in enumerate(template.fields):
        at = f"$.fields[{i}]"
        if (field.text is None) == (field.value is None):
            fault(at, f"field {i + 1}: give exactly one of `text` (literal) or `value` (from the asset)")
            continue
        if field.text is not None and not field.text.strip():
            fault(f"{at}.text", f"field {i + 1}: text is empty")
        if field.value is not None and field.value not in known:
            fault(
                f"{at}.value",
                f"field {i + 1}: {field.value!r} is not a {template.asset} value; known: {', '.join(known)}",
            )
        left, right = field.span_mm(w)
        top, bottom = field.y_mm, field.y_mm + field.height_mm
        if left < -_EPS or right > w + _EPS or right - left <= _EPS:
            where = "max_width_mm" if field.max_width_mm is not None else "x_mm"
            fault(
                f"{at}.{where}",
                f"field {i + 1}: its box {left:g}..{right:g} mm (align {field.align}) leaves the {w:g} mm wide label",
            )
        if bottom > h + _EPS:
            fault(
                f"{at}.y_mm",
                f"field {i + 1}: a {field.font_size:g} pt line at y {field.y_mm:g} mm ends at {bottom:.1f} mm, "
                f"below the {h:g} mm high label",
            )
        overlaps = (
            left < qr.x_mm + qr.size_mm - _EPS
            and right > qr.x_mm + _EPS
            and top < qr.y_mm + qr.size_mm - _EPS
            and bottom > qr.y_mm + _EPS
        )
        if overlaps:
            fault(
                at,
                f"field {i + 1}: its box {left:g}..{right:g} x {top:g}..{bottom:.1f} mm covers the QR code or its "
                "quiet zone (set max_width_mm or move it)",
            )

    if len(set(template.outputs)) != len(template.outputs) or not template.outputs:
        fault("$.outputs", "outputs must name each of pdf, png, zpl at most once, and at least one")
    sheet = template.sheet
    if sheet is not None:
        if "zpl" in template.outputs:
            fault("$.outputs", "a sheet template prints on sheet stock: ZPL (roll printers) is not an output")
        pitch_x, pitch_y = sheet.pitch(w, h)
        if pitch_x < w - _EPS:
            fault("$.sheet.pitch_x_mm", f"pitch_x_mm {pitch_x:g} is less than the label width {w:g}: labels overlap")
        if pitch_y < h - _EPS:
            fault("$.sheet.pitch_y_mm", f"pitch_y_mm {pitch_y:g} is less than the label height {h:g}: labels overlap")
        right = sheet.margin_left_mm + (sheet.columns - 1) * pitch_x + w
        bottom = sheet.margin_top_mm + (sheet.rows - 1) * pitch_y + h
        if right > sheet.page_width_mm + _EPS:
            fault(
                "$.sheet.columns",
                f"{sheet.columns} columns end at {right:g} mm, past the {sheet.page_width_mm:g} mm wide page",
            )
        if bottom > sheet.page_height_mm + _EPS:
            fault("$.sheet.rows", f"{sheet.rows} rows end at {bottom:g} mm, past the {sheet.page_height_mm:g} mm page")
    return faults


def decode_template(text: bytes, source: str) -> LabelTemplate:
    """Decode and check one template file; raises DefinitionError listing every fault."""
    decoded = text.decode("utf-8", errors="replace")
    try:
        template = msgspec.toml.decode(text, type=LabelTemplate)
    except TOML_FAULTS as exc:
        raise DefinitionError([schema_fault(source, decoded, exc)]) from exc
    faults = check_template(template, decoded, source)
    if faults:
        raise DefinitionError(faults)
    return template


def _load(directory: Path) -> tuple[dict[str, tuple[LabelTemplate, str]], list[str]]:
    """({name: (template, source)}, faults) for every *.toml in `directory`."""
    return load_folder(directory, decode_template, key="name", item="template", plural="label templates")


def load_templates(directory: Path = LABELS_DIR) -> dict[str, LabelTemplate]:
    """Every template in `directory` by name; raises DefinitionError with the faults of all files."""
    templates, faults = _load(directory)
    if faults:
        raise DefinitionError(faults)
    return {name: template for name, (template, _) in templates.items()}


def describe(template: LabelTemplate) -> str:
    size = f"{template.width_mm:g}x{template.height_mm:g} mm"
    if template.sheet is not None:
        s = template.sheet
        size += f", {s.columns}x{s.rows} on {s.page_width_mm:g}x{s.page_height_mm:g} mm sheets"
    return f"{template.name}: {template.asset} label {size}, outputs {', '.join(template.outputs)}"


def check_templates(directory: Path = LABELS_DIR) -> tuple[list[str], list[str]]:
    """(ok lines, fault lines) for every label template, like app.core.definitions.check_all."""
    templates, faults = _load(directory)
    ok = [f"{source}: {describe(template)}" for template, source in templates.values()]
    return ok, faults
