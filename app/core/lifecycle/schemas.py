from __future__ import annotations

from typing import Annotated, Any

import msgspec


class TransitionRequest(msgspec.Struct, forbid_unknown_fields=True):
    transition: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    payload: dict[str, Any] = {}
    waivers: dict[str, str] = {}


class StateRead(msgspec.Struct):
    id: str
    label: str
    color: str
    terminal: bool
    description: str
    where: str


class TransitionRead(msgspec.Struct, rename={"from_": "from"}):
    name: str
    from_: list[str]
    to: str
    roles: list[str]
    guards: list[str]
    payload: list[str]


class LifecycleRead(msgspec.Struct):
    initial: str
    states: list[StateRead]
    transitions: list[TransitionRead]
