from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec


class RunStart(msgspec.Struct, forbid_unknown_fields=True):
    station: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class RunCreated(msgspec.Struct):
    id: int
    module: str
    state: str


class GpuResult(msgspec.Struct):
    index: int
    uuid: str
    verdict: str
    reasons: list[str]


class VerdictRead(msgspec.Struct):
    verdict: str
    gpus: list[GpuResult]
    rules_version: str
    reasons: list[str] = []
    warnings: list[str] = []


class UploadReceipt(msgspec.Struct):
    run: int
    kind: str
    rows: int
    sha256: str
    bytes: int


class RunRead(msgspec.Struct):
    id: int
    module: str
    station: str
    status: str
    started_by: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    verdict: str | None
    rules_version: str
    telemetry_uploads: int
    telemetry_rows: int
    gpus_seen: int
    dcgm_level: int | None
    xid_count: int
    result: VerdictRead | None = None
