"""Fleet reports over small hand-built frames, with every expected number worked out by hand."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import pytest

from app.core.definitions import load_lifecycle
from app.fleet import reports

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def d(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Records with NaN as None, so that expected rows can be written as literals."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


# --- events ---------------------------------------------------------------------------------------


def _events(spec: list[tuple[str, int, str, dt.datetime, str | None]], place: str = "F1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "module": [m for m, *_ in spec],
            "seq": [s for _, s, *_ in spec],
            "type": [t for _, _, t, *_ in spec],
            "at": pd.to_datetime([a for *_, a, _ in spec], utc=True),
            "place": place,
            "to_state": [to for *_, to in spec],
            "payload": [{} for _ in spec],
        }
    )


FACTORY_EVENTS = _events(
    [
        # A: assembled twice (a rework between), burn-in interrupted by a hold, then packed and shipped.
        ("A", 1, "module.registered", h(-24), "planned"),
        ("A", 2, "lifecycle.start_assembly", h(0), "assembling"),
        ("A", 3, "tag.scanned", h(5), None),  # not a state change: ignored
        ("A", 4, "lifecycle.complete_assembly", h(10), "assembled"),
        ("A", 5, "lifecycle.start_burn_in", h(12), "burn_in"),
        ("A", 6, "lifecycle.hold", h(20), "on_hold"),  # 8 h of burn-in so far
        ("A", 7, "lifecycle.release", h(30), "burn_in"),  # 10 h on hold: not burn-in time
        ("A", 8, "lifecycle.fail_burn_in", h(34), "burn_in_failed"),  # burn-in 8 + 4 = 12 h
        ("A", 9, "lifecycle.start_rework", h(35), "rework"),
        ("A", 10, "lifecycle.finish_rework", h(41), "assembling"),
        ("A", 11, "lifecycle.complete_assembly", h(45), "assembled"),
        ("A", 12, "lifecycle.start_burn_in", h(45), "burn_in"),
        ("A", 13, "lifecycle.pass_burn_in", h(69), "burn_in_passed"),
        ("A", 14, "lifecycle.pack", h(70), "packed"),
        ("A", 15, "lifecycle.depart", h(94), "in_transit"),  # in transit: not a factory stage, and open
        # B: still held from burn-in: that stay is not complete.
        ("B", 1, "lifecycle.start_assembly", h(0), "assembling"),
        ("B", 2, "lifecycle.complete_assembly", h(20), "assembled"),
        ("B", 3, "lifecycle.start_burn_in", h(20), "burn_in"),
        ("B", 4, "lifecycle.hold", h(30), "on_hold"),
        # C: passed, waiting to be packed (open).
        ("C", 1, "lifecycle.start_assembly", h(0), "assembling"),
        ("C", 2, "lifecycle.complete_assembly", h(6), "assembled"),
        ("C", 3, "lifecycle.start_burn_in", h(8), "burn_in"),
        ("C", 4, "lifecycle.pass_burn_in", h(26), "burn_in_passed"),
    ]
).sample(frac=1.0, random_state=7)  # row order must not matter: seq does


def test_stage_visits_merge_a_hold_and_release_into_one_stay() -> None:
    visits = reports.stage_visits(FACTORY_EVENTS)
    a_burn_in = visits[(visits["module"] == "A") & (visits["stage"] == "burn_in")]
    assert a_burn_in["hours"].tolist() == [12.0, 24.0]
    assert a_burn_in["completed"].tolist() == [True, True]
    b_burn_in = visits[(visits["module"] == "B") & (visits["stage"] == "burn_in")]
    assert b_burn_in["completed"].tolist() == [False]
    assert math.isnan(b_burn_in["hours"].iloc[0])
    assert "on_hold" not in set(visits["stage"])


def test_cycle_times_per_factory_stage() -> None:
    table = reports.cycle_times(FACTORY_EVENTS)
    assert list(table.columns) == ["stage", "label", "visits", "median_h", "p90_h"]
    # p90 interpolates linearly: assembling [4, 6, 10, 20] -> position 2.7 -> 10 + 0.7 * 10 = 17
    assert rows(table) == [
        {"stage": "planned", "label": "Planned", "visits": 1, "median_h": 24.0, "p90_h": 24.0},
        {"stage": "assembling", "label": "Assembling", "visits": 4, "median_h": 8.0, "p90_h": 17.0},
        {"stage": "assembled", "label": "Assembled", "visits": 4, "median_h": 1.0, "p90_h": 2.0},
        {"stage": "burn_in", "label": "Burn-in", "visits": 3, "median_h": 18.0, "p90_h": 22.8},
        {"stage": "burn_in_failed", "label": "Burn-in failed", "visits": 1, "median_h": 1.0, "p90_h": 1.0},
        {"stage": "rework", "label": "Rework", "visits": 1, "median_h": 6.0, "p90_h": 6.0},
        {"stage": "burn_in_passed", "label": "Burn-in passed", "visits": 1, "median_h": 1.0, "p90_h": 1.0},
        {"stage": "packed", "label": "Packed", "visits": 1, "median_h": 24.0, "p90_h": 24.0},
    ]


def test_cycle_times_of_other_places_and_naive_times() -> None:
    # A's transit stay is still open; nothing completed in transit.
    assert reports.cycle_times(FACTORY_EVENTS, where=("transit",)).empty
    naive = FACTORY_EVENTS.assign(at=FACTORY_EVENTS["at"].dt.tz_localize(None))  # naive is taken as UTC
    assert reports.cycle_times(naive).equals(reports.cycle_times(FACTORY_EVENTS))


# --- modules and sites ----------------------------------------------------------------------------

_M = ["serial", "spec", "gpu_model", "gpu_count", "factory", "factory_country", "site", "site_country", "state"]
MODULES = pd.DataFrame(
    [
        ("M1", "S1", "H100", 8, "F1", "US", None, None, "assembling"),
        ("M2", "S1", "H100", 8, "F1", "US", "NL01", "NL", "packed"),  # still at the factory
        ("M3", "S1", "H100", 8, "F1", "US", "NL01", "NL", "in_transit"),  # counted at its destination
        ("M4", "S2", "B200", 4, "F2", "TW", "NL01", "NL", "in_service"),
        ("M5", "S2", "B200", 4, "F2", "TW", "SG01", "SG", "commissioning"),
        ("M6", "S2", "B200", 4, "F2", "TW", "SG01", "SG", "on_hold"),
        ("M7", "S1", "H100", 8, "F1", "US", "NL01", "NL", "decommissioned"),
        ("M8", "S1", "H100", 8, "F1", "US", "NL01", "NL", "retired"),  # out of the fleet: no place
        ("M9", "S2", "B200", 4, "F2", "TW", None, None, "on_hold"),  # held at the factory
        ("M10", "S1", "H100", 8, "F1", "US", "XX01", "DE", "in_service"),  # a site not in `sites`
    ],
    columns=_M,
)

SITES = pd.DataFrame(
    {
        "code": ["SG01", "NL01", "ZZ01"],
        "name": ["Singapore DC", "Amsterdam DC", "Empty lot"],
        "country": ["SG", "NL", "US"],
        "power_kw": [500.0, 1000.0, 0.0],
        "module_slots": [4, 10, 0],
        "used_slots": [1, 3, 0],
        "used_power_kw": [500.0, 251.0, 0.0],
    }
)


def test_modules_by_state_in_lifecycle_order_with_zeros() -> None:
    table = reports.modules_by_state(MODULES)
    assert table["state"].tolist() == list(load_lifecycle().state_ids)
    counts = dict(zip(table["state"], table["modules"], strict=True))
    assert counts == {
        **dict.fromkeys(load_lifecycle().state_ids, 0),
        "assembling": 1,
        "packed": 1,
        "in_transit": 1,
        "in_service": 2,
        "commissioning": 1,
        "on_hold": 2,
        "decommissioned": 1,
        "retired": 1,
    }
    shares = dict(zip(table["state"], table["share_pct"], strict=True))
    assert shares["in_service"] == 20.0 and shares["packed"] == 10.0 and shares["planned"] == 0.0
    assert table.loc[table["state"] == "burn_in", "label"].item() == "Burn-in"


def test_modules_by_state_keeps_unknown_states() -> None:
    table = reports.modules_by_state(pd.concat([MODULES, MODULES.head(1).assign(state="legacy")]))
    assert table.iloc[-1].to_dict() == {"state": "legacy", "label": "legacy", "modules": 1, "share_pct": 9.1}


def test_modules_by_country() -> None:
    assert rows(reports.modules_by_country(MODULES)) == [
        {"country": "NL", "at_factory": 0, "in_transit": 1, "at_site": 2, "on_hold": 0, "modules": 3, "gpus": 20},
        {"country": "SG", "at_factory": 0, "in_transit": 0, "at_site": 1, "on_hold": 1, "modules": 2, "gpus": 8},
        {"country": "US", "at_factory": 2, "in_transit": 0, "at_site": 0, "on_hold": 0, "modules": 2, "gpus": 16},
        {"country": "DE", "at_factory": 0, "in_transit": 0, "at_site": 1, "on_hold": 0, "modules": 1, "gpus": 8},
        {"country": "TW", "at_factory": 0, "in_transit": 0, "at_site": 0, "on_hold": 1, "modules": 1, "gpus": 4},
    ]


def test_modules_by_site() -> None:
    zero = {"inbound": 0, "commissioning": 0, "in_service": 0, "decommissioning": 0, "on_hold": 0}
    assert rows(reports.modules_by_site(MODULES, SITES)) == [
        {"site": "NL01", "name": "Amsterdam DC", "country": "NL", **zero, "inbound": 2, "in_service": 1,
         "decommissioning": 1, "modules": 4, "gpus": 28},
        {"site": "SG01", "name": "Singapore DC", "country": "SG", **zero, "commissioning": 1, "on_hold": 1,
         "modules": 2, "gpus": 8},
        {"site": "XX01", "name": None, "country": "DE", **zero, "in_service": 1, "modules": 1, "gpus": 8},
        {"site": "ZZ01", "name": "Empty lot", "country": "US", **zero, "modules": 0, "gpus": 0},
    ]  # fmt: skip


def test_site_utilisation() -> None:
    assert rows(reports.site_utilisation(SITES)) == [
        {"site": "NL01", "name": "Amsterdam DC", "country": "NL", "module_slots": 10, "used_slots": 3,
         "slots_pct": 30.0, "power_kw": 1000.0, "used_power_kw": 251.0, "power_pct": 25.1},
        {"site": "SG01", "name": "Singapore DC", "country": "SG", "module_slots": 4, "used_slots": 1,
         "slots_pct": 25.0, "power_kw": 500.0, "used_power_kw": 500.0, "power_pct": 100.0},
        # no capacity: the percentage is unknown, not 0 %
        {"site": "ZZ01", "name": "Empty lot", "country": "US", "module_slots": 0, "used_slots": 0,
         "slots_pct": None, "power_kw": 0.0, "used_power_kw": 0.0, "power_pct": None},
    ]  # fmt: skip


# --- burn-in --------------------------------------------------------------------------------------

UUID_1 = "GPU-5d1a8c8e-0b3c-4f7e-9a51-2c6d8e0f1a2b"
UUID_2 = "GPU-00aa11bb-22cc-33dd-44ee-55ff66778899"
HOT_3 = f"GPU 3 ({UUID_1}): max temperature 93 °C > 90 °C"
HOT_5 = f"GPU 5 ({UUID_2}): max temperature 95 °C > 90 °C"
HOT_1 = "GPU 1 (no UUID): max temperature 91 °C > 90 °C"
XID_A = "Xid 79 on 0000:3B:00.0 (GPU has fallen off the bus), kernel log line 1234: hardware-class error"
XID_B = "Xid 79 on 0000:5E:00.0 (GPU has fallen off the bus), kernel log line 88: hardware-class error"
SHORT = "7 GPUs reported telemetry; the spec has 8"

BURNIN = pd.DataFrame(
    [
        ("M1", "S1", "H100", 1, "fail", h(1), [HOT_3, HOT_5]),
        ("M1", "S1", "H100", 2, "pass", h(2), []),
        ("M2", "S1", "H100", 3, "pass", h(3), []),
        ("M3", "S1", "H100", 4, None, None, []),  # still running: not finished
        ("M4", "S2", "B200", 5, "fail", h(4), [XID_A, HOT_1]),
        ("M4", "S2", "B200", 6, "fail", h(5), [XID_B]),
        ("M4", "S2", "B200", 7, "pass", h(6), []),
        ("M5", "S2", "B200", 8, "pass", h(7), []),
        ("M6", "S2", "B200", 10, "pass", h(8), []),  # its first finished run, though not its first id
        ("M6", "S2", "B200", 9, "fail", h(9), [SHORT]),
    ],
    columns=["module", "spec", "gpu_model", "run_id", "verdict", "finished_at", "reasons"],
)


def test_first_pass_yield_per_spec_and_gpu_model() -> None:
    assert rows(reports.burnin_first_pass_yield(BURNIN)) == [
        {"spec": "S1", "gpu_model": "H100", "modules": 2, "first_pass": 1, "yield_pct": 50.0, "runs": 3},
        {"spec": "S2", "gpu_model": "B200", "modules": 3, "first_pass": 2, "yield_pct": 66.7, "runs": 6},
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("GPU 3 temperature 93 °C", "GPU # temperature # °C"),
        ("GPU 5 temperature 95 °C", "GPU # temperature # °C"),
        (HOT_3, "GPU #: max temperature # °C > # °C"),
        (HOT_1, "GPU #: max temperature # °C > # °C"),
        (XID_A, "Xid 79 on # (GPU has fallen off the bus), kernel log line #: hardware-class error"),
        ("soak 1:23:45 < minimum 4:00:00", "soak # < minimum #"),
        ("DCGM Memory failed on GPUs 1, 3: error 0x1F", "DCGM Memory failed on GPUs #: error #"),
        ("H100 clock 1500 MHz is 0.85 of  the fleet's", "H100 clock # MHz is # of the fleet's"),
        ("inlet -5.5 °C", "inlet # °C"),
        ("sm_90 kernel missing", "sm_90 kernel missing"),
    ],
)
def test_normalise_reason(reason: str, expected: str) -> None:
    assert reports.normalise_reason(reason) == expected


def test_failure_reasons_grouped_and_counted_once_per_run() -> None:
    table = reports.failure_reasons(BURNIN)
    assert rows(table) == [
        # runs 1 and 5 (run 1 names two GPUs: one run); 4 failed runs in all
        {"reason": "GPU #: max temperature # °C > # °C", "runs": 2, "modules": 2, "share_pct": 50.0, "example": HOT_3},
        {"reason": "Xid 79 on # (GPU has fallen off the bus), kernel log line #: hardware-class error", "runs": 2,
         "modules": 1, "share_pct": 50.0, "example": XID_A},
        {"reason": "# GPUs reported telemetry; the spec has #", "runs": 1, "modules": 1, "share_pct": 25.0,
         "example": SHORT},
    ]  # fmt: skip
    assert reports.failure_reasons(BURNIN, top=1)["reason"].tolist() == ["GPU #: max temperature # °C > # °C"]


# --- logistics ------------------------------------------------------------------------------------

LEGS = pd.DataFrame(
    [
        ("SH1", 1, "road", "F1", "USLAX", h(0), h(10), h(1), h(12)),  # 10 h planned, 11 actual, +2 late
        ("SH2", 1, "road", "F1", "USLAX", h(0), h(10), h(0), h(9)),  # 10, 9, -1 (early)
        ("SH3", 1, "road", "F1", "USLAX", h(0), h(12), h(0), h(15)),  # 12, 15, +3
        ("SH1", 2, "sea", "USLAX", "NLRTM", h(10), h(310), h(12), h(372)),  # 300, 360, +62
        ("SH4", 2, "sea", "USLAX", "NLRTM", h(0), h(300), h(1), None),  # under way: not counted
        ("SH5", 1, "air", "F2", "SGSIN", h(0), h(20), None, None),  # not departed
    ],
    columns=list(reports.CONTRACTS["legs"]),
)


def test_transit_times_per_lane() -> None:
    assert rows(reports.transit_times(LEGS)) == [
        {"mode": "road", "origin": "F1", "destination": "USLAX", "legs": 3, "planned_median_h": 10.0,
         "actual_median_h": 11.0, "mean_delay_h": 1.33},
        {"mode": "sea", "origin": "USLAX", "destination": "NLRTM", "legs": 1, "planned_median_h": 300.0,
         "actual_median_h": 360.0, "mean_delay_h": 62.0},
    ]  # fmt: skip


# --- commissioning --------------------------------------------------------------------------------

SITE_EVENTS = pd.concat(
    [
        _events([("M4", 20, "lifecycle.deliver", d(0), "delivered")], "NL01"),
        _events([("M4", 21, "lifecycle.start_commissioning", d(1), "commissioning")], "NL01"),
        _events([("M4", 23, "lifecycle.enter_service", d(3.5), "in_service")], "NL01"),
        # M7: the ledger's place is a station; its checklist says the site
        _events([("M7", 20, "lifecycle.deliver", d(10), "delivered")], "NL01"),
        _events([("M7", 23, "lifecycle.enter_service", d(15), "in_service")], "ST-3"),
        # ... and redeployed to Singapore later: the latest checklist before entry names the site
        _events([("M7", 40, "lifecycle.deliver", d(100), "delivered")], "SG01"),
        _events([("M7", 43, "lifecycle.enter_service", d(101), "in_service")], "SG01"),
        # M10: no checklist on record: the event's place is the site
        _events([("M10", 20, "lifecycle.deliver", d(0), "delivered")], "XX01"),
        _events([("M10", 23, "lifecycle.enter_service", d(2), "in_service")], "XX01"),
        # M5: delivered, not yet in service
        _events([("M5", 20, "lifecycle.deliver", d(0), "delivered")], "SG01"),
    ]
).iloc[::-1]

CHECKLISTS = pd.DataFrame(
    [
        ("M4", "NL01", "power", d(1), d(2)),
        ("M4", "NL01", "network", d(1.5), d(2.5)),
        ("M7", "NL01", "power", d(11), d(12)),
        ("M7", "SG01", "power", d(100.5), d(100.7)),
        ("M5", "SG01", "power", d(1), None),
    ],
    columns=["module", "site", "template", "started_at", "signed_at"],
)


def test_commissioning_durations_per_site() -> None:
    assert rows(reports.commissioning_durations(CHECKLISTS, SITE_EVENTS)) == [
        {"site": "NL01", "commissioned": 2, "median_days": 4.25, "checklists": 3, "signed_checklists": 3},
        {"site": "SG01", "commissioned": 1, "median_days": 1.0, "checklists": 2, "signed_checklists": 1},
        {"site": "XX01", "commissioned": 1, "median_days": 2.0, "checklists": 0, "signed_checklists": 0},
    ]


# --- all of it ------------------------------------------------------------------------------------


def test_dashboard_names_and_orders_every_table() -> None:
    frames = {
        "events": pd.concat([FACTORY_EVENTS, SITE_EVENTS]),
        "modules": MODULES,
        "sites": SITES,
        "burnin": BURNIN,
        "legs": LEGS,
        "checklists": CHECKLISTS,
    }
    tables = reports.dashboard(frames)
    assert list(tables) == list(reports.TABLES)
    assert tables["cycle_times"].equals(reports.cycle_times(FACTORY_EVENTS))
    assert tables["transit_times"]["legs"].sum() == 4


def test_empty_frames_give_empty_tables_with_their_columns() -> None:
    frames = reports.empty_frames()
    assert set(frames) == set(reports.CONTRACTS)
    for name, frame in frames.items():
        assert list(frame.columns) == list(reports.CONTRACTS[name])
    assert str(frames["events"]["at"].dtype) == "datetime64[ns, UTC]"
    tables = reports.dashboard(frames)
    assert len(tables["modules_by_state"]) == len(load_lifecycle().states)  # every state, at 0
    assert tables["modules_by_state"]["modules"].sum() == 0
    for name, table in tables.items():
        if name != "modules_by_state":
            assert table.empty, name
            assert len(table.columns) >= 4, name


def test_missing_columns_and_frames_are_named() -> None:
    with pytest.raises(ValueError, match=r"legs frame lacks columns \['actual_arrival'\]"):
        reports.transit_times(LEGS.drop(columns="actual_arrival"))
    with pytest.raises(ValueError, match=r"needs the frames \['legs'\]"):
        reports.dashboard({k: v for k, v in reports.empty_frames().items() if k != "legs"})


def test_null_usage_is_zero_and_unknown_states_count_as_held() -> None:
    sites = SITES.assign(used_slots=[None, 3, None], used_power_kw=[None, 251.0, None])  # a LEFT JOIN's NULLs
    table = reports.site_utilisation(sites)
    assert table["used_slots"].tolist() == [3, 0, 0] and table["slots_pct"].tolist()[:2] == [30.0, 0.0]
    legacy = MODULES.head(1).assign(state="legacy", site="NL01", site_country="NL")
    assert rows(reports.modules_by_country(legacy)) == [
        {"country": "NL", "at_factory": 0, "in_transit": 0, "at_site": 0, "on_hold": 1, "modules": 1, "gpus": 8}
    ]
