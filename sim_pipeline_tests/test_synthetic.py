"""The synthetic generator: determinism, seed figures, layout, truth, contracts, the model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.synthetic import SynthSummary, generate

SEED = 11
SMALL = dict(people=800, comparison_people=150)
MONTHS = [str(p) for p in pd.period_range("2016-01", "2021-05", freq="M")]


def _run(root: Path, name: str, **kw) -> tuple[Path, Path, SynthSummary]:
    out, truth = root / name / "landing", root / name / "truth"
    summary = generate(out, truth, **{"seed": SEED, **SMALL, **kw})
    return out, truth, summary


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {
        "a": _run(root, "a"),
        "a_again": _run(root, "a_again"),
        "other_seed": _run(root, "other_seed", seed=SEED + 1),
        "half": _run(root, "half", true_effect=0.5),
    }


@pytest.fixture(scope="module")
def truth(runs):
    _, t, _ = runs["a"]
    return {
        "programme": _read(t / "programme.csv"),
        "pm": pd.read_csv(t / "person_month.csv", dtype={"true_person_id": str, "month": str}),
        "records": _read(t / "records.csv"),
    }


def test_same_seed_is_byte_identical_and_other_seed_differs(runs):
    out_a, truth_a, _ = runs["a"]
    out_b, truth_b, _ = runs["a_again"]
    out_c, truth_c, _ = runs["other_seed"]
    ha, hb, hc = _hashes(out_a), _hashes(out_b), _hashes(out_c)
    assert ha == hb
    assert _hashes(truth_a) == _hashes(truth_b)
    assert ha.keys() == hc.keys()
    differing = sum(ha[k] != hc[k] for k in ha)
    assert differing > len(ha) // 2
    assert _hashes(truth_a)["records.csv"] != _hashes(truth_c)["records.csv"]


def test_seed_review_figures(truth):
    prog = truth["programme"]
    assert len(prog) == 108
    assert prog["RegisterId"].is_unique and prog["true_person_id"].is_unique
    engaged = prog[prog["EngagementDate"].notna()]
    assert len(engaged) == 79
    alloc = pd.to_datetime(prog["AllocationDate"])
    assert alloc.min() >= pd.Timestamp("2018-01-01")
    assert alloc.max() <= pd.Timestamp("2020-12-31")
    late = prog["Borough"].isin(["Wandsworth", "Merton"])
    assert (alloc[late] >= pd.Timestamp("2018-11-01")).all()
    assert set(prog["Borough"]) == {
        "Greenwich", "Southwark", "Kingston", "Richmond", "Wandsworth", "Merton",
    }  # fmt: skip
    # months on programme recomputed from the dates (engagement month .. discharge month)
    eng = pd.to_datetime(engaged["EngagementDate"]).dt.to_period("M")
    dis = pd.to_datetime(engaged["DischargeDate"].fillna("2021-05-31")).dt.to_period("M")
    months = (dis - eng).apply(lambda d: d.n) + 1
    assert months.min() == 1 and months.max() == 25
    assert 12.5 <= months.mean() <= 13.5
    assert (months == engaged["months_on_programme"].astype(int)).all()
    lag = pd.to_datetime(engaged["EngagementDate"]) - alloc[engaged.index]
    assert lag.dt.days.between(0, 60).all()
    # discharge date and reason always come together; nobody past the end of the window
    assert (prog["DischargeDate"].isna() == prog["DischargeReason"].isna()).all()
    assert (pd.to_datetime(prog["DischargeDate"]) <= pd.Timestamp("2021-05-31")).all()


def test_layout_headers_and_truth_placement(runs):
    out, truth_dir, summary = runs["a"]
    expected = {(p, m, t.table) for t in SOURCE_TABLES for p in t.providers for m in MONTHS}
    found = {(f.parent.parent.name, f.parent.name, f.stem) for f in out.rglob("*.csv")}
    assert found == expected
    assert summary.files_written == len(expected) == 1690
    for t in SOURCE_TABLES:
        for p in t.providers:
            for m in (MONTHS[0], "2018-11", MONTHS[-1]):
                head = (out / p / m / t.file_name()).read_text(encoding="utf-8").split("\n")[0]
                assert head.split(",") == t.columns
    assert not any(out.rglob("records.csv")) and not any(out.rglob("person_month.csv"))
    assert out not in truth_dir.parents
    # register files are header-only before the programme started
    reg = out / "slam" / "2017-12" / "programme_register.csv"
    assert reg.read_text().count("\n") == 1


def test_every_landing_row_has_one_truth_record(runs, truth):
    out, _, summary = runs["a"]
    counts = truth["records"].groupby(["source", "table", "month"]).size().to_dict()
    total = 0
    for t in SOURCE_TABLES:
        for p in t.providers:
            for m in MONTHS:
                n = len(_read(out / p / m / t.file_name()))
                assert counts.get((p, t.table, m), 0) == n, (p, t.table, m)
                total += n
    assert total == len(truth["records"]) == sum(summary.rows_by_table.values())
    assert truth["records"]["true_person_id"].str.fullmatch(r"T\d{6}").all()


def test_contracts_catch_only_the_deliberate_errors(runs):
    out, _, _ = runs["a"]
    failing = rows = 0
    for t in SOURCE_TABLES:
        frames = [_read(out / p / m / t.file_name()) for p in t.providers for m in MONTHS]
        df = pd.concat(frames, ignore_index=True)
        try:
            t.contract.validate(df, lazy=True)
            bad = 0
        except pa.errors.SchemaErrors as exc:
            bad = exc.failure_cases["index"].dropna().nunique()
        assert bad <= 0.01 * len(df) + 2, (t.table, bad, len(df))
        failing += bad
        rows += len(df)
    assert 0 < failing < 0.01 * rows


def _window_use(pm: pd.DataFrame, people: pd.Series, starts: pd.Series, n: int, cols) -> float:
    """Mean monthly use over ``n`` months from each person's start month (inclusive)."""
    idx = {m: i for i, m in enumerate(MONTHS)}
    sub = pm[pm["true_person_id"].isin(set(people))].copy()
    start = dict(zip(people, starts.map(idx), strict=True))
    rel = sub["month"].map(idx) - sub["true_person_id"].map(start)
    inside = (rel >= 0) & (rel < n)
    return float(sub.loc[inside, cols].sum().sum()) / (n * len(people))


def test_regression_to_the_mean_with_no_effect(truth):
    prog, pm = truth["programme"], truth["pm"]
    alloc = pd.to_datetime(prog["AllocationDate"]).dt.to_period("M")
    cols = ["ae_attendances", "police_deployments"]
    before = _window_use(pm, prog["true_person_id"], (alloc - 12).astype(str), 12, cols)
    after = _window_use(pm, prog["true_person_id"], (alloc + 1).astype(str), 12, cols)
    assert before > 2.0  # calibrated to roughly 2 A&E + 1.5 police per person-month
    assert after < 0.8 * before


def test_true_effect_reduces_use_while_engaged(runs, truth):
    _, half_truth, summary = runs["half"]
    assert summary.true_effect == 0.5
    cols = ["ae_attendances", "ambulance_resources", "police_deployments", "s136_detentions"]
    prog = truth["programme"]
    engaged = prog[prog["EngagementDate"].notna()]
    eng = pd.to_datetime(engaged["EngagementDate"]).dt.to_period("M")
    dis = pd.to_datetime(engaged["DischargeDate"].fillna("2021-05-31")).dt.to_period("M")
    months = pd.concat(
        [
            pd.DataFrame({"true_person_id": pid, "month": pd.period_range(a, b).astype(str)})
            for pid, a, b in zip(engaged["true_person_id"], eng, dis, strict=True)
        ]
    )

    def use(pm: pd.DataFrame) -> float:
        return float(months.merge(pm, on=["true_person_id", "month"])[cols].sum().sum())

    pm_half = pd.read_csv(half_truth / "person_month.csv", dtype={"month": str})
    assert use(pm_half) < 0.8 * use(truth["pm"])
    # nothing before the programme started depends on the effect
    early = truth["pm"][truth["pm"]["month"] < "2018-01"].reset_index(drop=True)
    early_half = pm_half[pm_half["month"] < "2018-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(early, early_half)
    assert _read(half_truth / "programme.csv").equals(prog)


def test_refuses_truth_inside_landing(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path / "land", tmp_path / "land" / "truth", people=10)
    with pytest.raises(ValueError):
        generate(tmp_path / "land", tmp_path / "land", people=10)
    assert not (tmp_path / "land").exists()
