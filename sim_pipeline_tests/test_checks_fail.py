"""Every asset check of the downstream assets fails on a deliberately broken input and says why,
and passes on good data (issue 5, item 5).

One real run of the CLI (`sim-pipeline run`, small synthetic set, months 2016-01..2019-06)
builds a good project. Each test copies its SQLite warehouse (and the quality and published
folders) into ``tmp_path``, breaks the asset's input the way real data or a real mistake would
(plain SQL on the copy, a bad reference file, a resource setting), materialises the one asset
in process as Dagster does (`dagster.materialize` on an ephemeral instance) and asserts that the
check's evaluation failed, with the severity its spec implies (warn-only checks: WARN), and a
description or metadata that says why. For checks run before writing, it also asserts that the
asset's table was left exactly as it was and that the audit trail records the stage as
``not_written``. Where only an internal inconsistency can reach a check (real inputs cannot),
the domain function the asset calls is monkeypatched, and the test's docstring says so.

`test_every_check_is_broken_by_some_test` holds the map from every check in `Definitions` to the
test that breaks it (here, or in another module for the staged tables and `drop_coverage`).
"""

from __future__ import annotations

import importlib
import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sim_pipeline.config import REFERENCE_DIR
from sim_pipeline.defs import cohort as cohort_defs
from sim_pipeline.defs import costs as costs_defs
from sim_pipeline.defs import evaluation as evaluation_defs
from sim_pipeline.defs import events as events_defs
from sim_pipeline.defs import headline as headline_defs
from sim_pipeline.defs import ingest as ingest_defs
from sim_pipeline.defs import linkage as linkage_defs
from sim_pipeline.defs import linkage_quality as linkage_quality_defs
from sim_pipeline.defs import metrics as metrics_defs
from sim_pipeline.defs import report as report_defs
from sim_pipeline.defs.quality import ingest_summary
from sim_pipeline.defs.resources import (
    MetricsResource,
    StudyDesignResource,
    build_resources,
)
from sim_pipeline.evaluation.comparison import EvaluationSettings
from sim_pipeline.publish.disclosure import control_count
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.warehouse import Warehouse
from sim_pipeline.warehouse.dictionary import sql_types, table_doc
from sim_pipeline_tests.conftest import (
    JUNE_2019,
    OTHER_KEY,
    PROJECT_KEY,
    command_events,
    copy_sqlite,
    link_landing,
)

LAST_MONTH = JUNE_2019  # allocations start in 2018-01: a cohort, costs and an evaluation
MONTH = "2019-03"  # the partition the monthly assets are materialised for
PARTITION = f"{MONTH}-01"
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
EVALUATION_TABLES = (
    "evaluation_estimates",
    "evaluation_balance",
    "evaluation_trajectory",
    "evaluation_matches",
)
# Warn-only diagnostics of the evaluation that warn on the small synthetic set (120
# never-allocated high-intensity users are too few to match and balance every member; the
# README says comparison_balanced warns on the full demo too). They pass when every member has
# an alike comparison: test_evaluation_diagnostics_pass_when_every_member_has_an_alike_comparison.
SMALL_POOL_WARNINGS = {
    "evaluation_estimates:members_matched",
    "evaluation_balance:comparison_balanced",
}


# ----------------------------------------------------------------------------- the good project


@pytest.fixture(scope="session")
def good(june_project) -> Path:
    """The session's project materialised by the real CLI on the synthetic drops up to
    `LAST_MONTH` (conftest `june_project`), in the layout the CLI uses: ``landing/``,
    ``warehouse.db``, ``quality/``, ``published/``, ``dagster_home/``. Read only."""
    return june_project["root"]


class Project:
    """A copy of the good project under ``root`` (the landing folder by reference until a test
    needs to change it), with the environment pointed at it."""

    def __init__(self, good: Path, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root, self.monkeypatch = root, monkeypatch
        copy_sqlite(good / "warehouse.db", root / "warehouse.db")
        for folder in ("quality", "published"):
            shutil.copytree(good / folder, root / folder)
        self.good_landing = good / "landing"
        self.url = f"sqlite:///{root / 'warehouse.db'}"
        monkeypatch.delenv("SIM_PSEUDONYMISATION_KEY", raising=False)
        for name, value in {
            "SIM_DEMO_MODE": "1",
            "SIM_PROJECT_DIR": str(root),
            "SIM_WAREHOUSE_URL": self.url,
            "SIM_LANDING_DIR": str(self.good_landing),
            "SIM_QUALITY_DIR": str(root / "quality"),
            "SIM_REPORTS_DIR": str(root / "reports"),
            "SIM_PUBLISHED_DIR": str(root / "published"),
        }.items():
            monkeypatch.setenv(name, value)

    def own_landing(self) -> Path:
        """A landing folder of this project's own (hard links: change a file by replacing it)."""
        landing = link_landing(self.good_landing, self.root / "landing")
        self.monkeypatch.setenv("SIM_LANDING_DIR", str(landing))
        return landing

    def sql(self, statement: str, params: tuple = ()) -> int:
        con = sqlite3.connect(self.root / "warehouse.db")
        try:
            changed = con.execute(statement, params).rowcount
            con.commit()
        finally:
            con.close()
        return changed

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        con = sqlite3.connect(self.root / "warehouse.db")
        try:
            return con.execute(statement, params).fetchall()
        finally:
            con.close()

    def copy_rows(self, table: str, where: str, params: tuple = (), **replace: str) -> int:
        """Insert copies of ``table``'s rows matching ``where`` with some columns replaced by
        SQL expressions over the original row."""
        cols = [r[1] for r in self.query(f'PRAGMA table_info("{table}")')]
        names = ", ".join(f'"{c}"' for c in cols)
        values = ", ".join(replace.get(c, f'"{c}"') for c in cols)
        return self.sql(
            f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "{table}" WHERE {where}',
            params,
        )

    def read(self, table: str, where: dict | None = None) -> pd.DataFrame:
        wh = Warehouse(self.url)
        try:
            return wh.read(table, where)
        finally:
            wh.dispose()

    def write(self, table: str, df: pd.DataFrame) -> None:
        wh = Warehouse(self.url)
        try:
            with wh.transaction() as tx:
                tx.replace_all(table, df, dtype=sql_types(table))
        finally:
            wh.dispose()

    def materialise(
        self,
        asset,
        partition: str | None = None,
        *,
        metrics: dict | None = None,
        evaluation: dict | None = None,
        instance: dg.DagsterInstance | None = None,
    ) -> dg.ExecuteInProcessResult:
        """The asset alone, in process, with the resources `build_resources` gives for this
        project's environment; outputs (reports, release) stay under ``root`` (the project's
        SIM_REPORTS_DIR and SIM_PUBLISHED_DIR)."""
        resources = build_resources()
        resources["metrics"] = MetricsResource(
            **{
                "unit_costs_path": str(REFERENCE_DIR / "unit_costs.csv"),
                "price_index_path": str(REFERENCE_DIR / "price_index.csv"),
                **(metrics or {}),
            }
        )
        # a short bootstrap and no sensitivity analyses: the checks do not depend on them
        resources["study"] = StudyDesignResource(
            **{"bootstrap": 50, "sensitivity": False, **(evaluation or {})}
        )
        return dg.materialize(
            [asset],
            resources=resources,
            partition_key=partition,
            instance=instance or dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )


@pytest.fixture
def project(good, tmp_path, monkeypatch) -> Project:
    return Project(good, tmp_path, monkeypatch)


# ----------------------------------------------------------------------------- assertions


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    out: dict[str, dg.AssetCheckEvaluation] = {}
    for e in result.get_asset_check_evaluations():
        key = f"{e.asset_key.to_user_string()}:{e.check_name}"
        assert key not in out, f"{key} evaluated twice"
        out[key] = e
    return out


def _why(e: dg.AssetCheckEvaluation) -> str:
    lines = [e.description or ""] + [f"{k}: {v.value}" for k, v in e.metadata.items()]
    return "\n".join(str(line) for line in lines)


def assert_fails(
    result: dg.ExecuteInProcessResult, key: str, *reasons: str, severity=ERROR
) -> dg.AssetCheckEvaluation:
    """The check ``key`` ("asset:check") failed with ``severity``, its description or metadata
    contains every one of ``reasons``, and every other check evaluated in the run passed (the
    break is specific). A failing ERROR check fails the run; a WARN check does not."""
    evaluations = _evaluations(result)
    assert key in evaluations, f"{key} not evaluated; got {sorted(evaluations)}"
    e = evaluations[key]
    text = _why(e)
    assert not e.passed, f"{key} passed:\n{text}"
    assert e.severity == severity, (key, e.severity)
    for reason in reasons:
        assert reason in text, f"{key}: {reason!r} not in\n{text}"
    others = {k: _why(o) for k, o in evaluations.items() if k != key and not o.passed}
    assert not others, others
    assert result.success is (severity == WARN), key
    return e


Snapshot = list[tuple[str, dict | None, pd.DataFrame]]


def snapshot(project: Project, *tables: str, where: dict | None = None) -> Snapshot:
    """The tables (their rows matching ``where``) as they are before the run."""
    out = []
    for table in tables:
        df = project.read(table, where)
        assert len(df), f"{table} is empty in the good project"
        out.append((table, where, df))
    return out


def assert_nothing_written(
    project: Project, result: dg.ExecuteInProcessResult, stage: str, before: Snapshot
) -> None:
    """A check run before writing: the asset was not materialised, its tables are exactly as
    they were, and the audit trail records the stage as not written."""
    assert not result.get_asset_materialization_events()
    for table, where, df in before:
        pd.testing.assert_frame_equal(project.read(table, where), df, obj=table)
    audit = project.read("audit_trail", {"run_id": [result.run_id]})
    assert audit[["stage", "status"]].values.tolist() == [[stage, "not_written"]]


# ----------------------------------------------------------------------------- staged tables

ECDS_ASSET = next(a for a in ingest_defs.STAGED_ASSETS if a.key.to_user_string() == "staged_ecds")


def _patch_staging(project: Project, change) -> None:
    """Make the staged asset see ``change``(StagedRun) applied to what staging returns: an
    internal fault between reading the files and writing (real files cannot produce it)."""
    real = ingest_defs.stage_run

    def faulty(*args, **kwargs):
        run = real(*args, **kwargs)
        change(run)
        return run

    project.monkeypatch.setattr(ingest_defs, "stage_run", faulty)


def _failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {k: e for k, e in _evaluations(result).items() if not e.passed}


def test_staged_ledger_balances_and_gx_drops_fail_when_a_file_is_miscounted(project):
    """A file's ledger row counts one row more loaded than it has (a staging fault, monkeypatched):
    the rows are written (nothing in them is wrong) but the accounting does not add up, so the
    ledger check and the drops suite fail (ERROR). They do not stop the step, so the summaries
    still run; ingest_summary:ingest_accepted then holds downstream back (test_damaged_extracts
    runs that gate on a missing and rejected drops)."""

    def miscount(month) -> None:
        month.ledger.loc[0, "rows_loaded"] += 1

    _patch_staging(project, miscount)
    instance = dg.DagsterInstance.ephemeral()
    result = project.materialise(ECDS_ASSET, PARTITION, instance=instance)
    failed = _failed_checks(result)
    assert set(failed) == {"staged_ecds:ledger_balances", "staged_ecds:gx_drops"}, failed
    assert "1 unbalanced file" in _why(failed["staged_ecds:ledger_balances"])
    assert "rows_read, rows_accounted" in _why(failed["staged_ecds:gx_drops"])
    assert all(e.severity == ERROR for e in failed.values())
    assert result.success and result.get_asset_materialization_events()
    from sim_pipeline.defs.quality import failing_ingest_checks

    gate = failing_ingest_checks(instance)  # what ingest_summary:ingest_accepted reads
    assert set(gate["asset"] + ":" + gate["check"]) == set(failed)


def test_staged_gx_table_fails_and_writes_nothing_when_a_row_goes_missing(project):
    """A staged row disappears between reading and writing (monkeypatched): the Great
    Expectations table suite's row count (ledger rows read minus quarantined) catches it before
    the write."""
    where = {"month": [MONTH]}
    before = snapshot(project, "staged_ecds", "ingest_ledger", where=where)

    def lose_a_row(month) -> None:
        month.staged = month.staged.iloc[:-1]

    _patch_staging(project, lose_a_row)
    result = project.materialise(ECDS_ASSET, PARTITION)
    failed = _failed_checks(result)
    assert set(failed) == {"staged_ecds:gx_table"}, failed
    assert "row_count" in _why(failed["staged_ecds:gx_table"])
    assert_nothing_written(project, result, "staged_ecds", before)


def test_staged_duplicate_keys_fails_and_writes_nothing_on_a_repeated_record(project):
    """A record reaches the staged output twice (monkeypatched: the reader quarantines repeats
    inside a file, so real files cannot do it): duplicate_keys and the table suite's
    uniqueness and row count fail before the write."""
    where = {"month": [MONTH]}
    before = snapshot(project, "staged_ecds", "ingest_ledger", where=where)

    def repeat_a_row(month) -> None:
        month.staged = pd.concat([month.staged, month.staged.iloc[[0]]], ignore_index=True)

    _patch_staging(project, repeat_a_row)
    result = project.materialise(ECDS_ASSET, PARTITION)
    failed = _failed_checks(result)
    assert set(failed) == {"staged_ecds:duplicate_keys", "staged_ecds:gx_table"}, failed
    assert "1 (source, month, record_ref) key(s) repeated" in _why(
        failed["staged_ecds:duplicate_keys"]
    )
    assert "source, month, record_ref" in _why(failed["staged_ecds:gx_table"])
    assert_nothing_written(project, result, "staged_ecds", before)


def test_staged_drops_consistent_fails_and_writes_nothing_on_a_drop_under_another_key(project):
    """A provider tokenised its drop (`sim-pipeline tokenise`) under another key than the
    pipeline's: its tokens would link to nobody. provider_drops_consistent fails before the
    write, naming the file and both fingerprints; nothing of the run is written."""
    from sim_pipeline.identity import Tokeniser
    from sim_pipeline.identity.keys import parse_key
    from sim_pipeline.ingest.tokenised import tokenise_landing

    landing = project.own_landing()
    project.monkeypatch.setenv("SIM_PSEUDONYMISATION_KEY", PROJECT_KEY)
    secret, other = parse_key(OTHER_KEY)
    label = f"ae_rjz/{MONTH}/ecds.csv"
    # (the link to the shared drop is moved aside and a new file written in its place: the
    # shared file is untouched)
    tokenise_landing(landing, ["ae_rjz"], Tokeniser(secret, fingerprint=other), [MONTH])
    where = {"month": [MONTH]}
    before = snapshot(project, "staged_ecds", "ingest_ledger", where=where)
    result = project.materialise(ECDS_ASSET, PARTITION)
    e = assert_fails(
        result,
        "staged_ecds:provider_drops_consistent",
        f"{label}: tokenised under key {other}, the pipeline's is {parse_key(PROJECT_KEY)[1]}",
    )
    assert e.metadata["drops_by_form"].value == {"raw": 4, "tokenised": 1}
    assert_nothing_written(project, result, "staged_ecds", before)


# ----------------------------------------------------------------------------- ingest_summary


def test_every_landing_file_accounted_warns_on_a_resubmission_not_yet_ingested(project):
    """A provider re-sends a drop (one row more) after it was ingested: the landing file no
    longer matches its ledger row until the month is run again."""
    landing = project.own_landing()
    label = "ae_rjz/2019-02/ecds.csv"
    data = (landing / label).read_bytes()
    (landing / label).unlink()  # a hard link to the good project's file: replace, not edit
    (landing / label).write_bytes(data + data.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n")
    result = project.materialise(ingest_summary)
    e = assert_fails(
        result,
        "ingest_summary:every_landing_file_accounted",
        label,
        "changed_since_ingest",
        severity=WARN,
    )
    assert e.metadata["files_by_status"].value["changed_since_ingest"] == 1


def test_single_pseudonymisation_key_fails_when_months_mix_key_fingerprints(project):
    """A key rotation half done: the last three months were re-ingested under the new key,
    the earlier ones still carry the old fingerprint."""
    old = project.query("SELECT DISTINCT key_id FROM ingest_ledger")
    assert len(old) == 1
    assert project.sql(
        "UPDATE ingest_ledger SET key_id = 'a1b2c3d4e5f6', demo_key = 0 WHERE month >= '2019-04'"
    )
    result = project.materialise(ingest_summary)
    e = assert_fails(result, "ingest_summary:single_pseudonymisation_key", "a1b2c3d4e5f6")
    assert set(e.metadata["key_fingerprints"].value) == {old[0][0], "a1b2c3d4e5f6"}


def test_ledger_balances_fails_on_a_ledger_row_that_does_not_add_up(project):
    """A ledger row whose rows read are neither loaded nor quarantined (two rows lost between
    reading and writing, as a loader bug would lose them)."""
    label = "las/2019-02/ambulance_incidents.csv"
    assert project.sql(
        "UPDATE ingest_ledger SET rows_read = rows_read + 2 WHERE file = ?", (label,)
    )
    result = project.materialise(ingest_summary)
    e = assert_fails(result, "ingest_summary:ledger_balances", "unbalanced_rows: 1")
    assert e.metadata["unbalanced_rows"].value == 1


# ----------------------------------------------------------------------------- person_index


def test_every_record_indexed_once_fails_and_writes_nothing_when_a_record_is_lost(
    project, monkeypatch
):
    """Internal inconsistency: the index is built from the linkage rows themselves, so real
    inputs cannot lose a record. `assign_person_keys` (as `person_index` imports it) is
    patched to drop one record, as a bug in key reconciliation would."""
    real = linkage_defs.assign_person_keys

    def loses_a_record(*args, **kwargs):
        index, changes = real(*args, **kwargs)
        return index.iloc[1:].reset_index(drop=True), changes

    monkeypatch.setattr(linkage_defs, "assign_person_keys", loses_a_record)
    before = snapshot(project, "person_index")
    result = project.materialise(linkage_defs.person_index)
    assert_fails(
        result,
        "person_index:every_record_indexed_once",
        "1 staged records missing",
        "nothing written",
    )
    assert_nothing_written(project, result, "person_index", before)


def test_no_retired_key_reissued_fails_when_a_retired_key_comes_back(project):
    """person_index restored from a backup taken before a merge retired one of its keys,
    while person_key_changes kept the merge: re-linking hands the retired key back out."""
    retired = project.query(
        "SELECT person_key FROM cohort ORDER BY register_id LIMIT 1"  # a key in use
    )[0][0]
    history = pd.DataFrame(
        {
            "change": ["merge"],
            "from_person_key": [retired],
            "to_person_key": ["P00000001"],
            "records_moved": [3],
            "recorded_at": ["2019-06-21T06:00:00+00:00"],
            "run_id": ["an-earlier-run"],
        }
    )[[c.name for c in table_doc("person_key_changes").columns]]
    project.write("person_key_changes", history)
    before = snapshot(project, "person_index", "linkage_parameters", "person_key_changes")
    result = project.materialise(linkage_defs.person_index)
    e = assert_fails(result, "person_index:no_retired_key_reissued", "reissued: 1")
    assert e.metadata["retired_keys"].value == 1
    # checked before writing, as the README's check table says: the old index stays
    assert_nothing_written(project, result, "person_index", before)


# ----------------------------------------------------------------------------- linkage_quality


def test_implausible_link_rate_fails_when_linkage_joins_different_people(project):
    """What a linkage at too low a threshold does: pairs of different patients of one trust
    merged into one person (one "person" with two NHS numbers from one provider), for 5% of
    the people with several records."""
    index = project.read("person_index")
    mpi = project.read("staged_mhs001mpi").dropna(subset=["nhs_number_token"])
    mpi = mpi.drop_duplicates(["source", "record_ref"]).merge(
        index[index["table_name"] == "MHS001MPI"], on=["source", "record_ref"]
    )
    multi = int((index.groupby("person_key").size() > 1).sum())
    merges: dict[str, str] = {}
    for keys in mpi.groupby("source")["person_key"].unique():
        for a, b in zip(keys[0::2], keys[1::2], strict=False):
            if len(merges) < 0.05 * multi and a not in merges and b not in merges:
                merges[b] = a
    assert len(merges) >= 0.05 * multi
    index["person_key"] = index["person_key"].replace(merges)
    project.write("person_index", index)
    result = project.materialise(linkage_quality_defs.linkage_quality)
    e = assert_fails(result, "linkage_quality:implausible_link_rate", "limit: 0.01")
    assert e.metadata["rate"].value > e.metadata["limit"].value
    assert e.metadata["persons_flagged"].value >= len(merges)


# ----------------------------------------------------------------------------- events


def test_events_valid_fails_and_writes_nothing_when_a_record_is_not_indexed(project):
    """A&E re-sends March with one attendance more and the month is re-ingested, but the
    person index was not re-run: one staged record has no person."""
    assert project.copy_rows(
        "staged_ecds",
        "rowid = (SELECT MIN(rowid) FROM staged_ecds WHERE month = ?)",
        (MONTH,),
        record_ref="'RESENT-' || record_ref",
        line_number="line_number + 100000",
    )
    before = snapshot(project, "events", where={"month": [MONTH]})
    result = project.materialise(events_defs.events, PARTITION)
    assert_fails(
        result,
        "events:events_valid",
        "1 staged records missing from the person index",
        "nothing written",
    )
    assert_nothing_written(project, result, "events", before)


def test_s136_seen_by_one_side_only_warns_when_mhsds_stops_coding_s136(project):
    """The trusts' March MHSDS submissions code every s136 place-of-safety period as another
    legal status (04), so no police detention finds its MHSDS side."""
    assert project.sql(
        "UPDATE staged_mhs401_mh_act_period SET LegalStatusCode = '04' "
        "WHERE month = ? AND LegalStatusCode = '20'",
        (MONTH,),
    )
    result = project.materialise(events_defs.events, PARTITION)
    e = assert_fails(result, "events:s136_seen_by_one_side_only", severity=WARN)
    meta = {k: v.value for k, v in e.metadata.items()}
    assert meta["seen_by_both"] == 0 and meta["mhsds_only"] == 0
    assert meta["police_only"] == meta["detentions"] > 0
    assert meta["one_sided_share"] == 1.0 > meta["limit"]


def test_events_in_reporting_month_warns_on_late_records(project):
    """Five February attendances arrive late, in March's ECDS drop."""
    assert (
        project.sql(
            "UPDATE staged_ecds SET Arrival_Date = '2019-02-27' WHERE rowid IN "
            "(SELECT rowid FROM staged_ecds WHERE month = ? AND Der_Dupe_Flag != '1' "
            "ORDER BY rowid LIMIT 5)",
            (MONTH,),
        )
        == 5
    )
    result = project.materialise(events_defs.events, PARTITION)
    e = assert_fails(result, "events:events_in_reporting_month", severity=WARN)
    assert e.metadata["events_dated_outside_reporting_month"].value >= 5


# ----------------------------------------------------------------------------- cohort


def _register_ids(project: Project, n: int, engaged: bool = False) -> list[str]:
    cond = "WHERE engagement_date IS NOT NULL" if engaged else ""
    rows = project.query(
        f"SELECT register_id FROM cohort {cond} ORDER BY register_id LIMIT ?", (n,)
    )
    assert len(rows) == n
    return [r[0] for r in rows]


def test_cohort_windows_valid_fails_and_writes_nothing_on_engagement_before_allocation(project):
    """The trust keys the referral date, two weeks before allocation, as the engagement date
    of one register entry (in every snapshot)."""
    (reg,) = _register_ids(project, 1, engaged=True)
    assert project.sql(
        "UPDATE staged_programme_register SET EngagementDate = date(AllocationDate, '-14 days') "
        "WHERE record_ref = ?",
        (reg,),
    )
    before = snapshot(project, "cohort")
    result = project.materialise(cohort_defs.cohort)
    assert_fails(
        result,
        "cohort:cohort_windows_valid",
        "1 register entries with impossible windows",
        "engagement or discharge dates before allocation",
    )
    assert_nothing_written(project, result, "cohort", before)


def test_register_rows_linked_warns_when_a_register_entry_links_to_nobody(project):
    """Linkage could not match one register entry's identifiers (a mistyped NHS number, a new
    surname) to any other record: the entry is a person of its own."""
    (reg,) = _register_ids(project, 1)
    assert project.sql(
        "UPDATE person_index SET person_key = 'P00099999' "
        "WHERE table_name = 'programme_register' AND record_ref = ?",
        (reg,),
    )
    result = project.materialise(cohort_defs.cohort)
    e = assert_fails(result, "cohort:register_rows_linked", "unlinked: 1", severity=WARN)
    assert e.metadata["unlinked"].value == 1
    cohort = project.read("cohort").set_index("register_id")
    assert not cohort.loc[reg, "linked"]  # the warning's subject, in the warehouse


def test_one_register_row_per_person_warns_when_two_entries_link_to_one_person(project):
    """Two register entries link to one person (allocated twice under a new RegisterId, or a
    linkage merge)."""
    first, second = _register_ids(project, 2)
    assert project.sql(
        "UPDATE person_index SET person_key = (SELECT person_key FROM person_index "
        "  WHERE table_name = 'programme_register' AND record_ref = ?) "
        "WHERE table_name = 'programme_register' AND record_ref = ?",
        (first, second),
    )
    result = project.materialise(cohort_defs.cohort)
    e = assert_fails(
        result, "cohort:one_register_row_per_person", "rows_sharing_a_person: 2", severity=WARN
    )
    assert e.metadata["rows_sharing_a_person"].value == 2


# ----------------------------------------------------------------------------- unit_costs


def test_unit_costs_valid_fails_and_writes_nothing_on_a_zero_cost(project):
    """A new version of the reference file prices police deployments at 0 (a placeholder for
    an unknown cost): every deployment would cost nothing."""
    costs = pd.read_csv(REFERENCE_DIR / "unit_costs.csv", dtype=str, keep_default_na=False)
    costs.loc[costs["metric"] == "police_deployments", "unit_cost_gbp"] = "0"
    path = project.root / "unit_costs.csv"
    costs.to_csv(path, index=False)
    before = snapshot(project, "unit_costs")
    result = project.materialise(costs_defs.unit_costs, metrics={"unit_costs_path": str(path)})
    assert_fails(
        result,
        "unit_costs:unit_costs_valid",
        "police_deployments: unit_cost_gbp is not a positive number",
    )
    assert_nothing_written(project, result, "unit_costs", before)


# ----------------------------------------------------------------------------- person_month_*


def test_one_row_per_person_month_fails_and_writes_nothing_when_events_go_uncounted(project):
    """The event rules emit a metric that person_month_metrics does not count (a measure added
    to events but not to MEASURES): March's events hold a new metric, so the person-month
    counts no longer add up to the events."""
    assert project.copy_rows(
        "events",
        "month = ? AND metric = 'ae_attendances'",
        (MONTH,),
        metric="'ae_reattendances'",
    )
    before = snapshot(project, "person_month_metrics", where={"month": [MONTH]})
    result = project.materialise(metrics_defs.person_month_metrics, PARTITION)
    assert_fails(
        result,
        "person_month_metrics:one_row_per_person_month",
        "counted of",
        "event quantities",
    )
    assert_nothing_written(project, result, "person_month_metrics", before)


def test_gx_table_on_person_month_metrics_fails_and_writes_nothing_on_an_impossible_count(
    project,
):
    """The ambulance service mistypes ResourcesDespatched as 1500: a positive quantity passes
    events_valid and the person-month counts add up, but no one is sent 1500 ambulances in a
    month (the suite caps any count at 1000)."""
    assert project.sql(
        "UPDATE events SET quantity = 1500 WHERE rowid = (SELECT MIN(rowid) FROM events "
        "WHERE month = ? AND metric = 'ambulance_resources')",
        (MONTH,),
    )
    before = snapshot(project, "person_month_metrics", where={"month": [MONTH]})
    result = project.materialise(metrics_defs.person_month_metrics, PARTITION)
    e = assert_fails(result, "person_month_metrics:gx_table", "ambulance_resources")
    assert e.metadata["failed"].value >= 1
    assert_nothing_written(project, result, "person_month_metrics", before)


def test_costs_add_up_fails_and_writes_nothing_when_a_total_is_not_its_parts(project, monkeypatch):
    """Internal inconsistency: costs are computed in integer pence, so no input can make a
    total differ from its parts. The costing function (as `person_month_costs` imports it) is
    patched to add a penny to one total, as a rounding bug would."""
    real = costs_defs.cost_person_months

    def off_by_a_penny(*args, **kwargs):
        pc = real(*args, **kwargs)
        pc.loc[pc.index[0], "total_cost"] += 0.01
        return pc

    monkeypatch.setattr(costs_defs, "cost_person_months", off_by_a_penny)
    before = snapshot(project, "person_month_costs", where={"month": [MONTH]})
    result = project.materialise(costs_defs.person_month_costs, PARTITION)
    assert_fails(
        result, "person_month_costs:costs_add_up", "totals that are not the sum of their parts"
    )
    assert_nothing_written(project, result, "person_month_costs", before)


def test_gx_table_on_person_month_costs_fails_and_writes_nothing_on_a_person_month_twice(
    project,
):
    """person_month_metrics holds one person-month twice (two writes of March appended instead
    of replaced): every cost still adds up row by row, but the person-month is costed twice."""
    assert project.copy_rows(
        "person_month_metrics",
        "rowid = (SELECT MIN(rowid) FROM person_month_metrics WHERE month = ?)",
        (MONTH,),
    )
    before = snapshot(project, "person_month_costs", where={"month": [MONTH]})
    result = project.materialise(costs_defs.person_month_costs, PARTITION)
    assert_fails(result, "person_month_costs:gx_table", "person_key", "month")
    assert_nothing_written(project, result, "person_month_costs", before)


# ----------------------------------------------------------------------------- programme_headline


def test_headline_covers_cohort_warns_when_a_month_was_never_costed(project):
    """June 2018's partition of person_month_costs never ran: the headline would count that
    month of every window as zero use."""
    assert project.sql("DELETE FROM person_month_costs WHERE month = '2018-06'")
    result = project.materialise(headline_defs.programme_headline_asset)
    e = assert_fails(
        result,
        "programme_headline:headline_covers_cohort",
        "months_without_costs: 2018-06",
        severity=WARN,
    )
    assert e.metadata["months_without_costs"].value == "2018-06"


def _credit(project: Project, month: str, amount: float) -> None:
    """A cost correction loaded into person_month_costs as a negative bed-day cost for every
    cohort member in ``month`` (the total follows it)."""
    assert project.sql(
        "UPDATE person_month_costs SET cost_mh_bed_days = cost_mh_bed_days - ?, "
        "total_cost = total_cost - ? WHERE month = ? AND person_key IN "
        "(SELECT person_key FROM cohort)",
        (amount, amount, month),
    )


def test_headline_values_possible_fails_and_writes_nothing_on_a_negative_cost(project):
    """A £1m credit note loaded into person_month_costs as a negative cost in one month of
    every member's programme period: the mean monthly programme cost turns negative."""
    _credit(project, "2019-05", 1_000_000)
    before = snapshot(project, "programme_headline")
    result = project.materialise(headline_defs.programme_headline_asset)
    assert_fails(
        result,
        "programme_headline:headline_values_possible",
        "itt.mean_programme_monthly_cost_gbp is negative",
    )
    assert_nothing_written(project, result, "programme_headline", before)


# ----------------------------------------------------------------------------- evaluation


def test_estimates_complete_fails_and_writes_nothing_when_an_estimate_is_missing(
    project, monkeypatch
):
    """Internal inconsistency: the estimator writes a row for every population and outcome
    it evaluates, so no input can leave one out. `evaluate_all` is patched to lose the
    per-protocol difference-in-differences of total cost."""
    from sim_pipeline.evaluation import comparison as evaluation_measures

    real = evaluation_measures.evaluate_all

    def loses_an_estimate(*args, **kwargs):
        ev = real(*args, **kwargs)
        e = ev.estimates
        lost = (
            (e["population"] == "per_protocol")
            & (e["outcome"] == "total_cost")
            & (e["method"] == "difference_in_differences")
        )
        assert lost.sum() == 1
        ev.estimates = e[~lost].reset_index(drop=True)
        return ev

    monkeypatch.setattr(evaluation_measures, "evaluate_all", loses_an_estimate)
    before = snapshot(project, *EVALUATION_TABLES)
    result = project.materialise(evaluation_defs.evaluation)
    assert_fails(
        result,
        "evaluation_estimates:estimates_complete",
        "per_protocol/total_cost/difference_in_differences",
    )
    assert_nothing_written(project, result, "evaluation", before)


def test_trajectory_valid_fails_and_writes_nothing_on_a_negative_mean_cost(project):
    """A £1m credit loaded as a negative cost for every member in one month: the members'
    mean monthly cost around that month is negative, which no trajectory can show."""
    _credit(project, "2019-05", 1_000_000)
    before = snapshot(project, *EVALUATION_TABLES)
    result = project.materialise(evaluation_defs.evaluation)
    assert_fails(result, "evaluation_trajectory:trajectory_valid", "negative mean costs")
    assert_nothing_written(project, result, "evaluation", before)


def test_the_evaluation_refuses_without_the_person_dimension(project):
    """A warehouse whose linkage ran before person_dimension existed (the table emptied): the
    evaluation would match everyone as of unknown sex and age, so it fails naming the asset to
    materialise, and writes nothing."""
    assert project.sql("DELETE FROM person_dimension")
    before = snapshot(project, *EVALUATION_TABLES)
    result = project.materialise(evaluation_defs.evaluation)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialise person_index" in str(failure.event_specific_data.error)
    assert not result.get_asset_materialization_events()
    for table, where, df in before:
        pd.testing.assert_frame_equal(project.read(table, where), df, obj=table)


def _add_twins(project: Project) -> int:
    """Give every programme member an exact twin who was never allocated: a person of their
    own (key ``P1`` + the member's digits) with a copy of the member's demographics (every
    person_dimension row) and of every person-month row. The ideal comparison pool."""
    members = "(SELECT person_key FROM cohort)"
    twin = "'P1' || substr(person_key, 2)"
    for table in ("person_dimension", "person_month_metrics", "person_month_costs"):
        assert project.copy_rows(table, f"person_key IN {members}", person_key=twin)
    return project.query("SELECT COUNT(DISTINCT person_key) FROM cohort")[0][0]


def test_evaluation_diagnostics_pass_when_every_member_has_an_alike_comparison(project):
    """Good data for the warn-only diagnostics: every member has an exact twin in the pool and
    gets one comparison, so every member who meets the eligibility rule (the DiD bracket's pool
    is drawn by it) is matched, to their twin, and every covariate balances."""
    members = _add_twins(project)
    result = project.materialise(evaluation_defs.evaluation, evaluation={"controls_per_person": 1})
    assert result.success
    evaluations = _evaluations(result)
    assert {k: e.passed for k, e in evaluations.items()} == {
        "evaluation_estimates:estimates_complete": True,
        "evaluation_estimates:members_matched": True,
        "evaluation_balance:comparison_balanced": True,
        "evaluation_trajectory:trajectory_valid": True,
        # each member's twin is also their nearest at the placebo's index a year earlier
        "evaluation_estimates:design_diagnostics": True,
    }
    meta = evaluations["evaluation_estimates:members_matched"].metadata
    assert meta["programme_members"].value == control_count(members)  # counts as published
    # (a member allocated in a month before the rule's 24 months of history, or whose
    # follow-up leaves the data, can meet the rule and still have no candidate month)
    assert int(meta["matched"].value) >= 0.9 * int(meta["meeting_rule"].value)
    assert int(meta["matched"].value) >= 0.8 * members
    matches = project.read("evaluation_matches")
    # the DiD bracket's matched sets (the primary design matches 5 nearest with replacement)
    matches = matches[~matches["stratum"].str.startswith("design:")]
    twin = matches["comparison_person_key"] == "P1" + matches["person_key"].str[1:]
    # a twin is a candidate only in a month it meets the rule, i.e. when its member met it at
    # allocation (allocation follows the rise in crisis contacts, not the rule): judged on those
    rule = EvaluationSettings().rule
    metrics = project.read("person_month_metrics")
    metrics = metrics[metrics["person_key"].isin(matches["person_key"])]
    month = pd.PeriodIndex(metrics["month"], freq="M")

    def met(row) -> bool:
        index = pd.Period(row.index_month, "M")
        mine = metrics[
            (metrics["person_key"] == row.person_key).to_numpy()
            & (month >= index - rule.window_months)
            & (month < index)
        ]
        return any(mine[k].sum() >= v for k, v in rule.min_counts.items())

    meets = matches.apply(met, axis=1).astype(bool)
    assert meets.sum() >= 0.8 * len(matches), meets.mean()
    # nearly every such member gets their own twin (greedy, each comparison once: two members
    # with the same covariates may take each other's, seed 7 once)
    assert twin[meets].mean() >= 0.95, matches[meets & ~twin]
    # at the member's own month, with nothing between them
    both = matches[twin & meets]
    assert (both["distance"] == 0).all() and (
        both["index_month"] == both["pseudo_index_month"]
    ).all()


def test_members_matched_warns_when_the_comparison_pool_is_lost(project):
    """person_month_metrics and _costs written for cohort members only (the other people with
    activity, from whom comparisons are drawn, left out): no member can be matched, although
    each has a twin in the data."""
    _add_twins(project)
    for table in ("person_month_metrics", "person_month_costs"):
        assert project.sql(
            f"DELETE FROM {table} WHERE person_key NOT IN (SELECT person_key FROM cohort)"
        )
    result = project.materialise(evaluation_defs.evaluation, evaluation={"controls_per_person": 1})
    evaluations = _evaluations(result)
    e = evaluations["evaluation_estimates:members_matched"]
    assert not e.passed and e.severity == WARN, _why(e)
    assert e.metadata["matched"].value == "0" and e.metadata["matched_share"].value == "0.000"
    # nothing to balance either; the blocking checks pass and the tables are written
    assert not evaluations["evaluation_balance:comparison_balanced"].passed
    assert evaluations["evaluation_estimates:estimates_complete"].passed
    assert evaluations["evaluation_trajectory:trajectory_valid"].passed
    assert result.success


def test_comparison_balanced_warns_when_comparisons_are_less_alike(project):
    """Three comparisons asked for per member when the pool holds one alike person each: the
    second and third are the nearest of the rest, and the run-up to the index no longer
    balances (everyone is still matched)."""
    _add_twins(project)
    result = project.materialise(evaluation_defs.evaluation, evaluation={"controls_per_person": 3})
    e = assert_fails(
        result,
        "evaluation_balance:comparison_balanced",
        "mean_monthly_cost_months_-3_to_-1",
        severity=WARN,
    )
    assert e.metadata["max_abs_smd_after"].value >= evaluation_defs.SMD_LIMIT


def test_design_diagnostics_warn_when_members_differ_before_allocation(project):
    """Members (not their twins) given three more community contacts in every month of the year
    before allocation: the programme cannot have moved those months and the matching does not
    use them, so the negative control fails; the report and its check say not to rely on the
    estimate."""
    _add_twins(project)
    assert project.sql(
        "UPDATE person_month_metrics SET community_contacts = community_contacts + 3 "
        "WHERE person_key IN (SELECT person_key FROM cohort) AND month < "
        "(SELECT substr(allocation_date, 1, 7) FROM cohort c "
        "WHERE c.person_key = person_month_metrics.person_key) AND month >= "
        "(SELECT strftime('%Y-%m', allocation_date, '-12 months') FROM cohort c "
        "WHERE c.person_key = person_month_metrics.person_key)"
    )
    result = project.materialise(evaluation_defs.evaluation, evaluation={"controls_per_person": 1})
    e = assert_fails(
        result, "evaluation_estimates:design_diagnostics", "negative control", severity=WARN
    )
    assert "do not rely" in e.metadata["in_plain_words"].value
    # the placebo (cost, not contacts) still holds no change: the failure names only the control
    assert "placebo" not in (e.description or "")
    est = project.read("evaluation_estimates")
    nc = est[
        (est["analysis"] == "primary") & (est["population"] == "negative_control_months_m12_m1")
    ].iloc[0]
    assert nc["outcome"] == "community_contacts" and nc["ci_low"] > 0.5, nc
    report = project.materialise(report_defs.evaluation_report)
    assert report.success
    page = (project.root / "published" / "evaluation_report.html").read_text()
    assert "Diagnostics failed: do not rely on the primary estimate" in page
    assert "negative control (community contacts in the year before)" in page


# ----------------------------------------------------------------------------- evaluation_report


def test_published_disclosure_safe_fails_and_keeps_the_release_when_counts_escape_control(
    project, monkeypatch
):
    """Internal inconsistency: the release is built only from disclosure-controlled values, so
    no warehouse content can put a small count in it. The rule's implementation (as the
    release's table modules import it) is patched to show counts unrounded and unsuppressed."""
    from sim_pipeline.publish import release_evaluation, release_headline, release_linkage

    for publication in (release_evaluation, release_headline, release_linkage):
        monkeypatch.setattr(
            publication, "control_count", lambda v: "" if pd.isna(v) else str(int(v))
        )
    published = project.root / "published"
    before = {p.name: p.read_bytes() for p in published.iterdir()}
    assert any(name.endswith(".csv") for name in before)
    result = project.materialise(report_defs.evaluation_report)
    e = assert_fails(result, "evaluation_report:published_disclosure_safe", "row", "column")
    assert "is a count of 1-7" in _why(e) or "is not rounded" in _why(e)
    assert {p.name: p.read_bytes() for p in published.iterdir()} == before
    assert not result.get_asset_materialization_events()
    audit = project.read("audit_trail", {"run_id": [result.run_id]})
    assert audit["status"].tolist() == ["not_written"]


# ----------------------------------------------------------------------------- good data


def _downstream_checks() -> set[str]:
    return {k for k in BREAKS if not k.startswith(("staged_", "drop_coverage:"))}


def test_every_downstream_check_passed_in_the_good_run(good):
    """The real CLI run that built the good project: every downstream check was evaluated and
    passed, except the two evaluation diagnostics the small pool cannot satisfy (they warn,
    and pass on good comparisons in the twin test)."""
    with dg.DagsterInstance.from_config(str(good / "dagster_home")) as inst:
        # the CLI's runs: the sources' observation, then the graph
        jobs = [r.job_name for r in reversed(inst.get_runs())]
        assert jobs[0] == "observe_sources" and set(jobs[1:]) == {"sim_pipeline_all"}, jobs
        # observed in a forked process while the command imported GX: ended before any
        # staging run began
        records = inst.get_run_records()
        observed = [r.end_time for r in records if r.dagster_run.job_name == "observe_sources"]
        began = [r.start_time for r in records if r.dagster_run.job_name != "observe_sources"]
        assert len(observed) == 1 and observed[0] <= min(began), (observed, began)
        events = command_events(inst, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = {}
    for event in events:
        e = event.event_specific_data
        evaluations[f"{e.asset_key.to_user_string()}:{e.check_name}"] = e
    downstream = _downstream_checks()
    assert downstream <= set(evaluations)
    failed = {k: _why(evaluations[k]) for k in downstream if not evaluations[k].passed}
    assert set(failed) == SMALL_POOL_WARNINGS, failed
    for k in SMALL_POOL_WARNINGS:
        assert evaluations[k].severity == WARN


# ----------------------------------------------------------------------------- completeness

_HERE = "test_checks_fail"
_DAMAGED = "test_damaged_extracts"
_GX = "test_expectations"
# The staged tables' checks are built by one factory (`defs.ingest.build_staged_asset`) and are
# the same code for every table, so a test breaking a check on one staged table stands for all.
# None: no test makes that check fail yet.
STAGED_BREAKS: dict[str, str | None] = {
    "files_readable": f"{_DAMAGED}::test_the_right_checks_fail_with_descriptions",
    "contract_violation_rate": f"{_DAMAGED}::test_the_right_checks_fail_with_descriptions",
    "provider_drops_present": f"{_DAMAGED}::test_the_right_checks_fail_with_descriptions",
    "no_direct_identifiers": (
        f"{_DAMAGED}::test_an_identifier_in_a_record_key_blocks_the_run_before_anything_is_written"
    ),
    "duplicate_keys": (
        f"{_HERE}::test_staged_duplicate_keys_fails_and_writes_nothing_on_a_repeated_record"
    ),
    "gx_table": f"{_HERE}::test_staged_gx_table_fails_and_writes_nothing_when_a_row_goes_missing",
    "gx_drops": f"{_DAMAGED}::test_data_docs_show_the_failing_suites",
    "ledger_balances": (
        f"{_HERE}::test_staged_ledger_balances_and_gx_drops_fail_when_a_file_is_miscounted"
    ),
    "provider_drops_consistent": (
        f"{_HERE}::test_staged_drops_consistent_fails_and_writes_nothing_on_a_drop_under_another_key"
    ),
}
# Entries whose test fails the function the check's result is computed from (the helper or the
# Great Expectations suite), not the check's evaluation in a materialisation.
FUNCTION_LEVEL: set[str] = set()
_COVERAGE = "test_coverage::test_the_asset_fails_its_checks_on_broken_drops"
BREAKS: dict[str, str | None] = {
    **{
        f"{t.asset_name}:{check}": test
        for t in SOURCE_TABLES
        for check, test in STAGED_BREAKS.items()
    },
    "drop_coverage:drops_complete": _COVERAGE,
    "drop_coverage:drops_on_time": _COVERAGE,
    "drop_coverage:no_volume_anomalies": _COVERAGE,
    "drop_coverage:no_unprocessed_resubmission": _COVERAGE,
    "ingest_summary:every_landing_file_accounted": (
        f"{_HERE}::test_every_landing_file_accounted_warns_on_a_resubmission_not_yet_ingested"
    ),
    "ingest_summary:single_pseudonymisation_key": (
        f"{_HERE}::test_single_pseudonymisation_key_fails_when_months_mix_key_fingerprints"
    ),
    "ingest_summary:ingest_accepted": f"{_DAMAGED}::test_the_right_checks_fail_with_descriptions",
    "ingest_summary:ledger_balances": (
        f"{_HERE}::test_ledger_balances_fails_on_a_ledger_row_that_does_not_add_up"
    ),
    "person_index:every_record_indexed_once": (
        f"{_HERE}::test_every_record_indexed_once_fails_and_writes_nothing_when_a_record_is_lost"
    ),
    "person_index:no_retired_key_reissued": (
        f"{_HERE}::test_no_retired_key_reissued_fails_when_a_retired_key_comes_back"
    ),
    "linkage_quality:implausible_link_rate": (
        f"{_HERE}::test_implausible_link_rate_fails_when_linkage_joins_different_people"
    ),
    "events:events_valid": (
        f"{_HERE}::test_events_valid_fails_and_writes_nothing_when_a_record_is_not_indexed"
    ),
    "events:s136_seen_by_one_side_only": (
        f"{_HERE}::test_s136_seen_by_one_side_only_warns_when_mhsds_stops_coding_s136"
    ),
    "events:events_in_reporting_month": (
        f"{_HERE}::test_events_in_reporting_month_warns_on_late_records"
    ),
    "cohort:cohort_windows_valid": (
        f"{_HERE}::test_cohort_windows_valid_fails_and_writes_nothing_on_engagement_before_allocation"
    ),
    "cohort:register_rows_linked": (
        f"{_HERE}::test_register_rows_linked_warns_when_a_register_entry_links_to_nobody"
    ),
    "cohort:one_register_row_per_person": (
        f"{_HERE}::test_one_register_row_per_person_warns_when_two_entries_link_to_one_person"
    ),
    "unit_costs:unit_costs_valid": (
        f"{_HERE}::test_unit_costs_valid_fails_and_writes_nothing_on_a_zero_cost"
    ),
    "person_month_metrics:one_row_per_person_month": (
        f"{_HERE}::test_one_row_per_person_month_fails_and_writes_nothing_when_events_go_uncounted"
    ),
    "person_month_metrics:gx_table": (
        f"{_HERE}::test_gx_table_on_person_month_metrics_fails_and_writes_nothing_on_an_impossible_count"
    ),
    "person_month_costs:costs_add_up": (
        f"{_HERE}::test_costs_add_up_fails_and_writes_nothing_when_a_total_is_not_its_parts"
    ),
    "person_month_costs:gx_table": (
        f"{_HERE}::test_gx_table_on_person_month_costs_fails_and_writes_nothing_on_a_person_month_twice"
    ),
    "programme_headline:headline_covers_cohort": (
        f"{_HERE}::test_headline_covers_cohort_warns_when_a_month_was_never_costed"
    ),
    "programme_headline:headline_values_possible": (
        f"{_HERE}::test_headline_values_possible_fails_and_writes_nothing_on_a_negative_cost"
    ),
    "evaluation_estimates:estimates_complete": (
        f"{_HERE}::test_estimates_complete_fails_and_writes_nothing_when_an_estimate_is_missing"
    ),
    "evaluation_estimates:members_matched": (
        f"{_HERE}::test_members_matched_warns_when_the_comparison_pool_is_lost"
    ),
    "evaluation_balance:comparison_balanced": (
        f"{_HERE}::test_comparison_balanced_warns_when_comparisons_are_less_alike"
    ),
    "evaluation_estimates:design_diagnostics": (
        f"{_HERE}::test_design_diagnostics_warn_when_members_differ_before_allocation"
    ),
    "evaluation_trajectory:trajectory_valid": (
        f"{_HERE}::test_trajectory_valid_fails_and_writes_nothing_on_a_negative_mean_cost"
    ),
    "evaluation_report:published_disclosure_safe": (
        f"{_HERE}::test_published_disclosure_safe_fails_and_keeps_the_release_when_counts_escape_control"
    ),
}


def test_every_check_is_broken_by_some_test():
    """Every asset check in Definitions has a test that makes its evaluation fail, and every
    test named here exists."""
    from sim_pipeline.definitions import load_definitions

    defs = load_definitions()

    checks = {
        f"{k.asset_key.to_user_string()}:{k.name}"
        for k in defs.resolve_asset_graph().asset_check_keys
    }
    assert not checks - set(BREAKS), f"checks with no entry: {sorted(checks - set(BREAKS))}"
    assert not set(BREAKS) - checks, f"entries for no check: {sorted(set(BREAKS) - checks)}"
    assert set(STAGED_BREAKS) >= FUNCTION_LEVEL
    for key, ref in BREAKS.items():
        if ref is None:
            continue
        module, function = ref.split("::")
        mod = importlib.import_module(f"sim_pipeline_tests.{module}")
        assert callable(getattr(mod, function, None)), f"{key}: {ref} does not exist"
    unbroken = sorted({k.split(":")[1] for k, ref in BREAKS.items() if ref is None})
    assert not unbroken, (
        f"no test makes these staged-table checks fail yet: {unbroken} "
        f"(on every staged table: {sorted(k for k, ref in BREAKS.items() if ref is None)})"
    )
