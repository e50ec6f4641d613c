"""Wire shapes of commissioning: checklist runs and answers, sign-off, validation runs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]


class StartChecklistIn(msgspec.Struct, forbid_unknown_fields=True):
    template: Slug


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    # bool, number, text, choice, a photo's SHA-256, {"value", "instrument"} or a typed name
    value: bool | float | str | dict[str, Any]
    base_version: Annotated[int, msgspec.Meta(ge=0)]  # the version this edit was based on (0: first answer)
    edit_id: Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    answered_at: dt.datetime | None = None  # when the engineer answered (offline answers arrive later)


class AnswerRead(msgspec.Struct):
    item: str
    value: Any
    comment: str
    flagged: bool
    flag_reason: str
    version: int
    answered_by: str
    answered_at: dt.datetime


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["engineer", "witness"]
    name: Annotated[str, msgspec.Meta(min_length=3, max_length=200)]  # the full name, typed


class SignatureRead(msgspec.Struct):
    kind: str
    name: str
    username: str
    role: str
    signed_at: dt.datetime


class RunRead(msgspec.Struct):
    id: int
    module: str
    site: str
    security_level: str
    template: dict[str, Any]  # the template as it was when the run started
    status: str
    answers: list[AnswerRead]
    visible: list[str]
    missing: list[str]
    flagged: list[str]
    signatures: list[SignatureRead]
    needs_witness: bool
    started_by: str
    started_at: dt.datetime
    signed_at: dt.datetime | None


class RunSummary(msgspec.Struct):
    template: str
    title: str
    stage: str
    level: int
    run: int | None
    status: str  # not started, open, signed
    version: str


class NextStep(msgspec.Struct):
    what: str
    target: str


class StepRead(msgspec.Struct):
    step: str
    title: str
    kind: str
    required: bool
    verdict: str  # pass, fail, no result
    reasons: list[str]
    metrics: dict[str, Any]
    sha256: str | None
    uploaded_at: dt.datetime | None


class ValidationRunRead(msgspec.Struct):
    id: int
    module: str
    suite: str
    suite_version: str
    verdict: str  # incomplete, pass, fail
    reasons: list[str]
    steps: list[StepRead]
    started_by: str
    started_at: dt.datetime


class CommissioningRead(msgspec.Struct):
    module: str
    state: str
    site: str
    security_level: str
    checklists: list[RunSummary]
    validation: ValidationRunRead | None
    next: list[NextStep]


class DriveSanitised(msgspec.Struct, forbid_unknown_fields=True):
    drive: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # the drive's part serial
    method: Literal["clear", "purge", "destroy"]  # NIST SP 800-88 Rev. 1
    technique: Annotated[str, msgspec.Meta(max_length=100)] = ""  # e.g. "NVMe Sanitize (crypto erase)"
    tool: Annotated[str, msgspec.Meta(max_length=100)] = ""
    verified: bool = False


class SanitisationIn(msgspec.Struct, forbid_unknown_fields=True):
    drives: Annotated[list[DriveSanitised], msgspec.Meta(min_length=1, max_length=500)]
    certificate: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]  # the sanitisation certificate reference
