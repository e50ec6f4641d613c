"""Export rules as versioned data (workflows/export-rules.toml) and the decision they give for one item
classification, one destination and the countries a route calls at.

A classification or destination the rules do not know gives "needs_review", never a silent pass; every
decision names the rule (and its citation) that applied, and the rules' version.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from app.core.config import PROJECT_ROOT
from app.core.definitions import TOML_FAULTS, DefinitionError, locate, schema_fault

RULES_FILE = PROJECT_ROOT / "workflows" / "export-rules.toml"

Outcome = Literal["allow", "license_required", "presumption_of_denial", "prohibited"]
Status = Literal["allowed", "license_required", "denied", "needs_review"]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
GroupOrCountry = Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{2}|[A-E]:\d)$")]

# Strictest first: when several rules name a destination, the strictest applies.
SEVERITY: dict[str, int] = {"prohibited": 3, "presumption_of_denial": 2, "license_required": 1, "allow": 0}
STATUS: dict[str, Status] = {
    "prohibited": "denied",
    "presumption_of_denial": "denied",
    "license_required": "license_required",
    "allow": "allowed",
}


class Group(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-E]:\d$")]
    name: str
    countries: tuple[Country, ...]


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    destinations: tuple[GroupOrCountry, ...]
    outcome: Outcome
    citation: str
    except_groups: tuple[Annotated[str, msgspec.Meta(pattern=r"^[A-E]:\d$")], ...] = ()


class Classification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    eccn: Annotated[str, msgspec.Meta(pattern=r"^(EAR99|\d[A-E]\d{3}(\.[a-z0-9.]+)?)$")]
    description: str
    default: Outcome
    default_citation: str
    rules: tuple[Rule, ...] = ()
    transit_barred: tuple[GroupOrCountry, ...] = ()
    transit_citation: str = ""


class ExportRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    effective: dt.date
    source: str
    groups: tuple[Group, ...]
    classifications: tuple[Classification, ...]

    def members(self, entry: str) -> frozenset[str]:
        """The countries a group id or a single country code stands for."""
        if re.fullmatch(r"[A-Z]{2}", entry):
            return frozenset({entry})
        return next((frozenset(g.countries) for g in self.groups if g.id == entry), frozenset())

    def classification(self, eccn: str) -> Classification | None:
        base = eccn.strip()
        # 4A090.a is governed by the 4A090 entry unless the file lists the sub-paragraph itself.
        return next((c for c in self.classifications if c.eccn == base), None) or next(
            (c for c in self.classifications if base.startswith(c.eccn + ".")), None
        )


class ExportDecision(msgspec.Struct, frozen=True):
    status: Status
    eccn: str
    destination: str
    rule: str  # which rule applied, in words
    citation: str
    rules_version: str
    transit_barred: tuple[str, ...] = ()  # countries a route to it may not call at
    transit_citation: str = ""


def _union(rules: ExportRules, entries: Iterable[str]) -> frozenset[str]:
    found: set[str] = set()
    for entry in entries:
        found |= rules.members(entry)
    return frozenset(found)


def decide(rules: ExportRules, eccn: str | None, destination: str, known_countries: Iterable[str]) -> ExportDecision:
    """The export decision for an item of classification `eccn` going to `destination` (ISO alpha-2)."""
    dest = destination.strip().upper()
    if not eccn:
        return ExportDecision("needs_review", "", dest, "no export classification", "", rules.version)
    found = rules.classification(eccn)
    if found is None:
        return ExportDecision(
            "needs_review", eccn, dest, f"classification {eccn} is not in the export rules", "", rules.version
        )
    if dest not in set(known_countries):
        return ExportDecision(
            "needs_review", eccn, dest, f"destination {dest!r} is not a known country", "", rules.version
        )
    barred = (
        sorted(set().union(*(rules.members(e) for e in found.transit_barred)) - {dest}) if found.transit_barred else []
    )
    chosen: Rule | None = None
    for rule in found.rules:
        named = set().union(*(rules.members(e) for e in rule.destinations))
        excepted = set().union(*(rules.members(g) for g in rule.except_groups)) if rule.except_groups else set()
        if (
            dest in named
            and dest not in excepted
            and (chosen is None or SEVERITY[rule.outcome] > SEVERITY[chosen.outcome])
        ):
            chosen = rule
    if chosen is None:
        return ExportDecision(
            STATUS[found.default],
            found.eccn,
            dest,
            f"{found.eccn} to {dest}: {found.default.replace('_', ' ')} (no rule names {dest})",
            found.default_citation,
            rules.version,
            tuple(barred),
            found.transit_citation,
        )
    groups = [e for e in chosen.destinations if dest in rules.members(e)]
    return ExportDecision(
        STATUS[chosen.outcome],
        found.eccn,
        dest,
        f"{found.eccn} to {dest} ({', '.join(groups)}): {chosen.outcome.replace('_', ' ')}",
        chosen.citation,
        rules.version,
        tuple(barred),
        found.transit_citation,
    )


def decode_rules(text: bytes, source: str, known_countries: Iterable[str] | None = None) -> ExportRules:
    """Decode and cross-check the rules file; DefinitionError lists every fault as file:line."""
    decoded = text.decode("utf-8", errors="replace")
    try:
        rules = msgspec.toml.decode(text, type=ExportRules)
    except TOML_FAULTS as exc:
        raise DefinitionError([schema_fault(source, decoded, exc)]) from exc
    faults: list[str] = []
    countries = set(known_countries) if known_countries is not None else None
    group_ids = [g.id for g in rules.groups]
    for i, group in enumerate(rules.groups):
        if group_ids.index(group.id) != i:
            faults.append(f"{source}:{locate(decoded, f'$.groups[{i}].id')}: duplicate group {group.id!r}")
        unknown = sorted(c for c in group.countries if countries is not None and c not in countries)
        if unknown:
            faults.append(f"{source}:{locate(decoded, f'$.groups[{i}].countries')}: unknown countries {unknown}")
    eccns = [c.eccn for c in rules.classifications]
    for i, c in enumerate(rules.classifications):
        if eccns.index(c.eccn) != i:
            faults.append(f"{source}:{locate(decoded, f'$.classifications[{i}].eccn')}: duplicate {c.eccn!r}")
        for j, rule in enumerate(c.rules):
            for entry in (*rule.destinations, *rule.except_groups):
                if ":" in entry and entry not in group_ids:
                    line = locate(decoded, f"$.classifications[{i}].rules[{j}].destinations")
                    faults.append(f"{source}:{line}: unknown country group {entry!r}")
        for entry in c.transit_barred:
            if ":" in entry and entry not in group_ids:
                line = locate(decoded, f"$.classifications[{i}].transit_barred")
                faults.append(f"{source}:{line}: unknown country group {entry!r}")
    if faults:
        raise DefinitionError(faults)
    return rules


@functools.cache
def load_rules(path: Path = RULES_FILE) -> ExportRules:
    from iso3166 import countries_by_alpha2

    return decode_rules(path.read_bytes(), path.name, countries_by_alpha2.keys())
