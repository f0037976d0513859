"""Coverage and timeliness of provider drops: the plain functions on small landings, each check
failing on a deliberately broken fixture and passing on good data, and the asset itself."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import dagster as dg
import pandas as pd
import pytest

from sim_pipeline.quality.coverage import (
    STATUSES,
    DueRule,
    VolumeRule,
    build_coverage,
    coverage_matrix,
    expected_drops,
    landing_drops,
    late_drops,
    missing_drops,
    provider_summary,
    record_versions,
    unexpected_files,
    unprocessed_resubmissions,
    volume_anomalies,
)
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.synthetic.arrival import arrival_time

MONTHS = [f"2019-{m:02d}" for m in range(1, 9)]
AS_OF = pd.Timestamp("2020-06-01", tz="UTC")  # every month above is past due
N_DROPS = sum(len(t.providers) for t in SOURCE_TABLES)


def _on_time(month: str) -> pd.Timestamp:
    """Day 10 of the month after, 09:00 UTC: well before the default deadline (day 20)."""
    p = pd.Period(month, "M") + 1
    return pd.Timestamp(p.year, p.month, 10, 9, tz="UTC")


def _write(path: Path, rows: int, when: pd.Timestamp, salt: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,value\n" + "".join(f"{i},{path.name}{salt}\n" for i in range(rows)))
    os.utime(path, ns=(when.value, when.value))


def make_landing(root: Path, months: list[str], rows: int = 100) -> Path:
    """Every expected drop of ``months``, ``rows`` data rows each, arrived on time."""
    for r in expected_drops(months).itertuples():
        _write(root / r.file, rows, _on_time(r.month))
    return root


def ledger_of(landing: Path, months: list[str]) -> pd.DataFrame:
    """What ingest would record for the landing files as they are now."""
    inv = landing_drops(landing, months)
    rows = [len((landing / f).read_text().splitlines()) - 1 for f in inv["file"]]  # header excluded
    return inv.rename(columns={"landing_sha256": "file_sha256"}).assign(
        rows_read=rows, rows_loaded=rows, rows_quarantined=0
    )


def coverage(landing: Path, ledger: pd.DataFrame, previous=None, months=MONTHS, **kw):
    drops = landing_drops(landing, months)
    versions, added = record_versions(previous, drops, ledger, "2020-06-01T00:00:00Z")
    cov = build_coverage(
        months,
        drops,
        ledger,
        versions,
        kw.pop("as_of", AS_OF),
        unexpected=unexpected_files(landing, months),
        **kw,
    )
    return cov, versions, added


@pytest.fixture
def good(tmp_path):
    landing = make_landing(tmp_path / "landing", MONTHS)
    return landing, ledger_of(landing, MONTHS)


# ----------------------------------------------------------------------------- rules


def test_due_rule_is_day_20_of_the_month_after_in_london_time():
    rule = DueRule()
    assert rule.due_at("2019-01") == pd.Timestamp("2019-02-20T00:00Z")  # GMT
    assert rule.due_at("2019-06") == pd.Timestamp("2019-07-19T23:00Z")  # BST
    assert rule.due_at("2019-12") == pd.Timestamp("2020-01-20T00:00Z")
    assert DueRule(day=5, months_after=2).due_at("2019-12") == pd.Timestamp("2020-02-05T00:00Z")
    assert "day 20 of the month after" in rule.describe()
    with pytest.raises(ValueError):
        DueRule(day=31)


def test_synthetic_arrivals_are_on_time_and_deterministic():
    rule = DueRule()
    for month in ("2016-01", "2018-03", "2021-05"):
        for source in ("slam", "ae_rjz", "met_police"):
            t = arrival_time(20180101, source, month, "ecds")
            assert t == arrival_time(20180101, source, month, "ecds")
            month_end = (pd.Period(month, "M") + 1).start_time.tz_localize("Europe/London")
            assert month_end + pd.Timedelta(days=2) < t < rule.due_at(month)
    assert arrival_time(1, "slam", "2019-01", "x") != arrival_time(2, "slam", "2019-01", "x")


# ----------------------------------------------------------------------------- good data


def test_good_data_passes_every_check(good):
    landing, ledger = good
    cov, versions, added = coverage(landing, ledger)
    assert len(cov) == N_DROPS * len(MONTHS) and added == len(versions) == len(cov)
    assert set(cov["status"]) == {"received"} and set(cov["status"]) <= set(STATUSES)
    assert cov["expected"].all() and cov["received"].all()
    assert not cov["late"].any() and (cov["days_late"] == 0).all()
    assert (cov["versions"] == 1).all() and not cov["resubmitted"].any()
    assert cov["current_version_ingested"].all()
    assert (cov["rows_read"] == 100).all()
    # the first three months of each provider table have too little history to judge
    judged = cov[cov["month"] >= "2019-04"]
    assert judged["volume_ratio"].eq(1.0).all()
    assert cov.loc[cov["month"] < "2019-04", "volume_ratio"].isna().all()
    for finding in (missing_drops, late_drops, volume_anomalies, unprocessed_resubmissions):
        assert finding(cov).empty, finding.__name__


# ----------------------------------------------------------------------------- drops_complete


def test_a_missing_drop_fails_drops_complete(good):
    landing, ledger = good
    gone = "ae_rj7/2019-03/ecds.csv"
    (landing / gone).unlink()
    cov, _, _ = coverage(landing, ledger[ledger["file"] != gone])
    assert missing_drops(cov)["file"].tolist() == [gone]
    row = cov.set_index("file").loc[gone]
    assert row["status"] == "missing" and not row["received"] and pd.isna(row["arrived_at"])


def test_a_drop_ingested_but_no_longer_in_landing_counts_as_received(good):
    landing, ledger = good
    (landing / "las/2019-02/ambulance_incidents.csv").unlink()  # landing purged, ledger keeps it
    cov, _, _ = coverage(landing, ledger)
    row = cov.set_index("file").loc["las/2019-02/ambulance_incidents.csv"]
    assert row["received"] and row["status"] == "received" and row["current_version_ingested"]
    assert missing_drops(cov).empty


def test_nothing_received_at_all(tmp_path):
    empty = pd.DataFrame()
    cov = build_coverage(MONTHS, landing_drops(tmp_path, MONTHS), empty, None, AS_OF)
    assert set(cov["status"]) == {"missing"} and len(missing_drops(cov)) == len(cov)
    assert cov["rows_read"].isna().all() and cov["late"].isna().all()
    versions, added = record_versions(empty, landing_drops(tmp_path, MONTHS), empty, "t")
    assert versions.empty and added == 0


def test_months_after_the_last_data_and_before_their_deadline(tmp_path):
    months = [*MONTHS, "2019-09", "2019-10"]
    landing = make_landing(tmp_path / "landing", MONTHS)  # nothing yet for 2019-09 and -10
    ledger = ledger_of(landing, MONTHS)
    # on 2019-10-25: 2019-09 was due on 2019-10-20 (missing), 2019-10 is not yet due
    cov, _, _ = coverage(landing, ledger, months=months, as_of=pd.Timestamp("2019-10-25"))
    status = cov.groupby("month")["status"].unique().map(list).to_dict()
    assert status["2019-09"] == ["missing"] and status["2019-10"] == ["not_yet_due"]
    # missing beyond the last month with any data is reported, not failed
    assert missing_drops(cov).empty
    # one provider sends 2019-09: now every other drop of that month is missing and fails
    _write(landing / "slam/2019-09/MHS001MPI.csv", 100, pd.Timestamp("2019-10-10", tz="UTC"))
    cov, _, _ = coverage(landing, ledger, months=months, as_of=pd.Timestamp("2019-10-25"))
    assert len(missing_drops(cov)) == N_DROPS - 1


# ----------------------------------------------------------------------------- drops_on_time


def test_a_late_drop_fails_drops_on_time(good):
    landing, ledger = good
    late = landing / "met_police/2019-05/cad_incidents.csv"
    when = pd.Timestamp("2019-06-23T12:00Z")  # due 2019-06-19T23:00Z (midnight BST)
    os.utime(late, ns=(when.value, when.value))
    cov, _, _ = coverage(landing, ledger)
    found = late_drops(cov)
    assert found["file"].tolist() == ["met_police/2019-05/cad_incidents.csv"]
    row = found.iloc[0]
    assert row["late"] and row["arrived_at"] == "2019-06-23T12:00:00Z"
    assert row["due_at"] == "2019-06-19T23:00:00Z" and row["days_late"] == 3.54
    assert missing_drops(cov).empty  # late is not missing
    # a later deadline makes it on time: the rule is configurable
    cov, _, _ = coverage(landing, ledger, due=DueRule(day=25))
    assert late_drops(cov).empty


# ----------------------------------------------------------------------------- resubmissions


def test_a_resubmitted_file_is_recorded_once_and_warns_until_ingested(good):
    landing, ledger = good
    cov, versions, added = coverage(landing, ledger)
    # the same look again, and a touched file with the same bytes: nothing new
    path = landing / "swlstg/2019-04/MHS502WardStay.csv"
    later = pd.Timestamp("2019-07-01", tz="UTC")
    os.utime(path, ns=(later.value, later.value))
    again, versions2, added2 = coverage(landing, ledger, previous=versions)
    assert added2 == 0
    pd.testing.assert_frame_equal(versions2, versions)
    pd.testing.assert_frame_equal(again, cov)
    # changed bytes, delivered late: a second version
    _write(path, 100, later, salt="-corrected")
    cov, versions3, added3 = coverage(landing, ledger, previous=versions2)
    assert added3 == 1 and len(versions3) == len(versions) + 1
    row = cov.set_index("file").loc["swlstg/2019-04/MHS502WardStay.csv"]
    assert row["versions"] == 2 and row["resubmitted"] and not row["current_version_ingested"]
    # the first version arrived on time: a correction does not make the drop late
    assert row["status"] == "received" and not row["late"]
    assert unprocessed_resubmissions(cov)["file"].tolist() == ["swlstg/2019-04/MHS502WardStay.csv"]
    v = versions3[versions3["file"] == "swlstg/2019-04/MHS502WardStay.csv"]
    assert v["modified_at"].tolist() == ["2019-05-10T09:00:00Z", "2019-07-01T00:00:00Z"]
    assert v["rows"].tolist() == [100, pd.NA]
    # once ingested: still resubmitted, no longer unprocessed, and the version's rows are known
    cov, versions4, added4 = coverage(landing, ledger_of(landing, MONTHS), previous=versions3)
    assert added4 == 0 and unprocessed_resubmissions(cov).empty
    assert cov.set_index("file").loc["swlstg/2019-04/MHS502WardStay.csv", "resubmitted"]
    v = versions4[versions4["file"] == "swlstg/2019-04/MHS502WardStay.csv"]
    assert v["rows"].tolist() == [100, 100]
    assert (versions4["first_seen_at"] == "2020-06-01T00:00:00Z").all()


def test_a_version_known_only_from_the_ledger_is_recorded(good):
    landing, ledger = good
    _, versions, _ = coverage(landing, ledger)
    # the file was replaced before drop_coverage ever saw the version that was ingested
    led = ledger.copy()
    led.loc[led["file"] == "oxleas/2019-02/MHS001MPI.csv", "file_sha256"] = "0" * 64
    cov, versions, _ = coverage(landing, led, previous=None)
    row = cov.set_index("file").loc["oxleas/2019-02/MHS001MPI.csv"]
    assert row["versions"] == 2 and row["resubmitted"]
    assert unprocessed_resubmissions(cov)["file"].tolist() == ["oxleas/2019-02/MHS001MPI.csv"]
    old = versions[versions["file_sha256"] == "0" * 64].iloc[0]
    assert pd.isna(old["modified_at"]) and old["rows"] == 100


# ----------------------------------------------------------------------------- volume


def test_a_low_volume_drop_fails_no_volume_anomalies(good):
    landing, ledger = good
    led = ledger.copy()
    low = led["file"] == "ae_rax/2019-06/ecds.csv"
    high = led["file"] == "las/2019-07/ambulance_incidents.csv"
    led.loc[low, "rows_read"] = 45
    led.loc[high, "rows_read"] = 250
    cov, _, _ = coverage(landing, led)
    found = volume_anomalies(cov).set_index("file")
    assert found["volume_anomaly"].to_dict() == {
        "ae_rax/2019-06/ecds.csv": "low",
        "las/2019-07/ambulance_incidents.csv": "high",
    }
    assert found.loc["ae_rax/2019-06/ecds.csv", "volume_ratio"] == 0.45
    # the anomaly is not part of the next month's baseline median
    nxt = cov.set_index("file").loc["ae_rax/2019-07/ecds.csv"]
    assert nxt["trailing_median_rows"] == 100 and pd.isna(nxt["volume_anomaly"])


def test_volume_needs_history_and_enough_rows():
    months = [f"2019-{m:02d}" for m in range(1, 9)]
    drops = expected_drops(months)
    rows = {m: r for m, r in zip(months, [0, 0, 1, 3, 4, 9, 30, 5], strict=True)}
    ledger = drops.assign(file_sha256="x", rows_read=drops["month"].map(rows))
    cov = build_coverage(months, pd.DataFrame(), ledger, None, AS_OF)
    # tiny files (a programme register's first months) are never judged
    assert volume_anomalies(cov).empty
    loose = VolumeRule(min_median_rows=0)
    cov = build_coverage(months, pd.DataFrame(), ledger, None, AS_OF, volume=loose)
    assert set(volume_anomalies(cov)["month"]) == {"2019-05", "2019-06", "2019-07"}
    # with fewer than min_history prior months nothing is judged
    short = build_coverage(months[:3], pd.DataFrame(), ledger, None, AS_OF, volume=loose)
    assert short["trailing_median_rows"].isna().all()


# ----------------------------------------------------------------------------- views


def test_unexpected_files_matrix_and_summary(good):
    landing, ledger = good
    (landing / "slam/2019-03/MHS999Unknown.csv").write_text("a\n1\n")
    (landing / "ae_rj1/2019-06/ecds.csv").unlink()
    cov, _, _ = coverage(landing, ledger[ledger["file"] != "ae_rj1/2019-06/ecds.csv"])
    extra = cov[~cov["expected"]]
    assert extra["file"].tolist() == ["slam/2019-03/MHS999Unknown.csv"]
    assert extra["status"].tolist() == ["unexpected"]
    assert extra["arrived_at"].notna().all() and extra["late"].isna().all()
    assert missing_drops(cov)["file"].tolist() == ["ae_rj1/2019-06/ecds.csv"]  # not the extra
    matrix = coverage_matrix(cov, last_n=4).set_index("drop")
    assert list(matrix.columns) == MONTHS[-4:] and len(matrix) == N_DROPS
    assert matrix.loc["ae_rj1/ecds", "2019-06"] == "missing"
    assert matrix.loc["slam/MHS001MPI", "2019-08"] == "✓"
    summary = provider_summary(cov).set_index(["source", "table_name"])
    assert summary.loc[("ae_rj1", "ecds"), "missing"] == 1
    assert summary.loc[("slam", "MHS001MPI"), "received"] == len(MONTHS)
    assert summary["median_days_before_due"].gt(9).all()


# ----------------------------------------------------------------------------- the asset


def _full_landing_and_ledger(root: Path) -> tuple[Path, str]:
    """Every drop of the demo's 65 months (tiny files) and a warehouse with their ledger."""
    from sim_pipeline.defs.common import study_months
    from sim_pipeline.warehouse import Warehouse
    from sim_pipeline.warehouse.dictionary import sql_types

    months = study_months()
    landing = make_landing(root / "landing", months, rows=40)
    url = f"sqlite:///{root / 'warehouse.db'}"
    wh = Warehouse(url)
    led = ledger_of(landing, months).drop(
        columns=["landing_sha256", "modified_at"], errors="ignore"
    )
    led = led.assign(key_id="k", demo_key=True)
    with wh.transaction() as tx:
        tx.replace_all("ingest_ledger", led, dtype=sql_types("ingest_ledger"))
    wh.dispose()
    return landing, url


def _materialise(landing: Path, url: str, success: bool) -> dict[str, dg.AssetCheckEvaluation]:
    from sim_pipeline.defs.coverage import drop_coverage
    from sim_pipeline.defs.resources import LandingResource, WarehouseResource

    # storage paths come from the environment only (no resource config can redirect them)
    with mock.patch.dict(os.environ, {"SIM_LANDING_DIR": str(landing), "SIM_WAREHOUSE_URL": url}):
        result = dg.materialize(
            [drop_coverage],
            resources={"landing": LandingResource(), "warehouse": WarehouseResource()},
            raise_on_error=False,
        )
    # a failed blocking (ERROR) check fails the step after the tables are written
    assert result.success is success
    assert result.get_asset_materialization_events()
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _tables(url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(url)
    try:
        return wh.read("drop_coverage"), wh.read("landing_file_versions")
    finally:
        wh.dispose()


def _set_ledger(url: str, change) -> None:  # change: (ledger frame) -> ledger frame
    from sim_pipeline.warehouse import Warehouse
    from sim_pipeline.warehouse.dictionary import sql_types

    wh = Warehouse(url)
    try:
        led = change(wh.read("ingest_ledger"))
        with wh.transaction() as tx:
            tx.replace_all("ingest_ledger", led, dtype=sql_types("ingest_ledger"))
    finally:
        wh.dispose()


def test_the_asset_on_good_data_passes_and_repeats_identically(tmp_path):
    landing, url = _full_landing_and_ledger(tmp_path)
    checks = _materialise(landing, url, success=True)
    assert {n: c.passed for n, c in checks.items()} == {
        "drops_complete": True,
        "drops_on_time": True,
        "no_volume_anomalies": True,
        "no_unprocessed_resubmission": True,
    }
    cov, versions = _tables(url)
    assert len(cov) == len(versions) == N_DROPS * 65
    assert set(cov["status"]) == {"received"}
    from sim_pipeline.warehouse.dictionary import table_doc

    for name, df in (("drop_coverage", cov), ("landing_file_versions", versions)):
        assert list(df.columns) == [c.name for c in table_doc(name).columns], name
    _materialise(landing, url, success=True)
    cov2, versions2 = _tables(url)
    pd.testing.assert_frame_equal(cov2, cov)
    pd.testing.assert_frame_equal(versions2, versions)  # nothing new: first_seen_at kept


def test_the_asset_fails_its_checks_on_broken_drops(tmp_path):
    landing, url = _full_landing_and_ledger(tmp_path)
    missing, late = "ae_rj2/2020-02/ecds.csv", "las/2020-03/ambulance_incidents.csv"
    resubmitted, truncated = (
        "slam/2020-01/MHS201CareContact.csv",
        "oxleas/2020-04/MHS401MHActPeriod.csv",
    )
    (landing / missing).unlink()
    when = pd.Timestamp("2020-05-02", tz="UTC")  # due 2020-04-19T23:00Z
    os.utime(landing / late, ns=(when.value, when.value))
    _write(landing / resubmitted, 40, when, salt="v2")  # changed bytes after ingest

    def _break(led: pd.DataFrame) -> pd.DataFrame:
        led = led[led["file"] != missing].copy()
        led.loc[led["file"] == truncated, "rows_read"] = 5
        return led

    _set_ledger(url, _break)
    checks = _materialise(landing, url, success=False)
    assert {n: c.passed for n, c in checks.items()} == dict.fromkeys(checks, False)
    assert len(checks) == 4
    assert checks["drops_complete"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["drops_on_time"].severity == dg.AssetCheckSeverity.WARN
    meta = {n: c.metadata for n, c in checks.items()}
    assert meta["drops_complete"]["missing_drops"].value == 1

    def files(value: dg.TableMetadataValue) -> set[str]:  # a typed table's `file` column
        return {r.data["file"] for r in value.records}

    assert missing in files(meta["drops_complete"]["missing"].value)
    assert late in files(meta["drops_on_time"]["late"].value)
    assert truncated in files(meta["no_volume_anomalies"]["drops"].value)
    assert resubmitted in files(meta["no_unprocessed_resubmission"]["files"].value)
    cov, versions = _tables(url)
    by_file = cov.set_index("file")
    assert by_file.loc[missing, "status"] == "missing"
    assert by_file.loc[late, "status"] == "late" and by_file.loc[late, "days_late"] > 12
    assert by_file.loc[truncated, "volume_anomaly"] == "low"
    assert by_file.loc[resubmitted, "versions"] == 2
    assert len(versions) == N_DROPS * 65  # one drop gone, one with two versions

    # the provider re-sends the missing drop and the resubmission is ingested
    _write(landing / missing, 40, when)
    _set_ledger(
        url,
        lambda led: (
            ledger_of(landing, sorted(set(led["month"])))
            .assign(key_id="k", demo_key=True)
            .drop(columns=["modified_at"])
        ),
    )
    checks = _materialise(landing, url, success=True)
    assert {n: c.passed for n, c in checks.items()} == {
        "drops_complete": True,
        "drops_on_time": False,  # the re-sent drop and the touched one arrived late
        "no_volume_anomalies": True,
        "no_unprocessed_resubmission": True,
    }
    cov2, versions2 = _tables(url)
    assert cov2.set_index("file").loc[resubmitted, "resubmitted"]
    before = versions.set_index(["file", "file_sha256"])["first_seen_at"]
    after = versions2.set_index(["file", "file_sha256"])["first_seen_at"]
    assert after.loc[before.index].equals(before)  # versions seen before keep first_seen_at
    assert len(versions2) == len(versions) + 1
