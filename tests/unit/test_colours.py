"""Badge text stays readable on every lifecycle state's colour (WCAG 2 contrast >= 4.5 where black or
white can reach it)."""

from __future__ import annotations

from app.core.definitions import load_lifecycle
from app.web.colours import ink, luminance


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_ink_picks_the_better_of_black_and_white() -> None:
    assert ink("#000000") == "#ffffff" and ink("#ffffff") == "#111827"
    assert ink("#94a3b8") == "#111827"  # a light slate: white text would be unreadable
    assert ink("not a colour") == "#ffffff"


def test_every_state_badge_is_readable() -> None:
    for state in load_lifecycle().states:
        text = ink(state.color)
        other = "#111827" if text == "#ffffff" else "#ffffff"
        assert contrast(state.color, text) >= contrast(state.color, other)
        assert contrast(state.color, text) >= 4.5, (state.id, state.color, text)
