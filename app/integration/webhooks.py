"""Webhooks, the pure part: what an event looks like on the wire, how it is signed, which
subscriptions want it, when to try again, and which receiver addresses are refused.

Signing follows the scheme Stripe and GitHub use: the header

    AFM-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

so a receiver checks the body it got (byte for byte) and the age of the timestamp (replays).
docs/webhooks.md shows a receiver; its example is run by the tests.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import ipaddress
import random
from typing import Any
from urllib.parse import urlsplit

import msgspec

SIGNATURE_HEADER = "AFM-Signature"
EVENT_ID_HEADER = "AFM-Event-Id"
EVENT_TYPE_HEADER = "AFM-Event-Type"
DELIVERY_HEADER = "AFM-Delivery"
DEFAULT_TOLERANCE_S = 300


class WireEvent(msgspec.Struct, kw_only=True):
    """One ledger event as webhooks, the event stream and NATS carry it.

    `id` (serial:seq) is the same however often the event is delivered: receivers drop duplicates by it.
    `position` orders all events as the outbox published them."""

    id: str
    position: int
    type: str
    area: str
    module: str
    seq: int
    at: dt.datetime
    actor: str
    role: str
    place: str
    payload: dict[str, Any]
    hash: str


def event_id(serial: str, seq: int) -> str:
    return f"{serial}:{seq}"


def encode(event: WireEvent) -> bytes:
    return msgspec.json.encode(event, order="sorted")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The AFM-Signature header value for this body at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """True when the header signs this body with this secret and is no older than the tolerance."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


def wants(
    event_types: list[str], modules: list[str], site_codes: list[str], *, type: str, module: str, site: str
) -> bool:
    """Does a subscription with these filters want this event? An empty filter wants everything."""
    if event_types and not any(fnmatch.fnmatchcase(type, pattern) for pattern in event_types):
        return False
    if modules and module not in modules:
        return False
    return not site_codes or site in site_codes


def backoff_s(attempts: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failure: exponential, capped, with full jitter so that
    receivers coming back from an outage are not hit by every sender at the same moment."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


class ReceiverRefused(ValueError):
    """A receiver URL afm will not call; the message says why."""


def check_url(url: str) -> tuple[str, int]:
    """Refuse what is not an absolute http(s) URL with a host. Returns (host, port)."""
    if len(url) > 2000:
        raise ReceiverRefused("the URL is longer than 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ReceiverRefused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ReceiverRefused("the URL has no host")
    if parts.username or parts.password:
        raise ReceiverRefused("credentials in the URL are not accepted; verify the signature instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ReceiverRefused(f"bad port: {exc}") from None
    return parts.hostname, port


def private_reason(address: str) -> str:
    """Why an IP address is not a public receiver ("" when it is). Loopback, private, link-local
    (cloud metadata at 169.254.169.254), multicast, reserved and unspecified addresses are refused
    unless an admin allows private receivers for that subscription: otherwise a webhook could be
    used to reach the service's own network (SSRF)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag, reason in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_private, "private"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_unspecified, "unspecified"),
    ):
        if flag:
            return f"{address} is a {reason} address"
    return ""
