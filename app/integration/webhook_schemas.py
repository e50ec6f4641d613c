"""Wire schemas of webhook subscriptions and deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

EventPattern = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]+(\.[a-z_*]+)?$|^\*$", max_length=64)]
Serial = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
SiteCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class SubscriptionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    url: Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]
    event_types: Annotated[list[EventPattern], msgspec.Meta(max_length=50)] = []
    modules: Annotated[list[Serial], msgspec.Meta(max_length=1000)] = []
    sites: Annotated[list[SiteCode], msgspec.Meta(max_length=200)] = []
    allow_private: bool = False  # an admin's explicit permission for a loopback or private receiver


class SubscriptionUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    url: Annotated[str, msgspec.Meta(min_length=8, max_length=2000)] | None = None
    event_types: Annotated[list[EventPattern], msgspec.Meta(max_length=50)] | None = None
    modules: Annotated[list[Serial], msgspec.Meta(max_length=1000)] | None = None
    sites: Annotated[list[SiteCode], msgspec.Meta(max_length=200)] | None = None
    allow_private: bool | None = None
    active: bool | None = None
    paused: bool | None = None  # false resumes a paused subscription (and resets its failure count)


class SubscriptionRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    url: str
    event_types: list[str]
    modules: list[str]
    sites: list[str]
    allow_private: bool
    active: bool
    paused_reason: str
    consecutive_failures: int
    created_by: str
    created_at: dt.datetime
    pending: int = 0
    delivered: int = 0


class SubscriptionCreated(SubscriptionRead, kw_only=True):
    secret: str  # shown once: the receiver verifies AFM-Signature with it


class AttemptRead(msgspec.Struct, kw_only=True):
    id: int
    at: dt.datetime
    status: int | None
    error: str
    duration_ms: float
    trigger: str


class DeliveryRead(msgspec.Struct, kw_only=True):
    id: int
    subscription_id: int
    event_id: str
    position: int
    module: str
    type: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_status: int | None
    last_error: str
    delivered_at: dt.datetime | None
    history: list[AttemptRead] = []
