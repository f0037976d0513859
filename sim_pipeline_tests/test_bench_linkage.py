"""`sim-pipeline bench linkage`: one small run through the CLI, its JSON report and its tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.bench_linkage import METHODS, nhs_only_clusters, render
from sim_pipeline_tests.conftest import clean_env, cli


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, str]:
    root = tmp_path_factory.mktemp("bench_linkage")
    out = root / "linkage.json"
    r = cli(
        "bench",
        "linkage",
        "--people",
        "300",
        "--seed",
        "7",
        "--out",
        str(out),
        env=clean_env(),
        cwd=root,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), r.stdout


def test_report_has_the_three_methods_with_scores_in_range(bench):
    report, _ = bench
    assert list(report["methods"]) == list(METHODS)
    for name, m in report["methods"].items():
        for block in ("pairwise", "cohort", "cluster"):
            for k in ("precision", "recall", "f1"):
                assert 0.0 <= m[block][k] <= 1.0, (name, block, k)
        assert m["link_s"] > 0
        assert m["peak_rss_mib"] > 0 and m["peak_growth_mib"] >= 0
        assert {r["source_a"] for r in m["by_source_pair"]} >= {"ae", "police"}


def test_every_method_scores_the_same_records(bench):
    report, _ = bench
    counts = {m["records"] for m in report["methods"].values()}
    assert counts == {report["records"]}
    assert all(m["records_without_truth"] == 0 for m in report["methods"].values())
    assert report["unreadable_files"] == []
    assert report["records"] < report["rows"]  # MHSDS resends records: rows collapse
    assert report["methods"]["encoded"]["cohort"]["people"] == report["cohort_people"] == 108


def test_encoded_linkage_beats_nhs_number_only(bench):
    report, _ = bench
    nhs, enc = report["methods"]["nhs_only"], report["methods"]["encoded"]
    assert nhs["pairwise"]["recall"] < enc["pairwise"]["recall"]
    assert nhs["cohort"]["recall"] < enc["cohort"]["recall"]
    assert enc["pairwise"]["precision"] >= 0.95
    assert enc["cohort"]["precision"] >= 0.95
    # Police records carry no NHS number: NHS-only linkage cannot join them to health records.
    police = {
        (r["source_a"], r["source_b"]): r for r in nhs["by_source_pair"] if "police" in r.values()
    }
    assert police[("ae", "police")]["recall"] == 0.0


def test_tables_are_printed(bench):
    report, stdout = bench
    assert render(report) in stdout  # the tables are a function of the written report
    assert "pairwise F1 by source pair" in stdout
    assert all(name in stdout.splitlines()[4] for name in METHODS)  # methods as columns


def test_nhs_only_joins_equal_tokens_and_group_labels_only():
    rows = pd.DataFrame({"nhs_number_token": ["a", "a", None, None, "b", None]})
    groups = pd.DataFrame(
        {
            "record": ["r0", "r1", "r2", "r3", "r4", "r5"],
            "patient": [None, "p1", "p1", None, None, None],
        }
    )
    comp = nhs_only_clusters(rows, groups)
    same = comp[:, None] == comp[None, :]
    expected = np.zeros((6, 6), dtype=bool)
    for block in ([0, 1, 2], [3], [4], [5]):
        for i in block:
            for j in block:
                expected[i, j] = True
    assert (same == expected).all()
