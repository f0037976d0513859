"""Incremental linkage (`identity.incremental`): a new month's records linked against the people
already known, with the model the last full relink saved, against a full relink and the truth."""

from __future__ import annotations

import pandas as pd
import pytest

from sim_pipeline.identity import scoring as ev
from sim_pipeline.identity.incremental import link_new_records
from sim_pipeline.identity.linkage import LinkageOptions, link_encoded, stored_model
from sim_pipeline.identity.linkage_model import TOKEN_COLUMNS
from sim_pipeline.identity.person_index import assign_person_keys, index_records, linkage_rows
from sim_pipeline.warehouse import Warehouse
from sim_pipeline_tests.conftest import (
    cli,
    command_runs,
    copy_project,
    link_landing,
    project_env,
    truth_by_record,
)

RECORD = ["source", "table_name", "record_ref"]


@pytest.fixture(scope="module")
def before_and_after(staged_small):
    """A full relink of every month but the last (the index and model a deployment holds), and
    the rows of every month (the last month's drops arrived)."""
    staged, truth, months = staged_small
    last = months[-1]
    before = {k: v[v["month"] != last] for k, v in staged.items()}
    rows1, groups1 = linkage_rows(before)
    full1 = link_encoded(rows1, groups1, LinkageOptions())
    index1, _ = assign_person_keys(index_records(rows1, full1), recorded_at="t0")
    rows2, groups2 = linkage_rows(staged)
    return {
        "rows1": rows1,
        "groups1": groups1,
        "index1": index1,
        "model": full1.model,
        "rows2": rows2,
        "groups2": groups2,
        "truth": truth,
    }


def _incremental(d, rows, groups, index=None):
    previous = d["index1"] if index is None else index
    result, is_new = link_new_records(rows, groups, previous, d["model"], LinkageOptions())
    index, changes = assign_person_keys(index_records(rows, result), previous, "t1")
    return index, changes, result, is_new


def test_the_saved_model_is_splinks_json_without_values(before_and_after):
    model = before_and_after["model"]
    assert model["link_type"] == "dedupe_only"
    assert 0 < model["probability_two_random_records_match"] < 1
    levels = [lvl for c in model["comparisons"] for lvl in c["comparison_levels"]]
    assert all("m_probability" in lvl for lvl in levels if not lvl.get("is_null_level"))
    # the model holds SQL and numbers, never a token or an encoding of the data
    text = repr(model)
    tokens = before_and_after["rows2"]["nhs_number_token"].dropna().head(500)
    assert not any(t in text for t in tokens)


def test_known_keys_stay_new_records_are_linked_and_accuracy_holds(before_and_after):
    d = before_and_after
    index, changes, result, is_new = _incremental(d, d["rows2"], d["groups2"])
    index1 = d["index1"]
    # every record indexed once; every known record kept its key unless a recorded merge
    assert not index.duplicated(RECORD).any()
    assert len(index) == len(d["rows2"].drop_duplicates(RECORD))
    both = index1.merge(index, on=RECORD, suffixes=("_1", "_2"))
    assert len(both) == len(index1)
    moved = both[both["person_key_1"] != both["person_key_2"]]
    assert set(changes["change"]) <= {"merge"}  # an incremental run never splits a person
    assert int(changes["records_moved"].sum()) == len(moved)
    assert len(moved) / len(both) < 0.01
    assert result.counts["new_rows"] == int(is_new.sum()) > 0
    new_keys = index.loc[~index["record_ref"].isin(index1["record_ref"]), "person_key"]
    assert new_keys.isin(index1["person_key"]).mean() > 0.5  # most new records are known people
    # accuracy against the truth: the floors of the full relink's test
    recs = index.rename(columns={"person_key": "pred"})
    df = recs.merge(truth_by_record(d["truth"]), on=RECORD)
    assert len(df) == len(recs)
    score = ev.pairwise(df)
    assert score["precision"] >= 0.999
    assert score["recall"] >= 0.985
    # and against a full relink of the same rows (its clusters taken as the reference)
    full = link_encoded(d["rows2"], d["groups2"], LinkageOptions())
    ref = index_records(d["rows2"], full).rename(columns={"cluster": "true"})
    agree = ev.pairwise(recs.merge(ref[[*RECORD, "true"]], on=RECORD))
    assert agree["precision"] >= 0.995 and agree["recall"] >= 0.995


def test_nothing_new_changes_nothing(before_and_after):
    d = before_and_after
    known = d["rows2"].merge(d["index1"][RECORD], on=RECORD)
    rows = d["rows2"][d["rows2"].set_index(RECORD).index.isin(known.set_index(RECORD).index)]
    groups = d["groups2"].loc[rows.index]
    index, changes, result, is_new = _incremental(
        d, rows.reset_index(drop=True), groups.reset_index(drop=True)
    )
    assert not is_new.any() and changes.empty and result.pairs.empty
    a = index.sort_values(RECORD).reset_index(drop=True)
    b = d["index1"].sort_values(RECORD).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_a_new_record_of_a_known_person_takes_their_key(before_and_after):
    d = before_and_after
    index1 = d["index1"]
    known = d["rows2"].merge(index1[RECORD], on=RECORD)
    # a known record with an NHS number and a name: sent again under a new record key
    donor = known.dropna(subset=["nhs_number_token", "given_name_bf", "birth_date_token"]).iloc[0]
    copy = donor.to_frame().T.astype(known.dtypes.to_dict())
    copy["record_ref"] = "planted-new-record"
    rows = pd.concat([known, copy], ignore_index=True)
    groups = pd.DataFrame({"record": rows["source"] + "|" + rows["record_ref"]})
    index, changes, _, is_new = _incremental(d, rows, groups)
    assert int(is_new.sum()) == 1
    key = index.loc[index["record_ref"] == "planted-new-record", "person_key"].item()
    donor_key = index1.set_index(RECORD).loc[tuple(donor[RECORD]), "person_key"]
    assert key == donor_key
    # a record like no one known founds a new person with a key never issued
    stranger = copy.copy()
    stranger["record_ref"] = "planted-stranger"
    for c in TOKEN_COLUMNS:  # an NHS number and a birth date of their own, nothing else
        stranger[c] = "f" * 8 + c if c in ("nhs_number_token", "birth_date_token") else pd.NA
    stranger["given_name_bf"] = "0" * 256
    stranger["family_name_bf"] = "1" * 256
    rows = pd.concat([known, stranger], ignore_index=True)
    groups = pd.DataFrame({"record": rows["source"] + "|" + rows["record_ref"]})
    index, _, _, _ = _incremental(d, rows, groups)
    key = index.loc[index["record_ref"] == "planted-stranger", "person_key"].item()
    assert key not in set(index1["person_key"])


def test_incremental_linkage_refuses_without_a_model(before_and_after):
    d = before_and_after
    with pytest.raises(ValueError, match="saved model of a full relink"):
        link_new_records(d["rows2"], d["groups2"], d["index1"], {}, LinkageOptions())


def _graph_runs(root) -> int:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        return len(command_runs(instance))


def test_a_new_month_incrementally_through_the_cli(june_project, small_synth, tmp_path):
    """A deployment holding every month to June adds July's drops and runs the month with
    ``--linkage incremental``: known keys stay (or move only by a recorded merge), July's
    records are indexed, the model is the full relink's, and July's metrics are written. The
    month's staged tables are shared between two processes (the default on two cores; that
    the shares give one run's tables is `test_end_to_end.py::
    test_second_run_gives_identical_tables`, on the same `_parallel_ingest_runs`)."""
    root = copy_project(june_project["root"], tmp_path / "project")
    link_landing(small_synth[0], root / "landing", lambda m: m == "2019-07")
    env = project_env(root / "landing", root, SIM_LAST_MONTH="2019-07", SIM_INGEST_WORKERS="2")
    url = env["SIM_WAREHOUSE_URL"]
    wh = Warehouse(url)
    index1, model1 = wh.read("person_index"), wh.read("linkage_model")
    wh.dispose()
    assert len(model1) == 1  # the full relink saved its model
    args = ("backfill", "--from", "2019-07", "--to", "2019-07", "--linkage", "incremental")
    r = cli(*args, env=env, cwd=root)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 failed" in r.stdout
    # the command closed every SQLite database before leaving without the interpreter's
    # shutdown (`cli.pipeline.leave_now`): no write-ahead log or shared-memory file is left
    # beside the warehouse or the Dagster instance's files (each database is whole in its own
    # file), and nothing complains on the way out (DuckDB's bindings report the objects they
    # still hold as leaks when the interpreter tears its modules down with them alive)
    assert not sorted(p.name for p in root.rglob("*") if p.name.endswith(("-wal", "-shm")))
    assert "leaked" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert _graph_runs(root) == 4  # the two shares, the rest of the linking, what follows
    wh = Warehouse(url)
    try:
        index2, model2 = wh.read("person_index"), wh.read("linkage_model")
        changes = wh.read("person_key_changes")
        metrics = wh.read("person_month_metrics", {"month": ["2019-07"]})
        staged = wh.read("staged_ambulance_incidents", {"month": ["2019-07"]})
    finally:
        wh.dispose()
    pd.testing.assert_frame_equal(model1, model2)  # the model is kept, not retrained
    both = index1.merge(index2, on=RECORD, suffixes=("_1", "_2"))
    assert len(both) == len(index1)
    moved = both[both["person_key_1"] != both["person_key_2"]]
    # (no table until some run moves a record)
    assert set(changes.get("change", [])) <= {"merge"}
    assert len(moved) == int(changes.get("records_moved", pd.Series(dtype=int)).sum())
    assert len(staged) > 0 and staged["record_ref"].isin(index2["record_ref"]).all()
    assert len(index2) > len(index1)
    assert len(metrics) > 0


def test_nothing_after_the_first_phase_runs_when_the_index_was_not_linked(small_synth, tmp_path):
    """An incremental month on a warehouse no full relink has filled (no saved model): the
    month's tables are staged (in two processes), `person_index` fails naming the missing
    model, and the command stops there: no run of what follows, no events or metrics, and
    the exit status says so."""
    import dagster as dg

    root = tmp_path / "project"
    link_landing(small_synth[0], root / "landing", lambda m: m == "2019-01")
    env = project_env(root / "landing", root, SIM_LAST_MONTH="2019-01", SIM_INGEST_WORKERS="2")
    args = ("backfill", "--from", "2019-01", "--to", "2019-01", "--linkage", "incremental")
    r = cli(*args, env=env, cwd=root)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert "materialise person_index with mode 'full'" in r.stdout, r.stdout[-3000:]
    assert _graph_runs(root) == 3  # the two shares and the linking run; nothing after it
    wh = Warehouse(env["SIM_WAREHOUSE_URL"])
    try:
        assert wh.count("staged_ecds") > 0  # the month was staged
        assert wh.count("person_index") == 0
        assert wh.count("events") == 0 and wh.count("person_month_metrics") == 0
    finally:
        wh.dispose()
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        assert not instance.get_latest_materialization_event(dg.AssetKey("events"))


def test_incremental_linkage_refuses_on_a_warehouse_without_a_model(tmp_path):
    import dagster as dg

    from sim_pipeline.defs.linkage import saved_model

    wh = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with pytest.raises(dg.Failure, match="materialise person_index with mode 'full'"):
            saved_model(wh)
    finally:
        wh.dispose()


def _hand_warehouse(tmp_path, cohort: list[str]) -> str:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    wh = Warehouse(url)
    with wh.transaction() as tx:
        tx.replace_all(
            "person_key_changes",
            pd.DataFrame(
                {
                    "change": ["merge"],
                    "from_person_key": ["P00000002"],
                    "to_person_key": ["P00000001"],
                    "records_moved": [3],
                    "recorded_at": ["t"],
                    "run_id": ["run-a"],
                }
            ),
        )
        tx.replace_all(
            "person_dimension",
            pd.DataFrame(
                {
                    "person_key": ["P00000001", "P00000001", "P00000003"],
                    "month": ["2019-02", "2019-05", "2019-01"],
                    "sex": ["F", "F", "M"],
                    "age_band": ["25-34"] * 3,
                    "death_month": [None] * 3,
                }
            ),
        )
        tx.replace_all("cohort", pd.DataFrame({"person_key": cohort}))
    wh.dispose()
    return url


STUDY = ["2019-01", "2019-02", "2019-03", "2019-04", "2019-05", "2019-06"]


@pytest.mark.parametrize(
    ("cohort_before", "cohort_after", "run", "expected"),
    [
        # the merge's person has records in February and May; the cohort is unchanged
        ({"P00000001"}, ["P00000001"], "run-a", ["2019-02", "2019-05"]),
        # another run's changes are not this run's; nothing else changed
        ({"P00000001"}, ["P00000001"], "run-b", []),
        # the cohort lost a key (two members merged): every month of the study
        ({"P00000001", "P00000002"}, ["P00000001"], "run-b", STUDY),
        # and gained one
        ({"P00000001"}, ["P00000001", "P00000009"], "run-b", STUDY),
    ],
)
def test_months_an_incremental_run_touched(tmp_path, cohort_before, cohort_after, run, expected):
    from sim_pipeline.defs.orchestrate import months_touched

    url = _hand_warehouse(tmp_path, cohort_after)
    assert months_touched(url, run, cohort_before, STUDY) == expected


def test_the_stored_model_is_repeatable_and_holds_no_encoding(before_and_after):
    import json

    d = before_and_after
    stored = json.dumps(stored_model(d["model"]), sort_keys=True)
    assert "linker_uid" not in stored
    # a second training of the same rows stores the same text (EM's last bits are rounded off)
    staged_rows = d["rows1"], d["groups1"]
    again = link_encoded(*staged_rows, LinkageOptions()).model
    assert json.dumps(stored_model(again), sort_keys=True) == stored
    # no token or name encoding of any record, nor a word of one, is in it
    rows = d["rows2"]
    for column in [*TOKEN_COLUMNS, "given_name_bf", "family_name_bf"]:
        values = rows[column].dropna().unique()[:300]
        assert len(values) and not any(v in stored for v in values), column
        assert not any(v[:16] in stored for v in values if len(v) >= 16), column
