"""Browser-facing security headers on every response, and the client address of each request.

The Content-Security-Policy allows scripts from this origin only: no inline scripts, no inline event
handlers, no eval. Styles: this origin plus the two known <style> texts (htmx's, matplotlib's SVG
charts), allowed by their hashes;
inline `style` attributes stay allowed because badges and timelines colour and place themselves
from data (`style="--c: …"`), which cannot run code.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.audit import reset_current_client, set_current_client

# htmx 2 adds this <style> for its request indicators (htmx.config.includeIndicatorStyles); the CSP
# allows exactly this text by hash. tests/security checks the vendored htmx still emits it.
HTMX_INDICATOR_STYLE = (
    ".htmx-indicator{opacity:0;visibility: hidden} "
    ".htmx-request .htmx-indicator, .htmx-request.htmx-indicator"
    "{opacity:1;visibility: visible;transition: opacity 200ms ease-in}"
)

# matplotlib writes this <style> into every SVG chart (the fleet dashboard inlines them).
MATPLOTLIB_SVG_STYLE = "*{stroke-linejoin: round; stroke-linecap: butt}"
INLINE_STYLES: tuple[str, ...] = (HTMX_INDICATOR_STYLE, MATPLOTLIB_SVG_STYLE)


def style_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",  # only for browsers without the -elem/-attr split below
    "style-src-elem": " ".join(["'self'", *(style_hash(text) for text in INLINE_STYLES)]),
    "style-src-attr": "'unsafe-inline'",
    "img-src": "'self' data: blob:",  # QR previews and phone photos
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "'self'",  # the field checklist's service worker
    "manifest-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
CONTENT_SECURITY_POLICY = "; ".join(f"{name} {value}" for name, value in CSP_DIRECTIVES.items())

HSTS = "max-age=31536000; includeSubDomains"

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),  # frame-ancestors for browsers that predate it
    ("referrer-policy", "same-origin"),  # tag URIs and serials stay on this site
    ("permissions-policy", "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"),
    ("cross-origin-opener-policy", "same-origin"),
)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def client_address(scope: Scope | dict[str, Any], behind_proxy: bool) -> str:
    """The address sign-in throttling and the audit trail attribute a request to. Behind a proxy,
    the last X-Forwarded-For hop (the one our proxy appended); the earlier ones are client-supplied."""
    if behind_proxy:
        forwarded = _header(scope, b"x-forwarded-for")  # type: ignore[arg-type]
        if forwarded:
            return forwarded.rsplit(",", 1)[-1].strip()[:64] or "unknown"
    client = scope.get("client")
    return str(client[0])[:64] if client else "unknown"


def is_https(scope: Scope, behind_proxy: bool) -> bool:
    if scope.get("scheme") == "https":
        return True
    return behind_proxy and _header(scope, b"x-forwarded-proto").split(",")[-1].strip().lower() == "https"


class SecurityHeaders:
    """A `before_send` hook: sees every response, router 404s and error pages included. A header a
    handler set itself is kept (a response may narrow its own policy)."""

    def __init__(self, *, behind_proxy: bool = False) -> None:
        self.behind_proxy = behind_proxy

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", []))
        present = {bytes(name).lower() for name, _ in headers}
        extra = list(SECURITY_HEADERS)
        if is_https(scope, self.behind_proxy):
            extra.append(("strict-transport-security", HSTS))
        for name, value in extra:
            if name.encode() not in present:
                headers.append((name.encode(), value.encode()))
        message["headers"] = headers  # type: ignore[typeddict-unknown-key]


class ClientAddressMiddleware:
    """Makes the client address known to code without the request at hand (the admin audit)."""

    def __init__(self, app: ASGIApp, behind_proxy: bool = False) -> None:
        self.app = app
        self.behind_proxy = behind_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = set_current_client(client_address(scope, self.behind_proxy))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_current_client(token)
