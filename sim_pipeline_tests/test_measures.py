"""Events, cohort windows, person-month metrics and the headline on small hand-built fixtures whose
answers are computed by hand in the comments."""

import pandas as pd
import pytest

from sim_pipeline.measures.cohort import build_cohort
from sim_pipeline.measures.events import (
    EventStats,
    ae_events,
    bed_day_events,
    bed_days_in_month,
    community_events,
    police_events,
    s136_events,
)
from sim_pipeline.measures.headline import person_changes, programme_headline
from sim_pipeline.measures.metrics import METRICS, person_month_metrics


def _index(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "table_name", "record_ref", "person_key"]).astype(
        "string"
    )


def test_bed_days_follow_mhs24_across_month_ends_and_open_stays():
    stays = pd.DataFrame(
        {
            # (start, end, reporting month) -> bed days in that month
            "start": ["2019-01-25", "2019-01-25", "2019-02-10", "2019-02-10", "2019-03-31"],
            "end": ["2019-02-03", "2019-02-03", None, "2019-02-10", "2019-04-01"],
            "month": ["2019-01", "2019-02", "2019-02", "2019-02", "2019-03"],
        }
    )
    days = bed_days_in_month(stays["start"], stays["end"], stays["month"])
    # Jan: 25..31 = Feb 1 - Jan 25 = 7; Feb: Feb 3 - Feb 1 = 2 (discharge day not a bed day);
    # open from Feb 10: Mar 1 - Feb 10 = 19; admitted and discharged Feb 10: 0;
    # Mar 31 to Apr 1: Apr 1 - Mar 31 = 1
    assert days.tolist() == [7, 2, 19, 0, 1]


def test_bed_day_events_skip_stays_without_a_bed_day_and_date_the_first_day():
    ward = pd.DataFrame(
        {
            "source": "slam",
            "record_ref": ["WS1", "WS1", "WS2"],
            "month": ["2019-01", "2019-02", "2019-02"],
            "StartDateWardStay": ["2019-01-25", "2019-01-25", "2019-02-10"],
            "EndDateWardStay": [None, "2019-02-03", "2019-02-10"],
        }
    )
    index = _index(
        [("slam", "MHS502WardStay", "WS1", "P1"), ("slam", "MHS502WardStay", "WS2", "P2")]
    )
    stats = EventStats()
    ev = bed_day_events(ward, index, stats)
    assert ev["quantity"].tolist() == [7, 2]  # the open January row runs to the month end
    assert [str(d)[:10] for d in ev["event_date"]] == ["2019-01-25", "2019-02-01"]
    assert stats.removed["ward_stay_no_bed_day_in_month"] == 1


def test_ae_duplicates_are_removed_by_flag_and_by_person_site_and_arrival():
    ecds = pd.DataFrame(
        {
            "source": "ae_rjz",
            "record_ref": ["A1", "A2", "A3", "A4", "A5"],
            "month": "2019-01",
            "Der_Dupe_Flag": ["0", "1", "0", "0", "0"],
            "Der_Provider_Site_Code": ["S1", "S1", "S1", "S1", "S2"],
            "Arrival_Date": ["2019-01-05"] * 5,
            "Arrival_Time": ["10:00:00", "10:00:00", "10:00:00", "11:00:00", "10:00:00"],
            # self-harm: A1 (and its repeat A3) by complaint, A4 by intent; A5 is not
            "EC_Chief_Complaint_SNOMED_CT": [
                "248062006",
                "248062006",
                "248062006",
                None,
                "6471006",
            ],
            "EC_Injury_Intent_SNOMED_CT": [None, None, None, "276853009", None],
        }
    )
    # A2 is the provider's flagged copy; A3 repeats A1 (same person, site, time) under another
    # record id; A4 is a later attendance; A5 another site. P1 has A1, A3, A4, A5.
    index = _index([("ae_rjz", "ecds", r, "P1") for r in ["A1", "A2", "A3", "A4", "A5"]])
    stats = EventStats()
    ev = ae_events(ecds, index, stats)
    assert sorted(ev.loc[ev["metric"] == "ae_attendances", "record_ref"]) == ["A1", "A4", "A5"]
    assert sorted(ev.loc[ev["metric"] == "ae_self_harm", "record_ref"]) == ["A1", "A4"]
    assert stats.removed == {"ae_der_dupe_flag": 1, "ae_same_person_site_arrival": 1}


def _s136_fixture():
    police = pd.DataFrame(
        {
            "source": "met_police",
            "record_ref": ["S1", "S2", "S3"],
            "month": "2019-02",
            "DetentionDateTime": ["2019-02-10 23:30:00", "2019-02-15 12:00:00", "2019-02-20 09:00"],
            "ArrestedForOffence": ["Y", "N", "N"],
            "FirstPlaceOfSafety": ["police_station", "ae", "police_station"],
        }
    )
    mhsds = pd.DataFrame(
        {
            "source": "slam",
            "record_ref": ["M1", "M2", "M3", "M4", "M5"],
            "month": "2019-02",
            "LegalStatusCode": ["20", "20", "20", "03", "20"],
            # M1: P1's detention S1, starting the next day (seen twice: counts once)
            # M2: P2, no police return (MHSDS only); M3: P3's period that began in January
            # (reported again in February, counted in January's drop); M4: a section 3;
            # M5: P4's period on Feb 1 whose police return (S0) came in January's drop.
            "StartDateMHActLegalStatusClass": [
                "2019-02-11",
                "2019-02-12",
                "2019-01-30",
                "2019-02-01",
                "2019-02-01",
            ],
        }
    )
    before = pd.DataFrame(
        {
            "source": "met_police",
            "record_ref": ["S0"],
            "month": "2019-01",
            "DetentionDateTime": ["2019-01-31 23:50:00"],
            "ArrestedForOffence": ["N"],
            "FirstPlaceOfSafety": ["ae"],
        }
    )
    index = _index(
        [
            ("met_police", "s136_return", "S0", "P4"),
            ("met_police", "s136_return", "S1", "P1"),
            ("met_police", "s136_return", "S2", "P5"),
            ("met_police", "s136_return", "S3", "P6"),
            ("slam", "MHS401MHActPeriod", "M1", "P1"),
            ("slam", "MHS401MHActPeriod", "M2", "P2"),
            ("slam", "MHS401MHActPeriod", "M3", "P3"),
            ("slam", "MHS401MHActPeriod", "M4", "P1"),
            ("slam", "MHS401MHActPeriod", "M5", "P4"),
        ]
    )
    return police, mhsds, before, index


def test_s136_seen_by_both_sides_counts_once():
    police, mhsds, before, index = _s136_fixture()
    stats = EventStats()
    ev = s136_events(police, mhsds, index, ["2019-02"], stats, before)
    harm = ev[ev["metric"] != "s136_detentions"]
    ev = ev[ev["metric"] == "s136_detentions"]
    # S1, S2, S3 (police) + M2 (MHSDS only). M1 is S1's other side; M5 is S0's (January);
    # M3 started in January; M4 is not s136.
    assert sorted(ev["record_ref"]) == ["M2", "S1", "S2", "S3"]
    assert ev["quantity"].sum() == 4
    # harms from the police side: S1 arrested; S1 and S3 taken to a police station first
    assert sorted(zip(harm["metric"], harm["record_ref"], strict=True)) == [
        ("arrests", "S1"),
        ("s136_police_station", "S1"),
        ("s136_police_station", "S3"),
    ]
    assert stats.s136_sides == {"seen_by_both": 2, "police_only": 2, "mhsds_only": 1}
    assert stats.removed["s136_period_reported_again_after_its_start_month"] == 1


def test_police_arrests_charges_and_deployments():
    cad = pd.DataFrame(
        {
            "source": "met_police",
            "record_ref": ["C1", "C2", "C3", "C4"],
            "month": "2019-03",
            "CallReceivedDateTime": [f"2019-03-0{d} 10:00:00" for d in (1, 2, 3, 4)],
            "OfficersAttended": ["Y", "Y", "N", "Y"],
            "Outcome": ["ARREST", "CHARGED", "NFA", "S136"],
        }
    )
    index = _index([("met_police", "cad_incidents", c, "P1") for c in ["C1", "C2", "C3", "C4"]])
    ev = police_events(cad, index, EventStats())
    by = ev.groupby("metric")["record_ref"].apply(sorted).to_dict()
    assert by == {
        "police_deployments": ["C1", "C2", "C4"],
        "arrests": ["C1", "C2"],
        "charges": ["C2"],
    }


def test_community_contacts_attended_and_missed():
    contacts = pd.DataFrame(
        {
            "source": "slam",
            "record_ref": ["K1", "K2", "K3", "K4", "K5"],
            "month": "2019-03",
            "CareContDate": ["2019-03-05"] * 5,
            "AttendOrDNACode": [
                "5",
                "6",
                "3",
                "7",
                "2",
            ],  # seen, seen late, DNA, too late, cancelled
        }
    )
    index = _index([("slam", "MHS201CareContact", k, "P1") for k in ["K1", "K2", "K3", "K4", "K5"]])
    stats = EventStats()
    ev = community_events(contacts, index, stats)
    by = ev.groupby("metric")["record_ref"].apply(sorted).to_dict()
    assert by == {"community_contacts": ["K1", "K2"], "community_dna": ["K3", "K4"]}
    assert stats.removed["care_contact_cancelled"] == 1


def test_s136_without_the_previous_month_counts_the_boundary_detention_on_the_mhsds_side():
    police, mhsds, _, index = _s136_fixture()
    ev = s136_events(police, mhsds, index, ["2019-02"], EventStats(), None)
    assert "M5" in set(ev["record_ref"])


def _register(rows: list[tuple]) -> pd.DataFrame:
    cols = [
        "source",
        "record_ref",
        "month",
        "OrgIDProv",
        "Borough",
        "AllocationDate",
        "EngagementDate",
        "DischargeDate",
        "DischargeReason",
    ]
    return pd.DataFrame(rows, columns=cols)


REGISTER = _register(
    [
        # R1: allocated 20 Mar 2018 (partial month), engaged 15 Apr, discharged 3 Jun 2018.
        ("slam", "R1", "2018-03", "RV5", "Southwark", "2018-03-20", None, None, None),
        ("slam", "R1", "2018-06", "RV5", "Southwark", "2018-03-20", "2018-04-15", "2018-06-03", "goals_met"),
        # R2: allocated May 2016, never engaged, still on the programme at the end of data.
        ("slam", "R2", "2018-06", "RV5", "Lambeth", "2016-05-02", None, None, None),
        # R3: allocated Feb 2018, engaged 28 Feb; no other record anywhere (unlinked).
        ("slam", "R3", "2018-06", "RV5", "Lambeth", "2018-02-01", "2018-02-28", None, None),
    ]
)  # fmt: skip
INDEX = _index(
    [
        ("slam", "programme_register", "R1", "P1"),
        ("slam", "programme_register", "R2", "P2"),
        ("slam", "programme_register", "R3", "P3"),
        ("slam", "MHS001MPI", "L1", "P1"),
        ("ae_rjz", "ecds", "A1", "P2"),
    ]
)


def test_cohort_windows_partial_months_data_start_and_unlinked_rows():
    co = build_cohort(REGISTER, INDEX, "2016-01", "2018-07").set_index("register_id")
    r1 = co.loc["R1"]
    # baseline: the 12 months before March 2018; programme: April..June = 3 whole months
    assert (r1.baseline_first_month, r1.baseline_last_month, r1.baseline_months) == (
        "2017-03",
        "2018-02",
        12,
    )
    assert (r1.programme_first_month, r1.programme_last_month, r1.programme_months) == (
        "2018-04",
        "2018-06",
        3,
    )
    assert r1.engaged and r1.per_protocol and r1.itt and r1.discharge_reason == "goals_met"
    r2 = co.loc["R2"]
    # data start in 2016-01: baseline Jan..Apr 2016 = 4 months; never engaged: programme from
    # allocation (May 2016) to the end of data (July 2018) = 27 months; ITT only.
    assert (r2.baseline_first_month, r2.baseline_months) == ("2016-01", 4)
    assert (r2.programme_first_month, r2.programme_last_month, r2.programme_months) == (
        "2016-05",
        "2018-07",
        27,
    )
    assert r2.itt and not r2.per_protocol
    assert not co.loc["R3"].linked and co.loc["R1"].linked  # reported, not dropped
    assert len(co) == 3


def test_cohort_baseline_window_is_configurable():
    co = build_cohort(REGISTER, INDEX, "2016-01", "2018-07", baseline_months=6)
    r1 = co.set_index("register_id").loc["R1"]
    assert (r1.baseline_first_month, r1.baseline_months) == ("2017-09", 6)
    with pytest.raises(ValueError, match="baseline_months"):
        build_cohort(REGISTER, INDEX, "2016-01", "2018-07", baseline_months=0)


def test_person_month_metrics_include_cohort_zero_months_and_others_active_months():
    events = pd.DataFrame(
        {
            "person_key": ["P1", "P1", "P9"],
            "metric": ["mh_bed_days", "ae_attendances", "ae_attendances"],
            "month": ["2018-04", "2018-04", "2018-04"],
            "quantity": [7, 1, 1],
        }
    )
    pm = person_month_metrics(events, ["P1", "P2"], ["2018-04", "2018-05"])
    # 2 cohort people x 2 months, zeros included, plus P9 (not in the cohort) in April only
    assert len(pm) == 5
    assert set(pm.loc[pm.person_key == "P9", "month"]) == {"2018-04"}
    p1 = pm[(pm.person_key == "P1") & (pm.month == "2018-04")].iloc[0]
    assert (p1.mh_bed_days, p1.ae_attendances, p1.s136_detentions) == (7, 1, 0)
    assert pm[list(METRICS)].to_numpy().sum() == 9
    assert not pm.duplicated(["person_key", "month"]).any()


def _costs(rows: dict[tuple[str, str], float]) -> pd.DataFrame:
    out = []
    for (person, month), total in rows.items():
        row = {"person_key": person, "month": month, "total_cost": total}
        row.update({f"cost_{m}": 0.0 for m in METRICS})
        row["cost_ae_attendances"] = total
        out.append(row)
    return pd.DataFrame(out)


def test_headline_by_hand_including_a_person_with_no_baseline_activity():
    cohort = pd.DataFrame(
        {
            "register_id": ["R1", "R2", "R3"],
            "person_key": ["P1", "P2", "P3"],
            "allocation_date": pd.to_datetime(["2018-03-01"] * 3).date,
            "itt": True,
            "per_protocol": [True, True, False],
            "baseline_first_month": "2018-01",
            "baseline_last_month": "2018-02",
            "baseline_months": 2,
            "programme_first_month": "2018-03",
            "programme_last_month": ["2018-05", "2018-04", "2018-04"],
            "programme_months": [3, 2, 2],
        }
    )
    costs = _costs(
        {
            # P1: baseline (1000 + 500) / 2 = 750 a month; programme (300 + 0 + 0) / 3 = 100
            ("P1", "2018-01"): 1000.0,
            ("P1", "2018-02"): 500.0,
            ("P1", "2018-03"): 300.0,
            # P2: baseline 200 / 2 = 100; programme 300 / 2 = 150
            ("P2", "2018-02"): 200.0,
            ("P2", "2018-04"): 300.0,
            # P3: no baseline activity (0); programme 50 / 2 = 25
            ("P3", "2018-03"): 50.0,
        }
    )
    grid = pd.MultiIndex.from_product(
        [["P1", "P2", "P3"], ["2018-01", "2018-02", "2018-03", "2018-04", "2018-05"]],
        names=["person_key", "month"],
    ).to_frame(index=False)
    costs = grid.merge(costs, how="left").fillna(0.0)
    metrics = grid.assign(**{m: 0 for m in METRICS})
    metrics["ae_attendances"] = (costs["total_cost"] > 0).astype(int)
    ch = person_changes(costs, metrics, cohort).set_index("person_key")
    assert ch["monthly_change"].round(2).to_dict() == {"P1": -650.0, "P2": 50.0, "P3": 25.0}
    assert pd.isna(ch.loc["P3", "pct_change"])  # no baseline cost: no percentage

    h = programme_headline(costs, metrics, cohort, "2018/19", "t.1")
    itt = h[h.population == "itt"].set_index("statistic")["value"]
    assert itt["n_allocated"] == 3 and itt["n_engaged"] == 2 and itt["n_zero_baseline"] == 1
    assert itt["pct_with_cost_fall"] == pytest.approx(100 / 3)
    # per-person %: P1 -650/750 = -86.667%, P2 +50%; P3 has none -> mean -18.333%
    assert itt["mean_pct_change_per_person"] == pytest.approx((-86.6667 + 50) / 2, abs=1e-3)
    # ratio of means: mean programme (100 + 150 + 25)/3 = 91.667 vs baseline (750+100+0)/3
    # = 283.333 -> -67.647%
    assert itt["ratio_of_means_pct_change"] == pytest.approx(-67.647, abs=1e-3)
    # mean monthly change (-650 + 50 + 25)/3 = -191.667; total = -650*3 + 50*2 + 25*2 = -1800
    assert itt["mean_monthly_change_gbp"] == pytest.approx(-191.6667, abs=1e-4)
    assert itt["total_change_gbp"] == pytest.approx(-1800.0)
    # simple: -191.667 x 7 person-months = -1341.67 (the two ways differ)
    assert itt["total_change_gbp_simple"] == pytest.approx(-1341.6667, abs=1e-4)
    assert itt["largest_individual_fall_gbp"] == pytest.approx(650.0)
    assert (itt["min_months"], itt["max_months"], itt["mean_months"]) == (
        2,
        3,
        pytest.approx(7 / 3),
    )
    # pooled rates: baseline A&E months P1 2 + P2 1 = 3 over 6 person-months
    assert itt["baseline_rate_ae_attendances"] == pytest.approx(0.5)
    pp = h[h.population == "per_protocol"].set_index("statistic")["value"]
    assert pp["n_people"] == 2 and pp["total_change_gbp"] == pytest.approx(-1850.0)
    assert set(h["price_year"]) == {"2018/19"} and set(h["unit_cost_version"]) == {"t.1"}


def test_disclosure_control_suppresses_1_to_7_and_rounds_the_rest_to_5():
    from sim_pipeline.publish.disclosure import control_count, control_counts

    assert [control_count(v) for v in (0, 1, 7, 8, 12, 13, 102, None)] == [
        "0",
        "*",
        "*",
        "10",
        "10",
        "15",
        "100",
        "",
    ]
    df = control_counts(pd.DataFrame({"month": ["2019-01"], "n": [3], "m": [23]}), ["n", "m"])
    assert df.iloc[0].tolist() == ["2019-01", "*", "25"]
    with pytest.raises(ValueError):
        control_count(-1)


def test_cost_trajectory_is_relative_to_allocation_and_hides_small_groups():
    from sim_pipeline.measures.headline import MIN_PEOPLE, trajectory

    n = MIN_PEOPLE + 1
    keys = [f"P{i}" for i in range(n)]
    cohort = pd.DataFrame(
        {
            "register_id": keys,
            "person_key": keys,
            "allocation_date": pd.to_datetime(["2018-03-15"] * (n - 1) + ["2018-04-02"]).date,
            "per_protocol": [True] * 3 + [False] * (n - 3),
        }
    )
    months = ["2018-02", "2018-03"]
    costs = pd.DataFrame(
        [(k, m, 100.0 if m == "2018-02" else 40.0) for k in keys for m in months],
        columns=["person_key", "month", "total_cost"],
    )
    t = trajectory(costs, cohort).set_index(["population", "relative_month"])
    # ITT: month -1 holds the n-1 people allocated in March (Feb costs 100) -> mean 100;
    # month 0: the same n-1 people in March (40); the April allocation contributes to -2 and -1
    assert t.loc[("itt", -1), "people"] == n  # n-1 at Feb (-1) + 1 at Mar (-1)
    assert t.loc[("itt", -1), "mean_cost"] == pytest.approx((100 * (n - 1) + 40) / n)
    assert t.loc[("itt", 0), "mean_cost"] == pytest.approx(40.0)
    # per-protocol has 3 people: fewer than MIN_PEOPLE, so no mean is shown
    assert t.xs("per_protocol")["mean_cost"].isna().all()


def test_events_need_only_the_columns_they_declare(june_run):
    """The events asset reads each staged table's declared columns (`read_columns`: the
    lineage's `METRIC_INPUTS` and each row's key and month), not every column: built from
    those alone, the session's events and their statistics are the same as from every column
    (a rule reading an undeclared column fails here)."""
    from sim_pipeline.measures.events import STAGED_INPUTS, build_events, read_columns

    snap = june_run["snap"]
    staged = {name: snap[name] for name in STAGED_INPUTS}
    months = sorted(snap["events"]["month"].unique())
    narrow = {name: frame[read_columns(name)] for name, frame in staged.items()}
    assert all(len(narrow[n].columns) < len(staged[n].columns) for n in STAGED_INPUTS)
    every, every_stats = build_events(staged, snap["person_index"], months)
    ours, our_stats = build_events(narrow, snap["person_index"], months)
    assert len(ours) > 1000 and set(ours["metric"]) == set(snap["events"]["metric"])
    pd.testing.assert_frame_equal(ours, every)
    assert our_stats == every_stats
