"""What an asset tag's QR code holds: a GS1 Digital Link URI with a short signature, and how a scan is read.

Identifiers (GS1 General Specifications):
- GIAI, AI 8004, `N4+X..30` — company prefix + individual asset reference: modules and serialised parts;
- GRAI, AI 8003, `N14[+X..16]` — a filler 0, company prefix + asset type (12 digits), mod-10 check digit,
  optional serial: returnable crates;
- SSCC, AI 00, `N18` — extension digit, company prefix + serial reference (17 digits), check digit: packages.

A tag is `https://<resolver>/<AI>/<value>?91=<KEY>.<SIG>`. The signature rides in AI 91 ("company internal
information"), a GS1 data attribute, so a GS1-aware scanner that turns the URI into an element string
(`(8004)…(91)…`) keeps it. SIG is HMAC-SHA256 over the key id and the element string, truncated to 80 bits
and written in base32 (A–Z, 2–7): short, and immune to scanners that change letter case.

Pure: no I/O. Keys are passed in as a `Keyring`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from enum import StrEnum

import msgspec


class TagRefused(Exception):
    """The scanned text is not a tag this service accepts; `reason` says why, for the person scanning."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AI(StrEnum):
    GIAI = "8004"
    GRAI = "8003"
    SSCC = "00"


SIGNATURE_AI = "91"
SIGNATURE_BYTES = 10  # 80 bits: a forger needs ~2^79 online guesses, each one logged and rate-limited
_SIG_LEN = 16  # base32 characters for 10 bytes, no padding
KEY_ID = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
COMPANY_PREFIX = re.compile(r"^\d{6,12}$")

# GS1 AI encodable character set 82 (General Specifications, figure 7.11-1).
CSET82 = frozenset("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_URI_UNRESERVED = "-._~"
_PATH_SEGMENT = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$")
_SYMBOLOGY_ID = re.compile(r"^\][A-Za-z][0-9]")  # ]Q3 (QR), ]d2 (Data Matrix), ]C1 (GS1-128) …
_GS = "\x1d"  # FNC1 as a separator, typed by a keyboard-wedge scanner as the GS control character
WEDGE_ARTEFACTS = "\r\n\t\x00\x1d\x1e\x04 "


class Identifier(msgspec.Struct, frozen=True):
    ai: AI
    value: str

    @property
    def element_string(self) -> str:
        return f"{self.ai.value}{self.value}"

    @property
    def hri(self) -> str:
        """Human-readable interpretation, as printed under a barcode: `(8004)0614141AFM-24-000101`."""
        return f"({self.ai.value}){self.value}"

    @property
    def kind(self) -> str:
        return {AI.GIAI: "giai", AI.GRAI: "grai", AI.SSCC: "sscc"}[self.ai]


class ScannedTag(msgspec.Struct, frozen=True):
    """What a scan said, before the signature is checked."""

    identifier: Identifier
    key_id: str
    signature: str


class Keyring(msgspec.Struct, frozen=True):
    """Signing keys by id. New tags are signed with `active`; other keys still verify unless retired."""

    keys: Mapping[str, bytes]
    active: str
    retired: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for key_id in self.keys:
            if not KEY_ID.match(key_id):
                raise ValueError(f"tag key id {key_id!r} must be 1–8 upper-case letters and digits, a letter first")
        if self.active not in self.keys:
            raise ValueError(f"the active tag key {self.active!r} has no secret")
        if self.active in self.retired:
            raise ValueError(f"the active tag key {self.active!r} is retired; rotate to a new key first")


# --- check digits and identifiers -----------------------------------------------------------------


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit of `digits` (the data digits without their check digit)."""
    if not digits.isdigit():
        raise ValueError(f"{digits!r} is not all digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def _check_prefix(company_prefix: str) -> None:
    if not COMPANY_PREFIX.match(company_prefix):
        raise ValueError(f"GS1 company prefix {company_prefix!r} must be 6–12 digits")


def _check_cset82(text: str, what: str) -> None:
    bad = sorted({c for c in text if c not in CSET82})
    if bad:
        raise ValueError(f"{what} {text!r} holds characters GS1 does not allow: {' '.join(map(repr, bad))}")


def giai(company_prefix: str, reference: str) -> Identifier:
    """GIAI for a module or a serialised part: company prefix + the asset's own reference (its serial)."""
    _check_prefix(company_prefix)
    if not reference:
        raise ValueError("a GIAI needs an individual asset reference")
    value = company_prefix + reference
    _check_cset82(reference, "asset reference")
    if len(value) > 30:
        raise ValueError(f"GIAI {value!r} is {len(value)} characters; GS1 allows 30 (prefix + reference)")
    return Identifier(AI.GIAI, value)


def grai(company_prefix: str, asset_type: str, serial: str = "") -> Identifier:
    """GRAI for a returnable crate: 0 + prefix + asset type (12 digits together) + check digit + serial."""
    _check_prefix(company_prefix)
    body = company_prefix + asset_type
    if not asset_type.isdigit() or len(body) != 12:
        raise ValueError(f"company prefix + asset type must be 12 digits, got {body!r}")
    _check_cset82(serial, "GRAI serial")
    if len(serial) > 16:
        raise ValueError(f"GRAI serial {serial!r} is longer than 16 characters")
    digits = "0" + body
    return Identifier(AI.GRAI, digits + check_digit(digits) + serial)


def sscc(company_prefix: str, serial_reference: int, extension: int = 0) -> Identifier:
    """SSCC for a shipped package: extension digit + prefix + serial reference (17 digits) + check digit."""
    _check_prefix(company_prefix)
    width = 16 - len(company_prefix)
    if not 0 <= extension <= 9:
        raise ValueError("the SSCC extension digit is 0–9")
    if not 0 <= serial_reference < 10**width:
        raise ValueError(f"serial reference {serial_reference} does not fit {width} digits after prefix")
    digits = f"{extension}{company_prefix}{serial_reference:0{width}d}"
    return Identifier(AI.SSCC, digits + check_digit(digits))


def check_identifier(ai: str, value: str) -> Identifier:
    """The identifier for an AI and value read from a scan; refused with the GS1 rule it breaks."""
    if ai == AI.GIAI:
        if not 5 <= len(value) <= 30:
            raise TagRefused(f"a GIAI (8004) is 5–30 characters; this one has {len(value)}")
        if not value[:4].isdigit():
            raise TagRefused("a GIAI (8004) starts with the company prefix (digits)")
        bad = sorted({c for c in value if c not in CSET82})
        if bad:
            raise TagRefused(f"the GIAI holds characters GS1 does not allow: {' '.join(map(repr, bad))}")
        return Identifier(AI.GIAI, value)
    if ai == AI.GRAI:
        digits, serial = value[:14], value[14:]
        if len(digits) != 14 or not digits.isdigit() or digits[0] != "0":
            raise TagRefused("a GRAI (8003) starts with 14 digits: 0, prefix and asset type, check digit")
        if check_digit(digits[:13]) != digits[13]:
            raise TagRefused(f"the GRAI check digit is wrong: {digits[13]}, expected {check_digit(digits[:13])}")
        if len(serial) > 16 or any(c not in CSET82 for c in serial):
            raise TagRefused("the GRAI serial is more than 16 characters or holds characters GS1 does not allow")
        return Identifier(AI.GRAI, value)
    if ai == AI.SSCC:
        if len(value) != 18 or not value.isdigit():
            raise TagRefused("an SSCC (00) is exactly 18 digits")
        if check_digit(value[:17]) != value[17]:
            raise TagRefused(f"the SSCC check digit is wrong: {value[17]}, expected {check_digit(value[:17])}")
        return Identifier(AI.SSCC, value)
    raise TagRefused(f"AI ({ai}) is not an asset identifier afm tags (8004 GIAI, 8003 GRAI, 00 SSCC)")


# --- signing --------------------------------------------------------------------------------------


def _mac(secret: bytes, key_id: str, identifier: Identifier) -> str:
    message = f"afm-tag-v1\x1f{key_id}\x1f{identifier.element_string}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.b32encode(digest).decode("ascii")


def signature(identifier: Identifier, keyring: Keyring) -> str:
    """The AI 91 value: `<KEY>.<SIG>`."""
    return f"{keyring.active}.{_mac(keyring.keys[keyring.active], keyring.active, identifier)}"


def verify(tag: ScannedTag, keyring: Keyring) -> Identifier:
    """The identifier when the signature holds; TagRefused naming why not."""
    if tag.key_id in keyring.retired:
        raise TagRefused(f"the tag is signed with key {tag.key_id}, which is retired: print a new tag")
    secret = keyring.keys.get(tag.key_id)
    if secret is None:
        raise TagRefused(f"the tag is signed with an unknown key {tag.key_id}: not an afm tag, or forged")
    expected = _mac(secret, tag.key_id, tag.identifier)
    if not hmac.compare_digest(expected, tag.signature):
        raise TagRefused("the tag's signature does not match its identifier: altered or forged")
    return tag.identifier


# --- writing and reading tags ---------------------------------------------------------------------


def normalise_resolver(resolver: str) -> str:
    """`https://host[:port][/path]` without a trailing slash; host in lower case."""
    parts = urllib.parse.urlsplit(resolver.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"tag resolver {resolver!r} must be an http(s) URL such as https://id.example.com")
    if parts.query or parts.fragment:
        raise ValueError(f"tag resolver {resolver!r} must not have a query or fragment")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def uri(identifier: Identifier, keyring: Keyring, resolver: str) -> str:
    """The GS1 Digital Link URI a tag's QR code holds."""
    value = urllib.parse.quote(identifier.value, safe=_URI_UNRESERVED)
    return (
        f"{normalise_resolver(resolver)}/{identifier.ai.value}/{value}?{SIGNATURE_AI}={signature(identifier, keyring)}"
    )


def parse(text: str, resolvers: Iterable[str]) -> ScannedTag:
    """Read a tag as a scanner delivered it: the URI (any letter case, trailing slash), or the element
    string, bracketed `(8004)…(91)…` or raw with GS separators and a symbology id. Keyboard-wedge
    artefacts around it (CR, LF, tab, GS, EOT, spaces) are ignored; anything else is refused."""
    code = text.strip(WEDGE_ARTEFACTS)
    if not code:
        raise TagRefused("nothing was scanned")
    if len(code) > 512:
        raise TagRefused("the scanned text is far longer than any afm tag")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", code):
        return _parse_uri(code, resolvers)
    if code.startswith("("):
        return _from_elements(_bracketed_elements(code))
    if _SYMBOLOGY_ID.match(code):
        code = code[3:]
    if code[:1].isdigit():
        return _from_elements(_raw_elements(code))
    raise TagRefused("not a tag: expected a GS1 Digital Link URI or a GS1 element string")


def _parse_uri(code: str, resolvers: Iterable[str]) -> ScannedTag:
    try:
        parts = urllib.parse.urlsplit(code)
    except ValueError as exc:  # e.g. an unbalanced "[" read as an IPv6 host
        raise TagRefused(f"the tag URI is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TagRefused(f"a tag URI starts with https://, not {parts.scheme}://")
    if parts.fragment:
        raise TagRefused("a tag URI has no #fragment")
    netloc = parts.netloc.lower()
    path = parts.path
    base = ""
    for resolver in resolvers:
        known = urllib.parse.urlsplit(normalise_resolver(resolver))
        if known.netloc == netloc and (path.lower() + "/").startswith(known.path.lower() + "/"):
            base = known.path
            break
    else:
        raise TagRefused(f"{netloc or 'the URI'} is not a resolver of this service's tags")
    segments = path[len(base) :].strip("/").split("/")
    if len(segments) != 2 or not segments[1]:
        raise TagRefused("a tag URI has the form /<AI>/<identifier> after the resolver")
    ai, raw_value = segments
    if not _PATH_SEGMENT.match(raw_value):
        raise TagRefused("the identifier in the URI is not correctly percent-encoded")
    try:
        value = urllib.parse.unquote(raw_value, errors="strict")
    except UnicodeDecodeError:
        raise TagRefused("the identifier in the URI is not correctly percent-encoded") from None
    try:
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise TagRefused("the tag URI's query is malformed") from None
    names = [name for name, _ in query]
    if names != [SIGNATURE_AI]:
        if SIGNATURE_AI not in names:
            raise TagRefused("the tag carries no signature (AI 91): not an afm tag, or forged")
        raise TagRefused(f"the tag URI carries unexpected parameters: {', '.join(n for n in names if n != '91')}")
    return _signed(check_identifier(ai, value), query[0][1])


def _bracketed_elements(code: str) -> list[tuple[str, str]]:
    found = re.findall(r"\((\d{2,4})\)([^()]*)", code)
    if not found or "".join(f"({a}){v}" for a, v in found) != code:
        raise TagRefused("the element string is not a series of (AI)value pairs")
    return [(ai, value.rstrip(_GS)) for ai, value in found]


_FIXED = {"00": 18}  # AIs with fixed length need no separator after them


def _raw_elements(code: str) -> list[tuple[str, str]]:
    elements: list[tuple[str, str]] = []
    rest = code
    while rest:
        for ai in ("8004", "8003", "00", "91"):
            if rest.startswith(ai):
                break
        else:
            raise TagRefused(f"unknown AI at {rest[:4]!r} in the element string")
        rest = rest[len(ai) :]
        if ai in _FIXED:
            value, rest = rest[: _FIXED[ai]], rest[_FIXED[ai] :]
        else:
            value, _, rest = rest.partition(_GS)
        rest = rest.lstrip(_GS)
        elements.append((ai, value))
    return elements


def _from_elements(elements: list[tuple[str, str]]) -> ScannedTag:
    if len(elements) != 2 or elements[1][0] != SIGNATURE_AI:
        if all(ai != SIGNATURE_AI for ai, _ in elements):
            raise TagRefused("the tag carries no signature (AI 91): not an afm tag, or forged")
        raise TagRefused("an afm tag holds exactly one identifier followed by its signature (91)")
    (ai, value), (_, signed) = elements
    return _signed(check_identifier(ai, value), signed)


def _signed(identifier: Identifier, value: str) -> ScannedTag:
    key_id, dot, sig = value.upper().partition(".")
    if not dot or not KEY_ID.match(key_id) or len(sig) != _SIG_LEN or not re.fullmatch(r"[A-Z2-7]+", sig):
        raise TagRefused("the tag's signature (AI 91) is malformed")
    return ScannedTag(identifier=identifier, key_id=key_id, signature=sig)


def read(text: str, keyring: Keyring, resolvers: Iterable[str]) -> Identifier:
    """Parse and verify in one step: the identifier a genuine tag names."""
    return verify(parse(text, resolvers), keyring)
