"""Label templates are checked as a whole at load; each broken file reports its fault at its line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

from app.core.definitions import DefinitionError
from app.tags.labels import (
    LABELS_DIR,
    MIN_MODULE_MM,
    VALUE_KEYS,
    FieldSpec,
    check_templates,
    decode_template,
    fit_text,
    load_templates,
    locate,
    module_mm,
    qr_modules,
    qr_version,
)
from tests.conftest import assert_broken_file_fault

BROKEN = sorted((Path(__file__).parents[2] / "data" / "labels").glob("*.toml"))
SHIPPED = {"module-shipping", "part", "crate", "part-sheet-a4"}


def test_the_shipped_templates_load() -> None:
    templates = load_templates()
    assert set(templates) == SHIPPED
    sizes = {name: (t.asset, t.width_mm, t.height_mm) for name, t in templates.items()}
    assert sizes["module-shipping"] == ("module", 100, 150)
    assert sizes["part"] == ("part", 50, 25)
    assert sizes["crate"] == ("crate", 100, 100)
    sheet = templates["part-sheet-a4"].sheet
    assert sheet is not None
    assert (sheet.columns, sheet.rows, sheet.page_width_mm, sheet.page_height_mm) == (3, 8, 210, 297)
    assert templates["part-sheet-a4"].asset == "part"
    assert "zpl" not in templates["part-sheet-a4"].outputs
    for template in templates.values():
        assert set(template.value_keys) <= set(VALUE_KEYS[template.asset])
        # The size check at load holds for the longest URI the template was planned for.
        modules = qr_modules(qr_version(template.qr.payload_chars, template.qr.ecc))
        assert module_mm(template.qr, modules) >= MIN_MODULE_MM


def test_check_templates_lists_the_shipped_ones() -> None:
    ok, faults = check_templates()
    assert faults == []
    assert ok == [
        "labels/crate.toml: crate: crate label 100x100 mm, outputs pdf, png, zpl",
        "labels/module-shipping.toml: module-shipping: module label 100x150 mm, outputs pdf, png, zpl",
        "labels/part-sheet-a4.toml: part-sheet-a4: part label 63.5x33.9 mm, 3x8 on 210x297 mm sheets, outputs pdf, png",
        "labels/part.toml: part: part label 50x25 mm, outputs pdf, png, zpl",
    ]


def test_there_is_a_broken_file_per_fault_kind() -> None:
    assert len(BROKEN) >= 20


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_file_reports_one_fault_at_its_line(path: Path) -> None:
    assert_broken_file_fault(path, decode_template)


def test_all_faults_of_a_file_are_reported_together() -> None:
    text = (LABELS_DIR / "part.toml").read_text()
    text = text.replace('value = "kind"', 'value = "gpu_model"').replace("y_mm = 20\n", "y_mm = 24.5\n")
    with pytest.raises(DefinitionError) as caught:
        decode_template(text.encode(), "two.toml")
    lines = text.splitlines()
    value_line = lines.index('value = "gpu_model"') + 1
    y_line = lines.index("y_mm = 24.5") + 1
    assert [f.split(": ", 1)[0] for f in caught.value.faults] == [f"two.toml:{value_line}", f"two.toml:{y_line}"]


def test_load_templates_refuses_duplicate_names_and_reports_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_bytes((LABELS_DIR / "part.toml").read_bytes())
    (tmp_path / "b.toml").write_bytes((LABELS_DIR / "part.toml").read_bytes())
    (tmp_path / "c.toml").write_bytes((BROKEN[0].parent / "unknown_value.toml").read_bytes())
    with pytest.raises(DefinitionError) as caught:
        load_templates(tmp_path)
    faults = caught.value.faults
    assert len(faults) == 2, faults
    assert re.match(r".*b\.toml:2: duplicate template name 'part' \(also .*a\.toml\)$", faults[0]), faults
    assert re.match(r".*c\.toml:18: field 1: 'gpu_model' is not a part value", faults[1]), faults


def test_check_templates_splits_good_from_bad(tmp_path: Path) -> None:
    (tmp_path / "crate.toml").write_bytes((LABELS_DIR / "crate.toml").read_bytes())
    (tmp_path / "broken.toml").write_bytes((BROKEN[0].parent / "qr_too_small.toml").read_bytes())
    (tmp_path / "README.md").write_text("not a template\n")
    ok, faults = check_templates(tmp_path)
    assert [line.split(": ", 1)[1] for line in ok] == ["crate: crate label 100x100 mm, outputs pdf, png, zpl"]
    assert len(faults) == 1
    assert re.match(r".*broken\.toml:11: .*under the 0\.25 mm minimum", faults[0]), faults


def test_an_empty_directory_is_a_fault(tmp_path: Path) -> None:
    ok, faults = check_templates(tmp_path)
    assert ok == []
    assert len(faults) == 1
    assert faults[0].endswith("*.toml:1: no label templates")


def test_locate_maps_json_paths_to_toml_lines() -> None:
    text = (
        'name = "x"\n'  # 1
        "[qr]\n"  # 2
        "x_mm = 1\n"  # 3
        "size_mm = 2\n"  # 4
        "[[fields]]\n"  # 5
        "x_mm = 3\n"  # 6
        "[[fields]]\n"  # 7
        "x_mm = 4\n"  # 8
        "text = 'b'\n"  # 9
        "[sheet]\n"  # 10
        "rows = 2\n"  # 11
    )
    assert locate(text, "$.name") == 1
    assert locate(text, "$.qr") == 2
    assert locate(text, "$.qr.size_mm") == 4
    assert locate(text, "$.fields[0].x_mm") == 6
    assert locate(text, "$.fields[1].x_mm") == 8  # not the [qr] table's x_mm
    assert locate(text, "$.fields[1]", "text") == 9
    assert locate(text, "$.sheet.rows") == 11
    assert locate(text, "$.fields[5].x_mm") == 1  # past the end: fall back to the top
    inline = 'name = "x"\nqr = { x_mm = 1, size_mm = 2 }\noutputs = ["pdf", "zpl"]\n'
    assert locate(inline, "$.qr.size_mm") == 2
    assert locate(inline, "$.outputs[1]") == 3


@pytest.mark.parametrize(
    ("ecc", "level"), [("L", ERROR_CORRECT_L), ("M", ERROR_CORRECT_M), ("Q", ERROR_CORRECT_Q), ("H", ERROR_CORRECT_H)]
)
def test_the_capacity_table_agrees_with_qrcode(ecc: str, level: int) -> None:
    for chars in (1, 17, 42, 72, 100, 101, 250, 700, 1200):
        code = qrcode.QRCode(error_correction=level)
        code.add_data(b"\xff" * chars, optimize=0)  # bytes only: the worst case the table is for
        try:
            expected = code.best_fit()
        except qrcode.exceptions.DataOverflowError:
            with pytest.raises(ValueError, match="do not fit"):
                qr_version(chars, ecc)  # type: ignore[arg-type]
            continue
        assert qr_version(chars, ecc) == expected, (ecc, chars)  # type: ignore[arg-type]


def test_field_spans_follow_the_alignment() -> None:
    assert FieldSpec(x_mm=10, y_mm=0, text="a", max_width_mm=20).span_mm(100) == (10, 30)
    assert FieldSpec(x_mm=10, y_mm=0, text="a").span_mm(100) == (10, 100)  # default: up to the edge
    assert FieldSpec(x_mm=50, y_mm=0, text="a", align="center", max_width_mm=20).span_mm(100) == (40, 60)
    assert FieldSpec(x_mm=30, y_mm=0, text="a", align="center").span_mm(100) == (0, 60)
    assert FieldSpec(x_mm=90, y_mm=0, text="a", align="right").span_mm(100) == (0, 90)


def _chars(text: str, size: float) -> float:
    return len(text) * size  # a monospace measure: each character is `size` wide


def test_fit_text_keeps_shrinks_then_ellipsises() -> None:
    assert fit_text("AFM-24-000101", 1.0, 13, _chars) == ("AFM-24-000101", 1.0)
    text, size = fit_text("AFM-24-000101", 1.0, 10, _chars)
    assert text == "AFM-24-000101"
    assert 0.7 <= size < 1.0
    assert _chars(text, size) <= 10
    text, size = fit_text("AI Factory module, 8x H100 SXM5, liquid cooled", 1.0, 14, _chars)
    assert size == pytest.approx(0.7)
    assert text.endswith("…")
    assert _chars(text, size) <= 14
    assert text[:-1] == "AI Factory module, 8x H100 SXM5"[: len(text) - 1].rstrip()
    assert fit_text("", 1.0, 0, _chars) == ("", 1.0)
