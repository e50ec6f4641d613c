"""Readable text on coloured badges: black or white, whichever contrasts more (WCAG 2 luminance)."""

from __future__ import annotations


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def ink(hex_colour: str) -> str:
    """#ffffff or #111827 on this background, whichever has the higher contrast ratio."""
    try:
        lum = luminance(hex_colour)
    except ValueError:
        return "#ffffff"
    on_white = (1.05) / (lum + 0.05)
    on_dark = (lum + 0.05) / (0.0 + 0.05 + 0.0109)  # #111827 has luminance ~0.0109
    return "#ffffff" if on_white >= on_dark else "#111827"
