"""The commissioning certificate as a pure document model: every value that will be printed, no I/O.

afm issues one when a module enters service at a site; app/documents/certificate.py renders it to a PDF.

- `Signer` — one signature on a checklist: the engineer who worked it, or the witness of a two-person one;
- `ChecklistSummary` — one signed checklist run: template and version, stage and level, answer and flag
  counts, its signers;
- `ValidationLine` — one step of the hardware validation suite: verdict, a one-line summary of what was
  measured and the SHA-256 of the result file it was judged on;
- `Evidence` — one photo (or other evidence file) by its SHA-256;
- `CommissioningCertificate` — the certificate: module, site, checklists, validation, evidence, the URL
  the QR code holds and the module's ledger chain head at issue.

Every Struct checks itself on construction; a bad value raises `CertificateError` (a ValueError) naming
the line and the rule. A certificate is never issued over a failed validation step.

Times: naive datetimes are taken to be UTC (as the database stores them); every datetime is kept as an
aware UTC datetime, so a certificate built from database rows and one built from aware values are equal.
Hashes are kept lower-case (an upper-case hex digest is accepted and lowered).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Literal, get_args

import iso3166
import msgspec

from app.sites.schemas import SecurityLevel

SignerKind = Literal["engineer", "witness"]
Verdict = Literal["pass", "fail"]

SIGNER_KINDS: tuple[str, ...] = get_args(SignerKind)
VERDICTS: tuple[str, ...] = get_args(Verdict)
SECURITY_LEVELS: tuple[str, ...] = get_args(SecurityLevel)
NUMBER_MAX_LEN = 40  # commissioning_certificates.number is a String(40)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


class CertificateError(ValueError):
    """A certificate (or one of its lines) breaks a rule; the message names the line and the rule."""


# --- checks ---------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> CertificateError:
    return CertificateError(f"{where}: {message}")


def _require(where: str, name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{name} is empty")


def _count(where: str, name: str, value: int, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"{name} {value!r} must be a whole number >= {minimum}")


def _sha256(where: str, name: str, value: str) -> str:
    """The hash lower-cased, or an error: exactly 64 hex digits."""
    digest = value.strip().lower() if isinstance(value, str) else ""
    if not _SHA256.match(digest):
        raise _fail(where, f"{name} {value!r} is not a SHA-256 (64 hex digits)")
    return digest


def _utc(where: str, name: str, value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive value is taken to be UTC already."""
    if not isinstance(value, dt.datetime):
        raise _fail(where, f"{name} {value!r} is not a datetime")
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _set_utc(obj: msgspec.Struct, where: str, *names: str) -> None:
    for name in names:
        msgspec.structs.force_setattr(obj, name, _utc(where, name.replace("_", " "), getattr(obj, name)))


def _unique(where: str, what: str, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _fail(where, f"{what} {value} appears twice")
        seen.add(value)


# --- the model ------------------------------------------------------------------------------------


class Signer(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # full name as typed when signing
    username: str
    role: str  # the afm role they signed in ("site_engineer", "security_officer", …)
    kind: SignerKind  # engineer: worked the checklist; witness: second person of a two-person checklist
    signed_at: dt.datetime  # UTC

    def __post_init__(self) -> None:
        where = f"signer {self.username!r}"
        _require(where, "name", self.name)
        _require(where, "username", self.username)
        _require(where, "role", self.role)
        if self.kind not in SIGNER_KINDS:
            raise _fail(where, f"kind {self.kind!r} must be one of {', '.join(SIGNER_KINDS)}")
        _set_utc(self, where, "signed_at")


class ChecklistSummary(msgspec.Struct, frozen=True, kw_only=True):
    template_id: str
    version: str  # template version the run was worked against
    title: str
    stage: str  # e.g. "site-acceptance", "power-on"
    level: int  # the template's level (assurance level of the checks), >= 0
    answered: int  # items answered
    flagged: int  # answers flagged for follow-up (<= answered)
    signers: tuple[Signer, ...]  # at least one; at most one engineer and one witness, two different people

    def __post_init__(self) -> None:
        where = f"checklist {self.template_id!r}"
        _require(where, "template id", self.template_id)
        _require(where, "version", self.version)
        _require(where, "title", self.title)
        _require(where, "stage", self.stage)
        _count(where, "level", self.level)
        _count(where, "answered", self.answered)
        _count(where, "flagged", self.flagged)
        if self.flagged > self.answered:
            raise _fail(where, f"{self.flagged} answers flagged but only {self.answered} answered")
        if not self.signers:
            raise _fail(where, "has no signer: only a signed checklist goes on a certificate")
        _unique(where, "signer kind", (s.kind for s in self.signers))
        _unique(where, "signer", (s.username for s in self.signers))  # a witness is someone else


class ValidationLine(msgspec.Struct, frozen=True, kw_only=True):
    step: str  # step id within the suite
    title: str
    kind: str  # e.g. "nccl-allreduce", "dcgm-diag"
    verdict: Verdict
    summary: str  # e.g. "bus bandwidth 462.1 GB/s at 8 GiB (min 450)"
    result_sha256: str  # of the result file the verdict was judged on

    def __post_init__(self) -> None:
        where = f"validation step {self.step!r}"
        _require(where, "step", self.step)
        _require(where, "title", self.title)
        _require(where, "kind", self.kind)
        if self.verdict not in VERDICTS:
            raise _fail(where, f"verdict {self.verdict!r} must be one of {', '.join(VERDICTS)}")
        _require(where, "summary", self.summary)
        msgspec.structs.force_setattr(self, "result_sha256", _sha256(where, "result SHA-256", self.result_sha256))


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # what the photo shows
    sha256: str  # of the file as stored
    media_type: str  # "image/jpeg"

    def __post_init__(self) -> None:
        where = f"evidence {self.label!r}"
        _require(where, "label", self.label)
        msgspec.structs.force_setattr(self, "sha256", _sha256(where, "SHA-256", self.sha256))
        if not isinstance(self.media_type, str) or not _MEDIA_TYPE.match(self.media_type):
            raise _fail(where, f"media type {self.media_type!r} must look like image/jpeg")


class CommissioningCertificate(msgspec.Struct, frozen=True, kw_only=True):
    number: str  # e.g. "CC-2025-000123"; at most 40 characters
    issued_at: dt.datetime  # UTC
    module_serial: str
    spec_code: str
    spec_name: str
    gpu_model: str  # "" only when gpu_count is 0 (a network or storage module)
    gpu_count: int
    factory: str  # where the module was built
    site_code: str
    site_name: str
    site_country: str  # ISO 3166-1 alpha-2
    security_level: str  # commercial, sovereign, defence
    entered_service_at: dt.datetime  # UTC; not after issued_at
    checklists: tuple[ChecklistSummary, ...]  # at least one
    suite_id: str
    suite_version: str
    validation: tuple[ValidationLine, ...]  # at least one; every verdict "pass"
    evidence: tuple[Evidence, ...]
    url: str  # the module's page; what the QR code holds
    ledger_head: str  # the module's ledger chain head (SHA-256) when the certificate was issued

    def __post_init__(self) -> None:
        where = f"certificate {self.number!r}"
        _require(where, "number", self.number)
        if len(self.number) > NUMBER_MAX_LEN:
            raise _fail(where, f"number is {len(self.number)} characters, at most {NUMBER_MAX_LEN}")
        _set_utc(self, where, "issued_at", "entered_service_at")
        for name in ("module_serial", "spec_code", "spec_name", "factory", "site_code", "site_name"):
            _require(where, name.replace("_", " "), getattr(self, name))
        _count(where, "GPU count", self.gpu_count)
        if self.gpu_count and not self.gpu_model.strip():
            raise _fail(where, f"{self.gpu_count} GPUs but no GPU model")
        if self.site_country not in iso3166.countries_by_alpha2:
            raise _fail(
                where, f"site country {self.site_country!r} is not an ISO 3166-1 alpha-2 country code (e.g. SE)"
            )
        if self.security_level not in SECURITY_LEVELS:
            raise _fail(where, f"security level {self.security_level!r} must be one of {', '.join(SECURITY_LEVELS)}")
        if self.entered_service_at > self.issued_at:
            raise _fail(where, "entered service after the certificate was issued")
        if not self.checklists:
            raise _fail(where, "lists no checklists")
        _unique(where, "checklist template", (c.template_id for c in self.checklists))
        for checklist in self.checklists:
            for signer in checklist.signers:
                if signer.signed_at > self.issued_at:
                    raise _fail(
                        where,
                        f"{signer.name} signed checklist {checklist.template_id} after the certificate was issued",
                    )
        _require(where, "suite id", self.suite_id)
        _require(where, "suite version", self.suite_version)
        if not self.validation:
            raise _fail(where, "lists no validation steps")
        _unique(where, "validation step", (v.step for v in self.validation))
        failed = [v.step for v in self.validation if v.verdict != "pass"]
        if failed:
            raise _fail(where, f"validation step(s) {', '.join(failed)} failed: no certificate over a failed step")
        if not self.url.startswith(("https://", "http://")):
            raise _fail(where, f"URL {self.url!r} must be an http(s) URL")
        msgspec.structs.force_setattr(self, "ledger_head", _sha256(where, "ledger head", self.ledger_head))
