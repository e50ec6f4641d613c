"""Commissioning checklist templates are data: workflows/checklists/*.toml decoded into frozen Structs, and
the pure rules over a checklist being filled in at a site.

A template is a list of sections of items (questions) for one stage of commissioning at the site levels it
applies to. msgspec checks the types; the cross-checks here see what types cannot (duplicate ids, a range
with min above max, a `show_if` that points at an unknown or later item, an unknown security level). Every
fault is `file:line: message` and all faults of a file are reported together, like workflows/
(app.core.definitions).

Answers are plain JSON values (see `check_answer`); an answer outside what the item calls fine is flagged
and must carry a comment. Pure: no I/O but `load_templates`/`check_templates`, which read the TOML files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal, get_args

import msgspec

from app.core.auth.domain import ALL_ROLES
from app.core.definitions import (
    TOML_FAULTS,
    WORKFLOWS_DIR,
    DefinitionError,
    display_path,
    load_folder,
    locate,
    schema_fault,
)
from app.sites.schemas import SecurityLevel

CHECKLISTS_DIR = WORKFLOWS_DIR / "checklists"

SECURITY_LEVELS: tuple[str, ...] = get_args(SecurityLevel)
Kind = Literal["yes_no", "number", "text", "choice", "photo", "measurement", "signature"]
Stage = Literal["delivery", "installation", "functional", "decommissioning"]
STAGES: tuple[str, ...] = get_args(Stage)
# The stages worked at the site before a module goes into service (decommissioning comes later).
COMMISSIONING_STAGES: tuple[str, ...] = ("delivery", "installation", "functional")
SIGNATURE_KINDS: tuple[str, ...] = ("engineer", "witness")

# Ids are stored with every answer and run (checklist_runs.template_id is 64 characters).
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
Level = Annotated[int, msgspec.Meta(ge=1, le=5)]
VERSION = re.compile(r"^\d+\.\d+(-\d+)?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RANGED = ("number", "measurement")
_MEASUREMENT_KEYS = ("value", "instrument")
_Fault = Callable[[str, str], None]  # fault(json path, message)


class Condition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Show an item only when an earlier item (a yes_no or choice) was answered `equals` or one of `any_of`."""

    item: str
    equals: str | bool | None = None
    any_of: tuple[str, ...] = ()

    def holds(self, answer: object) -> bool:
        if answer is None:
            return False
        if self.any_of:
            return isinstance(answer, str) and answer in self.any_of
        # `type is` so that True never matches "true" nor 1.
        return type(answer) is type(self.equals) and answer == self.equals


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    label: str
    kind: Kind
    required: bool = True
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    ok: bool | None = None  # yes_no: the answer that is fine; the other one is flagged and needs a comment
    guidance: str = ""
    show_if: Condition | None = None
    security_levels: tuple[str, ...] = ()  # empty: every site the template applies to


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    title: str
    items: tuple[Item, ...]
    guidance: str = ""


class SignOff(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    engineer_roles: tuple[str, ...] = ("engineer", "admin")
    witness: bool = False  # two-person rule: a second, different person signs as witness
    witness_roles: tuple[str, ...] = ("engineer", "admin", "auditor")


class ChecklistTemplate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Slug
    version: str
    title: str
    stage: Stage
    # Commissioning level: 1 factory witness test, 2 delivery inspection, 3 installation, 4 functional
    # test, 5 integrated system test.
    level: Level
    security_levels: tuple[str, ...]  # the site security levels it applies to
    sections: tuple[Section, ...]
    signoff: SignOff = SignOff()
    description: str = ""

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item in the order asked."""
        return tuple(item for section in self.sections for item in section.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


# --- decoding and checking a template file ----------------------------------------------------------

_NESTED_ITEM = re.compile(r"\$\.sections\[(\d+)\]\.items\[(\d+)\]")


def _flat_path(path: str, counts: Sequence[int]) -> str:
    """`locate` counts `[[sections.items]]` headers across the whole file, so item j of section i is
    header number (items in earlier sections + j)."""

    def flat(match: re.Match[str]) -> str:
        i, j = int(match.group(1)), int(match.group(2))
        return f"$.sections[{i}].items[{sum(counts[:i]) + j}]"

    return _NESTED_ITEM.sub(flat, path)


def _raw_counts(text: bytes) -> list[int]:
    """Items per section in a file that did not decode into a template (for `_flat_path`)."""
    try:
        raw = msgspec.toml.decode(text)
    except TOML_FAULTS:
        return []
    sections = raw.get("sections") if isinstance(raw, dict) else None
    if not isinstance(sections, list):
        return []
    return [len(s["items"]) if isinstance(s, dict) and isinstance(s.get("items"), list) else 0 for s in sections]


def _known(values: Sequence[str], known: Sequence[str]) -> list[str]:
    return [v for v in values if v not in known]


def check_template(template: ChecklistTemplate, text: str, source: str) -> list[str]:
    """Every fault of a decoded template, each `file:line: message`."""
    faults: list[str] = []
    counts = [len(s.items) for s in template.sections]

    def fault(path: str, message: str) -> None:
        faults.append(f"{source}:{locate(text, _flat_path(path, counts))}: {message}")

    if not VERSION.match(template.version) or len(template.version) > 16:
        fault("$.version", f"version {template.version!r} is not like '2026.1' (digits.digits, optional -n)")
    if not template.security_levels:
        fault("$.security_levels", "the template names no security level it applies to")
    for level in _known(template.security_levels, SECURITY_LEVELS):
        fault("$.security_levels", f"unknown security level {level!r}; known: {', '.join(SECURITY_LEVELS)}")
    if not template.sections:
        fault("$.sections", "the template has no sections")

    signoff = template.signoff
    if not signoff.engineer_roles:
        fault("$.signoff.engineer_roles", "no role may sign as engineer")
    for role in _known(signoff.engineer_roles, ALL_ROLES):
        fault("$.signoff.engineer_roles", f"unknown role {role!r}; roles: {', '.join(ALL_ROLES)}")
    if signoff.witness and not signoff.witness_roles:
        fault("$.signoff.witness_roles", "a witness is required but no role may witness")
    for role in _known(signoff.witness_roles, ALL_ROLES):
        fault("$.signoff.witness_roles", f"unknown role {role!r}; roles: {', '.join(ALL_ROLES)}")

    section_ids = [s.id for s in template.sections]
    earlier: dict[str, Item] = {}  # the items before the one being checked: show_if may only look back
    every = {item.id for item in template.items}
    for i, section in enumerate(template.sections):
        if section_ids.index(section.id) != i:
            fault(f"$.sections[{i}].id", f"duplicate section id {section.id!r}")
        if not section.items:
            fault(f"$.sections[{i}]", f"section {section.id!r} has no items")
        for j, item in enumerate(section.items):
            at = f"$.sections[{i}].items[{j}]"
            _check_item(item, at, earlier, every, template, fault)
            earlier.setdefault(item.id, item)
    return faults


def _check_item(
    item: Item,
    at: str,
    earlier: Mapping[str, Item],
    every: set[str],
    template: ChecklistTemplate,
    fault: _Fault,
) -> None:
    name = f"item {item.id!r}"
    if item.id in earlier:
        fault(f"{at}.id", f"duplicate item id {item.id!r}: item ids are unique across the template")
    if item.kind in _RANGED:
        if item.min is not None and item.max is not None and item.min > item.max:
            fault(f"{at}.min", f"{name}: min {item.min:g} is above max {item.max:g}")
    elif item.min is not None or item.max is not None:
        fault(
            f"{at}.{'min' if item.min is not None else 'max'}",
            f"{name}: min and max are for number and measurement items",
        )
    if item.kind == "measurement" and not item.unit:
        fault(at, f"{name}: a measurement needs a unit")
    if item.kind == "choice":
        if not item.choices:
            fault(f"{at}.kind", f"{name}: a choice item needs choices")
        elif len(set(item.choices)) != len(item.choices):
            fault(f"{at}.choices", f"{name}: a choice is listed twice")
    elif item.choices:
        fault(f"{at}.choices", f"{name}: choices are only for choice items, not {item.kind}")
    if item.ok is not None and item.kind != "yes_no":
        fault(f"{at}.ok", f"{name}: ok is only for yes_no items, not {item.kind}")
    for level in _known(item.security_levels, SECURITY_LEVELS):
        fault(f"{at}.security_levels", f"{name}: unknown security level {level!r}; known: {', '.join(SECURITY_LEVELS)}")
    for level in item.security_levels:
        if level in SECURITY_LEVELS and level not in template.security_levels:
            fault(f"{at}.security_levels", f"{name}: security level {level!r} is not one the template applies to")
    if item.show_if is not None:
        _check_condition(item, item.show_if, f"{at}.show_if", earlier, every, fault)


def _check_condition(
    item: Item, cond: Condition, at: str, earlier: Mapping[str, Item], every: set[str], fault: _Fault
) -> None:
    name = f"item {item.id!r}"
    target = earlier.get(cond.item)
    if target is None:
        where = "is defined after it" if cond.item in every else "is not an item of this template"
        fault(at, f"{name}: show_if names {cond.item!r}, which {where}")
        return
    if (cond.equals is None) == (not cond.any_of):
        fault(at, f"{name}: show_if needs one of equals or any_of")
        return
    if target.kind == "yes_no":
        if not isinstance(cond.equals, bool):
            fault(at, f"{name}: show_if on yes_no item {target.id!r} needs equals = true or false")
    elif target.kind == "choice":
        values = cond.any_of or (cond.equals,)
        bad = [v for v in values if not isinstance(v, str) or v not in target.choices]
        if bad:
            fault(at, f"{name}: show_if value {bad[0]!r} is not a choice of {target.id!r}")
    else:
        fault(at, f"{name}: show_if can only follow a yes_no or choice item, not {target.kind} {target.id!r}")


def decode_template(text: bytes, source: str) -> ChecklistTemplate:
    """Decode and check one template file; raises DefinitionError listing every fault as file:line."""
    decoded = text.decode("utf-8", errors="replace")
    try:
        template = msgspec.toml.decode(text, type=ChecklistTemplate)
    except msgspec.ValidationError as exc:
        # msgspec's path counts items per section; locate needs them counted across the file.
        flat = msgspec.ValidationError(_flat_path(str(exc), _raw_counts(text)))
        raise DefinitionError([schema_fault(source, decoded, flat)]) from exc
    except TOML_FAULTS as exc:  # not TOML, not UTF-8, or nested too deeply
        raise DefinitionError([schema_fault(source, decoded, exc)]) from exc
    faults = check_template(template, decoded, source)
    if faults:
        raise DefinitionError(faults)
    return template


def _load(directory: Path) -> tuple[dict[str, tuple[ChecklistTemplate, str]], list[str]]:
    """({id: (template, source)}, faults) for every *.toml in `directory`."""
    return load_folder(directory, decode_template, key="id", item="template", plural="checklist templates")


def load_templates(directory: Path = CHECKLISTS_DIR) -> dict[str, ChecklistTemplate]:
    """Every template in `directory` by id; raises DefinitionError with the faults of all files."""
    templates, faults = _load(directory)
    if faults:
        raise DefinitionError(faults)
    return {tid: template for tid, (template, _) in templates.items()}


def describe(template: ChecklistTemplate) -> str:
    levels = "/".join(template.security_levels)
    return (
        f"{template.id} {template.version} ({template.stage}, level {template.level}, {levels}), "
        f"{len(template.items)} items"
    )


def coverage_faults(templates: Mapping[str, tuple[ChecklistTemplate, str]], directory: Path) -> list[str]:
    """Every site security level needs exactly one template per stage, or `required_templates` fails."""
    faults: list[str] = []
    for stage in STAGES:
        for level in SECURITY_LEVELS:
            found = [(t, s) for t, s in templates.values() if t.stage == stage and level in t.security_levels]
            if not found:
                where = display_path(directory / "*.toml")
                faults.append(f"{where}:1: no {stage} template for security level {level!r}")
            for _, source in found[1:]:
                text = (directory / Path(source).name).read_text(errors="replace")
                faults.append(
                    f"{source}:{locate(text, '$.security_levels')}: a second {stage} template for security level "
                    f"{level!r} (also {found[0][1]})"
                )
    return faults


def check_templates(directory: Path = CHECKLISTS_DIR) -> tuple[list[str], list[str]]:
    """(ok lines, fault lines) for every checklist template, like app.core.definitions.check_all; also
    checks that each security level has exactly one template per stage (if every file decoded)."""
    templates, faults = _load(directory)
    ok = [f"{source}: {describe(template)}" for template, source in templates.values()]
    if not faults:
        faults = coverage_faults(templates, directory)
    return ok, faults


def required_templates(
    templates: Mapping[str, ChecklistTemplate],
    security_level: str,
    stages: Sequence[str] = COMMISSIONING_STAGES,
) -> list[ChecklistTemplate]:
    """The template of each stage, in stage order, for a site of this security level; ValueError naming
    the stage and level where there is none or more than one."""
    chosen: list[ChecklistTemplate] = []
    for stage in stages:
        found = sorted(
            (t for t in templates.values() if t.stage == stage and security_level in t.security_levels),
            key=lambda t: t.id,
        )
        if not found:
            raise ValueError(f"no {stage} checklist template for security level {security_level!r}")
        if len(found) > 1:
            ids = ", ".join(t.id for t in found)
            raise ValueError(f"{len(found)} {stage} checklist templates for security level {security_level!r}: {ids}")
        chosen.append(found[0])
    return chosen


# --- answering ---------------------------------------------------------------------------------------


class AnswerError(ValueError):
    """An answer that cannot be stored: malformed, or flagged without the comment it needs."""


class AnswerCheck(msgspec.Struct, frozen=True):
    flagged: bool
    reason: str = ""  # why it is flagged, for the record next to the engineer's comment


def _level(security_level: str) -> None:
    if security_level not in SECURITY_LEVELS:
        raise ValueError(f"unknown security level {security_level!r}; known: {', '.join(SECURITY_LEVELS)}")


def visible_items(template: ChecklistTemplate, answers: Mapping[str, object], security_level: str) -> list[Item]:
    """The items asked at a site of this level given the answers so far, in order. An item whose show_if
    target is itself hidden stays hidden, whatever answer that target still holds."""
    _level(security_level)
    shown: list[Item] = []
    shown_ids: set[str] = set()
    for item in template.items:
        if item.security_levels and security_level not in item.security_levels:
            continue
        cond = item.show_if
        if cond is not None and (cond.item not in shown_ids or not cond.holds(answers.get(cond.item))):
            continue
        shown.append(item)
        shown_ids.add(item.id)
    return shown


def _unanswered(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_items(template: ChecklistTemplate, answers: Mapping[str, object], security_level: str) -> list[Item]:
    """The required visible items not answered yet: the checklist cannot be signed while any are left."""
    return [
        item
        for item in visible_items(template, answers, security_level)
        if item.required and _unanswered(answers.get(item.id))
    ]


def _num(x: float) -> str:
    return format(x, ".10g")


def _quantity(x: float, unit: str) -> str:
    return f"{_num(x)} {unit}" if unit else _num(x)


def _number(value: object, what: str) -> float:
    # bool is an int in Python: a yes/no is never a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise AnswerError(f"{what} must be a finite number")
    return float(value)


def _range(item: Item, value: float) -> str:
    """Why a number is out of the item's range, or ""."""
    if item.min is not None and value < item.min:
        return f"{_quantity(value, item.unit)} is below the allowed minimum {_quantity(item.min, item.unit)}"
    if item.max is not None and value > item.max:
        return f"{_quantity(value, item.unit)} is above the allowed maximum {_quantity(item.max, item.unit)}"
    return ""


def _yes(answer: bool) -> str:
    return "yes" if answer else "no"


def check_answer(item: Item, value: object, comment: str = "") -> AnswerCheck:
    """Whether `value` is a well-formed answer to `item`, and whether it is flagged.

    Answers: yes_no bool; number a number; text and signature (the typed full name) a string; choice one
    of the item's choices; photo the 64-hex SHA-256 of an evidence file already stored; measurement
    {"value": number, "instrument": the instrument's serial}. Raises AnswerError for a malformed value,
    and for a flagged answer (out of range; yes_no other than `ok`) without a comment."""
    reason = ""
    if value is None:
        raise AnswerError("no answer given")
    if item.kind == "yes_no":
        if not isinstance(value, bool):
            raise AnswerError(f"a yes/no answer must be true or false, not {value!r}")
        if item.ok is not None and value != item.ok:
            reason = f"answered {_yes(value)} where {_yes(item.ok)} is expected"
    elif item.kind == "number":
        reason = _range(item, _number(value, "the answer"))
    elif item.kind == "measurement":
        if not isinstance(value, Mapping):
            raise AnswerError('a measurement must be {"value": number, "instrument": serial}')
        extra = sorted(str(k) for k in value if k not in _MEASUREMENT_KEYS)
        if extra:
            raise AnswerError(f"a measurement has only value and instrument, not {', '.join(extra)}")
        if "value" not in value:
            raise AnswerError("a measurement needs its value")
        number = _number(value["value"], "the measured value")
        instrument = value.get("instrument")
        if not isinstance(instrument, str) or not instrument.strip():
            raise AnswerError("a measurement needs the serial number of the instrument it was taken with")
        reason = _range(item, number)
    elif item.kind in ("text", "signature"):
        if not isinstance(value, str):
            raise AnswerError(f"the answer must be text, not {type(value).__name__}")
        if item.kind == "signature" and not value.strip():
            raise AnswerError("a signature is the signer's full name typed out: it cannot be empty")
        if item.required and not value.strip():
            raise AnswerError("this item is required: the text cannot be empty")
    elif item.kind == "choice":
        if not isinstance(value, str) or value not in item.choices:
            raise AnswerError(f"{value!r} is not one of the choices: {', '.join(item.choices)}")
    elif item.kind == "photo" and not (isinstance(value, str) and SHA256.match(value)):
        raise AnswerError(f"a photo answer is the SHA-256 of a stored evidence file (64 hex digits), not {value!r}")
    if reason and not comment.strip():
        raise AnswerError(f"{reason}: add a comment")
    return AnswerCheck(flagged=bool(reason), reason=reason)


# --- signing off -------------------------------------------------------------------------------------


class SignOffError(ValueError):
    """The signatures do not complete the template's sign-off."""


class Signature(msgspec.Struct, frozen=True):
    username: str
    role: str  # the role the user signs in
    kind: Literal["engineer", "witness"]


def check_signoff(template: ChecklistTemplate, signatures: Sequence[Signature]) -> None:
    """One engineer signs, by a role in engineer_roles; where the template needs a witness, a different
    person also signs as witness, by a role in witness_roles. A witness on a template that does not need
    one is accepted under the same rules. Raises SignOffError saying what is wrong or missing."""
    rules = template.signoff
    for s in signatures:
        if s.kind not in SIGNATURE_KINDS:
            raise SignOffError(f"unknown signature kind {s.kind!r}; kinds: {', '.join(SIGNATURE_KINDS)}")
    engineers = [s for s in signatures if s.kind == "engineer"]
    witnesses = [s for s in signatures if s.kind == "witness"]
    if len(engineers) > 1 or len(witnesses) > 1:
        kind = "engineer" if len(engineers) > 1 else "witness"
        raise SignOffError(
            f"{template.id} takes one {kind} signature, not {len(engineers if kind == 'engineer' else witnesses)}"
        )
    if not engineers:
        raise SignOffError(f"{template.id} needs an engineer's signature")
    engineer = engineers[0]
    if engineer.role not in rules.engineer_roles:
        raise SignOffError(
            f"role {engineer.role!r} may not sign {template.id} as engineer; roles: {', '.join(rules.engineer_roles)}"
        )
    if not witnesses:
        if rules.witness:
            raise SignOffError(f"{template.id} needs a second person to witness: one signature is not enough")
        return
    witness = witnesses[0]
    if witness.username == engineer.username:
        raise SignOffError(
            f"{template.id} needs a second person to witness: {witness.username!r} cannot sign as engineer and witness"
        )
    if witness.role not in rules.witness_roles:
        raise SignOffError(
            f"role {witness.role!r} may not witness {template.id}; roles: {', '.join(rules.witness_roles)}"
        )
