"""Definitions are data: workflows/*.toml decoded into frozen, typed Structs and checked as a whole.

msgspec checks types and reports a JSON path (`$.transitions[1].roles[0]`); the cross-checks here
see what types cannot (unknown or unreachable states, dead ends, unknown guards and roles, duplicate
names). Every fault is reported as `file:line: message`, the line found by mapping the path back to
the TOML text, and all faults of a file are reported together.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, Literal, TypeVar

import msgspec

from app.core.config import PROJECT_ROOT

WORKFLOWS_DIR = PROJECT_ROOT / "workflows"
LIFECYCLE_FILE = WORKFLOWS_DIR / "module-lifecycle.toml"

Where = Literal["factory", "transit", "site", "held"]
ANY_STATE = "*"  # a transition allowed from every non-terminal state (quarantine)
RETURN = "@return"  # a transition back to the state the module was held from

StateId = msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*$")


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
    description: str = ""


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

    def transition(self, name: str) -> TransitionDef | None:
        return next((t for t in self.transitions if t.name == name), None)

    def sources(self, transition: TransitionDef) -> tuple[str, ...]:
        """The states a transition may start from, with `*` expanded to every non-terminal state
        other than its own target."""
        if ANY_STATE in transition.from_:
            return tuple(s.id for s in self.states if not s.terminal and s.id != transition.to)
        return transition.from_

    def available_from(self, state: str) -> tuple[TransitionDef, ...]:
        return tuple(t for t in self.transitions if state in self.sources(t))


class DefinitionError(Exception):
    """Definition files that cannot be used; `faults` are `file:line: message` lines."""

    def __init__(self, faults: list[str]) -> None:
        super().__init__("\n".join(faults))
        self.faults = faults


# --- mapping a JSON path back to a TOML line --------------------------------------------------

_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")


def locate(text: str, path: str, key: str | None = None) -> int:
    """The 1-based line of `$.table.key` or `$.array[i].key` in TOML written with `[table]` and
    `[[array]]` headers (or inline tables and arrays); with `key`, the line of that key inside the table
    the path ends at (for unknown fields). Falls back to the closest enclosing line found, and to 1."""
    lines = text.splitlines()
    headers = [(n, m.group(1) == "[[", m.group(2)) for n, line in enumerate(lines) if (m := _HEADER.match(line))]

    def section(after: int) -> tuple[int, int]:
        """The lines holding the keys of the table whose header is at `after` (-1: the top level)."""
        end = next((n for n, _, _ in headers if n > after), len(lines))
        return after + 1, end

    parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(path)]
    line, prefix = 1, ""
    start, end = section(-1)
    i = 0
    while i < len(parts):
        name, _ = parts[i]
        if name is None:  # an index with no table name before it: nothing to narrow to
            i += 1
            continue
        full = f"{prefix}.{name}" if prefix else name
        index = int(parts[i + 1][1]) if i + 1 < len(parts) and parts[i + 1][1] is not None else None
        if index is not None:
            matches = [n for n, double, h in headers if double and h == full]
            if index < len(matches):
                line, prefix = matches[index] + 1, full
                start, end = section(matches[index])
                i += 2
                continue
            return _find_key(lines, name, start, end) or line  # an inline array: point at its key
        table = next((n for n, double, h in headers if not double and h == full), None)
        if table is not None:
            line, prefix = table + 1, full
            start, end = section(table)
            i += 1
            continue
        return _find_key(lines, name, start, end) or line  # a plain key, or an inline table
    if key is not None:
        return _find_key(lines, key, start, end) or line
    return line


def _find_key(lines: list[str], key: str, start: int, end: int) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((n + 1 for n in range(start, end) if pattern.match(lines[n])), None)


# What decoding a TOML file can raise for a file that is not a good definition: msgspec's own errors,
# bytes that are not UTF-8 (tomllib raises UnicodeDecodeError) and nesting deeper than the stack.
TOML_FAULTS: Final = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def schema_fault(source: str, text: str, exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        raw = exc.object if isinstance(exc.object, bytes) else b""
        line = raw.count(b"\n", 0, exc.start) + 1
        return f"{source}:{line}: not UTF-8 (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return f"{source}:1: nested too deeply"
    message = str(exc)
    if match := re.search(r"\(at line (\d+), column \d+\)", message):
        return f"{source}:{match.group(1)}: {message}"
    path = re.search(r"at `(\$[^`]*)`", message)
    unknown = re.search(r"unknown field `([^`]+)`", message)
    if path is None and unknown:  # an unknown key at the top level: msgspec names no path
        return f"{source}:{locate(text, '$', unknown.group(1))}: {message}"
    line = locate(text, path.group(1), unknown.group(1) if unknown else None) if path else 1
    return f"{source}:{line}: {message.split(' - at `')[0]}"


def check_lifecycle(
    lifecycle: Lifecycle, text: str, source: str, *, roles: Iterable[str], guards: Iterable[str]
) -> list[str]:
    """Every fault of the definition as a whole, each `file:line: message`."""
    roles, guards = set(roles), set(guards)
    faults: list[str] = []

    def fault(path: str, message: str) -> None:
        faults.append(f"{source}:{locate(text, path)}: {message}")

    ids = [s.id for s in lifecycle.states]
    for i, state in enumerate(lifecycle.states):
        if ids.index(state.id) != i:
            fault(f"$.states[{i}].id", f"duplicate state id {state.id!r}")
        if not re.match(r"^[a-z][a-z0-9_]*$", state.id):
            fault(f"$.states[{i}].id", f"state id {state.id!r} must be lower_snake_case")
        if not re.match(r"^#[0-9a-fA-F]{6}$", state.color):
            fault(f"$.states[{i}].color", f"state {state.id!r}: color {state.color!r} is not #rrggbb")
    known = set(ids)
    if lifecycle.initial not in known:
        fault("$.initial", f"initial state {lifecycle.initial!r} is not a state")
    names = [t.name for t in lifecycle.transitions]
    for i, t in enumerate(lifecycle.transitions):
        at = f"$.transitions[{i}]"
        if names.index(t.name) != i:
            fault(f"{at}.name", f"duplicate transition name {t.name!r}")
        for source_state in t.from_:
            if source_state != ANY_STATE and source_state not in known:
                fault(f"{at}.from", f"transition {t.name!r}: unknown state {source_state!r} in from")
        if t.to != RETURN and t.to not in known:
            fault(f"{at}.to", f"transition {t.name!r}: unknown target state {t.to!r}")
        if t.to == RETURN and ANY_STATE in t.from_:
            fault(f"{at}.to", f"transition {t.name!r}: {RETURN} cannot start from {ANY_STATE}")
        if not t.roles:
            fault(f"{at}.roles", f"transition {t.name!r} names no role")
        for role in t.roles:
            if role not in roles:
                fault(
                    f"{at}.roles",
                    f"transition {t.name!r}: unknown role {role!r}; roles: {', '.join(sorted(roles))}",
                )
        for guard in t.guards:
            if guard not in guards:
                fault(
                    f"{at}.guards",
                    f"transition {t.name!r}: unknown guard {guard!r}; guards: {', '.join(sorted(guards))}",
                )
        if len(set(t.payload)) != len(t.payload):
            fault(f"{at}.payload", f"transition {t.name!r}: a payload field is named twice")
    if faults:
        return faults  # reachability needs sound references

    held = {t.to for t in lifecycle.transitions if ANY_STATE in t.from_}
    returns = [t for t in lifecycle.transitions if t.to == RETURN]
    edges: dict[str, set[str]] = {s: set() for s in known}
    for t in lifecycle.transitions:
        for s in lifecycle.sources(t):
            if t.to == RETURN:
                continue
            edges[s].add(t.to)
    reachable = {lifecycle.initial}
    queue = deque([lifecycle.initial])
    while queue:
        for nxt in edges[queue.popleft()]:
            if nxt not in reachable:
                reachable.add(nxt)
                queue.append(nxt)
    for i, state in enumerate(lifecycle.states):
        if state.id not in reachable:
            fault(f"$.states[{i}].id", f"state {state.id!r} cannot be reached from {lifecycle.initial!r}")
        explicit = [t for t in lifecycle.transitions if state.id in t.from_ or (t.to == RETURN and state.id in t.from_)]
        if not state.terminal and not explicit:
            fault(f"$.states[{i}].id", f"state {state.id!r} is a dead end but not marked terminal")
        if state.terminal and explicit:
            fault(f"$.states[{i}].terminal", f"terminal state {state.id!r} has transitions out of it")
    for t in returns:
        for s in t.from_:
            if s not in held:
                i = names.index(t.name)
                fault(
                    f"$.transitions[{i}].from",
                    f"transition {t.name!r} returns from {s!r}, which no hold enters",
                )
    return faults


def decode_lifecycle(
    text: bytes, source: str, *, roles: Iterable[str] | None = None, guards: Iterable[str] | None = None
) -> Lifecycle:
    """Decode and check one lifecycle file; raises DefinitionError listing every fault."""
    from app.core.auth.domain import ALL_ROLES
    from app.core.lifecycle.guards import GUARDS

    decoded = text.decode("utf-8", errors="replace")
    try:
        lifecycle = msgspec.toml.decode(text, type=Lifecycle)
    except TOML_FAULTS as exc:
        raise DefinitionError([schema_fault(source, decoded, exc)]) from exc
    faults = check_lifecycle(
        lifecycle,
        decoded,
        source,
        roles=ALL_ROLES if roles is None else roles,
        guards=GUARDS.keys() if guards is None else guards,
    )
    if faults:
        raise DefinitionError(faults)
    return lifecycle


@functools.cache
def load_lifecycle(path: Path = LIFECYCLE_FILE) -> Lifecycle:
    return decode_lifecycle(path.read_bytes(), display_path(path))


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


Definition = TypeVar("Definition")


def load_folder(
    directory: Path,
    decode: Callable[[bytes, str], Definition],
    *,
    key: str,
    item: str,
    plural: str,
    extra: Callable[[Definition, str, str, dict[str, tuple[Definition, str]]], list[str]] | None = None,
) -> tuple[dict[str, tuple[Definition, str]], list[str]]:
    """({key value: (definition, source)}, faults) for a folder of one-definition TOML files: each decoded,
    a key taken twice is a fault at its line, and `extra` (definition, source, text, loaded so far) may
    name more cross-file faults."""
    loaded: dict[str, tuple[Definition, str]] = {}
    faults: list[str] = []
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        return loaded, [f"{display_path(directory / '*.toml')}:1: no {plural}"]
    for path in paths:
        source, raw = display_path(path), path.read_bytes()
        try:
            definition = decode(raw, source)
        except DefinitionError as exc:
            faults += exc.faults
            continue
        text = raw.decode("utf-8", errors="replace")
        value = getattr(definition, key)
        if value in loaded:
            faults.append(
                f"{source}:{locate(text, f'$.{key}')}: duplicate {item} {key} {value!r} (also {loaded[value][1]})"
            )
            continue
        more = extra(definition, source, text, loaded) if extra is not None else []
        if more:
            faults += more
            continue
        loaded[value] = (definition, source)
    return loaded, faults


# Definition files owned by other areas (each area owns its file's shape): name -> check that decodes
# one and says what it holds. Imports are lazy: core must not load every area to check a lifecycle.
def _burn_in_rules(text: bytes, source: str) -> str:
    from app.burnin.domain import decode_rules

    return f"rules version {decode_rules(text, source).version}"


def _transport_modes(text: bytes, source: str) -> str:
    from app.routes.modes import decode_modes

    return f"{len(decode_modes(text, source).modes)} modes"


def _export_rules(text: bytes, source: str) -> str:
    from iso3166 import countries_by_alpha2

    from app.routes.export import decode_rules

    rules = decode_rules(text, source, countries_by_alpha2.keys())
    return f"export rules version {rules.version}, {len(rules.classifications)} classifications"


_OPTIONAL_DEFINITIONS: dict[str, Callable[[bytes, str], str]] = {
    "burn-in-acceptance.toml": _burn_in_rules,
    "transport-modes.toml": _transport_modes,
    "export-rules.toml": _export_rules,
}


def _checklists(folder: Path) -> tuple[list[str], list[str]]:
    from app.commissioning.checklists import check_templates

    return check_templates(folder)


def _validation_suites(folder: Path) -> tuple[list[str], list[str]]:
    from app.commissioning.validation import check_suites

    return check_suites(folder)


# Folders of definition files, one file per definition: folder -> check giving (ok lines, fault lines).
_DEFINITION_FOLDERS: dict[str, Callable[[Path], tuple[list[str], list[str]]]] = {
    "checklists": _checklists,
    "validation": _validation_suites,
}


def check_all(directory: Path = WORKFLOWS_DIR) -> tuple[list[str], list[str]]:
    """(ok lines, fault lines) for every definition file in workflows/."""
    ok: list[str] = []
    faults: list[str] = []
    path = directory / "module-lifecycle.toml"
    if not path.exists():
        return ok, [f"{display_path(path)}:1: missing: the module lifecycle definition is required"]
    try:
        lifecycle = decode_lifecycle(path.read_bytes(), display_path(path))
        ok.append(f"{display_path(path)}: {len(lifecycle.states)} states, {len(lifecycle.transitions)} transitions")
    except DefinitionError as exc:
        faults += exc.faults
    known = {path}
    for name, check in _OPTIONAL_DEFINITIONS.items():
        optional = directory / name
        known.add(optional)
        if optional.exists():
            try:
                ok.append(f"{display_path(optional)}: {check(optional.read_bytes(), display_path(optional))}")
            except DefinitionError as exc:
                faults += exc.faults
    for other in sorted(directory.glob("*.toml")):
        if other not in known:
            faults.append(f"{display_path(other)}:1: unknown definition file")
    for name, check_folder in _DEFINITION_FOLDERS.items():
        if (directory / name).is_dir():
            folder_ok, folder_faults = check_folder(directory / name)
            ok += folder_ok
            faults += folder_faults
    return ok, faults
