"""Tag payloads: GS1 identifiers with check digits, signed Digital Link URIs, and reading what scanners send."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tags.payload import (
    AI,
    CSET82,
    Identifier,
    Keyring,
    TagRefused,
    check_digit,
    giai,
    grai,
    parse,
    read,
    sscc,
    uri,
    verify,
)

RESOLVER = "https://id.afm.example"
KEYS = Keyring(keys={"K1": b"old-secret-0123456789", "K2": b"new-secret-9876543210"}, active="K2")
PREFIX = "0614141"


def test_check_digits_match_gs1_examples() -> None:
    # GS1 examples: SSCC (00)106141411234567897, GTIN-13 6291041500213
    assert check_digit("10614141123456789") == "7"
    assert check_digit("629104150021") == "3"
    assert sscc(PREFIX, 123456789, extension=1).value == "106141411234567897"
    assert grai(PREFIX, "12345", "SN42").value == "00614141123452SN42"  # the reference's own example


def test_giai_limits() -> None:
    assert giai(PREFIX, "AFM-24-000101").value == "0614141AFM-24-000101"
    with pytest.raises(ValueError, match="30"):
        giai(PREFIX, "X" * 24)
    with pytest.raises(ValueError, match="does not allow"):
        giai(PREFIX, "AFM 24")
    with pytest.raises(ValueError, match="6–12 digits"):
        giai("06A", "AFM-1")


def test_uri_shape_and_round_trip() -> None:
    ident = giai(PREFIX, "AFM-24-000101")
    text = uri(ident, KEYS, RESOLVER + "/")
    assert text.startswith("https://id.afm.example/8004/0614141AFM-24-000101?91=K2.")
    assert read(text, KEYS, [RESOLVER]) == ident
    assert ident.hri == "(8004)0614141AFM-24-000101"


@pytest.mark.parametrize(
    "variant",
    [
        lambda u: u + "\r\n",  # keyboard wedge Enter
        lambda u: u + "\n",
        lambda u: u + "\x1d",  # a GS a scanner left at the end
        lambda u: "  " + u + "\t",
        lambda u: u.upper(),  # scanners that upper-case for QR alphanumeric mode
        lambda u: u.lower().replace("0614141afm-24-000101", "0614141AFM-24-000101"),  # host, sig in lower case
        lambda u: u.replace("?91", "/?91"),  # trailing slash
        lambda u: u.replace("https://", "HTTPS://").replace("id.afm.example", "ID.AFM.Example"),
    ],
)
def test_accepts_tags_as_scanners_deliver_them(variant) -> None:  # type: ignore[no-untyped-def]
    ident = giai(PREFIX, "AFM-24-000101")
    assert read(variant(uri(ident, KEYS, RESOLVER)), KEYS, [RESOLVER]) == ident


def test_element_string_forms() -> None:
    ident = giai(PREFIX, "AFM-24-000101")
    sig = uri(ident, KEYS, RESOLVER).split("?91=")[1]
    assert read(f"(8004)0614141AFM-24-000101(91){sig}", KEYS, [RESOLVER]) == ident
    assert read(f"]Q380040614141AFM-24-000101\x1d91{sig}\r\n", KEYS, [RESOLVER]) == ident
    assert read(f"80040614141AFM-24-000101\x1d91{sig}", KEYS, [RESOLVER]) == ident
    box = sscc(PREFIX, 42)
    sig = uri(box, KEYS, RESOLVER).split("?91=")[1]
    assert read(f"00{box.value}91{sig}", KEYS, [RESOLVER]) == box  # fixed-length 00 needs no GS


def test_old_keys_verify_retired_keys_are_refused() -> None:
    ident = giai(PREFIX, "AFM-24-000101")
    old = Keyring(keys={"K1": KEYS.keys["K1"]}, active="K1")
    signed_k1 = uri(ident, old, RESOLVER)
    assert read(signed_k1, KEYS, [RESOLVER]) == ident  # rotated: K2 signs, K1 still verifies
    retired = Keyring(keys=KEYS.keys, active="K2", retired=frozenset({"K1"}))
    with pytest.raises(TagRefused, match="retired"):
        read(signed_k1, retired, [RESOLVER])
    with pytest.raises(TagRefused, match="unknown key"):
        read(signed_k1.replace("91=K1.", "91=K9."), KEYS, [RESOLVER])
    with pytest.raises(ValueError, match="retired"):
        Keyring(keys=KEYS.keys, active="K1", retired=frozenset({"K1"}))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "nothing was scanned"),
        ("hello", "not a tag"),
        ("https://evil.example/8004/0614141AFM-24-000101?91=K2.AAAAAAAAAAAAAAAA", "not a resolver"),
        ("https://id.afm.example/8004/0614141AFM-24-000101", "no signature"),
        ("https://id.afm.example/8004/0614141AFM-24-000101?91=K2.AAAA", "malformed"),
        ("https://id.afm.example/8004/0614141AFM-24-000101?91=K2.AAAAAAAAAAAAAAAA&x=1", "unexpected"),
        ("https://id.afm.example/01/09506000134352?91=K2.AAAAAAAAAAAAAAAA", "not an asset identifier"),
        ("https://id.afm.example/8003/00614141123453?91=K2.AAAAAAAAAAAAAAAA", "check digit"),
        ("https://id.afm.example/00/106141411234567890?91=K2.AAAAAAAAAAAAAAAA", "check digit"),
        ("https://id.afm.example/8004/0614141AFM%ZZ?91=K2.AAAAAAAAAAAAAAAA", "percent-encoded"),
        ("ftp://id.afm.example/8004/0614141AFM-1?91=K2.AAAAAAAAAAAAAAAA", "https://"),
        ("(8004)0614141AFM-24-000101", "no signature"),
        ("https://id.afm.example/8004/0614141AFM-24-000101?91=K2.AAAAAAAAAAAAAAAA", "altered or forged"),
    ],
)
def test_refusals_say_why(text: str, reason: str) -> None:
    with pytest.raises(TagRefused, match=reason):
        read(text, KEYS, [RESOLVER])


# --- properties -----------------------------------------------------------------------------------

_REFERENCE_CHARS = sorted(CSET82)
references = st.text(alphabet=_REFERENCE_CHARS, min_size=1, max_size=23)
identifiers = st.one_of(
    st.builds(lambda r: giai(PREFIX, r), references),
    st.builds(
        lambda t, s: grai(PREFIX, t, s),
        st.text(alphabet="0123456789", min_size=5, max_size=5),
        st.text(alphabet=_REFERENCE_CHARS, max_size=16),
    ),
    st.builds(lambda n, e: sscc(PREFIX, n, e), st.integers(0, 10**9 - 1), st.integers(0, 9)),
)
keyrings = st.builds(
    lambda secret, kid: Keyring(keys={kid: secret}, active=kid),
    st.binary(min_size=16, max_size=64),
    st.from_regex(r"\A[A-Z][A-Z0-9]{0,3}\Z"),
)


@settings(max_examples=300, deadline=None)
@given(identifiers, keyrings)
def test_round_trip(ident: Identifier, keyring: Keyring) -> None:
    text = uri(ident, keyring, RESOLVER)
    assert read(text, keyring, [RESOLVER]) == ident
    assert verify(parse(text, ["http://other.example", RESOLVER]), keyring) == ident


@settings(max_examples=500, deadline=None)
@given(identifiers, keyrings, st.data())
def test_any_one_character_change_is_refused(ident: Identifier, keyring: Keyring, data: st.DataObject) -> None:
    text = uri(ident, keyring, RESOLVER)
    at = data.draw(st.integers(0, len(text) - 1), label="position")
    # Any printable character other than the one there (a change of letter case alone is the same tag).
    new = data.draw(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c.lower() != text[at].lower())
    )
    changed = text[:at] + new + text[at + 1 :]
    with pytest.raises(TagRefused):
        read(changed, keyring, [RESOLVER])


def test_identifier_kinds() -> None:
    assert giai(PREFIX, "P1").ai is AI.GIAI and giai(PREFIX, "P1").kind == "giai"
    assert grai(PREFIX, "12345").kind == "grai" and sscc(PREFIX, 1).kind == "sscc"
