"""The burn-in report as a pure document model: every line that will be printed, no I/O.

The reportlab renderer (app/documents/burnin_report.py) turns it into a PDF; tests check this model
exactly and the PDF by reading its text back.
"""

from __future__ import annotations

import datetime as dt

import msgspec


class SeriesPoint(msgspec.Struct, frozen=True, array_like=True):
    """One plotted sample: seconds since the run started, and the value."""

    t_s: float
    value: float


class GpuSeries(msgspec.Struct, frozen=True):
    """Down-sampled curves of one GPU for the plots (at most a few hundred points each)."""

    index: int
    temperature_c: list[SeriesPoint] = []
    power_w: list[SeriesPoint] = []
    sm_clock_mhz: list[SeriesPoint] = []


class GpuRow(msgspec.Struct, frozen=True):
    """One line of the per-GPU table."""

    index: int
    uuid: str
    serial: str
    verdict: str  # "pass" | "warn" | "fail"
    samples: int
    max_temperature_c: float | None
    median_sm_clock_mhz: float | None
    clock_vs_fleet: float | None  # median SM clock / fleet median for this GPU model
    ecc_uncorrected: float | None
    reasons: list[str] = []


class BurnInReport(msgspec.Struct, frozen=True):
    run_id: int
    module_serial: str
    spec_code: str
    spec_name: str
    gpu_model: str
    factory: str
    station: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_s: float
    rules_version: str
    verdict: str  # "pass" | "fail"
    reasons: list[str]  # run-level reasons (too short, DCGM level missing, ...) in words and numbers
    gpus: list[GpuRow]
    series: list[GpuSeries]
    dcgm_level: int | None
    dcgm_summary: list[str]  # e.g. "Memory bandwidth: PASS (GPUs 0-7)"
    xid_summary: list[str]  # e.g. "GPU 3 (PCI:0000:3b:00): Xid 79 ×1 — fell off the bus"
    run_url: str  # what the report's QR code links to
    generated_at: dt.datetime
