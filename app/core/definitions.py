"""Definitions are data: workflows/*.toml decoded into frozen, typed Structs at start-up.

Phase 1 loads the lifecycle's states (the module registry needs them). The cross-checks of the
whole definition (reachability, guards, roles, file:line reporting) grow with the lifecycle engine.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import msgspec

from app.core.config import PROJECT_ROOT

WORKFLOWS_DIR = PROJECT_ROOT / "workflows"

Where = Literal["factory", "transit", "site", "held"]


class StateDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    label: str
    color: str
    description: str = ""
    terminal: bool = False
    where: Where = "factory"


class TransitionDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"from_": "from"}):
    name: str
    from_: tuple[str, ...]
    to: str
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    payload: tuple[str, ...] = ()


class Lifecycle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    initial: str
    states: tuple[StateDef, ...]
    transitions: tuple[TransitionDef, ...] = ()

    def state(self, state_id: str) -> StateDef:
        for s in self.states:
            if s.id == state_id:
                return s
        raise KeyError(state_id)

    @property
    def state_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.states)


class DefinitionError(Exception):
    """A definition file that cannot be used; the message starts with `file:line:`."""


def decode_lifecycle(text: bytes, source: str) -> Lifecycle:
    try:
        lifecycle = msgspec.toml.decode(text, type=Lifecycle)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DefinitionError(f"{source}:1: {exc}") from exc
    ids = [s.id for s in lifecycle.states]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DefinitionError(f"{source}:1: duplicate state id(s): {', '.join(dupes)}")
    if lifecycle.initial not in ids:
        raise DefinitionError(f"{source}:1: initial state {lifecycle.initial!r} is not a state")
    return lifecycle


@functools.cache
def load_lifecycle(path: Path = WORKFLOWS_DIR / "module-lifecycle.toml") -> Lifecycle:
    return decode_lifecycle(path.read_bytes(), str(path))
