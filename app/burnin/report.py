"""From a finished (or running) burn-in run to the report's document model. Pure: no I/O."""

from __future__ import annotations

import msgspec

from app.burnin import domain
from app.burnin.dcgm import DcgmResult
from app.burnin.documents import BurnInReport, GpuRow, GpuSeries, SeriesPoint
from app.burnin.domain import load_summary
from app.burnin.models import BurnInRun
from app.burnin.xid import XidEvent
from app.core.db import utcnow


def _points(series: list[tuple[float, float | None, float | None, float | None]], column: int) -> list[SeriesPoint]:
    return [SeriesPoint(t_s=p[0], value=p[column]) for p in series if p[column] is not None]  # type: ignore[arg-type]


def build_report(run: BurnInRun, *, base_url: str) -> BurnInReport:
    module, spec = run.module, run.module.spec
    summary = load_summary(run.summary) if run.summary else None
    verdict = msgspec.convert(run.result, domain.RunVerdict) if run.result else None
    dcgm = msgspec.convert(run.dcgm, DcgmResult) if run.dcgm else None
    xids = msgspec.convert(run.xids, list[XidEvent])
    by_index = {g.index: g for g in verdict.gpus} if verdict else {}
    gpus = sorted(summary.gpus.values(), key=lambda g: g.index) if summary else []
    rows = []
    for g in gpus:
        v = by_index.get(g.index)
        rows.append(
            GpuRow(
                index=g.index,
                uuid=g.uuid,
                serial=g.serial,
                verdict=v.verdict if v else "pending",
                samples=g.samples,
                max_temperature_c=g.max_temperature_c,
                median_sm_clock_mhz=g.median_sm_clock(),
                clock_vs_fleet=v.clock_vs_fleet if v else None,
                ecc_uncorrected=g.max_ecc_uncorrected,
                reasons=list(v.reasons) if v else [],
            )
        )
    dcgm_lines = [
        f"{t.name}: {t.status.upper()}" + (f" (GPUs {', '.join(map(str, t.gpus))})" if t.gpus else "")
        for t in (dcgm.tests if dcgm else [])
    ]
    xid_lines = [f"{x.pci}: Xid {x.xid} ({x.kind}) — {x.meaning}" for x in xids]
    return BurnInReport(
        run_id=run.id,
        module_serial=module.serial,
        spec_code=spec.code,
        spec_name=spec.name,
        gpu_model=spec.gpu_model,
        factory=module.factory.name,
        station=run.station or "—",
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=verdict.duration_s if verdict else domain.run_duration(summary),
        rules_version=run.rules_version or "not judged yet",
        verdict=run.verdict or "running",
        reasons=[*(verdict.reasons if verdict else []), *(verdict.warnings if verdict else [])],
        gpus=rows,
        series=[
            GpuSeries(
                index=g.index,
                temperature_c=_points(g.series, 1),
                power_w=_points(g.series, 2),
                sm_clock_mhz=_points(g.series, 3),
            )
            for g in gpus
        ],
        dcgm_level=dcgm.level if dcgm else None,
        dcgm_summary=dcgm_lines,
        xid_summary=xid_lines,
        run_url=f"{base_url}/burn-in-runs/{run.id}",
        generated_at=utcnow(),
    )
