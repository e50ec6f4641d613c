"""Fleet reports: pure functions from input DataFrames to tidy tables that the dashboard shows and exports.

The input frames are built by SQL elsewhere (app/fleet's query code); this module does no I/O beyond
reading the lifecycle definition (states, labels, where a state is), so every report is testable with
small hand-built frames. Each input frame has a column contract below (`CONTRACTS`), `empty_frames()`
builds one of each with no rows, and every report also works on those (an empty table with its columns).

Times are tz-aware UTC; durations are reported in hours or days, rounded to 2 decimals, percentages to 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np
import pandas as pd

from app.core.definitions import ANY_STATE, Lifecycle, load_lifecycle

# --- input column contracts -------------------------------------------------------------------

UTC: Final = "datetime64[ns, UTC]"

CONTRACTS: Final[dict[str, dict[str, str]]] = {
    # One row per ledger event. `module` is the module's serial; `to_state` is the state the module entered
    # (payload["to"] of a lifecycle.* event, else None; module.registered may carry its initial state).
    "events": {
        "module": "str",
        "seq": "int64",
        "type": "str",  # "lifecycle.<transition>", "module.registered", ...
        "at": UTC,
        "place": "str",  # site code, factory code or station code, as the ledger recorded it
        "to_state": "str",  # None for events that move no state
        "payload": "object",  # dict
    },
    # One row per module, as it is now.
    "modules": {
        "serial": "str",
        "spec": "str",  # spec code
        "gpu_model": "str",
        "gpu_count": "int64",
        "factory": "str",  # factory code
        "factory_country": "str",  # ISO 3166-1 alpha-2
        "site": "str",  # site code, None before a site is assigned (at `pack`)
        "site_country": "str",  # alpha-2, None without a site
        "state": "str",  # lifecycle state id
    },
    # One row per site.
    "sites": {
        "code": "str",
        "name": "str",
        "country": "str",
        "power_kw": "float64",
        "module_slots": "int64",
        "used_slots": "int64",  # modules installed or in service there
        "used_power_kw": "float64",
    },
    # One row per burn-in run.
    "burnin": {
        "module": "str",
        "spec": "str",
        "gpu_model": "str",
        "run_id": "int64",
        "verdict": "str",  # "pass" | "fail" | None while running
        "finished_at": UTC,  # NaT while running
        "reasons": "object",  # list[str]: the run's failure reasons (run level and per GPU)
    },
    # One row per shipment leg.
    "legs": {
        "shipment": "str",  # shipment ref
        "seq": "int64",
        "mode": "str",
        "origin": "str",
        "destination": "str",
        "planned_departure": UTC,
        "planned_arrival": UTC,
        "actual_departure": UTC,  # NaT until it departs
        "actual_arrival": UTC,  # NaT until it arrives
    },
    # One row per commissioning checklist run.
    "checklists": {
        "module": "str",
        "site": "str",  # site code
        "template": "str",
        "started_at": UTC,
        "signed_at": UTC,  # NaT while open
    },
}


def empty_frames() -> dict[str, pd.DataFrame]:
    """One frame per contract, with its columns and dtypes and no rows (for tests and empty fleets)."""
    return {
        name: pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in columns.items()})
        for name, columns in CONTRACTS.items()
    }


def _require(df: pd.DataFrame, frame: str) -> None:
    missing = [c for c in CONTRACTS[frame] if c not in df.columns]
    if missing:
        raise ValueError(f"{frame} frame lacks columns {missing}; see app.fleet.reports.CONTRACTS[{frame!r}]")


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC at ns resolution: naive input is taken as UTC, and one resolution
    everywhere keeps subtraction and merge_asof from tripping over us-vs-ns frames (pandas 3 infers us)."""
    return pd.to_datetime(values, utc=True).astype(UTC)


def _hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def _pct(part: pd.Series, whole: pd.Series) -> pd.Series:
    """part / whole in percent, 1 decimal; NaN where whole is 0 (no capacity is not 0 % used)."""
    whole = whole.astype("float64").where(whole.astype("float64") != 0)
    return (100.0 * part.astype("float64") / whole).round(1)


def _counts(df: pd.DataFrame, key: str, column: str, categories: Iterable[str]) -> pd.DataFrame:
    """A wide count table: one row per `key`, one int column per category (zeros included)."""
    table = pd.crosstab(df[key], df[column]) if len(df) else pd.DataFrame(index=pd.Index([], name=key))
    return table.reindex(columns=list(categories), fill_value=0).astype("int64").rename_axis(columns=None)


def summed_counts(df: pd.DataFrame, key: str, column: str, categories: Iterable[str]) -> pd.DataFrame:
    """Like _counts, but each row counts `n` (rows that stand for several modules)."""
    if not len(df):
        return pd.DataFrame(index=pd.Index([], name=key), columns=list(categories), dtype="int64")
    table = df.pivot_table(index=key, columns=column, values="n", aggfunc="sum", fill_value=0)
    return table.reindex(columns=list(categories), fill_value=0).astype("int64").rename_axis(columns=None)


# --- fleet composition ------------------------------------------------------------------------


def modules_by_state(modules: pd.DataFrame, lifecycle: Lifecycle | None = None) -> pd.DataFrame:
    """Modules per lifecycle state, every state in lifecycle order (zeros kept, so the chart's axis is
    the same every day); states the lifecycle does not know are appended, sorted.
    Columns: state, label, modules, share_pct."""
    _require(modules, "modules")
    lc = lifecycle or load_lifecycle()
    return state_table(modules["state"].dropna().value_counts(), lc)


def state_table(counts: pd.Series, lc: Lifecycle) -> pd.DataFrame:
    """Modules per state from counts by state id: every state in lifecycle order, zeros included."""
    order = [*lc.state_ids, *sorted(set(counts.index) - set(lc.state_ids))]
    labels = {s.id: s.label for s in lc.states}
    out = pd.DataFrame(
        {
            "state": pd.Series(order, dtype=object),
            "label": pd.Series([labels.get(s, s) for s in order], dtype=object),
            "modules": pd.Series([int(counts.get(s, 0)) for s in order], dtype="int64"),
        }
    )
    total = int(out["modules"].sum())
    out["share_pct"] = (100.0 * out["modules"] / total).round(1) if total else 0.0
    return out


# Where a module is counted, by the `where` of its state: factory stock at its factory, inbound modules
# at their destination, site and held modules at their site (or, lacking one, their factory).
PLACE_COLUMNS: Final = ("at_factory", "in_transit", "at_site", "on_hold")
_PHASE_BY_WHERE: Final = {"factory": "at_factory", "transit": "in_transit", "site": "at_site", "held": "on_hold"}


def _placed(modules: pd.DataFrame, lc: Lifecycle) -> pd.DataFrame:
    """Non-terminal modules with `where` (factory/transit/site/held; an unknown state counts as held:
    placed, but in no phase we can name) and `phase` (one of PLACE_COLUMNS)."""
    wheres = {s.id: s.where for s in lc.states}
    terminal = {s.id for s in lc.states if s.terminal}
    live = modules[~modules["state"].isin(terminal)].copy()
    live["where"] = live["state"].map(lambda s: wheres.get(s, "held")).astype(object)
    live["phase"] = live["where"].map(_PHASE_BY_WHERE).astype(object)
    live["gpu_count"] = pd.to_numeric(live["gpu_count"], errors="coerce").fillna(0).astype("int64")
    return live


def modules_by_country(modules: pd.DataFrame, lifecycle: Lifecycle | None = None) -> pd.DataFrame:
    """Modules per country (ISO alpha-2), split by where they are: `at_factory` in the factory's country,
    `in_transit` in the destination site's country (where they will be), `at_site` and `on_hold` in the
    site's country, or the factory's when the module has no site. Retired modules are not counted.
    Columns: country, at_factory, in_transit, at_site, on_hold, modules, gpus; most modules first."""
    _require(modules, "modules")
    live = _placed(modules, lifecycle or load_lifecycle())
    by_site = live["where"].ne("factory") & live["site_country"].notna() & live["site_country"].ne("")
    live["country"] = live["site_country"].where(by_site, live["factory_country"]).astype(object)
    live = live[live["country"].notna()]
    table = _counts(live, "country", "phase", PLACE_COLUMNS)
    table["modules"] = table[list(PLACE_COLUMNS)].sum(axis=1).astype("int64")
    table["gpus"] = live.groupby("country")["gpu_count"].sum().reindex(table.index, fill_value=0).astype("int64")
    out = table.rename_axis("country").reset_index()
    out["country"] = out["country"].astype(object)
    out = out.sort_values(["modules", "country"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[["country", *PLACE_COLUMNS, "modules", "gpus"]]


SITE_COLUMNS: Final = ("inbound", "commissioning", "in_service", "decommissioning", "on_hold")
IN_SERVICE: Final = "in_service"


def modules_by_site(modules: pd.DataFrame, sites: pd.DataFrame, lifecycle: Lifecycle | None = None) -> pd.DataFrame:
    """Modules per site by phase: `inbound` (assigned to the site, still at the factory or in transit),
    `commissioning` (site states before in_service), `in_service`, `decommissioning` (site states after
    it), `on_hold`. Every site is listed, zeros included; a site code that only modules name is kept.
    Columns: site, name, country, inbound, commissioning, in_service, decommissioning, on_hold, modules,
    gpus; by site code."""
    _require(modules, "modules")
    _require(sites, "sites")
    lc = lifecycle or load_lifecycle()
    placed = _placed(modules, lc)
    return site_table(placed.assign(n=1, gpus=placed["gpu_count"]), sites, lc)


def site_table(live: pd.DataFrame, sites: pd.DataFrame, lc: Lifecycle) -> pd.DataFrame:
    """modules_by_site from placed rows (site, state, where, site_country) each counting `n` modules
    and `gpus` GPUs: one module per row here, grouped counts in app.fleet.summary."""
    live = live[live["site"].notna() & live["site"].ne("")].copy()
    order = {s: i for i, s in enumerate(lc.state_ids)}
    service = order.get(IN_SERVICE, len(order))
    rank = live["state"].map(order).astype("float64").fillna(service)
    phase = np.select(
        [
            live["where"].isin(["factory", "transit"]).to_numpy(dtype=bool),
            live["where"].eq("held").to_numpy(dtype=bool),
            live["state"].eq(IN_SERVICE).to_numpy(dtype=bool),
            (rank < service).to_numpy(dtype=bool),  # site states before in_service, in lifecycle order
        ],
        ["inbound", "on_hold", "in_service", "commissioning"],
        default="decommissioning",
    )
    live["site_phase"] = pd.Series(phase, index=live.index, dtype=object)
    table = summed_counts(live, "site", "site_phase", SITE_COLUMNS)
    table["modules"] = table[list(SITE_COLUMNS)].sum(axis=1).astype("int64")
    table["gpus"] = live.groupby("site")["gpus"].sum().reindex(table.index, fill_value=0).astype("int64")
    table = table.rename_axis("site").reset_index()
    known = sites[["code", "name", "country"]].rename(columns={"code": "site"}).astype(object)
    # Sites without modules get zeros; a site only the modules name keeps its country from them.
    out = known.merge(table.astype({"site": object}), on="site", how="outer")
    extra_country = live.groupby("site")["site_country"].first()
    out["country"] = out["country"].fillna(out["site"].map(extra_country)).astype(object)
    for col in (*SITE_COLUMNS, "modules", "gpus"):
        out[col] = out[col].fillna(0).astype("int64")
    out = out.sort_values("site", kind="stable").reset_index(drop=True)
    return out[["site", "name", "country", *SITE_COLUMNS, "modules", "gpus"]]


def site_utilisation(sites: pd.DataFrame) -> pd.DataFrame:
    """Slots and power used against each site's capacity (percent; empty where the capacity is 0).
    Columns: site, name, country, module_slots, used_slots, slots_pct, power_kw, used_power_kw, power_pct."""
    _require(sites, "sites")
    out = pd.DataFrame(
        {
            "site": sites["code"].astype(object),
            "name": sites["name"].astype(object),
            "country": sites["country"].astype(object),
            "module_slots": sites["module_slots"].astype("int64"),
            # a LEFT JOIN's aggregate is NULL for a site with no modules: that is 0 used
            "used_slots": pd.to_numeric(sites["used_slots"]).fillna(0).astype("int64"),
            "power_kw": sites["power_kw"].astype("float64"),
            "used_power_kw": pd.to_numeric(sites["used_power_kw"]).fillna(0.0).astype("float64"),
        }
    )
    out["slots_pct"] = _pct(out["used_slots"], out["module_slots"])
    out["power_pct"] = _pct(out["used_power_kw"], out["power_kw"])
    cols = ["site", "name", "country", "module_slots", "used_slots", "slots_pct", "power_kw", "used_power_kw"]
    return out.sort_values("site", kind="stable").reset_index(drop=True)[[*cols, "power_pct"]]


# --- factory ----------------------------------------------------------------------------------


def _hold_state(lc: Lifecycle) -> str | None:
    """The quarantine state: the target of the transition allowed from every state."""
    return next((t.to for t in lc.transitions if ANY_STATE in t.from_), None)


def stage_visits(events: pd.DataFrame, lifecycle: Lifecycle | None = None) -> pd.DataFrame:
    """Every stay of a module in a state, from the lifecycle events (rows with a `to_state`) in `seq`
    order: entered at one event, left at the module's next one. A hold and its release back to the same
    state do not split the stay: the time on hold is left out (it is not work of that stage). A stay is
    `completed` when the module left the state for another (not still in it, nor still held from it).
    Columns: module, stage, hours, completed."""
    _require(events, "events")
    lc = lifecycle or load_lifecycle()
    hold = _hold_state(lc)
    ev = events.loc[events["to_state"].notna(), ["module", "seq", "at", "to_state"]].copy()
    ev["at"] = _utc(ev["at"])
    ev = ev.sort_values(["module", "seq"], kind="stable").reset_index(drop=True)
    by_module = ev.groupby("module", sort=False)
    ev["end"] = by_module["at"].shift(-1)
    following = by_module["to_state"].shift(-1)
    before, before_hold = by_module["to_state"].shift(1), by_module["to_state"].shift(2)
    # A stay resumed by a release: the previous state is the hold and the one before it is this state.
    resumed = before.eq(hold).fillna(False) & ev["to_state"].eq(before_hold).fillna(False)
    ev["hours"] = _hours(ev["end"] - ev["at"])
    ev["closed"] = ev["end"].notna() & ~following.eq(hold).fillna(False)
    # A new stay starts at every event but a hold (dropped below) and a resumption; a module's first
    # event is never a resumption, so one running id separates modules too.
    ev["visit"] = (~resumed & ev["to_state"].ne(hold)).cumsum()
    ev = ev[ev["to_state"].ne(hold)]
    visits = ev.groupby("visit", sort=True).agg(
        module=("module", "first"),
        stage=("to_state", "first"),
        hours=("hours", "sum"),
        completed=("closed", "last"),
    )
    visits["completed"] = visits["completed"].astype(bool)
    visits.loc[~visits["completed"], "hours"] = np.nan  # an open stay has no duration yet
    return visits.reset_index(drop=True).astype({"module": object, "stage": object})


def cycle_times(
    events: pd.DataFrame, lifecycle: Lifecycle | None = None, *, where: Iterable[str] = ("factory",)
) -> pd.DataFrame:
    """Per stage (a lifecycle state whose `where` is in `where`: by default the factory's, i.e. assembling
    = start_assembly→complete_assembly, burn_in = start_burn_in→pass/fail_burn_in, rework =
    start_rework→finish_rework, and the waits between them such as packed = pack→depart) the number of
    completed stays and their median and 90th-percentile duration in hours (linear interpolation, as
    pandas' quantile). Only completed stays count; see `stage_visits`. Stages in lifecycle order, only
    those with a completed stay. Columns: stage, label, visits, median_h, p90_h."""
    lc = lifecycle or load_lifecycle()
    wanted = set(where)
    stages = [s for s in lc.states if s.where in wanted]
    visits = stage_visits(events, lc)
    done = visits[visits["completed"] & visits["stage"].isin([s.id for s in stages])]
    grouped = done.groupby("stage")["hours"]
    stats = pd.DataFrame(
        {"visits": grouped.size(), "median_h": grouped.median(), "p90_h": grouped.quantile(0.9)}
    ).reindex([s.id for s in stages])
    stats = stats[stats["visits"].notna()]
    out = pd.DataFrame(
        {
            "stage": pd.Series(list(stats.index), dtype=object),
            "label": pd.Series([lc.state(s).label for s in stats.index], dtype=object),
            "visits": stats["visits"].astype("int64").to_numpy(),
            "median_h": stats["median_h"].astype("float64").round(2).to_numpy(),
            "p90_h": stats["p90_h"].astype("float64").round(2).to_numpy(),
        }
    )
    return out


def _finished_runs(burnin: pd.DataFrame) -> pd.DataFrame:
    _require(burnin, "burnin")
    runs = burnin[burnin["verdict"].isin(["pass", "fail"])].copy()
    runs["finished_at"] = _utc(runs["finished_at"])
    return runs.sort_values(["module", "finished_at", "run_id"], kind="stable")


def burnin_first_pass_yield(burnin: pd.DataFrame) -> pd.DataFrame:
    """First-pass yield per spec and GPU model: of the modules with a finished run (a verdict), those whose
    first finished run (earliest finished_at, then run id) passed. `runs` counts all finished runs, so
    runs/modules shows the retests. Columns: spec, gpu_model, modules, first_pass, yield_pct, runs."""
    runs = _finished_runs(burnin)
    first = runs.drop_duplicates("module", keep="first").assign(passed=lambda f: f["verdict"].eq("pass"))
    keys = ["spec", "gpu_model"]
    per = first.groupby(keys).agg(modules=("module", "size"), first_pass=("passed", "sum"))
    per["runs"] = runs.groupby(keys).size().reindex(per.index, fill_value=0)
    out = per.reset_index().astype({"spec": object, "gpu_model": object})
    out["modules"] = out["modules"].astype("int64")
    out["first_pass"] = out["first_pass"].astype("int64")
    out["runs"] = out["runs"].astype("int64")
    out["yield_pct"] = _pct(out["first_pass"], out["modules"])
    return out.sort_values(keys, kind="stable").reset_index(drop=True)[
        ["spec", "gpu_model", "modules", "first_pass", "yield_pct", "runs"]
    ]


# Failure reasons are grouped by their shape, not their measurements. normalise_reason:
# 1. "GPU <n> (<uuid or 'no UUID'>)", the per-GPU subject of burn-in reasons, becomes "GPU #";
# 2. identifiers become "#": GPU UUIDs, PCI bus ids (0000:3B:00.0), hex (0x1F);
# 3. free-standing numbers become "#": integers, decimals, signed, durations (1:23:45), lists ("1, 3");
#    a number glued to letters (H100, sm_90) is part of a name and stays;
# 4. an Xid code stays: it names the failure class (Xid 79 is off the bus, Xid 48 an ECC error);
# 5. runs of spaces collapse. So "GPU 3 temperature 93 °C" and "GPU 5 temperature 95 °C" are one reason.
_GPU_SUBJECT = re.compile(r"\bGPU\s+\d+\s*\([^)]*\)")
_TOKENS = re.compile(
    r"(?P<xid>\bxid\s+\d+)"
    r"|(?:\bGPU-)?\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b"
    r"|\b(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b"
    r"|\b0x[0-9a-f]+\b"
    r"|(?<![\w.])[-+]?\d+(?:[.,:]\d+)*(?![\w])",
    re.IGNORECASE,
)
_LIST = re.compile(r"#(?:\s*,\s*#)+")
_SPACES = re.compile(r"\s+")


def normalise_reason(reason: str) -> str:
    """A failure reason with its measurements and identifiers replaced by `#` (rules above)."""
    text = _GPU_SUBJECT.sub("GPU #", reason)
    text = _TOKENS.sub(lambda m: m.group("xid") or "#", text)
    text = _LIST.sub("#", text)
    return _SPACES.sub(" ", text).strip()


def failure_reasons(burnin: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The `top` most frequent failure reasons of failed runs, grouped by `normalise_reason`. A run citing
    a reason twice (two GPUs too hot) counts once. share_pct is of all failed runs; `example` is the
    first original text (oldest run). Columns: reason, runs, modules, share_pct, example; most runs
    first, then by reason."""
    failed = _finished_runs(burnin)
    failed = failed[failed["verdict"].eq("fail")]
    # Oldest run first, so that each group's `example` is its first occurrence.
    failed = failed.sort_values(["finished_at", "run_id"], kind="stable")
    rows = failed[["module", "run_id", "reasons"]].explode("reasons")
    rows = rows.loc[rows["reasons"].map(lambda r: isinstance(r, str) and r.strip() != "").astype(bool)]
    rows = rows.assign(reason=rows["reasons"].map(normalise_reason))
    per = rows.groupby("reason", sort=True).agg(
        runs=("run_id", "nunique"), modules=("module", "nunique"), example=("reasons", "first")
    )
    out = per.reset_index().astype({"reason": object, "example": object})
    out["runs"] = out["runs"].astype("int64")
    out["modules"] = out["modules"].astype("int64")
    out["share_pct"] = _pct(out["runs"], pd.Series(failed["run_id"].nunique(), index=out.index))
    out = out.sort_values(["runs", "reason"], ascending=[False, True], kind="stable").head(top)
    return out.reset_index(drop=True)[["reason", "runs", "modules", "share_pct", "example"]]


# --- logistics and sites ----------------------------------------------------------------------


def transit_times(legs: pd.DataFrame) -> pd.DataFrame:
    """Per lane (mode, origin, destination), over legs that have both departed and arrived: their count,
    the median planned and actual leg duration in hours, and the mean arrival delay in hours (actual
    minus planned arrival; negative is early). Planned durations are taken over the same completed legs,
    so the two medians compare like with like. Columns: mode, origin, destination, legs,
    planned_median_h, actual_median_h, mean_delay_h; most legs first, then by lane."""
    _require(legs, "legs")
    lane = ["mode", "origin", "destination"]
    times = {c: _utc(legs[c]) for c in ("planned_departure", "planned_arrival", "actual_departure", "actual_arrival")}
    done = legs[lane].assign(
        planned_h=_hours(times["planned_arrival"] - times["planned_departure"]),
        actual_h=_hours(times["actual_arrival"] - times["actual_departure"]),
        delay_h=_hours(times["actual_arrival"] - times["planned_arrival"]),
    )[times["actual_departure"].notna() & times["actual_arrival"].notna()]
    per = done.groupby(lane).agg(
        legs=("actual_h", "size"),
        planned_median_h=("planned_h", "median"),
        actual_median_h=("actual_h", "median"),
        mean_delay_h=("delay_h", "mean"),
    )
    out = per.reset_index().astype(dict.fromkeys(lane, object))
    out["legs"] = out["legs"].astype("int64")
    for col in ("planned_median_h", "actual_median_h", "mean_delay_h"):
        out[col] = out[col].astype("float64").round(2)
    out = out.sort_values(["legs", *lane], ascending=[False, True, True, True], kind="stable")
    return out.reset_index(drop=True)


DELIVER: Final = "lifecycle.deliver"
ENTER_SERVICE: Final = "lifecycle.enter_service"


def commissioning_durations(checklists: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per site: modules commissioned (an enter_service event whose module's previous deliver/enter_service
    event is a deliver), the median days from that deliver to enter_service, and the checklist runs
    there (and how many are signed). The site of a commissioning is that of the module's latest
    checklist started by the enter_service (a ledger `place` may be a station), else the event's
    place. Columns: site, commissioned, median_days, checklists, signed_checklists; by site."""
    _require(checklists, "checklists")
    _require(events, "events")
    ev = events.loc[events["type"].isin([DELIVER, ENTER_SERVICE]), ["module", "seq", "type", "at", "place"]].copy()
    ev["at"] = _utc(ev["at"])
    ev = ev.sort_values(["module", "seq"], kind="stable")
    by_module = ev.groupby("module", sort=False)
    ev["delivered_at"] = by_module["at"].shift(1)
    ev["previous"] = by_module["type"].shift(1)
    done = ev[ev["type"].eq(ENTER_SERVICE) & ev["previous"].eq(DELIVER)].copy()
    done["days"] = (done["at"] - done["delivered_at"]).dt.total_seconds() / 86400.0
    runs = checklists.assign(started_at=_utc(checklists["started_at"]))
    started = runs[runs["started_at"].notna()].sort_values("started_at", kind="stable")
    if len(done):
        done = pd.merge_asof(
            # merge_asof wants the `by` keys of one dtype: object on both sides (str or object come in)
            done.sort_values("at", kind="stable").astype({"module": object}),
            started[["module", "site", "started_at"]].astype({"module": object, "site": object}),
            left_on="at",
            right_on="started_at",
            by="module",
            direction="backward",
        )
        place = done["place"].where(done["place"].notna() & done["place"].ne(""))
        done["site"] = done["site"].fillna(place)
    else:
        done["site"] = pd.Series(dtype=object)
    per = done.groupby("site").agg(commissioned=("days", "size"), median_days=("days", "median"))
    lists = runs.groupby("site").agg(
        checklists=("template", "size"), signed_checklists=("signed_at", lambda s: int(s.notna().sum()))
    )
    out = per.join(lists, how="outer").rename_axis("site").reset_index()
    out["site"] = out["site"].astype(object)
    for col in ("commissioned", "checklists", "signed_checklists"):
        out[col] = out[col].fillna(0).astype("int64")
    out["median_days"] = out["median_days"].astype("float64").round(2)
    out = out.sort_values("site", kind="stable").reset_index(drop=True)
    return out[["site", "commissioned", "median_days", "checklists", "signed_checklists"]]


# --- all of it --------------------------------------------------------------------------------

# Stable table names (export sheet names and file names, page anchors) and their titles, in page order.
TABLES: Final[dict[str, str]] = {
    "modules_by_state": "Modules by state",
    "modules_by_country": "Modules by country",
    "modules_by_site": "Modules by site",
    "site_utilisation": "Site utilisation",
    "cycle_times": "Factory cycle times",
    "burnin_first_pass_yield": "Burn-in first-pass yield",
    "failure_reasons": "Burn-in failure reasons",
    "transit_times": "Transit times by lane",
    "commissioning_durations": "Commissioning durations",
}


def dashboard(frames: Mapping[str, pd.DataFrame], lifecycle: Lifecycle | None = None) -> dict[str, pd.DataFrame]:
    """Every report from the input frames (keys as in CONTRACTS), keyed and ordered as TABLES."""
    missing = [name for name in CONTRACTS if name not in frames]
    if missing:
        raise ValueError(f"dashboard needs the frames {missing}")
    lc = lifecycle or load_lifecycle()
    f = frames
    tables = {
        "modules_by_state": modules_by_state(f["modules"], lc),
        "modules_by_country": modules_by_country(f["modules"], lc),
        "modules_by_site": modules_by_site(f["modules"], f["sites"], lc),
        "site_utilisation": site_utilisation(f["sites"]),
        "cycle_times": cycle_times(f["events"], lc),
        "burnin_first_pass_yield": burnin_first_pass_yield(f["burnin"]),
        "failure_reasons": failure_reasons(f["burnin"]),
        "transit_times": transit_times(f["legs"]),
        "commissioning_durations": commissioning_durations(f["checklists"], f["events"]),
    }
    return {name: tables[name] for name in TABLES}
