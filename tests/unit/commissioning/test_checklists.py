"""Checklist templates load and are checked as a whole; answers, visibility and sign-off follow their rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.commissioning.checklists import (
    CHECKLISTS_DIR,
    SECURITY_LEVELS,
    AnswerCheck,
    AnswerError,
    ChecklistTemplate,
    Item,
    Signature,
    SignOffError,
    check_answer,
    check_signoff,
    check_templates,
    decode_template,
    load_templates,
    missing_items,
    required_templates,
    visible_items,
)
from app.core.definitions import DefinitionError
from tests.conftest import assert_broken_file_fault

SHA = "ab" * 32
SHIPPED = {
    "delivery-inspection": ("delivery", 2, ("commercial", "sovereign", "defence")),
    "installation": ("installation", 3, ("commercial", "sovereign")),
    "installation-defence": ("installation", 3, ("defence",)),
    "functional-test": ("functional", 4, ("commercial", "sovereign")),
    "functional-test-defence": ("functional", 4, ("defence",)),
    "decommissioning": ("decommissioning", 1, ("commercial", "sovereign", "defence")),
}


@pytest.fixture(scope="module")
def templates() -> dict[str, ChecklistTemplate]:
    return load_templates()


def ids(items: list[Item]) -> list[str]:
    return [item.id for item in items]


# --- the shipped templates ----------------------------------------------------------------------------


def test_the_shipped_templates_load(templates: dict[str, ChecklistTemplate]) -> None:
    assert {tid: (t.stage, t.level, t.security_levels) for tid, t in templates.items()} == SHIPPED
    for template in templates.values():
        assert template.version == "2026.1"
        assert template.signoff.witness == template.id.endswith("-defence")


def test_check_templates_lists_the_shipped_ones() -> None:
    ok, faults = check_templates()
    assert faults == []
    assert ok == [
        "workflows/checklists/decommissioning.toml: decommissioning 2026.1 (decommissioning, level 1, commercial/sovereign/defence), 13 items",
        "workflows/checklists/delivery-inspection.toml: delivery-inspection 2026.1 (delivery, level 2, commercial/sovereign/defence), 20 items",
        "workflows/checklists/functional-test-defence.toml: functional-test-defence 2026.1 (functional, level 4, defence), 15 items",
        "workflows/checklists/functional-test.toml: functional-test 2026.1 (functional, level 4, commercial/sovereign), 11 items",
        "workflows/checklists/installation-defence.toml: installation-defence 2026.1 (installation, level 3, defence), 20 items",
        "workflows/checklists/installation.toml: installation 2026.1 (installation, level 3, commercial/sovereign), 15 items",
    ]


def test_defence_templates_ask_everything_the_others_ask_and_more(templates: dict[str, ChecklistTemplate]) -> None:
    for base in ("installation", "functional-test"):
        plain, defence = templates[base], templates[f"{base}-defence"]
        extra = {i.id for i in defence.items} - {i.id for i in plain.items}
        assert {i.id for i in plain.items} <= {i.id for i in defence.items}
        assert "security-officer-present" in extra
        assert any(i.startswith("bmc-seals-") and templates[f"{base}-defence"].item(i).kind == "yes_no" for i in extra)


def test_the_shipped_templates_round_trip_as_json(templates: dict[str, ChecklistTemplate]) -> None:
    """A run keeps the template it was started with as JSON: it must decode back unchanged."""
    import msgspec

    for template in templates.values():
        again = msgspec.json.decode(msgspec.json.encode(template), type=ChecklistTemplate)
        assert again == template


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("commercial", ["delivery-inspection", "installation", "functional-test"]),
        ("sovereign", ["delivery-inspection", "installation", "functional-test"]),
        ("defence", ["delivery-inspection", "installation-defence", "functional-test-defence"]),
    ],
)
def test_required_templates_per_security_level(
    templates: dict[str, ChecklistTemplate], level: str, expected: list[str]
) -> None:
    assert [t.id for t in required_templates(templates, level)] == expected
    assert [t.id for t in required_templates(templates, level, ("decommissioning",))] == ["decommissioning"]


def test_required_templates_names_the_stage_and_level(templates: dict[str, ChecklistTemplate]) -> None:
    with pytest.raises(ValueError, match=r"^no delivery checklist template for security level 'secret'$"):
        required_templates(templates, "secret")
    without = {tid: t for tid, t in templates.items() if tid != "installation-defence"}
    with pytest.raises(ValueError, match=r"^no installation checklist template for security level 'defence'$"):
        required_templates(without, "defence")
    two = {**templates, "functional-test-2": templates["functional-test"]}
    with pytest.raises(
        ValueError,
        match=r"^2 functional checklist templates for security level 'sovereign': functional-test, functional-test$",
    ):
        required_templates(two, "sovereign")


# --- visibility and missing items ----------------------------------------------------------------------


def test_show_if_shows_an_item_only_for_its_answer(templates: dict[str, ChecklistTemplate]) -> None:
    delivery = templates["delivery-inspection"]
    shown = ids(visible_items(delivery, {}, "commercial"))
    assert "damage-photo" not in shown and "shock-photo" not in shown
    shown = ids(visible_items(delivery, {"visible-damage": False}, "commercial"))
    assert "damage-photo" not in shown
    shown = ids(visible_items(delivery, {"visible-damage": True}, "commercial"))
    assert shown.index("damage-photo") == shown.index("visible-damage") + 1
    assert "damage-description" in shown
    # An answer of another type never matches: "true" is not true.
    assert "damage-photo" not in ids(visible_items(delivery, {"visible-damage": "true"}, "commercial"))


def test_show_if_any_of(templates: dict[str, ChecklistTemplate]) -> None:
    functional = templates["functional-test"]
    for answer, shown in [("passed", False), ("passed with warnings", True), ("failed", True), (None, False)]:
        assert ("dcgm-notes" in ids(visible_items(functional, {"dcgm-diag": answer}, "commercial"))) is shown


def test_items_of_some_security_levels_only(templates: dict[str, ChecklistTemplate]) -> None:
    delivery = templates["delivery-inspection"]
    assert "custody-log" not in ids(visible_items(delivery, {}, "commercial"))
    assert "custody-log" in ids(visible_items(delivery, {}, "sovereign"))
    assert "custody-log" in ids(visible_items(delivery, {}, "defence"))
    decommissioning = templates["decommissioning"]
    assert "drives-retained" in ids(visible_items(decommissioning, {}, "defence"))
    assert "drives-retained" not in ids(visible_items(decommissioning, {}, "sovereign"))
    with pytest.raises(ValueError, match="unknown security level 'secret'"):
        visible_items(delivery, {}, "secret")


def test_an_item_that_follows_a_hidden_item_stays_hidden() -> None:
    template = decode_template(
        BASE.replace('id = "grade"', 'id = "grade"\nsecurity_levels = ["sovereign"]').encode(), "t"
    )
    answers = {"grade": "poor"}  # left over from before: grade is not asked at commercial sites
    assert "photo" not in ids(visible_items(template, answers, "commercial"))
    assert "photo" in ids(visible_items(template, answers, "sovereign"))


def test_missing_items(templates: dict[str, ChecklistTemplate]) -> None:
    delivery = templates["delivery-inspection"]
    missing = ids(missing_items(delivery, {}, "commercial"))
    assert missing[:3] == ["delivery-note", "seal-intact", "seal-number"]  # carrier is optional
    assert "carrier" not in missing and "damage-photo" not in missing and "custody-log" not in missing
    answers: dict[str, Any] = {item.id: None for item in delivery.items}
    assert ids(missing_items(delivery, answers, "commercial")) == missing  # None is no answer
    answers = {
        "delivery-note": "CMR 0042",
        "seal-intact": True,
        "seal-number": "  ",  # blank text is no answer
        "seal-matches": True,
        "shock-indicator": False,
        "tilt-indicator": False,
        "humidity-indicator": "all spots blue (dry)",
        "desiccant-ok": True,
        "visible-damage": True,
        "damage-photo": SHA,
        "photo-front": SHA,
        "photo-rear": SHA,
        "photo-left": SHA,
        "photo-right": SHA,
        "receipt": "accepted with reservations on the delivery note",
    }
    assert ids(missing_items(delivery, answers, "commercial")) == ["seal-number", "damage-description"]
    assert ids(missing_items(delivery, answers, "defence")) == ["seal-number", "custody-log", "damage-description"]
    answers |= {"seal-number": "EU12345678", "damage-description": "forklift dent, left rear corner"}
    assert missing_items(delivery, answers, "commercial") == []


# --- answers ----------------------------------------------------------------------------------------------


def item(kind: str, **fields: Any) -> Item:
    return Item(id="x", label="X", kind=kind, **fields)  # type: ignore[arg-type]


YES_NO_OK_FALSE = item("yes_no", ok=False)
TEMPERATURE = item("number", unit="°C", min=15.0, max=35.0)
VOLTAGE = item("measurement", unit="V", min=360.0, max=440.0)
GRADE = item("choice", choices=("good", "poor"))


@pytest.mark.parametrize(
    ("target", "value"),
    [
        (item("yes_no"), True),
        (item("yes_no"), False),
        (YES_NO_OK_FALSE, False),
        (TEMPERATURE, 15),
        (TEMPERATURE, 35.0),
        (item("number"), -1e9),
        (item("text"), "anything"),
        (item("text", required=False), ""),
        (GRADE, "poor"),
        (item("photo"), SHA),
        (VOLTAGE, {"value": 401.2, "instrument": "FLUKE-1664-44120"}),
        (VOLTAGE, {"value": 360, "instrument": "FLUKE-1664-44120"}),
        (item("signature"), "Kari Nordmann"),
    ],
)
def test_well_formed_answers_pass_unflagged(target: Item, value: object) -> None:
    assert check_answer(target, value) == AnswerCheck(flagged=False, reason="")


@pytest.mark.parametrize(
    ("target", "value", "message"),
    [
        (item("yes_no"), None, "no answer given"),
        (item("yes_no"), "yes", "a yes/no answer must be true or false, not 'yes'"),
        (item("yes_no"), 1, "a yes/no answer must be true or false, not 1"),
        (TEMPERATURE, "20", "the answer must be a number, not str"),
        (TEMPERATURE, True, "the answer must be a number, not bool"),
        (TEMPERATURE, float("nan"), "the answer must be a finite number"),
        (item("text"), 12, "the answer must be text, not int"),
        (item("text"), " ", "this item is required: the text cannot be empty"),
        (item("signature", required=False), "", "a signature is the signer's full name typed out: it cannot be empty"),
        (GRADE, "average", "'average' is not one of the choices: good, poor"),
        (GRADE, 1, "1 is not one of the choices: good, poor"),
        (
            item("photo"),
            "AB" * 32,
            "a photo answer is the SHA-256 of a stored evidence file (64 hex digits), not 'ABAB",
        ),
        (item("photo"), SHA[:-1], "(64 hex digits)"),
        (item("photo"), None, "no answer given"),
        (VOLTAGE, 400.0, 'a measurement must be {"value": number, "instrument": serial}'),
        (VOLTAGE, {"instrument": "F-1"}, "a measurement needs its value"),
        (VOLTAGE, {"value": "400", "instrument": "F-1"}, "the measured value must be a number, not str"),
        (VOLTAGE, {"value": 400.0}, "a measurement needs the serial number of the instrument it was taken with"),
        (VOLTAGE, {"value": 400.0, "instrument": " "}, "serial number of the instrument"),
        (
            VOLTAGE,
            {"value": 400.0, "instrument": "F-1", "unit": "V"},
            "a measurement has only value and instrument, not unit",
        ),
    ],
)
def test_malformed_answers_are_refused(target: Item, value: object, message: str) -> None:
    with pytest.raises(AnswerError) as caught:
        check_answer(target, value, comment="a comment changes nothing here")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("target", "value", "reason"),
    [
        (TEMPERATURE, 38.5, "38.5 °C is above the allowed maximum 35 °C"),
        (TEMPERATURE, 14.9, "14.9 °C is below the allowed minimum 15 °C"),
        (item("number", min=2.0), 1, "1 is below the allowed minimum 2"),
        (VOLTAGE, {"value": 452.0, "instrument": "F-1"}, "452 V is above the allowed maximum 440 V"),
        (VOLTAGE, {"value": 341.5, "instrument": "F-1"}, "341.5 V is below the allowed minimum 360 V"),
        (YES_NO_OK_FALSE, True, "answered yes where no is expected"),
        (item("yes_no", ok=True), False, "answered no where yes is expected"),
    ],
)
def test_flagged_answers_need_a_comment(target: Item, value: object, reason: str) -> None:
    for blank in ("", "   "):
        with pytest.raises(AnswerError) as caught:
            check_answer(target, value, blank)
        assert str(caught.value) == f"{reason}: add a comment"
    assert check_answer(target, value, "indicator red on arrival, noted on CMR") == AnswerCheck(True, reason)


def test_answer_errors_are_value_errors() -> None:
    assert issubclass(AnswerError, ValueError)
    assert issubclass(SignOffError, ValueError)


# --- sign-off -----------------------------------------------------------------------------------------------


def test_an_engineer_alone_signs_a_normal_template(templates: dict[str, ChecklistTemplate]) -> None:
    for tid in ("delivery-inspection", "installation", "functional-test", "decommissioning"):
        check_signoff(templates[tid], [Signature("alice", "engineer", "engineer")])
    check_signoff(templates["installation"], [Signature("root", "admin", "engineer")])
    # A witness nobody asked for is welcome, under the same rules.
    check_signoff(
        templates["installation"], [Signature("alice", "engineer", "engineer"), Signature("bob", "auditor", "witness")]
    )


@pytest.mark.parametrize("tid", ["installation-defence", "functional-test-defence"])
def test_a_defence_template_needs_two_different_people(templates: dict[str, ChecklistTemplate], tid: str) -> None:
    template = templates[tid]
    with pytest.raises(SignOffError, match=f"^{tid} needs a second person to witness: one signature is not enough$"):
        check_signoff(template, [Signature("alice", "engineer", "engineer")])
    with pytest.raises(SignOffError, match="'alice' cannot sign as engineer and witness"):
        check_signoff(template, [Signature("alice", "engineer", "engineer"), Signature("alice", "engineer", "witness")])
    check_signoff(template, [Signature("alice", "engineer", "engineer"), Signature("bob", "auditor", "witness")])
    check_signoff(template, [Signature("bob", "admin", "witness"), Signature("alice", "engineer", "engineer")])


@pytest.mark.parametrize(
    ("signatures", "message"),
    [
        ([], "installation-defence needs an engineer's signature"),
        ([Signature("bob", "auditor", "witness")], "installation-defence needs an engineer's signature"),
        (
            [Signature("alice", "engineer", "engineer"), Signature("carol", "engineer", "engineer")],
            "installation-defence takes one engineer signature, not 2",
        ),
        (
            [
                Signature("alice", "engineer", "engineer"),
                Signature("bob", "auditor", "witness"),
                Signature("carol", "auditor", "witness"),
            ],
            "installation-defence takes one witness signature, not 2",
        ),
        (
            [Signature("alice", "auditor", "engineer"), Signature("bob", "engineer", "witness")],
            "role 'auditor' may not sign installation-defence as engineer; roles: engineer, admin",
        ),
        (
            [Signature("alice", "engineer", "engineer"), Signature("bob", "floor", "witness")],
            "role 'floor' may not witness installation-defence; roles: engineer, admin, auditor",
        ),
        (
            [Signature("alice", "engineer", "engineer"), Signature("bob", "auditor", "observer")],  # type: ignore[arg-type]
            "unknown signature kind 'observer'; kinds: engineer, witness",
        ),
    ],
)
def test_sign_off_refusals(templates: dict[str, ChecklistTemplate], signatures: list[Signature], message: str) -> None:
    with pytest.raises(SignOffError) as caught:
        check_signoff(templates["installation-defence"], signatures)
    assert str(caught.value) == message


# --- broken template files -----------------------------------------------------------------------------

# A sound template to break: two sections, so nested item faults must point past the first section.
BASE = """\
id = "broken"
version = "2026.1"
title = "Broken"
stage = "delivery"
level = 2
security_levels = ["commercial", "sovereign"]

[[sections]]
id = "first"
title = "First"

[[sections.items]]
id = "seal-intact"
label = "Seal intact?"
kind = "yes_no"
ok = true

[[sections.items]]
id = "temperature"
label = "Temperature"
kind = "number"
unit = "°C"
min = 15.0
max = 35.0

[[sections]]
id = "second"
title = "Second"

[[sections.items]]
id = "grade"
label = "Grade"
kind = "choice"
choices = ["good", "poor"]

[[sections.items]]
id = "photo"
label = "Photo"
kind = "photo"
show_if = { item = "grade", equals = "poor" }
"""
TEMPERATURE_ITEM = '[[sections.items]]\nid = "temperature"'
PHOTO_ITEM = '[[sections.items]]\nid = "photo"'
SHOW_IF = 'show_if = { item = "grade", equals = "poor" }'

# name: (replacements on BASE, message). The faulty line carries a `# <-` marker; none means line 1.
BROKEN: dict[str, tuple[list[tuple[str, str]], str]] = {
    "syntax_error": (
        [('[[sections]]\nid = "second"', '[[sections]  # <-\nid = "second"')],
        "Expected ']]' at the end of an array declaration",
    ),
    "missing_required": ([('title = "Broken"\n', "")], "Object missing required field `title`"),
    "wrong_type": ([("level = 2", 'level = "two"  # <-')], "Expected `int`, got `str`"),
    "level_out_of_range": ([("level = 2", "level = 6  # <-")], "Expected `int` <= 5"),
    "unknown_stage": ([('stage = "delivery"', 'stage = "transit"  # <-')], "Invalid enum value 'transit'"),
    "bad_item_id": (
        [('id = "seal-intact"', 'id = "Seal Intact"  # <-')],
        "Expected `str` matching regex '^[a-z][a-z0-9-]*$'",
    ),
    "unknown_kind_in_second_section": (
        [('kind = "choice"', 'kind = "dropdown"  # <-')],
        "Invalid enum value 'dropdown'",
    ),
    "misspelt_key_in_second_section": (
        [('label = "Photo"', 'lable = "Photo"  # <-')],
        "Object contains unknown field `lable`",
    ),
    "misspelt_show_if_key": (
        [(SHOW_IF, 'show_if = { item = "grade", equal = "poor" }  # <-')],
        "Object contains unknown field `equal`",
    ),
    "bad_version": (
        [('version = "2026.1"', 'version = "2026"  # <-')],
        "version '2026' is not like '2026.1' (digits.digits, optional -n)",
    ),
    "unknown_security_level": (
        [('security_levels = ["commercial", "sovereign"]', 'security_levels = ["commercial", "secret"]  # <-')],
        "unknown security level 'secret'; known: commercial, sovereign, defence",
    ),
    "no_security_level": (
        [('security_levels = ["commercial", "sovereign"]', "security_levels = []  # <-")],
        "the template names no security level it applies to",
    ),
    "item_level_not_of_template": (
        [('label = "Photo"', 'label = "Photo"\nsecurity_levels = ["defence"]  # <-')],
        "item 'photo': security level 'defence' is not one the template applies to",
    ),
    "unknown_item_security_level": (
        [('label = "Photo"', 'label = "Photo"\nsecurity_levels = ["secret"]  # <-')],
        "item 'photo': unknown security level 'secret'; known: commercial, sovereign, defence",
    ),
    "duplicate_section_id": ([('id = "second"', 'id = "first"  # <-')], "duplicate section id 'first'"),
    "duplicate_item_id_across_sections": (
        [('id = "photo"', 'id = "temperature"  # <-')],
        "duplicate item id 'temperature': item ids are unique across the template",
    ),
    "empty_section": (
        [(SHOW_IF, SHOW_IF + '\n\n[[sections]]  # <-\nid = "third"\ntitle = "Third"\nitems = []')],
        "section 'third' has no items",
    ),
    "min_above_max": (
        [("min = 15.0", "min = 40.0  # <-")],
        "item 'temperature': min 40 is above max 35",
    ),
    "min_on_a_photo": (
        [('kind = "photo"', 'kind = "photo"\nmin = 1.0  # <-')],
        "item 'photo': min and max are for number and measurement items",
    ),
    "measurement_without_unit": (
        [
            (TEMPERATURE_ITEM, TEMPERATURE_ITEM.replace("]]", "]]  # <-")),
            ('kind = "number"', 'kind = "measurement"'),
            ('unit = "°C"\n', ""),
        ],
        "item 'temperature': a measurement needs a unit",
    ),
    "choice_without_choices": (
        [('choices = ["good", "poor"]\n', ""), ('kind = "choice"', 'kind = "choice"  # <-'), (SHOW_IF + "\n", "")],
        "item 'grade': a choice item needs choices",
    ),
    "choice_listed_twice": (
        [('choices = ["good", "poor"]', 'choices = ["good", "poor", "good"]  # <-')],
        "item 'grade': a choice is listed twice",
    ),
    "choices_on_a_number": (
        [('unit = "°C"', 'unit = "°C"\nchoices = ["hot", "cold"]  # <-')],
        "item 'temperature': choices are only for choice items, not number",
    ),
    "ok_on_a_number": (
        [('unit = "°C"', 'unit = "°C"\nok = true  # <-')],
        "item 'temperature': ok is only for yes_no items, not number",
    ),
    "show_if_unknown_item": (
        [(SHOW_IF, 'show_if = { item = "grades", equals = "poor" }  # <-')],
        "item 'photo': show_if names 'grades', which is not an item of this template",
    ),
    "show_if_later_item": (
        [('unit = "°C"', 'unit = "°C"\nshow_if = { item = "grade", equals = "good" }  # <-')],
        "item 'temperature': show_if names 'grade', which is defined after it",
    ),
    "show_if_itself": (
        [(SHOW_IF, 'show_if = { item = "photo", equals = "poor" }  # <-')],
        "item 'photo': show_if names 'photo', which is defined after it",
    ),
    "show_if_without_value": (
        [(SHOW_IF, 'show_if = { item = "grade" }  # <-')],
        "item 'photo': show_if needs one of equals or any_of",
    ),
    "show_if_not_a_choice": (
        [(SHOW_IF, 'show_if = { item = "grade", any_of = ["poor", "awful"] }  # <-')],
        "item 'photo': show_if value 'awful' is not a choice of 'grade'",
    ),
    "show_if_yes_no_as_text": (
        [(SHOW_IF, 'show_if = { item = "seal-intact", equals = "yes" }  # <-')],
        "item 'photo': show_if on yes_no item 'seal-intact' needs equals = true or false",
    ),
    "show_if_on_a_number": (
        [(SHOW_IF, 'show_if = { item = "temperature", equals = "40" }  # <-')],
        "item 'photo': show_if can only follow a yes_no or choice item, not number 'temperature'",
    ),
    "unknown_engineer_role": (
        [(SHOW_IF, SHOW_IF + '\n\n[signoff]\nengineer_roles = ["wizard"]  # <-')],
        "unknown role 'wizard'; roles: admin, floor, planner, engineer, auditor",
    ),
    "no_engineer_role": (
        [(SHOW_IF, SHOW_IF + "\n\n[signoff]\nengineer_roles = []  # <-")],
        "no role may sign as engineer",
    ),
    "witness_without_roles": (
        [(SHOW_IF, SHOW_IF + "\n\n[signoff]\nwitness = true\nwitness_roles = []  # <-")],
        "a witness is required but no role may witness",
    ),
}


def broken_text(replacements: list[tuple[str, str]], message: str) -> tuple[str, int]:
    """The broken file's text, starting `# expect: LINE: message`, and LINE."""
    body = BASE
    for old, new in replacements:
        assert old in body, old
        body = body.replace(old, new, 1)
    lines = ["# expect: 0: ", *body.splitlines()]
    line = next((n for n, text in enumerate(lines, 1) if "# <-" in text), 1)
    lines[0] = f"# expect: {line}: {message}"
    return "\n".join(lines) + "\n", line


def test_the_base_of_the_broken_files_is_sound() -> None:
    template = decode_template(BASE.encode(), "base.toml")
    assert ids(list(template.items)) == ["seal-intact", "temperature", "grade", "photo"]


@pytest.mark.parametrize("name", BROKEN)
def test_broken_file_reports_one_fault_at_its_line(tmp_path: Path, name: str) -> None:
    replacements, message = BROKEN[name]
    text, line = broken_text(replacements, message)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    assert_broken_file_fault(path, decode_template)
    if name != "syntax_error":  # the TOML parser's message ends with its own "(at line, column)"
        with pytest.raises(DefinitionError) as caught:
            decode_template(path.read_bytes(), path.name)
        assert caught.value.faults == [f"{path.name}:{line}: {message}"]


def test_all_faults_of_a_file_are_reported_together() -> None:
    text = BASE.replace('version = "2026.1"', 'version = "v2"').replace("min = 15.0", "min = 40.0")
    with pytest.raises(DefinitionError) as caught:
        decode_template(text.encode(), "two.toml")
    assert caught.value.faults == [
        "two.toml:2: version 'v2' is not like '2026.1' (digits.digits, optional -n)",
        "two.toml:23: item 'temperature': min 40 is above max 35",
    ]


def test_load_templates_refuses_duplicate_ids_and_reports_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(BASE)
    (tmp_path / "b.toml").write_text(BASE)
    (tmp_path / "c.toml").write_text(BASE.replace('version = "2026.1"', 'version = "2026"'))
    with pytest.raises(DefinitionError) as caught:
        load_templates(tmp_path)
    faults = caught.value.faults
    assert len(faults) == 2, faults
    assert re.match(r".*b\.toml:1: duplicate template id 'broken' \(also .*a\.toml\)$", faults[0]), faults
    assert re.match(r".*c\.toml:2: version '2026' is not like", faults[1]), faults


def test_check_templates_splits_good_from_bad(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(BASE)
    (tmp_path / "bad.toml").write_text(BASE.replace("level = 2", "level = 0"))
    (tmp_path / "README.md").write_text("not a template\n")
    ok, faults = check_templates(tmp_path)
    assert [line.split(": ", 1)[1] for line in ok] == [
        "broken 2026.1 (delivery, level 2, commercial/sovereign), 4 items"
    ]
    assert len(faults) == 1
    assert re.match(r".*bad\.toml:5: Expected `int` >= 1$", faults[0]), faults


def test_check_templates_needs_one_template_per_stage_and_level(tmp_path: Path) -> None:
    for path in CHECKLISTS_DIR.glob("*.toml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    assert check_templates(tmp_path)[1] == []
    # The defence functional test also claiming sovereign sites: two templates for one stage and level.
    defence = tmp_path / "functional-test-defence.toml"
    defence.write_text(
        defence.read_text().replace('security_levels = ["defence"]', 'security_levels = ["sovereign", "defence"]')
    )
    (tmp_path / "installation-defence.toml").unlink()
    ok, faults = check_templates(tmp_path)
    assert len(ok) == 5
    # Files are read in name order: the second one found is named, the first one is "also".
    plain = tmp_path / "functional-test.toml"
    line = next(n for n, text in enumerate(plain.read_text().splitlines(), 1) if text.startswith("security_levels"))
    assert faults == [
        f"{tmp_path}/*.toml:1: no installation template for security level 'defence'",
        f"{plain}:{line}: a second functional template for security level 'sovereign' (also {defence})",
    ]


def test_an_empty_directory_is_a_fault(tmp_path: Path) -> None:
    ok, faults = check_templates(tmp_path)
    assert ok == []
    assert faults == [f"{tmp_path}/*.toml:1: no checklist templates"]


def test_every_security_level_is_covered(templates: dict[str, ChecklistTemplate]) -> None:
    for level in SECURITY_LEVELS:
        assert (
            len(required_templates(templates, level, ("delivery", "installation", "functional", "decommissioning")))
            == 4
        )
