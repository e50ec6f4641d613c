"""Loading the burn-in acceptance rules from workflows/ (the file I/O edge of app/burnin/domain.py)."""

from __future__ import annotations

import functools
from pathlib import Path

from app.burnin.domain import AcceptanceRules, decode_rules
from app.core.config import PROJECT_ROOT

RULES_FILE = PROJECT_ROOT / "workflows" / "burn-in-acceptance.toml"


@functools.cache
def load_rules(path: Path = RULES_FILE) -> AcceptanceRules:
    return decode_rules(path.read_bytes(), path.name)
