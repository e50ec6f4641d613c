"""Manifest PDF: a 200-module, 50-package shipment manifest rendered by app.documents.shipping (page 1 with
parties, terms and the QR code, the legs table, the module table wrapped to its columns, zebra-striped,
split over pages with its header repeated, the totals row, "page N of M" furniture) against a bare
reportlab SimpleDocTemplate holding one Table of the same 200 rows and columns as plain strings
(repeatRows=1, no style). Same process, alternating, best of 3 each, caches emptied before every run.
Goal: at least half the bare table's speed, i.e. at most 2x its time.
Run alone: python -m tests.benchmarks.bench_manifest
"""

from __future__ import annotations

import datetime as dt
import io
import math
import sys
import time
from collections.abc import Callable

import pypdf
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate, Table

from app.documents import labels, shipping
from app.logistics.documents import (
    ContainerLine,
    LegLine,
    Party,
    ShippingDocument,
    packages_by_serial,
)
from app.logistics.domain import container_check_digit
from tests.benchmarks.common import Result
from tests.shipping_data import crates, rack_modules

MODULES = 200
PACKAGES = 50
REPEATS = 3
GOAL = 0.5  # value / baseline: ours at least half the bare table's speed (at most 2x slower)


def shipment(modules: int = MODULES, packages: int = PACKAGES) -> ShippingDocument:
    """A realistic manifest: rack modules with batteries, `modules // packages` to a crate, 5 crates to a
    container, two legs."""
    lines = rack_modules(modules)
    containers = []
    for n in range(math.ceil(packages / 5)):
        body = f"AFMU{100 + n:06d}"
        containers.append(ContainerLine(body + str(container_check_digit(body)), f"ML-{9000 + n}"))
    packed = crates(lines, packages, tuple(containers))
    utc = dt.UTC
    return ShippingDocument(
        kind="manifest",
        number="MAN-2025-0042",
        version=1,
        issued_at=dt.datetime(2025, 4, 2, 9, 30, tzinfo=utc),
        shipment_ref="SHP-2025-0042",
        shipment_url="https://afm.example.com/shipments/SHP-2025-0042",
        consignor=Party(name="AFM Systems Inc.", address=("2100 Logic Drive", "San Jose, CA 95124"), country="US"),
        consignee=Party(name="Nordic Compute AB", address=("Datavägen 4", "164 40 Kista"), country="SE"),
        notify=None,
        incoterm="FCA",
        incoterm_place="Port of Kaohsiung, TW",
        origin="Taoyuan, TW",
        destination="Kista, SE",
        port_of_loading="TWKHH Kaohsiung",
        port_of_discharge="SEGOT Gothenburg",
        containers=tuple(containers),
        legs=(
            LegLine(
                seq=1,
                mode="road",
                carrier="Taoyuan Trucking",
                origin="Taoyuan Assembly 2",
                destination="Kaohsiung (TWKHH)",
                planned_departure=dt.datetime(2025, 4, 3, 6, tzinfo=utc),
                planned_arrival=dt.datetime(2025, 4, 3, 14, tzinfo=utc),
            ),
            LegLine(
                seq=2,
                mode="sea",
                carrier="Evergreen Marine",
                origin="Kaohsiung (TWKHH)",
                destination="Gothenburg (SEGOT)",
                planned_departure=dt.datetime(2025, 4, 5, 18, tzinfo=utc),
                planned_arrival=dt.datetime(2025, 5, 9, 8, tzinfo=utc),
            ),
        ),
        modules=lines,
        packages=packed,
    )


def render_plain(doc: ShippingDocument) -> bytes:
    """The baseline: the manifest's module columns as plain strings in one bare Table (repeatRows=1)."""
    packed = packages_by_serial(doc)
    rows = [["#", "Serial / GIAI", "Spec", "Description", "HS code", "ECCN", "Package / SSCC", "Net kg", "Gross kg"]]
    for n, m in enumerate(doc.modules, start=1):
        p = packed[m.serial]
        rows.append(
            [
                str(n),
                f"{m.serial}\n{m.giai}",
                m.spec_code,
                m.description,
                m.hs_code,
                m.eccn,
                f"{p.number}\n(00) {p.sscc}",
                f"{m.net_kg:,.1f}",
                f"{m.gross_kg:,.1f}",
            ]
        )
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, invariant=True).build([Table(rows, repeatRows=1)])
    return buffer.getvalue()


def _pages(pdf: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def run() -> list[Result]:
    doc = shipment()
    renderers: dict[str, Callable[[ShippingDocument], bytes]] = {
        "plain": render_plain,
        "afm": shipping.render_manifest,
    }
    for fn in renderers.values():  # warm up imports and font metrics for both sides
        fn(doc)
    runs: dict[str, list[float]] = {name: [] for name in renderers}
    out: dict[str, bytes] = {}
    for _ in range(REPEATS):
        for name, fn in renderers.items():
            # Empty afm's caches so every run wraps every cell and encodes the QR symbol afresh.
            shipping._wrap.cache_clear()
            labels._qr_array.cache_clear()
            t0 = time.perf_counter()
            out[name] = fn(doc)
            runs[name].append(time.perf_counter() - t0)
    ours, plain = min(runs["afm"]), min(runs["plain"])
    pages = {name: _pages(pdf) for name, pdf in out.items()}
    print(
        f"{MODULES}-module manifest: afm {ours * 1000:.0f} ms ({pages['afm']} pages), bare reportlab Table "
        f"{plain * 1000:.0f} ms ({pages['plain']} pages) -> {plain / ours:.2f} of its speed (goal >= {GOAL})",
        file=sys.stderr,
    )
    return [
        Result(
            name=f"{MODULES}-module, {PACKAGES}-package manifest PDF ({pages['afm']} pages; goal: at most 2x slower)",
            measured="render_manifest, best of 3",
            value=1.0 / ours,
            baseline_name="bare reportlab Table of the same rows",
            baseline=1.0 / plain,
            unit="PDF/s",
            goal=GOAL,
            value_text=f"{ours * 1000:.0f} ms",
            baseline_text=f"{plain * 1000:.0f} ms",
        )
    ]


if __name__ == "__main__":
    from tests.benchmarks.common import table

    print(table(run()))
