"""Damaged extracts dropped into the landing folder, run as users run it (issue 5).

Three months of the small synthetic set are ingested through `sim-pipeline backfill`; then five
damaged drops replace or remove files and the same range is run again:

- (a) ``met_police/2019-03/cad_incidents.csv`` loses its ``Grade`` column,
- (b) every NHS number in ``las/2019-01/ambulance_incidents.csv`` becomes invalid,
- (c) ``ae_rjz/2019-02/ecds.csv`` is resubmitted with every row twice,
- (d) ``slam/2019-02/MHS001MPI.csv`` is re-encoded to cp1252 with a non-ASCII family name,
- (e) ``swlstg/2019-03/MHS502WardStay.csv`` goes missing.

Each must fail the right check with a description, quarantine exactly the bad rows (a rejected
file: all of its lines), load every other row of every other file, balance the ledger, still
give the auditor's summaries (`ingest_summary`, `drop_coverage`) showing what failed, leave
linkage and everything after it un-materialised in that run (`ingest_summary:ingest_accepted`
blocks), and write no identifier anywhere.
The plain functions behind the new checks are tested on good and broken input at the end.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from sim_pipeline.identity import Tokeniser
from sim_pipeline.ingest.staging import duplicate_record_keys, stage_run
from sim_pipeline.quality.identifiers import find_identifier_like, name_like_counts
from sim_pipeline.quality.landing_identifiers import landing_identifiers, own_vocabulary
from sim_pipeline.quality.privacy_scan import _text_of, files_under, generated_quality_files, scan
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES
from sim_pipeline.sources.base import IdentifierColumns, SourceTable
from sim_pipeline.sources.contract import RawContract
from sim_pipeline.sources.reader import FILE_RULES, DropFileError, data_line_numbers
from sim_pipeline.warehouse import Warehouse
from sim_pipeline.warehouse.dictionary import RUN_SPECIFIC_COLUMNS
from sim_pipeline_tests.conftest import (
    PROJECT_KEY,
    cli,
    command_events,
    command_runs,
    project_env,
)
from sim_pipeline_tests.samples import ref_token

MONTHS = ["2019-01", "2019-02", "2019-03"]
MISSING_COLUMN = "met_police/2019-03/cad_incidents.csv"
INVALID_NHS = "las/2019-01/ambulance_incidents.csv"
RESUBMITTED = "ae_rjz/2019-02/ecds.csv"
WRONG_ENCODING = "slam/2019-02/MHS001MPI.csv"
MISSING_DROP = "swlstg/2019-03/MHS502WardStay.csv"
DAMAGED = {MISSING_COLUMN, INVALID_NHS, RESUBMITTED, WRONG_ENCODING, MISSING_DROP}
NON_ASCII_NAME = "Lefèvre"
INVALID_NHS_NUMBER = "1234567890"
# (asset, check) pairs the damaged run must fail, and no other staged check
EXPECTED_FAILURES = {
    ("staged_police_cad_incidents", "files_readable"),
    ("staged_police_cad_incidents", "contract_violation_rate"),
    ("staged_ambulance_incidents", "contract_violation_rate"),
    ("staged_ecds", "contract_violation_rate"),
    ("staged_mhs001mpi", "files_readable"),
    ("staged_mhs001mpi", "contract_violation_rate"),
    ("staged_mhs502_ward_stay", "provider_drops_present"),
    # the Great Expectations drops suite of each damaged table fails too (Data Docs)
    ("staged_police_cad_incidents", "gx_drops"),
    # (not the ambulance drops suite: its invalid NHS numbers are nulled, the rows kept, so no
    # quarantine allowance is exceeded; contract_violation_rate counts them)
    ("staged_ecds", "gx_drops"),
    ("staged_mhs001mpi", "gx_drops"),
    ("staged_mhs502_ward_stay", "gx_drops"),
}
DOWNSTREAM = ("person_index", "linkage_quality", "events", "cohort")
SUMMARIES = ("ingest_summary", "drop_coverage")  # run whatever the staged checks say


def _records(data: bytes, encoding: str = "utf-8") -> int:
    """Data rows of a CSV as the csv module counts them (independent of the reader)."""
    rows = [r for r in csv.reader(io.StringIO(data.decode(encoding), newline="")) if r]
    return len(rows) - 1


def _table(label: str) -> SourceTable:
    return next(t for t in SOURCE_TABLES if label.endswith("/" + t.file_name()))


def _snapshot(url: str) -> dict[str, pd.DataFrame]:
    wh = Warehouse(url)
    try:
        out = {
            "ingest_ledger": wh.read("ingest_ledger"),
            "ingest_quarantine": wh.read("ingest_quarantine"),
            "quality_results": wh.read("quality_results"),
        }
        for t in SOURCE_TABLES:
            out[t.asset_name] = wh.read(t.asset_name)
        return out
    finally:
        wh.dispose()


def _damage(landing: Path) -> dict[str, object]:
    facts: dict[str, object] = {}
    cad = landing / MISSING_COLUMN
    df = pd.read_csv(cad, dtype=str, keep_default_na=False)
    df.drop(columns=["Grade"]).to_csv(cad, index=False)

    las = landing / INVALID_NHS
    df = pd.read_csv(las, dtype=str, keep_default_na=False)
    traced = df["NHSNumber"] != ""
    assert traced.sum() >= 10
    df.loc[traced, "NHSNumber"] = INVALID_NHS_NUMBER
    df.to_csv(las, index=False)
    facts["traced_lines"] = {i + 2 for i in range(len(df)) if traced.iloc[i]}  # header = line 1

    ecds = landing / RESUBMITTED
    df = pd.read_csv(ecds, dtype=str, keep_default_na=False)
    pd.concat([df, df]).to_csv(ecds, index=False)  # every row sent twice
    facts["resubmitted_rows"] = len(df)

    mpi = landing / WRONG_ENCODING
    df = pd.read_csv(mpi, dtype=str, keep_default_na=False)
    df.loc[0, "PersonFamilyName"] = NON_ASCII_NAME
    mpi.write_bytes(df.to_csv(index=False).encode("cp1252"))
    assert _records(mpi.read_bytes(), "cp1252") == len(df)

    (landing / MISSING_DROP).unlink()
    return facts


@pytest.fixture(scope="module")
def damaged_runs(small_synth, tmp_path_factory):
    src, _ = small_synth
    root = tmp_path_factory.mktemp("damaged")
    landing, pristine = root / "landing", root / "pristine"
    for p in src.glob("*/*/*.csv"):
        if p.parent.name in MONTHS:
            dest = landing / p.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dest)
    shutil.copytree(landing, pristine)
    # damaged drops are not the synthetic landing: the project key (never the demo key)
    env = project_env(landing, root, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY, SIM_INGEST_WORKERS="2")
    args = ("backfill", "--from", MONTHS[0], "--to", MONTHS[-1])
    baseline = cli(*args, env=env, cwd=root)
    # (downstream evaluation checks may fail on a 3-month window; every ingest check passes)
    assert "staged_" not in "".join(re.findall(r"FAILED.*", baseline.stdout)), baseline.stdout
    before = _snapshot(env["SIM_WAREHOUSE_URL"])
    facts = _damage(landing)
    damaged = cli(*args, env=env, cwd=root)
    after = _snapshot(env["SIM_WAREHOUSE_URL"])
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as inst:
        # the command's runs: each staged share's, then the rest of the graph's
        runs = command_runs(inst)
        checks = [
            e.event_specific_data
            for e in command_events(inst, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        materialisations = [
            e.event_specific_data.materialization
            for e in command_events(inst, dg.DagsterEventType.ASSET_MATERIALIZATION)
        ]
        materialised = {m.asset_key.to_user_string() for m in materialisations}
        # what each staged step reported of the ledger and quarantine it wrote
        ledger_reports = [
            (
                m.asset_key.to_user_string(),
                m.metadata["written_by"].value,
                m.metadata["rows_this_run"].value,
            )
            for m in materialisations
            if m.asset_key.to_user_string() in {"ingest_ledger", "ingest_quarantine"}
        ]
        failed_steps = {e.step_key for e in command_events(inst, dg.DagsterEventType.STEP_FAILURE)}
        statuses = {r.status for r in runs}
        if dg.DagsterRunStatus.FAILURE in statuses:
            status = dg.DagsterRunStatus.FAILURE
        elif statuses == {dg.DagsterRunStatus.SUCCESS}:
            status = dg.DagsterRunStatus.SUCCESS
        else:
            status = min(statuses, key=lambda s: s.value)  # one order, whatever the set's
    again = cli(*args, env=env, cwd=root)
    return {
        "root": root,
        "env": env,
        "landing": landing,
        "pristine": pristine,
        "baseline": baseline,
        "damaged": damaged,
        "again": again,
        "before": before,
        "after": after,
        "repeated": _snapshot(env["SIM_WAREHOUSE_URL"]),
        "facts": facts,
        "checks": checks,
        "materialised": materialised,
        "ledger_reports": ledger_reports,
        "failed_steps": failed_steps,
        "status": status,
    }


def _ledger(damaged_runs, label: str) -> pd.Series:
    return damaged_runs["after"]["ingest_ledger"].set_index("file").loc[label]


def _quarantine(damaged_runs, label: str) -> pd.DataFrame:
    q = damaged_runs["after"]["ingest_quarantine"]
    return q[q["file"] == label]


def _staged_lines(damaged_runs, label: str, snap: str = "after") -> list[int]:
    staged = damaged_runs[snap][_table(label).asset_name]
    return sorted(staged.loc[staged["source_file"] == label, "line_number"].tolist())


# ----------------------------------------------------------------------------- the run


def test_the_run_fails_naming_each_damaged_file(damaged_runs):
    r = damaged_runs["damaged"]
    assert r.returncode == 1, r.stdout + r.stderr
    assert "sim-pipeline run FAILED" in r.stdout
    out = r.stdout
    assert (
        "FAILED staged_police_cad_incidents:files_readable (1 file(s) rejected as a whole: "
        f"{MISSING_COLUMN}: missing required column(s): Grade)" in out
    ), out
    assert (
        f"FAILED staged_mhs001mpi:files_readable (1 file(s) rejected as a whole: {WRONG_ENCODING}: not valid UTF-8"
        in out
    )
    assert (
        f"FAILED staged_mhs502_ward_stay:provider_drops_present (1 expected drop(s) missing: {MISSING_DROP})"
        in out
    )
    assert re.search(
        r"FAILED staged_ecds:contract_violation_rate \(\d+\.\d% of rows quarantined", out
    )
    assert "FAILED staged_ambulance_incidents:contract_violation_rate" in out
    # the Dagster log names the file, the problem and the rule
    assert (
        f"rejected {MISSING_COLUMN}: missing required column(s): Grade (rule missing_column)"
        in r.stderr
    )


def test_the_right_checks_fail_with_descriptions(damaged_runs):
    """Checks on what the ingest wrote: ERROR severity, not blocking their own step (so the
    summaries run); the gate `ingest_summary:ingest_accepted` lists each of them and blocks."""
    from sim_pipeline.definitions import load_definitions

    defs = load_definitions()
    from sim_pipeline.defs.ingest import GATED_CHECKS

    failed = {
        (c.asset_key.to_user_string(), c.check_name)
        for c in damaged_runs["checks"]
        if not c.passed and c.asset_key.to_user_string().startswith("staged_")
    }
    assert failed == EXPECTED_FAILURES
    graph = defs.resolve_asset_graph()
    for asset, name in failed:
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(asset), name))
        assert name in GATED_CHECKS and not spec.blocking, (asset, name)
        # written for an auditor: what passes, what fails, what happens then
        assert "Passes when" in spec.description and "Fails" in spec.description, (asset, name)
        assert "downstream" in spec.description.lower(), (asset, name)
        result = next(
            c
            for c in damaged_runs["checks"]
            if (c.asset_key.to_user_string(), c.check_name) == (asset, name)
        )
        assert result.severity == dg.AssetCheckSeverity.ERROR
        assert result.description, (asset, name)
    gate = next(c for c in damaged_runs["checks"] if c.check_name == "ingest_accepted")
    assert gate.asset_key == dg.AssetKey("ingest_summary") and not gate.passed
    assert graph.get_check_spec(dg.AssetCheckKey(gate.asset_key, "ingest_accepted")).blocking
    assert gate.metadata["failing_checks"].value == len(EXPECTED_FAILURES)
    listed = {(r.data["asset"], r.data["check"]) for r in gate.metadata["checks"].value.records}
    for asset, name in EXPECTED_FAILURES:
        assert (asset, name) in listed, (asset, name)
    # the duplicated resubmission was caught row by row, so no repeated key reached the output
    dup = next(
        c
        for c in damaged_runs["checks"]
        if (c.asset_key.to_user_string(), c.check_name) == ("staged_ecds", "duplicate_keys")
    )
    assert dup.passed


def test_summaries_show_the_failures_and_downstream_assets_wait(damaged_runs):
    """A missing drop and rejected files: the staged steps write their good rows and succeed,
    the summaries run (the auditor sees the failure there, not stale figures), the gate fails
    and nothing after it starts."""
    assert damaged_runs["status"] == dg.DagsterRunStatus.FAILURE
    failed = damaged_runs["failed_steps"]
    assert not {s for s in failed if s.startswith("staged_")}, failed
    assert {a for a, _ in EXPECTED_FAILURES} <= damaged_runs["materialised"]
    for name in SUMMARIES:
        assert name in damaged_runs["materialised"], name
    # the gate, and drop_coverage's own blocking check on the missing drop, fail their steps
    assert failed == {"ingest_summary", "drop_coverage"}, failed
    by_key = {(c.asset_key.to_user_string(), c.check_name): c for c in damaged_runs["checks"]}
    assert not by_key[("drop_coverage", "drops_complete")].passed
    assert not set(DOWNSTREAM) & failed  # not failed: never started
    for name in DOWNSTREAM:
        assert name not in damaged_runs["materialised"], name


def test_the_ledger_and_quarantine_are_assets_every_staged_step_reports(damaged_runs):
    """The ingest ledger and quarantine are assets of their own: each staged step, those whose
    checks failed on a missing or rejected drop included, reports the rows it wrote to both (in
    the transaction of its staged rows), and the summaries read them."""
    staged = {t.asset_name for t in SOURCE_TABLES}
    reports = damaged_runs["ledger_reports"]
    after = damaged_runs["after"]
    for name in ("ingest_ledger", "ingest_quarantine"):
        assert sorted(w for k, w, _ in reports if k == name) == sorted(staged), name
        # the run covered every month of this project: its rows are the whole table
        assert sum(n for k, _, n in reports if k == name) == len(after[name]) > 0, name
    rejected = after["ingest_ledger"].query("file_status == 'rejected'")
    assert len(rejected), "the damaged landing has files rejected as a whole"
    assert set(rejected["file"]) <= set(after["ingest_quarantine"]["file"])


def test_data_docs_show_the_failing_suites(damaged_runs):
    """The auditor's second view: quality_results and the Data Docs site record the same
    failures as the checks in the UI, and `sim-pipeline quality` lists them."""
    results = damaged_runs["after"]["quality_results"]
    results = results[results["success"].astype(bool) == False]  # noqa: E712
    damaged_tables = {a for a, c in EXPECTED_FAILURES if c == "gx_drops"}
    assert {f"{t}.drops" for t in damaged_tables} == set(results["suite"])
    by_suite = results.groupby("suite")["column_names"].apply(set)
    # a rejected file fails the completeness expectation; damaged rows the quarantine allowance
    assert "file_status" in by_suite["staged_mhs001mpi.drops"]
    assert "quarantine_allowance, rows_quarantined" in by_suite["staged_ecds.drops"]
    assert "" in by_suite["staged_mhs502_ward_stay.drops"]  # row count: a provider month missing
    for page in results["data_docs_page"].unique():
        html = Path(page).read_text()
        assert "quality" in Path(page).parts  # under the quality folder beside landing
        # the validation's status line (a passing page says "Succeeded" there)
        assert re.search(r"Status:</span> <i [^>]*></i> Failed", html), page
    r = cli("quality", env=damaged_runs["env"], cwd=damaged_runs["root"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(damaged_tables)} suites failing" in r.stdout, r.stdout
    for table in damaged_tables:
        assert re.search(rf"{table}\.drops\s.*FAILED", r.stdout), (table, r.stdout)


# ----------------------------------------------------------------------------- each damage


@pytest.mark.parametrize(
    "label, rule, column, problem",
    [
        (MISSING_COLUMN, "missing_column", "Grade", "missing required column(s): Grade"),
        (WRONG_ENCODING, "file_encoding", None, "not valid UTF-8"),
    ],
)
def test_a_rejected_file_is_quarantined_line_by_line(damaged_runs, label, rule, column, problem):
    data = (damaged_runs["landing"] / label).read_bytes()
    n = _records(data, "utf-8" if rule != "file_encoding" else "cp1252")
    led = _ledger(damaged_runs, label)
    assert (led.file_status, led.rejection_rule) == ("rejected", rule)
    assert (led.rows_read, led.rows_loaded, led.rows_quarantined) == (n, 0, n)
    q = _quarantine(damaged_runs, label)
    assert sorted(q["line_number"]) == list(range(2, n + 2))  # one row per data line
    assert set(q["rule"]) == {rule}
    assert set(q["column_name"].fillna("<none>")) == {column or "<none>"}
    assert q["reason"].nunique() == 1  # a fixed reason: the file and the problem
    assert q["reason"].iloc[0].startswith(f"{label}: ") and problem in q["reason"].iloc[0]
    assert _staged_lines(damaged_runs, label) == []  # nothing of it loaded
    assert led.file_sha256 != _before_ledger(damaged_runs).loc[label, "file_sha256"]


def _before_ledger(damaged_runs) -> pd.DataFrame:
    return damaged_runs["before"]["ingest_ledger"].set_index("file")


def test_invalid_nhs_numbers_are_nulled_and_the_incidents_kept(damaged_runs):
    """An identifier defect degrades the identifier, not the event: every traced incident of
    the file whose NHS numbers were all made invalid still loads, its NHS number nulled and
    flagged, and the ledger counts the nulled values."""
    led = _ledger(damaged_runs, INVALID_NHS)
    q = _quarantine(damaged_runs, INVALID_NHS)
    traced = damaged_runs["facts"]["traced_lines"]
    assert "nhs_number_check_digit" not in set(q["rule"])
    assert led.file_status == "loaded" and pd.isna(led.rejection_rule)
    n = _records((damaged_runs["landing"] / INVALID_NHS).read_bytes())
    assert led.rows_read == n
    lines = set(range(2, n + 2))
    staged = set(_staged_lines(damaged_runs, INVALID_NHS))
    assert staged == lines - set(q["line_number"])
    # every traced incident loads unless quarantined for another rule (the generator's own
    # duplicates: a handful)
    kept = traced & staged
    assert traced - kept <= set(q["line_number"]) and len(traced - kept) <= 5
    amb = damaged_runs["after"]["staged_ambulance_incidents"]
    in_file = amb[amb["source_file"] == INVALID_NHS]
    rows = in_file[in_file["line_number"].isin(kept)]
    assert len(rows) == len(kept) and rows["nhs_number_token"].isna().all()
    assert rows["identifier_defects"].str.contains("NHSNumber:nhs_number_check_digit").all()
    # the ledger counts every nulled value: the planted NHS numbers plus any defect the
    # generator itself injected in that file (a malformed postcode, an impossible birth date)
    defects = in_file["identifier_defects"].dropna()
    assert led.identifiers_nulled == int(defects.str.count(":").sum())
    assert len(kept) <= led.identifiers_nulled <= len(kept) + 5
    assert not q.astype(str).apply(lambda c: c.str.contains(INVALID_NHS_NUMBER)).any().any()


def test_a_resubmitted_month_with_duplicates_replaces_it_once(damaged_runs):
    n = damaged_runs["facts"]["resubmitted_rows"]
    led = _ledger(damaged_runs, RESUBMITTED)
    assert led.file_sha256 != _before_ledger(damaged_runs).loc[RESUBMITTED, "file_sha256"]
    assert (led.rows_read, led.rows_quarantined) == (
        2 * n,
        n + _before_ledger(damaged_runs).loc[RESUBMITTED, "rows_quarantined"],
    )
    q = _quarantine(damaged_runs, RESUBMITTED)
    dup = q[q["rule"] == "duplicate_row"]
    assert set(range(n + 2, 2 * n + 2)) <= set(dup["line_number"])  # every second copy
    # the month was replaced, not appended: the same records as before, once each
    assert _staged_lines(damaged_runs, RESUBMITTED) == _staged_lines(
        damaged_runs, RESUBMITTED, "before"
    )
    ecds = damaged_runs["after"]["staged_ecds"]
    assert duplicate_record_keys(ecds).empty
    assert not ecds.duplicated(["source", "month", "record_ref"]).any()


def test_a_missing_drop_loads_the_other_providers(damaged_runs):
    ledger = damaged_runs["after"]["ingest_ledger"]
    assert MISSING_DROP not in set(ledger["file"])
    others = ledger[(ledger["table_name"] == "MHS502WardStay") & (ledger["month"] == "2019-03")]
    assert sorted(others["source"]) == ["oxleas", "slam"]
    assert (others["file_status"] == "loaded").all()


# ----------------------------------------------------------------------------- no row lost


def test_every_other_file_and_row_is_loaded_as_before(damaged_runs):
    before, after = (
        _before_ledger(damaged_runs),
        damaged_runs["after"]["ingest_ledger"].set_index("file"),
    )
    landing = damaged_runs["landing"]
    files = sorted(str(p.relative_to(landing)) for p in landing.glob("*/*/*.csv"))
    assert sorted(after.index) == files  # every landing file is in the ledger
    assert (after.rows_read == after.rows_loaded + after.rows_quarantined).all()
    for label in files:
        encoding = "cp1252" if label == WRONG_ENCODING else "utf-8"
        assert after.loc[label, "rows_read"] == _records((landing / label).read_bytes(), encoding)
        assert after.loc[label, "rows_loaded"] == len(_staged_lines(damaged_runs, label)), label
        q = _quarantine(damaged_runs, label)
        assert after.loc[label, "rows_quarantined"] == q["line_number"].nunique(), label
    cols = ["file_sha256", "file_status", "rows_read", "rows_loaded", "rows_quarantined"]
    good = [f for f in files if f not in DAMAGED]
    assert len(good) == len(files) - 4
    pd.testing.assert_frame_equal(after.loc[good, cols], before.loc[good, cols])
    for table in SOURCE_TABLES:
        b, a = damaged_runs["before"][table.asset_name], damaged_runs["after"][table.asset_name]
        b = b[~b["source_file"].isin(DAMAGED)]
        a = a[~a["source_file"].isin(DAMAGED)]
        key = ["source_file", "line_number"]
        # as read back from SQL, a column holding only NULLs after the filter comes back as
        # object on one side and string on the other: values compared, not the read-back dtype
        a, b = (
            d.sort_values(key)
            .reset_index(drop=True)
            .astype(object)
            .pipe(lambda x: x.where(x.notna(), None))
            for d in (a, b)
        )
        pd.testing.assert_frame_equal(a, b, obj=table.asset_name)


def test_a_repeated_run_gives_the_same_tables(damaged_runs):
    assert damaged_runs["again"].returncode == 1
    for name, df in damaged_runs["after"].items():
        again = damaged_runs["repeated"][name]
        cols = [c for c in df.columns if c not in RUN_SPECIFIC_COLUMNS]
        pd.testing.assert_frame_equal(
            again[cols].sort_values(cols).reset_index(drop=True),
            df[cols].sort_values(cols).reset_index(drop=True),
            obj=name,
        )


def test_no_identifier_reaches_the_warehouse_event_log_or_output(damaged_runs):
    root = damaged_runs["root"]
    ids = landing_identifiers(damaged_runs["pristine"], own_vocabulary())
    assert min(len(v) for v in ids.values()) > 20
    log = root / "run_output.txt"
    log.write_text(
        "".join(damaged_runs[r].stdout + damaged_runs[r].stderr for r in ("damaged", "again"))
    )
    # the warehouse, the Dagster instance, the run's output, and the Great Expectations
    # results and Data Docs of the damaged run (failing suites describe the damaged files)
    quality = generated_quality_files(damaged_runs["landing"].parent / "quality")
    assert any(p.suffix == ".html" for p in quality) and any(p.suffix == ".json" for p in quality)
    persisted = files_under(root / "warehouse.db", root / "dagster_home", log) + quality
    assert scan(persisted, ids) == {}
    text = "\n".join(_text_of(p) for p in persisted if not p.name.endswith(("-wal", "-shm")))
    for form in (NON_ASCII_NAME, NON_ASCII_NAME.upper(), NON_ASCII_NAME.encode().decode("latin-1")):
        assert form not in text
    assert INVALID_NHS_NUMBER not in text


@pytest.mark.slow
def test_an_identifier_in_a_record_key_blocks_the_run_before_anything_is_written(
    small_synth, tmp_path
):
    """Free text no longer passes the door (every column has a contract), so the way left is a
    field whose format an identifier fits: a provider puts a patient's NHS number in ECDS's
    record id (ten digits fit its 8-14). The staged-row check finds the very identifier of a row
    being staged: nothing of staged_ecds is written, the step fails naming the columns, and the
    number is nowhere in storage or output."""
    src, _ = small_synth
    landing = tmp_path / "landing"
    for p in src.glob("*/2019-01/*.csv"):
        dest = landing / p.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    ecds = landing / "ae_rj1" / "2019-01" / "ecds.csv"
    df = pd.read_csv(ecds, dtype=str, keep_default_na=False)
    nhs = df.loc[df["NHS_Number"] != "", "NHS_Number"].iloc[1]
    df.loc[0, "Generated_Record_ID"] = nhs
    df.to_csv(ecds, index=False)
    env = project_env(
        landing, tmp_path, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY, SIM_INGEST_WORKERS="2"
    )
    r = cli("backfill", "--from", "2019-01", "--to", "2019-01", env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        "FAILED staged_ecds:no_direct_identifiers (identifier-like content in column(s) "
        "Generated_Record_ID, record_ref; nothing written)" in r.stdout
    ), r.stdout
    assert "nothing of the run was written" in r.stdout
    wh = Warehouse(env["SIM_WAREHOUSE_URL"])
    try:
        assert wh.count("staged_ecds") == 0
        ledger = wh.read("ingest_ledger")
        assert "ecds" not in set(ledger["table_name"])
        # other tables were written, in either process
        assert wh.count("staged_mhs001mpi") > 0 and wh.count("staged_police_cad_incidents") > 0
    finally:
        wh.dispose()
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as inst:
        assert not inst.get_materialized_partitions(dg.AssetKey("staged_ecds"))
        # the staged tables ran in two processes, a run each, then the rest of the graph:
        # without what lies downstream of staged_ecds (as one run would have skipped it), with
        # what does not (the unit costs)
        assert len(command_runs(inst)) == 3
        for held in ("ingest_summary", "drop_coverage", "person_index", "programme_headline"):
            assert inst.get_latest_materialization_event(dg.AssetKey(held)) is None, held
        assert inst.get_latest_materialization_event(dg.AssetKey("unit_costs")) is not None
    log = tmp_path / "out.txt"
    log.write_text(r.stdout + r.stderr)
    persisted = files_under(tmp_path / "warehouse.db", tmp_path / "dagster_home", log)
    text = "\n".join(_text_of(p) for p in persisted if not p.name.endswith(("-wal", "-shm")))
    assert nhs not in text


# ----------------------------------------------------------------------------- plain functions

TOK = Tokeniser(b"k" * 32)


class _TwoColumns(RawContract):
    """A contract with a check over the whole frame (pandera reports it without a row)."""

    ref: Series[str]
    kind: Series[str]

    @pa.dataframe_check(name="no_poison", error="a forbidden kind is present")
    def _no_poison(cls, df):
        return bool((df["kind"] != "poison").all())


TWO = SourceTable(
    asset_name="staged_two",
    table="two",
    providers=("p1", "p2"),
    contract=_TwoColumns,
    record_ref="ref",
    identifiers=IdentifierColumns(),
)


def _write(root: Path, source: str, text: str) -> None:
    path = root / source / "2019-03" / "two.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_whole_column_failure_rejects_only_its_own_file(tmp_path):
    _write(tmp_path, "p1", "ref,kind\nA1,ok\nA2,poison\nA3,ok\n")
    _write(tmp_path, "p2", "ref,kind\nB1,ok\nB2,ok\n")
    sm = stage_run(tmp_path, TWO, ["2019-03"], TOK)
    led = sm.ledger.set_index("source")
    assert (led.loc["p1", "file_status"], led.loc["p1", "rejection_rule"]) == (
        "rejected",
        "whole_column_contract",
    )
    assert led.loc["p1", ["rows_read", "rows_loaded", "rows_quarantined"]].tolist() == [3, 0, 3]
    assert led.loc["p2", ["rows_read", "rows_loaded", "rows_quarantined"]].tolist() == [2, 2, 0]
    assert sm.staged["record_ref"].tolist() == [ref_token(TOK, "p2", r) for r in ("B1", "B2")]
    q = sm.quarantine
    assert q["line_number"].tolist() == [2, 3, 4] and set(q["rule"]) == {"whole_column_contract"}
    assert q["reason"].str.startswith("p1/2019-03/two.csv: contract fails for whole columns").all()
    assert "poison" not in " ".join(q["reason"])  # the check's name and text, not a value
    assert [e.rule for e in sm.errors] == ["whole_column_contract"]


def test_clean_files_of_a_whole_frame_contract_all_load(tmp_path):
    _write(tmp_path, "p1", "ref,kind\nA1,ok\n")
    _write(tmp_path, "p2", "ref,kind\nB1,ok\n")
    sm = stage_run(tmp_path, TWO, ["2019-03"], TOK)
    assert sm.ok and set(sm.ledger["file_status"]) == {"loaded"} and len(sm.staged) == 2


@pytest.mark.parametrize(
    "data, lines",
    [
        (b"", []),
        (b"a,b\n", []),
        (b"a,b\n1,2\n3,4\n", [2, 3]),
        (b"a,b\r\n1,2\r\n\r\n3,4", [2, 4]),  # blank line skipped, no final newline
        (b'a,b\n1,"two\nlines"\n3,4\n', [2, 3, 4]),  # records untrusted: every line
        ("a,b\nZo\u00eb,2\n3,4\n".encode("cp1252"), [2, 3]),  # not UTF-8: counted as latin-1
        (b'a,b\n"1,2\n3,4\n', [2, 3]),  # not CSV (unclosed quote): physical lines
    ],
)
def test_data_line_numbers_locate_every_row_of_any_file(data, lines):
    assert data_line_numbers(data) == lines


def test_file_rules_are_stable_and_messages_hold_no_value(tmp_path):
    assert set(FILE_RULES) == {
        "file_empty",
        "file_encoding",
        "file_unparseable",
        "missing_column",
        "file_truncated",
        "whole_column_contract",
        "duplicate_column",
        "not_regular_file",
        "outside_landing",
        "file_too_large",
        "manifest_invalid",
        "manifest_mismatch",
        "contract_version",
    }
    with pytest.raises(ValueError):
        DropFileError("x.csv", "problem", "made_up_rule")
    table = BY_ASSET["staged_mhs001mpi"]
    path = tmp_path / "slam" / "2019-03" / table.file_name()
    path.parent.mkdir(parents=True)
    path.write_bytes(
        "OrgIDProv,LocalPatientId,PersonFamilyName\nRV5,SLAM-P1,Lef\u00e8vre\n".encode("cp1252")
    )
    sm = stage_run(tmp_path, table, ["2019-03"], TOK)
    assert set(sm.quarantine["rule"]) == {"file_encoding"}
    assert "Lef" not in " ".join(sm.quarantine["reason"])


def test_duplicate_keys_fail_on_a_repeated_key_and_pass_otherwise():
    clean = pd.DataFrame(
        {
            "source": ["slam", "slam", "slam", "oxleas"],
            "month": ["2019-01", "2019-02", "2019-01", "2019-01"],
            "record_ref": ["P1", "P1", "P2", "P1"],
        }
    )
    assert duplicate_record_keys(clean).empty  # same ref in another month or source is fine
    assert duplicate_record_keys(clean.iloc[:0]).empty
    broken = pd.concat([clean, clean.iloc[[0, 0]]], ignore_index=True)
    found = duplicate_record_keys(broken)
    assert found.to_dict("records") == [
        {"source": "slam", "month": "2019-01", "record_ref": "P1", "copies": 3}
    ]


def test_name_detector_finds_names_the_generator_wrote(small_synth):
    """The generator's names are independent of the detector's embedded lists."""
    src, _ = small_synth
    mpi = pd.concat(
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in sorted(src.glob("*/2019-0*/MHS001MPI.csv"))
    )
    full = (mpi["PersonGivenName"] + " " + mpi["PersonFamilyName"]).astype("string")
    leaked = pd.DataFrame(
        {
            "note": full,
            "contact": mpi["PersonFamilyName"].str.upper() + ", " + mpi["PersonGivenName"],
            "first": mpi["PersonGivenName"].astype("string"),
            "last": mpi["PersonFamilyName"].astype("string"),
        }
    )
    found = find_identifier_like(leaked)
    assert set(found) == {"note", "contact", "first", "last"}
    assert "full_name_like" in found["note"] and "full_name_like" in found["contact"]
    assert "name_word_column" in found["first"] and "name_word_column" in found["last"]


def test_name_detector_passes_the_staged_demo_vocabulary():
    """Boroughs, ethnicities, outcomes and codes look like words but are not names."""
    values = {
        "Borough": ["Greenwich", "Southwark", "Kingston", "Richmond", "Wandsworth", "Merton"]
        + ["Lambeth", "Lewisham", "Croydon", "Sutton", "Bexley", "Bromley"],
        "PerceivedEthnicity": ["White", "Black", "Asian", "Other", "Not stated"],
        "Outcome": ["NFA", "REFERRAL", "S136", "ARREST", "CHARGED"],
        "Transport": ["police_vehicle", "ambulance", "other"],
        "DischargeReason": ["goals_met", "disengaged", "moved_away"],
        "CallSource": ["999", "101", "PARTNER"],
        "IncidentNumber": ["CAD-2016-0125745", "CAD-2016-0125782"],
        "note": ["Police Station", "Kingston Hospital", "Mental Health Act"],
    }
    for col, vals in values.items():
        assert name_like_counts(pd.Series(vals, dtype="string")) == {}, col
    assert name_like_counts(pd.Series(["John Smith"], dtype="string")) == {"full_name_like": 1}
    assert name_like_counts(pd.Series(["Mary-Jane O'Brien Patel"], dtype="string")) == {
        "full_name_like": 1
    }


def test_no_direct_identifiers_passes_every_staged_table_of_a_real_run(damaged_runs):
    """Zero false positives on what ingest stages from the synthetic extracts."""
    for table in SOURCE_TABLES:
        staged = damaged_runs["after"][table.asset_name]
        text = staged.astype({c: "string" for c in staged.columns if staged[c].dtype == object})
        keys = ["record_ref", *table.key_columns]  # tokens since issue 16: held to token form
        assert find_identifier_like(text, token_columns=keys) == {}, table.asset_name
