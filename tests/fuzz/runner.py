"""Schemathesis over the whole OpenAPI, once per demo login, against the app in process.

Each role gets its own app on its own demo database (fuzzing writes). For every operation Hypothesis
draws `examples` requests from the schema, with random path parameters or (about half the time) ones
naming things that exist in the demo fleet (a module's serial, a site's code, a burn-in run, …) so requests get past the
404 and reach the rules behind it. Every response is checked for:

- not_a_server_error: no 5xx;
- status_code_conformance: the status is one the operation documents;
- content_type_conformance: the Content-Type is one the operation documents for that status;
- response_headers_conformance: documented response headers are there and well formed;
- response_schema_conformance: JSON bodies match the documented schema (problem details included).

Schema-breaking requests (negative mode) get the same checks: malformed input must be refused with a
documented, well-formed error, never a 5xx.

Left off, on purpose:
- negative_data_rejection: it wants every schema-breaking request refused, but the API (Litestar)
  ignores unknown query parameters and reads the first of repeated ones, and the fuzzer always sends
  the role's token, which undoes schemathesis' "missing Authorization" mutation;
- positive_data_acceptance: a schema-valid request is often rightly refused here (an unknown serial is
  a 404, a transition from the wrong state a 422), so it would flag correct answers;
- the stateful checks (use_after_free, ensure_resource_availability, ignored_auth): they need
  schemathesis' stateful runner and links the OpenAPI does not declare; auth is tested in tests/api.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup, ServerError
from schemathesis.openapi.checks import (
    ContentDeserializationError,
    JsonSchemaError,
    MissingContentType,
    MissingHeaders,
    UndefinedContentType,
    UndefinedStatusCode,
)
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ROLES = ("admin", "floor", "planner", "engineer", "auditor")
PASSWORD = "demo"
LOGIN = "POST /api/v1/auth/token"
LOGOUT = "DELETE /api/v1/auth/token"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Operations that are slow per request get a share of the examples (never none): route planning
# searches a continental network, the redeployment planner solves an assignment over the fleet, and
# the event stream is held open until its read deadline.
SHARE = {
    "POST /api/v1/routes/plan": 0.5,
    "POST /api/v1/redeployment/plan": 0.5,
    "GET /api/v1/events/stream": 0.2,
}
STREAM_TIMEOUT_S = 1.0  # how long an event stream is read before its events so far are checked
TIMEOUT_S = 60.0  # any other request: a hang is a finding, not a stuck run

# What a failure is, for the table.
KINDS: dict[type[Failure], str] = {
    ServerError: "server_error",
    JsonSchemaError: "schema",
    ContentDeserializationError: "schema",
    UndefinedStatusCode: "undocumented",
    UndefinedContentType: "undocumented",
    MissingContentType: "undocumented",
    MissingHeaders: "undocumented",
}


def kind_of(failure: BaseException) -> str:
    for cls in type(failure).__mro__:
        if cls in KINDS:
            return KINDS[cls]
    return "other"


@dataclass
class Finding:
    """One distinct failure (operation, kind, title), with the first request that showed it."""

    role: str
    operation: str
    kind: str
    title: str
    message: str
    reproduce: str

    def __str__(self) -> str:
        return f"[{self.role}] {self.operation}: {self.kind} — {self.title}\n{self.message}\n{self.reproduce}"


@dataclass
class RoleReport:
    role: str
    operations: int = 0
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)  # statuses per operation

    @property
    def succeeded(self) -> set[str]:
        """Operations that answered at least one 2xx."""
        return {label for label, statuses in self.by_operation.items() if any(200 <= s < 300 for s in statuses)}

    failing: Counter[str] = field(default_factory=Counter)  # examples failing, by kind
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings


def _login(app: Any, username: str) -> dict[str, str]:
    with asgi.get_client(app) as client:
        response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f"login {username!r} failed: {response.status_code} {response.text[:200]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _renew(app: Any, username: str, headers: dict[str, str]) -> None:
    with contextlib.suppress(RuntimeError):  # signed out for good (locked, disabled): the rest answer 401
        headers.update(_login(app, username))


def _get(app: Any, headers: dict[str, str], path: str) -> Any:
    with asgi.get_client(app) as client:
        response = client.get(path, headers=headers)
    return response.json() if response.status_code == 200 else None


def _items(body: Any) -> list[dict[str, Any]]:
    items = body.get("items", []) if isinstance(body, dict) else body if isinstance(body, list) else []
    return [item for item in items if isinstance(item, dict)]


def _field(rows: Iterable[dict[str, Any]], *names: str, limit: int = 3) -> list[Any]:
    values = []
    for row in rows:
        value = next((row[n] for n in names if row.get(n) not in (None, "")), None)
        if value is not None and value not in values:
            values.append(value)
    return values[:limit]


def known_values(app: Any, headers: dict[str, str], role: str) -> dict[str, list[Any]]:
    """Values of path parameters that name things in this database, keyed `segment/param` by the
    literal path segment before the parameter (`modules/serial`, `sites/code`), else `param`. Users are
    other logins than the one fuzzing: revoking its own credentials would end its session."""
    modules = _items(_get(app, headers, "/api/v1/modules?limit=20"))
    serials = _field(modules, "serial", limit=4)
    known: dict[str, list[Any]] = {
        "modules/serial": serials,
        "specs/code": _field(_items(_get(app, headers, "/api/v1/specs")), "code"),
        "sites/code": _field(_items(_get(app, headers, "/api/v1/sites?limit=5")), "code"),
        "factories/code": _field(_items(_get(app, headers, "/api/v1/factories")), "code"),
        "users/username": [user for user in ROLES if user not in (role, "admin")][:2],
        "crates/serial": _field(_items(_get(app, headers, "/api/v1/crates?limit=5")), "serial"),
        "shipments/ref": _field(_items(_get(app, headers, "/api/v1/shipments?limit=5")), "ref", "reference"),
        "reports/name": [f"{name}.csv" for name in list(_get(app, headers, "/api/v1/fleet/reports") or {})[:3]],
        "legs/seq": [1, 2],
        "document": ["manifest.pdf", "packing-list.pdf", "commercial-invoice.pdf"],
    }
    runs: list[Any] = []
    for serial in serials:
        runs += _field(_items(_get(app, headers, f"/api/v1/modules/{serial}/burn-in-runs")), "id")
    known["burn-in-runs/run_id"] = runs[:3]
    parts = _items(_get(app, headers, f"/api/v1/parts?module={serials[0]}&limit=3")) if serials else []
    known["parts/part"] = _field(parts, "serial")
    return {key: values for key, values in known.items() if values}


def _parameter_key(path: str, name: str) -> str:
    segments = path.strip("/").split("/")
    index = segments.index("{" + name + "}")
    before = segments[index - 1] if index else ""
    return name if before.startswith("{") or not before else f"{before}/{name}"


def _path_choices(operation: APIOperation, known: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = [p.name for p in operation.path_parameters]
    columns = {name: known.get(_parameter_key(operation.path, name), []) for name in names}
    columns = {name: values for name, values in columns.items() if values}
    if not columns:
        return []
    width = max(len(values) for values in columns.values())
    return [{name: values[i % len(values)] for name, values in columns.items()} for i in range(width)]


def _cases(operation: APIOperation, mode: schemathesis.GenerationMode, known: dict[str, list[Any]]) -> Any:
    generated = operation.as_strategy(generation_mode=mode)
    choices = _path_choices(operation, known)
    if not choices:
        return generated
    named = st.sampled_from(choices).flatmap(
        lambda path: operation.as_strategy(generation_mode=mode, path_parameters=path)
    )
    return st.one_of(generated, named)


def operations(schema: Any) -> list[APIOperation]:
    """Every operation; last the token revocation (each of its requests signs in afresh) and then the
    token endpoint (its failed sign-ins throttle further sign-ins from the fuzzer's address)."""
    found = [result.ok() for result in schema.get_all_operations()]
    last = {LOGOUT: 1, LOGIN: 2}
    return sorted(found, key=lambda op: (last.get(op.label, 0), op.path, op.method))


def fuzz_role(
    app: Any,
    role: str,
    *,
    examples: int,
    negative_examples: int = 0,
    base_seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> RoleReport:
    """Fuzz every operation of `app`'s OpenAPI as `role`; failures are collected, never raised."""
    started = time.perf_counter()
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    headers = _login(app, role)
    known = known_values(app, _login(app, "admin"), role)
    report = RoleReport(role=role)
    for operation in operations(schema):
        report.operations += 1
        share = SHARE.get(operation.label, 1.0)
        for mode, count, checks in (
            (schemathesis.GenerationMode.POSITIVE, examples, CHECKS),
            (schemathesis.GenerationMode.NEGATIVE, negative_examples, CHECKS),
        ):
            count = max(1, round(count * share)) if count else 0
            if count:
                _fuzz_operation(report, operation, mode, count, checks, headers, known, base_seed)
        if progress:
            progress(f"{role}: {operation.label}")
    report.seconds = time.perf_counter() - started
    return report


def _fuzz_operation(
    report: RoleReport,
    operation: APIOperation,
    mode: schemathesis.GenerationMode,
    count: int,
    checks: list[Any],
    headers: dict[str, str],
    known: dict[str, list[Any]],
    base_seed: int,
) -> None:
    app = operation.app
    timeout = STREAM_TIMEOUT_S if operation.path.endswith("/stream") else TIMEOUT_S

    def send(case: Case) -> None:
        report.examples += 1
        # Revoking the token would end the role's session: that operation gets a token of its own.
        sent = _login(app, report.role) if operation.label == LOGOUT else headers
        try:
            response = case.call(headers=sent, timeout=timeout)
            token_refused = response.request.headers.get("Authorization") == headers["Authorization"]
            if response.status_code == 401 and token_refused and operation.label not in (LOGIN, LOGOUT):
                _renew(app, report.role, headers)  # a fuzzed request may have revoked the session's token
            report.statuses[response.status_code] += 1
            report.by_operation.setdefault(operation.label, Counter())[response.status_code] += 1
            case.validate_response(response, checks=checks, headers=sent)
        except FailureGroup as group:
            _record(report, operation, case, sent, group.exceptions)
        except Failure as failure:
            _record(report, operation, case, sent, [failure])
        except requests.Timeout as exc:
            _record(report, operation, case, sent, [exc])

    # A fixed seed per operation and mode: the same requests on every run, whatever ran before.
    run_seed = zlib.crc32(f"{base_seed}:{operation.label}:{mode.value}".encode())
    test = settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # no shrinking: failures are collected, not raised
        suppress_health_check=list(HealthCheck),  # slow data, filtered data and large bodies are the point here
        print_blob=False,
    )(seed(run_seed)(given(case=_cases(operation, mode, known))(send)))
    with contextlib.suppress(Unsatisfiable):  # nothing in this operation can be made schema-breaking
        test()


def _record(
    report: RoleReport, operation: APIOperation, case: Case, headers: dict[str, str], failures: Iterable[BaseException]
) -> None:
    kinds = set()
    for failure in failures:
        kind = kind_of(failure)
        kinds.add(kind)
        title = getattr(failure, "title", type(failure).__name__)
        message = str(getattr(failure, "message", failure)).strip()
        key = (operation.label, kind, f"{title}: {message.splitlines()[0] if message else ''}")
        if key not in report.findings:
            try:
                reproduce = case.as_curl_command(headers=headers)
            except Exception as exc:  # a request curl cannot spell (odd bytes) is still a finding
                reproduce = f"(no curl: {exc!r})"
            report.findings[key] = Finding(report.role, operation.label, kind, title, message[:800], reproduce[:800])
    for kind in kinds:
        report.failing[kind] += 1


def table(reports: list[RoleReport]) -> str:
    """Operations (and how many answered a 2xx at least once), examples, answers by class and failing
    examples by kind, one row per role."""
    header = (
        "role",
        "ops",
        "ops 2xx",
        "examples",
        "2xx",
        "4xx",
        "5xx",
        "server errors",
        "schema",
        "undocumented",
        "other",
        "s",
    )
    rows = [header]
    for r in reports:
        by_class = Counter(status // 100 for status in r.statuses.elements())
        rows.append(
            (
                r.role,
                str(r.operations),
                str(len(r.succeeded)),
                str(r.examples),
                str(by_class[2]),
                str(by_class[4]),
                str(by_class[5]),
                str(r.failing["server_error"]),
                str(r.failing["schema"]),
                str(r.failing["undocumented"]),
                str(r.failing["other"]),
                f"{r.seconds:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def statuses_by_operation(report: RoleReport) -> str:
    """One line per operation: the statuses it answered, most frequent first."""
    return "\n".join(
        f"{label:<60} {' '.join(f'{status}x{n}' for status, n in statuses.most_common())}"
        for label, statuses in sorted(report.by_operation.items())
    )


def findings(reports: list[RoleReport]) -> Iterator[Finding]:
    for report in reports:
        yield from report.findings.values()


def shutdown() -> None:
    """End the apps' lifespans (their database pools) that schemathesis' ASGI client started."""
    asgi.shutdown_lifespans()
