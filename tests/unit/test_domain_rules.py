"""Pure rules of the registry, auth and definitions."""

from __future__ import annotations

import pytest

from app.core.auth.domain import ALL_ROLES, hash_token, login_throttled, may_access, unknown_roles
from app.core.definitions import DefinitionError, decode_lifecycle, load_lifecycle
from app.core.errors import InvalidInput, RuleRefused
from app.factory.domain import location_kind, next_serial
from app.sites.domain import check_country


def test_next_serial() -> None:
    assert next_serial(2026, None) == "AFM-26-000001"
    assert next_serial(2026, "AFM-26-000041") == "AFM-26-000042"
    with pytest.raises(InvalidInput, match="exhausted"):
        next_serial(2026, "AFM-26-999999")
    with pytest.raises(InvalidInput, match="unexpected serial"):
        next_serial(2026, "XYZ")


def test_location_follows_the_lifecycle() -> None:
    lifecycle = load_lifecycle()
    assert location_kind(lifecycle, "burn_in", None) == "factory"
    assert location_kind(lifecycle, "in_transit", None) == "transit"
    assert location_kind(lifecycle, "in_service", None) == "site"
    assert location_kind(lifecycle, "on_hold", "commissioning") == "site"
    assert location_kind(lifecycle, "on_hold", None) == "factory"


def test_roles_and_tokens() -> None:
    assert set(ALL_ROLES) == {"admin", "floor", "planner", "engineer", "auditor"}
    assert may_access(("floor",), ("admin", "floor"))
    assert not may_access(("auditor",), ("admin",))
    assert unknown_roles(["admin", "root"]) == ["root"]
    assert hash_token("abc") == hash_token("abc") != hash_token("abd")
    assert login_throttled(10, 10) and not login_throttled(9, 10)


def test_country_codes() -> None:
    assert check_country("no") == "NO"
    with pytest.raises(RuleRefused, match="iso_country"):
        check_country("XX")


def test_lifecycle_definition_loads() -> None:
    lifecycle = load_lifecycle()
    assert lifecycle.initial == "planned"
    assert len(lifecycle.states) == 17
    assert [s.id for s in lifecycle.states if s.terminal] == ["retired"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            b'initial = "a"\n[[states]]\nid = "a"\nlabel = "A"\ncolor = "#000"\n[[states]]\nid = "a"\n'
            b'label = "B"\ncolor = "#111"\n',
            "duplicate state",
        ),
        (b'initial = "zzz"\n[[states]]\nid = "a"\nlabel = "A"\ncolor = "#000"\n', "initial state"),
        (b'initial = "a"\n[[states]]\nid = "a"\nlabel = "A"\ncolour = "#000"\n', "unknown field `colour`"),
        (b"initial = [\n", "broken.toml:1"),
    ],
)
def test_broken_lifecycle_definitions(text: bytes, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        decode_lifecycle(text, "broken.toml")
