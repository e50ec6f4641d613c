from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    name: str
    measured: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    goal: float
    value_text: str = ""  # how to print the measured value and the baseline when not as "N unit"
    baseline_text: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else 0.0


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def table(results: list[Result]) -> str:
    header = ("benchmark", "afm", "baseline", "ratio", "goal", "")
    rows = [
        (
            r.name,
            r.value_text or f"{r.value:,.0f} {r.unit}",
            f"{r.baseline_text or f'{r.baseline:,.0f} {r.unit}'} ({r.baseline_name})",
            f"{r.ratio:.2f}",
            f">= {r.goal:.2f}",
            "ok" if r.ratio >= r.goal else "BELOW GOAL",
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def timed_result(
    name: str, seconds: float, baseline_name: str, baseline_seconds: float, unit: str, goal: float = 1.0
) -> Result:
    """A speed row from two durations (ours and a baseline or budget), shown in ms below a second."""

    def text(s: float) -> str:
        return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.2f} s"

    return Result(
        name=name,
        measured=f"{unit} (1 / time for one)",
        value=1.0 / seconds,
        baseline_name=baseline_name,
        baseline=1.0 / baseline_seconds,
        unit=unit,
        goal=goal,
        value_text=text(seconds),
        baseline_text=text(baseline_seconds),
    )
