"""Export rules as data: the strictest rule that names a destination applies, with its citation; what
the rules do not know is "needs review", never a pass."""

from __future__ import annotations

import pytest
from iso3166 import countries_by_alpha2

from app.core.definitions import DefinitionError
from app.routes.export import decide, decode_rules, load_rules

KNOWN = countries_by_alpha2.keys()


@pytest.mark.parametrize(
    ("eccn", "destination", "status", "fragment"),
    [
        ("4A090", "NL", "allowed", "no rule names NL"),
        ("4A090.a", "JP", "allowed", "no rule names JP"),
        ("4A090", "CN", "denied", "presumption of denial"),
        ("4A090", "MO", "denied", "presumption of denial"),
        ("4A090", "IR", "denied", "prohibited"),  # E:1 beats D:5: the strictest applies
        ("4A090", "AE", "license_required", "D:4"),
        ("4A090", "IL", "allowed", "no rule names IL"),  # D:4 but also A:6: excepted
        ("4A090", "VN", "license_required", "D:1"),
        ("EAR99", "CN", "allowed", "EAR99"),
        ("EAR99", "CU", "denied", "prohibited"),
        ("5A002", "DE", "needs_review", "not in the export rules"),
        ("5A992.c", "DE", "allowed", "no rule names DE"),
        ("5A992.c", "RU", "license_required", "746.8"),
        ("", "DE", "needs_review", "no export classification"),
        ("4A090", "XX", "needs_review", "not a known country"),
    ],
)
def test_decisions_cite_the_rule(eccn: str, destination: str, status: str, fragment: str) -> None:
    rules = load_rules()
    decision = decide(rules, eccn, destination, KNOWN)
    assert decision.status == status
    assert fragment in decision.rule or fragment in decision.citation
    assert decision.rules_version == rules.version
    if status in ("allowed", "license_required", "denied") and eccn:
        assert decision.citation.startswith("15 CFR")


def test_transit_barred_countries() -> None:
    decision = decide(load_rules(), "4A090", "DE", KNOWN)
    assert {"CN", "RU", "IR", "KP", "CU", "SY"} <= set(decision.transit_barred)
    assert "DE" not in decision.transit_barred and "EG" not in decision.transit_barred


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            b'version = "1"\neffective = 2026-01-01\nsource = "x"\ngroups = []\n\n[[classifications]]\neccn = "4A090"\n'
            b'description = "d"\ndefault = "allow"\ndefault_citation = "c"\ntransit_barred = ["E:9"]\n',
            11,
            "unknown country group 'E:9'",
        ),
        (
            b'version = "1"\neffective = 2026-01-01\nsource = "x"\nclassifications = []\n\n[[groups]]\nid = "A:5"\n'
            b'name = "n"\ncountries = ["NL", "QQ"]\n',
            9,
            "QQ",
        ),
        (
            b'version = "1"\neffective = 2026-01-01\nsource = "x"\ngroups = []\n\n[[classifications]]\neccn = "4A090"\n'
            b'description = "d"\ndefault = "maybe"\ndefault_citation = "c"\n',
            9,
            "Invalid enum value 'maybe'",
        ),
    ],
)
def test_broken_rules_name_file_and_line(text: bytes, line: int, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        decode_rules(text, "export-rules.toml", KNOWN)
    fault = caught.value.faults[0]
    assert fault.startswith(f"export-rules.toml:{line}: ") and message in fault, fault
