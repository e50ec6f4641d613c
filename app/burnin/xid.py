"""Xid lines from kernel logs (`dmesg`, `dmesg -T`, `journalctl -k`), classed by what they mean for the part.

    [ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 79, pid=1896, name=python3, GPU has fallen off the bus.
    Nov 20 10:02:30 host kernel: NVRM: Xid (PCI:0000:10:1c): 63, pid='<unknown>', name=<unknown>, Row Remapper: ...

Classes (NVIDIA Xid catalog; data-formats.md §2.3): "hardware" — the part is suspect (drain, reset, RMA
on recurrence); "application" — usually the workload's fault; "watch" — recorded memory events to trend;
"other" — everything else, kept so nothing is silently dropped. Pure: bytes in, events out; the log is
scanned in blocks, so a multi-gigabyte journal is fine.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import BinaryIO, Final

import msgspec

from app.core.errors import InvalidInput

__all__ = ["KIND", "MEANING", "XidEvent", "classify", "parse_xid"]

MEANING: Final[dict[int, str]] = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    32: "invalid or corrupted push buffer stream",
    38: "driver firmware error",
    43: "GPU stopped processing",
    45: "preemptive cleanup, due to previous errors",
    48: "uncorrectable double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded (reset to apply)",
    64: "ECC page retirement or row remapping failed",
    68: "video processor exception",
    69: "graphics engine class error",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained uncorrectable ECC error",
    95: "uncontained uncorrectable ECC error",
    109: "context switch timeout",
    119: "GSP RPC timeout",
    120: "GSP error",
    140: "unrecovered ECC error",
    154: "GPU recovery action changed",
    171: "uncorrectable ECC error in DRAM",
    172: "uncorrectable ECC error in SRAM",
}
KIND: Final[dict[int, str]] = {
    **dict.fromkeys((48, 64, 74, 79, 94, 95, 119, 120, 140, 171, 172), "hardware"),
    **dict.fromkeys((13, 31, 43), "application"),
    **dict.fromkeys((63, 92), "watch"),
}
_XID = re.compile(rb"NVRM: Xid \((?P<pci>[^)\n]*)\):\s*(?P<xid>\d+)")
_PCI = re.compile(r"(?:PCI:)?(?P<domain>[0-9A-Fa-f]{4}):(?P<bus>[0-9A-Fa-f]{2}):(?P<device>[0-9A-Fa-f]{2})(?:\.[0-7])?")
BLOCK_BYTES: Final = 4 << 20
MAX_LINE_BYTES: Final = 1 << 20
MAX_TEXT: Final = 1000


class XidEvent(msgspec.Struct):
    line: int  # 1-based line in the uploaded log
    pci: str  # "PCI:0000:3b:00", lowercase, as the driver names the GPU
    xid: int
    kind: str  # hardware | application | watch | other
    meaning: str
    text: str  # the log line as written (invalid UTF-8 replaced)


def classify(xid: int) -> tuple[str, str]:
    """(kind, meaning) of an Xid code."""
    return KIND.get(xid, "other"), MEANING.get(xid, "see the NVIDIA Xid catalog")


def _pci(raw: bytes) -> str:
    text = raw.decode("ascii", errors="replace").strip()
    match = _PCI.fullmatch(text)
    if match is None:
        return text
    return "PCI:" + ":".join(match[part].lower() for part in ("domain", "bus", "device"))


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """Blocks of whole lines (the last may lack its newline). A "line" over MAX_LINE_BYTES is no log line:
    it is handed on in pieces rather than held whole."""
    pending = b""
    while data := stream.read(BLOCK_BYTES):
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending += data
            if len(pending) > MAX_LINE_BYTES:
                yield pending
                pending = b""
            continue
        yield pending + data[:cut]
        pending = data[cut:]
    if pending:
        yield pending


def parse_xid(stream: BinaryIO | bytes, *, max_lines: int = 5_000_000) -> list[XidEvent]:
    """Every Xid line of a kernel log, in order. Other lines are skipped; bytes that are not UTF-8 are
    replaced, never fatal. InvalidInput if the log has more than `max_lines` lines or a NUL byte."""
    if isinstance(stream, bytes | bytearray | memoryview):
        stream = io.BytesIO(bytes(stream))
    events: list[XidEvent] = []
    line0 = 1  # number of the block's first line
    for block in _blocks(stream):
        newlines = block.count(b"\n")
        lines = newlines + (0 if block.endswith(b"\n") else 1)
        if line0 - 1 + lines > max_lines:
            raise InvalidInput(
                f"kernel log line {max_lines + 1:,}: more than {max_lines:,} lines; upload the burn-in window only",
                line=max_lines + 1,
            )
        if (nul := block.find(b"\0")) >= 0:  # dmesg and journalctl print text: a NUL means a binary file
            line = line0 + block.count(b"\n", 0, nul)
            raise InvalidInput(f"kernel log line {line:,}: a NUL byte; this is not a kernel log", line=line)
        before, at = 0, 0  # newlines before offset `at`
        for match in _XID.finditer(block):
            start = block.rfind(b"\n", 0, match.start()) + 1
            end = block.find(b"\n", match.end())
            before += block.count(b"\n", at, start)
            at = start
            xid = int(match["xid"])
            kind, meaning = classify(xid)
            text = block[start : end if end >= 0 else len(block)].decode("utf-8", errors="replace").rstrip()
            events.append(XidEvent(line0 + before, _pci(match["pci"]), xid, kind, meaning, text[:MAX_TEXT]))
        line0 += newlines
    return events
