"""The pure side of imports: reading CSV and XLSX, mapping headers, units, cells, row checks and the plan."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.integration import imports
from app.integration.imports import Context, ImportFileError, ModuleState
from tests import import_files

PREFIX = "0614141"


def _faults(table: str, header: list[str]) -> list[str]:
    with pytest.raises(ImportFileError) as caught:
        imports.map_columns(table, header)
    assert all(line == 1 for line, _ in caught.value.faults)
    return [message for _, message in caught.value.faults]


# --- headers and units ---------------------------------------------------------------------------------


def test_headers_map_by_name_alias_case_and_spacing_in_any_order() -> None:
    columns = imports.map_columns("parts", ["Part No", " SERIAL-NUMBER ", "Type", "Vendor", "Installed In"])
    assert [(m.index, m.column.name) for m in columns.fields] == [
        (0, "part_number"),
        (1, "serial"),
        (2, "kind"),
        (3, "manufacturer"),
        (4, "module"),
    ]


@pytest.mark.parametrize(
    ("header", "field", "factor"),
    [
        ("power_kw", "power_kw", "1"),
        ("Power (kW)", "power_kw", "1"),
        ("power [KW]", "power_kw", "1"),
        ("power (W)", "power_kw", "0.001"),
        ("power_mw", "power_kw", "1000"),
        ("weight (t)", "weight_kg", "1000"),
        ("gross weight (tonnes)", "weight_kg", "1000"),
        ("length (m)", "length_mm", "1000"),
        ("height_cm", "height_mm", "10"),
        ("battery (kWh)", "battery_wh", "1000"),
    ],
)
def test_units_are_the_stored_one_or_an_exact_conversion(header: str, field: str, factor: str) -> None:
    spec_header = [h for h in imports.export_columns("specs") if h != field] + [header]
    mapped = {m.column.name: m.factor for m in imports.map_columns("specs", spec_header).fields}
    assert mapped[field] == Decimal(factor)


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("power", "say the unit"),
        ("power (hp)", "'hp' is not accepted for power; use kW, W, MW"),
        ("power (kg)", "not accepted for power"),
        ("power_btu", "not accepted for power"),
        ("power_kw (W)", "contradicts"),
        ("name (kW)", "takes no unit"),
        ("colour", "unknown column 'colour'"),
    ],
)
def test_a_header_that_breaks_a_rule_refuses_the_file(header: str, needle: str) -> None:
    base = [h for h in imports.export_columns("specs") if h != "power_kw"]
    if header.startswith("power_kw"):
        base = imports.export_columns("specs")[:-1]  # power_kw stays out once, so the fault is the unit
    faults = _faults("specs", [*base, header])
    assert any(needle in f for f in faults), faults


def test_every_header_fault_is_reported_at_once() -> None:
    faults = _faults("parts", ["serial", "Serial Number", "colour"])
    assert any("both serial" in f for f in faults)
    assert any("unknown column" in f for f in faults)
    assert _faults("parts", ["kind", "part_number"]) == ["no serial column: every parts row is found by its serial"]


def test_the_cli_offers_every_table() -> None:
    from app.integration import import_cli

    assert import_cli.TABLES == imports.TABLES and import_cli.XLSX_MEDIA_TYPE == imports.XLSX_MEDIA_TYPE


def test_exports_write_exactly_what_the_import_reads() -> None:
    for table in imports.TABLES:
        columns = imports.map_columns(table, imports.export_columns(table))
        assert [m.column.name for m in columns.fields] == imports.export_columns(table)
        assert all(m.factor == 1 for m in columns.fields)


# --- cells -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "factor", "whole", "expected"),
    [
        ("12.192", Decimal(1000), True, 12192),
        (" 290 ", Decimal(1), False, 290.0),
        (12500, Decimal("0.001"), False, 12.5),
        (0.1, Decimal(1), False, 0.1),
        ("-22.56", Decimal(1), False, -22.56),
    ],
)
def test_numbers_convert_exactly(value: object, factor: Decimal, whole: bool, expected: float) -> None:
    assert imports.cell_number(value, factor, whole=whole) == expected


@pytest.mark.parametrize(
    ("value", "whole", "needle"),
    [
        ("1,5", False, "decimal separator"),
        ("1,500", False, "decimal separator"),
        ("12.5", True, "whole"),
        ("abc", False, "not a number"),
        ("NaN", False, "finite"),
        (True, False, "true/false"),
    ],
)
def test_numbers_that_would_be_guesses_are_refused(value: object, whole: bool, needle: str) -> None:
    with pytest.raises(imports.CellError, match=needle):
        imports.cell_number(value, Decimal(1), whole=whole)


def test_a_serial_a_spreadsheet_made_a_number_reads_back_as_the_serial() -> None:
    assert imports.cell_text(1652923033041.0) == "1652923033041"
    assert imports.cell_text("  GPU-1  ") == "GPU-1"


@given(st.text(max_size=30))
def test_escape_then_unescape_gives_the_text_back(text: str) -> None:
    assert imports.unescape(imports.escape(text)) == text


@given(st.text(max_size=30))
def test_escaped_text_never_starts_like_a_formula(text: str) -> None:
    assert not imports.escape(text).startswith(imports.FORMULA_TRIGGERS)


# --- reading files ---------------------------------------------------------------------------------------


def test_csv_lines_count_multi_line_cells_and_skip_blank_lines() -> None:
    data = '\ufeffserial,kind,part_number,description\r\nA1X,gpu,P1,"two\nlines"\r\n\r\nB2X,gpu,P1,x\r\n'.encode()
    raw = imports.read_csv(data)
    assert raw.header == ["serial", "kind", "part_number", "description"]
    columns = imports.map_columns("parts", raw.header)
    rows = list(imports.type_rows(columns, raw))
    assert [(r.line, r.key) for r in rows] == [(2, "A1X"), (5, "B2X")]
    assert rows[0].values["description"] == "two\nlines"


def test_csv_with_semicolons_as_excel_writes_in_many_locales() -> None:
    raw = imports.read_csv(b"serial;kind;part_number\nA1X;gpu;P1\n")
    assert raw.header == ["serial", "kind", "part_number"] and raw.rows[0][1] == ["A1X", "gpu", "P1"]


def test_xlsx_reads_the_sheet_named_after_the_table() -> None:
    rows = import_files.parts_rows(3)
    data = import_files.to_xlsx(rows)
    raw = imports.read_file(data, imports.XLSX_MEDIA_TYPE, table="parts")
    assert raw.source == "xlsx" and raw.header == import_files.PART_COLUMNS
    assert [line for line, _ in raw.rows] == [2, 3, 4]
    assert raw.rows[0][1][0] == rows[0]["serial"]


def test_a_zip_that_would_inflate_too_far_is_refused_before_reading() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (8 * 1024 * 1024))
    with pytest.raises(ImportFileError, match="inflates") as caught:
        imports.check_zip(bomb.getvalue())
    assert caught.value.status == 413


def test_unreadable_files_say_why() -> None:
    with pytest.raises(ImportFileError, match="not UTF-8"):
        imports.read_csv("serial\nStra\xdfe\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="NUL"):
        imports.read_csv(b"serial\nA\x00B\n")
    with pytest.raises(ImportFileError, match="empty"):
        imports.read_csv(b"\r\n\r\n")
    with pytest.raises(ImportFileError, match="zip"):
        imports.read_file(b"PK\x03\x04 not really a zip")


# --- rows and the plan -----------------------------------------------------------------------------------


def _rows(table: str, text: str) -> list[imports.Row]:
    raw = imports.read_csv(text.encode())
    return list(imports.type_rows(imports.map_columns(table, raw.header), raw))


def _parts_context(**existing: dict[str, str]) -> Context:
    return Context(
        table="parts",
        existing=dict(existing),
        qualified={"gpu": frozenset({"900-2G548-0001-000"}), "nic": frozenset({"MCX75310AAS-NEAT"})},
        modules={
            "AFM-26-000146": ModuleState(
                "AFM-26-000146",
                "assembling",
                [{"kind": "gpu", "quantity": 2, "part_numbers": ["900-2G548-0001-000"], "manufacturer": "NVIDIA"}],
                {"gpu": 1},
                {"gpu-001"},
            )
        },
    )


def _plan(text: str, context: Context) -> list[imports.RowResult]:
    return [p.result for p in imports.plan_rows("parts", _rows("parts", text), context, PREFIX)]


def test_each_row_is_judged_with_its_reason() -> None:
    text = (
        "serial,kind,part_number,module\n"
        "1000000000001,gpu,900-2G548-0001-000,\n"  # create
        "1000000000002,gpu,900-0000-NOPE,\n"  # not qualified
        "1000000000001,gpu,900-2G548-0001-000,\n"  # twice
        "bad serial,gpu,900-2G548-0001-000,\n"  # pattern
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ,gpu,900-2G548-0001-000,\n"  # too long for a GIAI with the prefix
        "1000000000003,gpu,900-2G548-0001-000,AFM-26-000146\n"  # installs: the last free GPU slot
        "1000000000004,gpu,900-2G548-0001-000,AFM-26-000146\n"  # the module's GPUs are now complete
        "1000000000005,widget,X,\n"  # unknown kind
        ",gpu,900-2G548-0001-000,\n"  # no key
    )
    results = _plan(text, _parts_context())
    assert [(r.row, r.action) for r in results] == [
        (2, "create"),
        (3, "refused"),
        (4, "refused"),
        (5, "refused"),
        (6, "refused"),
        (7, "create"),
        (8, "refused"),
        (9, "refused"),
        (10, "refused"),
    ]
    reasons = [r.reason for r in results]
    assert "qualified_part" in reasons[1]
    assert "also on line 2" in reasons[2]
    assert reasons[3].startswith("serial:")
    assert "GIAI" in reasons[4] and "30" in reasons[4]
    assert results[5].changes["position"] == {"from": None, "to": "gpu-002"}
    assert "bom_quantity" in reasons[6]
    assert reasons[7].startswith("kind:")
    assert reasons[8] == "serial is required"


def test_existing_parts_change_only_their_catalogue_fields() -> None:
    current = {
        "serial": "1000000000001",
        "giai": PREFIX + "1000000000001",
        "kind": "gpu",
        "part_number": "900-2G548-0001-000",
        "manufacturer": "NVIDIA",
        "description": "old",
        "module": "AFM-26-000146",
        "position": "gpu-001",
    }
    context = _parts_context(**{"1000000000001": current})
    same = _plan(
        "serial,kind,part_number,module,position\n1000000000001,gpu,900-2G548-0001-000,AFM-26-000146,gpu-001\n", context
    )
    assert same[0].action == "unchanged"
    described = _plan("serial,kind,part_number,description\n1000000000001,gpu,900-2G548-0001-000,new\n", context)
    assert described[0].action == "change" and described[0].changes == {"description": {"from": "old", "to": "new"}}
    other = _plan("serial,kind,part_number\n1000000000001,nic,MCX75310AAS-NEAT\n", context)
    assert other[0].action == "refused" and "part_identity" in other[0].reason
    removed = _plan("serial,kind,part_number,module\n1000000000001,gpu,900-2G548-0001-000,\n", context)
    assert removed[0].action == "refused" and "build_step" in removed[0].reason


def test_a_file_without_required_columns_updates_existing_rows_and_refuses_new_ones() -> None:
    current = {"serial": "1000000000001", "kind": "gpu", "part_number": "900-2G548-0001-000", "description": "old"}
    context = _parts_context(**{"1000000000001": current})
    results = _plan("serial,description\n1000000000001,new\n1000000000002,other\n", context)
    assert [r.action for r in results] == ["change", "refused"]
    assert results[0].changes == {"description": {"from": "old", "to": "new"}}
    assert "leaves out: kind, part_number" in results[1].reason


def test_a_giai_column_must_match_prefix_and_serial() -> None:
    ok = f"serial,giai,kind,part_number\n1000000000001,(8004){PREFIX}1000000000001,gpu,900-2G548-0001-000\n"
    assert _plan(ok, _parts_context())[0].action == "create"
    wrong = "serial,giai,kind,part_number\n1000000000001,06141411000000000009,gpu,900-2G548-0001-000\n"
    result = _plan(wrong, _parts_context())[0]
    assert result.action == "refused" and "is not company prefix 0614141 + serial" in result.reason


def test_spec_rows_follow_the_api_rules() -> None:
    header = ",".join(imports.export_columns("specs"))
    bom = '"[{""kind"":""gpu"",""quantity"":4,""manufacturer"":""NVIDIA"",""part_numbers"":[""P1""]}]"'
    text = (
        f"{header}\n"
        f"S-1,One,NVIDIA L4,8,10,1000,6058,2438,2591,847150,EAR99,air,0,,{bom}\n"
        f"S-2,Two,NVIDIA L4,8,10,1000,6058,2438,2591,847150,EAR99,steam,0,,\n"
        f"S-3,Three,NVIDIA L4,8,-1,1000,6058,2438,2591,847150,EAR99,air,0,,\n"
    )
    rows = imports.plan_rows("specs", _rows("specs", text), Context(table="specs", existing={}), PREFIX)
    reasons = [p.result.reason for p in rows]
    assert "bom_gpu_count" in reasons[0]
    assert reasons[1].startswith("cooling:")
    assert reasons[2].startswith("power_kw:")


def test_a_site_country_is_checked_and_upper_cased() -> None:
    header = "code,name,country,lat,lon,power_kw,module_slots,renewable_source,cooling,security_level"
    text = f"{header}\nXX1,One,is,64,-22,1000,4,hydro,liquid,commercial\nXX2,Two,QQ,64,-22,1000,4,hydro,liquid,commercial\n"
    rows = imports.plan_rows("sites", _rows("sites", text), Context(table="sites", existing={}), PREFIX)
    assert rows[0].result.changes["country"]["to"] == "IS"
    assert "iso_country" in rows[1].result.reason


def test_an_existing_module_is_unchanged_or_refused_never_moved() -> None:
    current = {
        "serial": "AFM-24-000101",
        "spec": "L4-EDGE-20",
        "factory": "CZPAR1",
        "state": "retired",
        "site": "DEKEL1",
    }
    context = Context(table="modules", existing={"AFM-24-000101": current}, specs=frozenset({"L4-EDGE-20"}))
    text = (
        "serial,spec,factory,state,site\n"
        "AFM-24-000101,L4-EDGE-20,,,\n"  # blank: states nothing
        "AFM-24-000101,L4-EDGE-20,CZPAR1,in_service,DEKEL1\n"
    )
    plans = imports.plan_rows("modules", _rows("modules", text), context, PREFIX)
    assert plans[0].result.action == "unchanged"
    assert plans[1].result.action == "refused"  # the key twice: the second row is refused
    moved = "serial,spec,state\nAFM-24-000101,L4-EDGE-20,in_service\n"
    result = imports.plan_rows("modules", _rows("modules", moved), context, PREFIX)[0].result
    assert result.action == "refused" and "state is retired, the file says in_service" in result.reason
