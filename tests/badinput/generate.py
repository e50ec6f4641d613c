"""Hostile inputs too big (or too silly) to commit: made at test time from a few bytes of recipe.

Each generator takes the running app's settings (so an "oversized" body is just over the limit the app
was started with) and returns the body. `GENERATORS` maps the names used by `generate = …` in
tests/data/bad/corpus.toml to these functions.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any, Final

from app.core.config import Settings

NVIDIA_SMI_HEADER: Final = (
    "timestamp, index, uuid, serial, temperature.gpu, power.draw [W], clocks.current.sm [MHz], utilization.gpu [%]"
)
NVIDIA_SMI_ROW: Final = (
    "2026/11/20 10:00:00.000, 0, GPU-00000000-aaaa-bbbb-cccc-000000000000, 1654722010000, 64, 695.50 W, 1980 MHz, 100 %"
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, *extra: bytes, idat: bytes | None = None) -> bytes:
    """A PNG whose header says width x height (8-bit grey) with only a few bytes of compressed data:
    a decompression bomb when the size is huge, since the decoder would allocate width*height bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = idat if idat is not None else zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + b"".join(extra)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def png_bomb(settings: Settings) -> bytes:
    return png(100_000, 100_000)


def png_over_photo_limit(settings: Settings) -> bytes:
    """Just over the service's own 50 MP limit but under Pillow's bomb threshold (89 MP): afm's check."""
    return png(10_000, 5_001)


def png_text_bomb(settings: Settings) -> bytes:
    """A 1x1 PNG with a zTXt chunk that inflates to 64 MiB (a few KiB compressed)."""
    ztxt = b"Comment\0\0" + zlib.compress(b"A" * (64 << 20), 9)
    return png(1, 1, _png_chunk(b"zTXt", ztxt), idat=zlib.compress(b"\0\0"))


def png_iccp_bomb(settings: Settings) -> bytes:
    """A 1x1 PNG whose ICC profile chunk inflates to 64 MiB."""
    iccp = b"icc\0\0" + zlib.compress(b"\0" * (64 << 20), 9)
    return png(1, 1, _png_chunk(b"iCCP", iccp), idat=zlib.compress(b"\0\0"))


def jpeg(width: int, height: int) -> bytes:
    """A real 8x8 JPEG whose frame header (SOF0) is patched to claim width x height."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_huge(settings: Settings) -> bytes:
    return jpeg(65_500, 65_500)


def photo_oversized(settings: Settings) -> bytes:
    """A JPEG signature followed by padding, one byte over the photo limit."""
    return b"\xff\xd8\xff\xe0" + b"\0" * (settings.max_photo_bytes - 3)


def body_oversized(settings: Settings) -> bytes:
    """A JSON document one byte over the request body limit."""
    size = settings.max_body_bytes + 1
    return b'{"spec": "' + b"A" * (size - 12) + b'"}'


def upload_oversized(settings: Settings) -> bytes:
    """Well-formed telemetry one byte over the streamed-upload limit."""
    line = (NVIDIA_SMI_ROW + "\n").encode()
    head = (NVIDIA_SMI_HEADER + "\n").encode()
    size = settings.max_upload_bytes + 1
    body = head + line * ((size - len(head)) // len(line) + 1)
    return body[:size]


def evidence_oversized(settings: Settings) -> bytes:
    """Kernel log text one byte over the 64 MiB evidence limit of the burn-in DCGM and Xid uploads."""
    from app.burnin.api import EVIDENCE_LIMIT

    return b"x" * (EVIDENCE_LIMIT + 1)


def result_oversized(settings: Settings) -> bytes:
    """A validation result file one byte over its limit."""
    from app.commissioning.service import MAX_RESULT_BYTES

    return b"{" + b" " * MAX_RESULT_BYTES


def csv_long_line(settings: Settings) -> bytes:
    """A header, then one 10 MiB "line" with no line break: not something nvidia-smi prints."""
    return (NVIDIA_SMI_HEADER + "\n").encode() + b"7" * (10 << 20)


def csv_nul(settings: Settings) -> bytes:
    return (NVIDIA_SMI_HEADER + "\n" + NVIDIA_SMI_ROW.replace("64", "6\x004") + "\n").encode()


def json_deep(settings: Settings) -> bytes:
    """100,000 nested arrays: a parser that recurses per level runs out of stack."""
    return b"[" * 100_000 + b"]" * 100_000


def json_deep_object(settings: Settings) -> bytes:
    return b'{"spec": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}"


def json_huge_integer(settings: Settings) -> bytes:
    return b'{"gpu_count": ' + b"9" * 5000 + b"}"


def xid_too_many_lines(settings: Settings) -> bytes:
    """One line more than a kernel log upload may hold."""
    return b"\n" * 5_000_001


def toml_deep(settings: Settings) -> bytes:
    """A TOML value nested 100,000 arrays deep."""
    return b'name = "deep"\nvalue = ' + b"[" * 100_000 + b"]" * 100_000 + b"\n"


GENERATORS: Final[dict[str, Callable[[Settings], bytes]]] = {
    f.__name__: f
    for f in (
        png_bomb,
        png_over_photo_limit,
        png_text_bomb,
        png_iccp_bomb,
        jpeg_huge,
        photo_oversized,
        body_oversized,
        upload_oversized,
        evidence_oversized,
        result_oversized,
        csv_long_line,
        csv_nul,
        json_deep,
        json_deep_object,
        json_huge_integer,
        xid_too_many_lines,
        toml_deep,
    )
}


def generated(name: str, settings: Settings, **_: Any) -> bytes:
    return GENERATORS[name](settings)
