"""`dcgmi diag -r N -j` results, read defensively from both JSON shapes DCGM has printed.

DCGM <= 3.x: {"DCGM GPU Diagnostic": {"test_categories": [{"category", "tests": [{"name", "results":
[{"gpu_ids": "0,1", "status": "PASS", "warnings": ["..."], "info": ["..."]}]}]}], "version"}, ...}.
DCGM 4.x: top key "DCGM Diagnostic", one result per entity ({"entity_group": "GPU", "entity_id": 0,
"status": "Pass", "warnings": [{"error_id": 52, "error_category", "error_severity", "warning": "..."}]}),
a "test_summary" per test, "metadata": {"version"}; some builds hoist "tests" out of their categories.

A test missing from the file is "not run" — never "pass". Pure: bytes in, a DcgmResult out.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from app.core.errors import InvalidInput

__all__ = ["LEVEL_OF_TEST", "DcgmResult", "DcgmTest", "normalise_name", "parse_dcgm"]

ROOT_KEYS: Final = ("DCGM GPU Diagnostic", "DCGM Diagnostic")
# Status words seen across DCGM versions, by their lowercase letters only ("Not Run" -> "notrun").
STATUS: Final[dict[str, str]] = {
    "pass": "pass",
    "passed": "pass",
    "fail": "fail",
    "failed": "fail",
    "error": "fail",
    "warn": "warn",
    "warning": "warn",
    "skip": "skip",
    "skipped": "skip",
    "notrun": "skip",
    "notsupported": "skip",
}
SEVERITY: Final = ("fail", "warn", "pass", "skip")  # worst first

# The lowest run level (`dcgmi diag -r N`) that runs each test, by normalised name (DCGM 3.x display
# names and 4.x plugin names). Level 1 = deployment checks only; 2 adds PCIe and GPU memory (and
# nvbandwidth); 3 adds the SM diagnostic, targeted stress/power and memory bandwidth (and EUD where it
# is installed); 4 adds the pulse test and memtest. Where the docs leave doubt the lower level is used,
# so an inferred level never claims more than ran. Tests not listed count as level 1.
LEVEL_OF_TEST: Final[dict[str, int]] = {
    "pcie": 2,
    "memory": 2,
    "nvbandwidth": 2,
    "diagnostic": 3,
    "smstress": 3,
    "targetedstress": 3,
    "targetedpower": 3,
    "memorybandwidth": 3,
    "eud": 3,
    "cpueud": 3,
    "pulsetest": 4,
    "memtest": 4,
}
# DCGM_FR_* failure reasons by error_id (dcgm_errors.h), for the ones a burn-in meets; others print as ids.
FAILURE_REASONS: Final[dict[int, str]] = {
    3: "DCGM_FR_PCI_REPLAY_RATE",
    4: "DCGM_FR_VOLATILE_DBE_DETECTED",
    5: "DCGM_FR_VOLATILE_SBE_DETECTED",
    6: "DCGM_FR_PENDING_PAGE_RETIREMENTS",
    9: "DCGM_FR_CORRUPT_INFOROM",
    10: "DCGM_FR_CLOCK_THROTTLE_THERMAL",
    12: "DCGM_FR_CLOCK_THROTTLE_POWER",
    13: "DCGM_FR_NVLINK_ERROR_THRESHOLD",
    14: "DCGM_FR_NVLINK_DOWN",
    23: "DCGM_FR_DENYLISTED_DRIVER",
    25: "DCGM_FR_GRAPHICS_PROCESSES",
    28: "DCGM_FR_BAD_CUDA_ENV",
    29: "DCGM_FR_PERSISTENCE_MODE",
    30: "DCGM_FR_LOW_BANDWIDTH",
    40: "DCGM_FR_THERMAL_VIOLATIONS",
    42: "DCGM_FR_TEMP_VIOLATION",
    43: "DCGM_FR_THROTTLING_VIOLATION",
    45: "DCGM_FR_PCIE_GENERATION",
    46: "DCGM_FR_PCIE_WIDTH",
    50: "DCGM_FR_STRESS_LEVEL",
    52: "DCGM_FR_FAULTY_MEMORY",
    57: "DCGM_FR_CUDA_DBE",
    58: "DCGM_FR_MEMORY_MISMATCH",
    62: "DCGM_FR_MEMORY_BANDWIDTH",
    63: "DCGM_FR_TARGET_POWER",
    70: "DCGM_FR_NVLINK_CRC_ERROR_THRESHOLD",
    71: "DCGM_FR_NVLINK_ERROR_CRITICAL",
    80: "DCGM_FR_ROW_REMAP_FAILURE",
    81: "DCGM_FR_UNCONTAINED_ERROR",
    84: "DCGM_FR_UNCORRECTABLE_ROW_REMAP",
    85: "DCGM_FR_PENDING_ROW_REMAP",
    101: "DCGM_FR_XID_ERROR",
    103: "DCGM_FR_DBE_VIOLATION",
    104: "DCGM_FR_PCIE_REPLAY_VIOLATION",
}
_BYTE = re.compile(r"byte (\d+)")


class DcgmTest(msgspec.Struct):
    """One diagnostic test, over every GPU it ran on."""

    name: str  # as DCGM printed it ("Targeted Power", "targeted_power")
    category: str  # Deployment | Integration | Hardware | Stress | Performance | Custom | ...
    status: str  # pass | fail | warn | skip — the worst over its GPUs
    gpus: list[int] = []  # the GPUs with that status (for a failed test: the failing GPUs)
    messages: list[str] = []  # DCGM's warnings (else info) for those GPUs, with the DCGM_FR_* reason


class DcgmResult(msgspec.Struct):
    level: int | None  # the `-r` level: stated in the file, else inferred from the tests that ran
    version: str | None  # DCGM version
    tests: list[DcgmTest] = []

    def failed(self) -> list[DcgmTest]:
        return [t for t in self.tests if t.status == "fail"]

    def status_for(self, test_name: str) -> str:
        """The worst status of a test ("Targeted Power" and "targeted_power" are one test); "not run" when
        the file does not have it."""
        wanted = normalise_name(test_name)
        found = {t.status for t in self.tests if normalise_name(t.name) == wanted}
        return next((s for s in SEVERITY if s in found), "not run")


# One test under two names across DCGM versions (after normalising).
SAME_TEST: Final[dict[str, str]] = {"gpumemory": "memory", "blacklist": "denylist", "pulse": "pulsetest"}


def normalise_name(name: str) -> str:
    """A test's name reduced to lowercase letters and digits, so "Targeted Power" (DCGM 3.x) and
    "targeted_power" (4.x) are one test; "GPU Memory" is 4.x's "memory"."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return SAME_TEST.get(key, key)


def _status(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    return STATUS.get(re.sub(r"[^a-z]", "", str(raw).lower()), "unknown")


def _gpus(result: dict[str, Any]) -> list[int]:
    ids = result.get("gpu_ids", result.get("gpu_id"))
    if ids is not None:
        parts = ids if isinstance(ids, list) else str(ids).split(",")
        return [int(p) for p in (str(x).strip() for x in parts) if p.isdigit()]
    group = result.get("entity_group", "GPU")
    entity = result.get("entity_id")
    if str(group).upper() == "GPU" and (isinstance(entity, int) or str(entity).isdigit()):
        return [int(entity)]
    return []


def _message(item: Any) -> str | None:
    if isinstance(item, str):
        return item.strip() or None
    if not isinstance(item, dict):
        return None
    text = next((item[k] for k in ("warning", "message", "msg", "error", "text", "info") if item.get(k)), None)
    code = item.get("error_code") or item.get("code")
    error_id = item.get("error_id")
    if not code and error_id is not None:
        code = FAILURE_REASONS.get(error_id) if isinstance(error_id, int) else None
        code = code or f"DCGM error {error_id}"
    if text and code:
        return f"{str(text).strip()} ({code})"
    return str(text or code).strip() if (text or code) else None


def _messages(result: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for key in keys:
        items = result.get(key)
        for item in items if isinstance(items, list) else [items] if items else []:
            if (text := _message(item)) and text not in out:
                out.append(text)
    return out


def _test(test: dict[str, Any], category: str) -> DcgmTest:
    name = str(test.get("name") or test.get("test_name") or "unnamed test")
    results = test.get("results")
    if isinstance(results, dict):
        results = [results]
    results = [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []
    graded: list[tuple[str, dict[str, Any]]] = [(_status(r.get("status")) or "skip", r) for r in results]
    summary = test.get("test_summary")
    summary_status = _status(summary.get("status")) if isinstance(summary, dict) else _status(test.get("status"))
    statuses = {s for s, _ in graded} | ({summary_status} if summary_status else set())
    unknown = "unknown" in statuses
    status = "fail" if unknown else next((s for s in SEVERITY if s in statuses), "skip")
    mine = [r for s, r in graded if s == status or (unknown and s == "unknown")]
    gpus = sorted({g for r in mine for g in _gpus(r)})
    messages = [m for r in mine for m in _messages(r, ("warnings", "errors"))]
    if not messages:
        messages = [m for r in mine for m in _messages(r, ("info",))]
    if isinstance(summary, dict):
        messages += [m for m in _messages(summary, ("warnings", "errors")) if m not in messages]
    if unknown:
        raw = {str(r.get("status")) for s, r in graded if s == "unknown"} or {str(summary_status)}
        messages.insert(0, f"unrecognised DCGM status {', '.join(sorted(raw))!r}; counted as a failure")
    return DcgmTest(name=name, category=category, status=status, gpus=gpus, messages=messages)


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    offset = max(0, min(offset, len(data)))
    start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[start:offset].decode("utf-8", errors="replace")) + 1


def _decode(data: bytes) -> Any:
    # dcgmi may print a warning line before the document; start at the first line that opens an object.
    skip = 0
    if data.lstrip()[:1] != b"{":
        match = re.search(rb"^[ \t]*\{", data, re.MULTILINE)
        skip = match.start() if match else 0
    try:
        return msgspec.json.decode(data[skip:])
    except msgspec.DecodeError as exc:
        found = _BYTE.search(str(exc))
        offset = skip + int(found[1]) if found else len(data)
        line, column = _position(data, offset)
        reason = str(exc).split(" (byte")[0]
        raise InvalidInput(f"DCGM JSON line {line}, column {column}: {reason}", line=line, column=column) from None
    except UnicodeDecodeError as exc:  # msgspec raises this, not DecodeError, for bytes that are not UTF-8
        line, column = _position(data, skip + exc.start)
        raise InvalidInput(f"DCGM JSON line {line}, column {column}: not UTF-8", line=line, column=column) from None
    except RecursionError:  # nested deeper than any DCGM report: refused, not a crash
        raise InvalidInput("DCGM JSON line 1, column 1: nested too deeply", line=1, column=1) from None


def parse_dcgm(data: bytes) -> DcgmResult:
    """Read `dcgmi diag -j` output of any DCGM version; InvalidInput (with line and column) if it is not."""
    if not data.strip():
        raise InvalidInput("DCGM JSON line 1, column 1: the file is empty", line=1, column=1)
    doc = _decode(data)
    if not isinstance(doc, dict):
        raise InvalidInput("DCGM JSON line 1, column 1: expected a JSON object from `dcgmi diag -j`", line=1, column=1)
    root = next((doc[k] for k in ROOT_KEYS if isinstance(doc.get(k), dict)), None)
    if root is None and ("test_categories" in doc or "tests" in doc):
        root = doc  # the categories or tests without the wrapping object
    if root is None:
        raise InvalidInput(
            "DCGM JSON line 1, column 1: not `dcgmi diag -j` output (no 'DCGM GPU Diagnostic' or 'DCGM Diagnostic')",
            line=1,
            column=1,
        )
    tests: list[DcgmTest] = []
    categories = root.get("test_categories")
    for category in categories if isinstance(categories, list) else []:
        if isinstance(category, dict):
            for test in category.get("tests") or []:
                if isinstance(test, dict):  # 3.x prints null between tests
                    tests.append(_test(test, str(category.get("category") or "")))
    for holder in (root, doc) if root is not doc else (root,):
        hoisted = holder.get("tests")
        for test in hoisted if isinstance(hoisted, list) else []:
            if isinstance(test, dict):
                tests.append(_test(test, str(test.get("category") or "")))
    for holder in (root, doc) if root is not doc else (root,):
        if error := holder.get("runtime_error"):
            # The diagnostic did not run to the end: whatever it did not report did not pass.
            tests.append(DcgmTest(name="diagnostic run", category="DCGM", status="fail", messages=[str(error)]))
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    version = root.get("version") or doc.get("version") or metadata.get("version") or metadata.get("DCGM Version")
    return DcgmResult(level=_level(doc, root, metadata, tests), version=str(version) if version else None, tests=tests)


def _level(doc: dict[str, Any], root: dict[str, Any], metadata: dict[str, Any], tests: list[DcgmTest]) -> int | None:
    for holder in (root, doc, metadata):
        for key in ("level", "Level", "run_level", "runLevel", "diag_level"):
            stated = holder.get(key)
            if isinstance(stated, int) and 1 <= stated <= 4:
                return stated
            if isinstance(stated, str) and stated.strip() in ("1", "2", "3", "4"):
                return int(stated)
    ran = [t for t in tests if t.status in ("pass", "fail", "warn") and t.name != "diagnostic run"]
    if not ran:
        return None
    return max(LEVEL_OF_TEST.get(normalise_name(t.name), 1) for t in ran)
