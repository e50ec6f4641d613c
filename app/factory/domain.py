"""Pure rules of the module registry: serials and where a module is. No I/O."""

from __future__ import annotations

import re

from app.core.definitions import Lifecycle
from app.core.errors import InvalidInput

SERIAL_RE = re.compile(r"^AFM-(\d{2})-(\d{6})$")


def serial_prefix(year: int) -> str:
    return f"AFM-{year % 100:02d}-"


def next_serial(year: int, last_serial: str | None) -> str:
    """AFM-YY-NNNNNN: the next number after the highest one issued in that year."""
    last = 0
    if last_serial is not None:
        match = SERIAL_RE.match(last_serial)
        if match is None:
            raise InvalidInput(f"unexpected serial {last_serial!r}")
        last = int(match.group(2))
    if last >= 999_999:
        raise InvalidInput(f"serial numbers for {year} are exhausted")
    return f"{serial_prefix(year)}{last + 1:06d}"


def location_kind(lifecycle: Lifecycle, state: str, hold_return_state: str | None) -> str:
    """'factory', 'transit' or 'site', from the state's `where` (a held module is where it was)."""
    where = lifecycle.state(state).where
    if where == "held":
        where = lifecycle.state(hold_return_state).where if hold_return_state else "factory"
    if where == "held":
        where = "factory"
    return "transit" if where == "transit" else where
