"""Publication: disclosure-controlled release, its scan, and the HTML report (hand-built tables)."""

from __future__ import annotations

import csv
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.publish.disclosure import is_count_column
from sim_pipeline.publish.release import build_release
from sim_pipeline.publish.release_files import scan_release, write_release
from sim_pipeline.publish.report import render_report, write_report
from sim_pipeline.publish.report_charts import trajectory_points

PY, VERSION = "2018/19", "2026.1"


def _estimate(analysis, population, outcome, method, estimate, n, n_comp, **kw):
    did = method == "difference_in_differences"
    row = {
        "analysis": analysis,
        "population": population,
        "outcome": outcome,
        "method": method,
        "scale": "risk_difference" if outcome == "deaths" else "relative_change",
        "estimate": estimate,
        "ci_low": estimate - 0.1 if did else np.nan,
        "ci_high": estimate + 0.1 if did else np.nan,
        "n_people": n,
        "n_comparison": n_comp if did else 0,
        "treated_baseline": 3090.4,
        "treated_followup": 1792.6,
        "comparison_baseline": 2950.2 if did else np.nan,
        "comparison_followup": 2100.9 if did else np.nan,
        "rtm_share": 0.61234 if did else np.nan,
        "price_year": PY,
        "unit_cost_version": VERSION,
    }
    row.update(kw)
    return row


def tables() -> dict[str, pd.DataFrame]:
    """Small warehouse tables with known values (not the pipeline)."""
    est = [
        _estimate("primary", "per_protocol", "total_cost", "naive_before_after", -0.4213, 79, 0),
        _estimate(
            "primary", "per_protocol", "total_cost", "difference_in_differences", -0.1234, 79, 312
        ),
        _estimate("primary", "itt", "total_cost", "naive_before_after", -0.3877, 108, 0),
        _estimate("primary", "itt", "total_cost", "difference_in_differences", -0.0821, 108, 401),
        # planted: a DiD on 3 people -> every statistic suppressed
        _estimate(
            "primary", "itt", "police_deployments", "difference_in_differences", -0.4567, 3, 40
        ),
        _estimate("primary", "itt", "arrests", "difference_in_differences", 0.0512, 108, 401),
        _estimate(
            "primary",
            "itt",
            "deaths",
            "difference_in_differences",
            0.00873,
            108,
            401,
            treated_baseline=0.0,
            treated_followup=0.0926,
            comparison_baseline=0.0,
            comparison_followup=0.0839,
            rtm_share=np.nan,
        ),
        # planted: 5 of 108 people died (risk 0.0463): a count of 1-7 behind a risk
        _estimate(
            "primary",
            "itt",
            "deaths",
            "naive_before_after",
            0.0463,
            108,
            0,
            treated_baseline=0.0,
            treated_followup=0.0463,
        ),
        _estimate(
            "baseline_6_months", "itt", "total_cost", "difference_in_differences", -0.0955, 104, 380
        ),
    ]
    balance = pd.DataFrame(
        {
            "analysis": ["primary", "primary"],
            "population": ["itt", "per_protocol"],
            "covariate": ["baseline_total_cost", "age"],
            "treated_mean": [3090.4, 35.2],
            "comparison_mean_before": [1200.7, 41.9],
            "smd_before": [0.81234, 0.5],
            "comparison_mean_after": [3011.2, 35.9],
            "smd_after": [0.04321, 0.2],
            "n_treated": [108, 5],
            "n_comparison_before": [2000, 2000],
            "n_comparison_after": [401, 312],
        }
    )
    months = list(range(-2, 3))
    traj = pd.DataFrame(
        {
            "analysis": "primary",
            "population": "itt",
            "group": ["programme"] * 5 + ["comparison"] * 5,
            "months_from_index": months * 2,
            # n: 0, 8, 12, 13, 3 (planted small cell) then large comparison cells
            "n_people": [0, 8, 12, 13, 3, 400, 401, 402, 403, 404],
            "mean_total_cost": [np.nan, 2500.4, 4100.6, 1800.2, 98765.4] + [2000.0] * 5,
        }
    )
    headline = pd.DataFrame(
        [
            (pop, stat, val)
            for pop, n in (("itt", 108), ("per_protocol", 79), ("per_protocol_over_6_months", 5))
            for stat, val in (
                ("n_allocated", 108),
                ("n_people", n),
                ("n_with_change", n),
                ("person_months", 1119),
                ("ratio_of_means_pct_change", -42.04 if pop == "per_protocol" else -38.77),
                ("mean_monthly_change_gbp", -1298.2 if n > 7 else -777.7),
                ("largest_individual_fall_gbp", 10134.0),
                ("min_months", 1.0),
                ("pct_with_cost_fall", 71.2963),
                ("total_change_gbp_simple", -570208.75),
            )
        ],
        columns=["population", "statistic", "value"],
    ).assign(price_year=PY, unit_cost_version=VERSION)
    rates = pd.DataFrame(
        {
            "dimension": ["overall", "overall", "borough"],
            "value": ["all", "all", "Merton"],
            "source_group": ["police", "ae", "police"],
            "records": [1000, 2002, 40],
            "linked": [640, 3, 37],
            "link_rate": [0.64, 0.0015, 0.925],
        }
    )
    implausible = pd.DataFrame(
        {"rule": ["two_death_dates", "activity_after_death"], "description": ["x", "y"]}
    ).assign(persons=[0, 4])
    costs = pd.DataFrame(
        {
            "metric": ["police_deployments", "ae_attendances"],
            "item": ["police deployment", "A&E attendance"],
            "unit_cost_gbp": [250.0, 192.0],
            "source_price_year": ["2018/19", "2018/19"],
            "source": ["ASSUMPTION: no sourced cost found", "NSRC 2019"],
            "sourced": [False, True],
            "inflation_factor": [1.0, 1.0],
            "unit_cost_at_price_year": [250.0, 192.0],
            "price_year": PY,
            "unit_cost_version": VERSION,
            "cost_flags": "unsourced_assumption:police_deployments;price_index_unverified",
        }
    )
    return {
        "evaluation_estimates": pd.DataFrame(est),
        "evaluation_balance": balance,
        "evaluation_trajectory": traj,
        "programme_headline": headline,
        "linkage_link_rates": rates,
        "linkage_implausible": implausible,
        "unit_costs": costs,
    }


def _cell(df: pd.DataFrame, column: str, **where: object) -> str:
    mask = pd.Series(True, index=df.index)
    for k, v in where.items():
        mask &= df[k] == v
    assert mask.sum() == 1, where
    return df.loc[mask, column].iloc[0]


RELEASE_CSVS = {
    "evaluation_estimates.csv",
    "evaluation_sensitivity.csv",
    "evaluation_balance.csv",
    "evaluation_trajectory.csv",
    "headline.csv",
    "harms.csv",
    "linkage_quality.csv",
    "linkage_implausible.csv",
    "unit_costs.csv",
}
ESTIMATE_HEADER = [
    "analysis", "population", "outcome", "method", "scale", "estimate", "ci_low", "ci_high",
    "n_people", "n_comparison", "treated_baseline", "treated_followup", "comparison_baseline",
    "comparison_followup", "rtm_share", "bootstrap_failed", "price_year", "unit_cost_version",
    "note",
]  # fmt: skip
# Expected released cells, derived by hand from `tables()`: relative changes and shares to
# 3 dp, GBP levels to whole pounds, counts to the nearest 5 (108 -> 110, 79 -> 80, 401 -> 400,
# 312 -> 310), each DiD interval = estimate -/+ 0.1 as planted.
ITT_DID = {
    "estimate": "-0.082", "ci_low": "-0.182", "ci_high": "0.018",  # -0.0821 -/+ 0.1
    "n_people": "110", "n_comparison": "400",
    "treated_baseline": "3090", "treated_followup": "1793",  # 3090.4, 1792.6
    "comparison_baseline": "2950", "comparison_followup": "2101",  # 2950.2, 2100.9
    "rtm_share": "0.612", "price_year": PY, "unit_cost_version": VERSION,  # 0.61234
}  # fmt: skip
PP_DID = ITT_DID | {
    "estimate": "-0.123", "ci_low": "-0.223", "ci_high": "-0.023",  # -0.1234 -/+ 0.1
    "n_people": "80", "n_comparison": "310",
}  # fmt: skip
# Row order: analysis, population (itt before per_protocol), outcome (use outcomes, then harms),
# method (naive before DiD); the baseline_6_months row only in the sensitivity file.
ESTIMATE_ROWS = [
    ("itt", "total_cost", "naive_before_after"),
    ("itt", "total_cost", "difference_in_differences"),
    ("itt", "police_deployments", "difference_in_differences"),
    ("itt", "arrests", "difference_in_differences"),
    ("itt", "deaths", "naive_before_after"),
    ("itt", "deaths", "difference_in_differences"),
    ("per_protocol", "total_cost", "naive_before_after"),
    ("per_protocol", "total_cost", "difference_in_differences"),
]


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A written CSV as its header and rows of text (what a reader of the release gets)."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_release_files_and_rounding(tmp_path):
    rel = build_release(tables())
    assert set(rel) == RELEASE_CSVS
    written = write_release(rel, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == RELEASE_CSVS | {"README.txt"}
    assert {p.name for p in written} == RELEASE_CSVS | {"README.txt"}
    # what is on disk, read back as text: the cells below are the published ones
    header, rows = _read(tmp_path / "evaluation_estimates.csv")
    assert header == ESTIMATE_HEADER
    assert [(r["population"], r["outcome"], r["method"]) for r in rows] == ESTIMATE_ROWS
    assert {r["analysis"] for r in rows} == {"primary"}
    for pop, expected in (("itt", ITT_DID), ("per_protocol", PP_DID)):
        (row,) = [
            r for r in rows
            if (r["population"], r["outcome"], r["method"])
            == (pop, "total_cost", "difference_in_differences")
        ]  # fmt: skip
        assert {k: row[k] for k in expected} == expected, pop
    naive_pp = rows[ESTIMATE_ROWS.index(("per_protocol", "total_cost", "naive_before_after"))]
    assert (naive_pp["estimate"], naive_pp["ci_low"], naive_pp["ci_high"]) == ("-0.421", "", "")
    assert naive_pp["n_comparison"] == "0" and naive_pp["comparison_baseline"] == ""
    arrests = rows[ESTIMATE_ROWS.index(("itt", "arrests", "difference_in_differences"))]
    # not a cost: levels per person-month to 3 dp, not whole pounds
    assert (arrests["estimate"], arrests["ci_low"], arrests["ci_high"]) == (
        "0.051", "-0.049", "0.151",
    )  # fmt: skip
    assert (arrests["treated_baseline"], arrests["comparison_followup"]) == ("3090.400", "2100.900")
    assert all(r["price_year"] == PY and r["unit_cost_version"] == VERSION for r in rows)
    e = _frame(tmp_path / "evaluation_estimates.csv")
    assert set(e["analysis"]) == {"primary"}
    did = dict(population="per_protocol", outcome="total_cost", method="difference_in_differences")
    assert _cell(e, "estimate", **did) == "-0.123"  # relative change to 3 dp
    assert _cell(e, "treated_baseline", **did) == "3090"  # GBP to whole pounds
    assert _cell(e, "n_people", **did) == "80"  # 79 -> 80
    assert _cell(e, "n_comparison", **did) == "310"
    assert _cell(e, "price_year", **did) == PY
    assert "bootstrap" in _cell(e, "note", **did)
    assert "unsourced_assumption:police_deployments" in _cell(e, "note", **did)
    naive = dict(population="itt", outcome="total_cost", method="naive_before_after")
    assert _cell(e, "n_comparison", **naive) == "0" and _cell(e, "ci_low", **naive) == ""
    assert _cell(e, "estimate", **naive) == "-0.388"  # -0.3877
    deaths = dict(outcome="deaths", method="difference_in_differences")
    # deaths: risks from counts rounded to 5, so risk x n gives no exact count back:
    # members 0.0926 x 108 = 10 deaths -> 10 / 110; comparisons 0.0839 x 401 = 34 -> 35 / 400
    assert _cell(e, "treated_followup", **deaths) == "0.091"
    assert _cell(e, "comparison_followup", **deaths) == f"{35 / 400:.3f}"
    assert _cell(e, "estimate", **deaths) == f"{10 / 110 - 35 / 400:.3f}"
    assert len(_cell(e, "ci_low", **deaths).split(".")[1]) == 2  # the interval to 2 dp
    assert (_cell(e, "ci_low", **deaths), _cell(e, "ci_high", **deaths)) == ("-0.09", "0.11")
    s = _frame(tmp_path / "evaluation_sensitivity.csv")
    assert set(s["outcome"]) == {"total_cost"}
    assert set(s["analysis"]) == {"primary", "baseline_6_months"}
    six = dict(analysis="baseline_6_months")
    # -0.0955 -> -0.096; 104 -> 105 people; 380 comparisons stay 380
    assert (_cell(s, "estimate", **six), _cell(s, "n_people", **six)) == ("-0.096", "105")
    assert _cell(s, "n_comparison", **six) == "380"
    assert len(s) == 5  # 4 primary total-cost rows + 1 sensitivity row
    assert set(_frame(tmp_path / "harms.csv")["outcome"]) == {"arrests", "deaths"}
    u = _frame(tmp_path / "unit_costs.csv")
    assert _cell(u, "note", metric="police_deployments").startswith("ASSUMPTION")
    assert _cell(u, "unit_cost_gbp", metric="ae_attendances") == "192.00"
    assert _cell(u, "sourced", metric="police_deployments") == "false"
    # one price year and unit-cost version on every released table that carries one
    for name in sorted(RELEASE_CSVS):
        df = _frame(tmp_path / name)
        if "price_year" in df.columns:
            assert set(df["price_year"]) == {PY}, name
            assert set(df["unit_cost_version"]) == {VERSION}, name
    readme = (tmp_path / "README.txt").read_text()
    assert f"Costs: GBP at price year {PY}, unit costs version {VERSION}." in readme
    h = _frame(tmp_path / "headline.csv")
    assert len(h) == 3 * 8  # 3 populations x 10 statistics, 2 of them withheld
    assert _cell(h, "value", population="itt", statistic="n_allocated") == "110"
    assert _cell(h, "value", population="itt", statistic="person_months") == "1120"  # 1119
    assert _cell(h, "value", population="itt", statistic="mean_monthly_change_gbp") == "-1298"


def test_counts_of_1_to_7_are_suppressed_and_others_rounded_to_5():
    t = build_release(tables())["evaluation_trajectory.csv"]
    prog = t[t["group"] == "programme"]
    assert prog["n_people"].tolist() == ["0", "10", "10", "15", "*"]  # 0, 8, 12, 13, 3
    assert prog["mean_total_cost"].tolist() == ["", "2500", "4101", "1800", "*"]
    assert prog["months_from_index"].tolist() == ["-2", "-1", "0", "1", "2"]
    assert t["price_year"].eq(PY).all() and t["unit_cost_version"].eq(VERSION).all()
    imp = build_release(tables())["linkage_implausible.csv"]
    assert _cell(imp, "persons", rule="activity_after_death") == "*"
    assert _cell(imp, "persons", rule="two_death_dates") == "0"


def test_statistics_on_1_to_7_people_are_suppressed():
    rel = build_release(tables())
    e = rel["evaluation_estimates.csv"]
    row = e[e["outcome"] == "police_deployments"].iloc[0]
    assert row["n_people"] == "*"
    for col in ("estimate", "ci_low", "ci_high", "treated_baseline", "rtm_share"):
        assert row[col] == "*", col
    assert row["comparison_baseline"] == "2950.200"  # 40 comparison people: shown (3 dp)
    dead = e[(e["outcome"] == "deaths") & (e["method"] == "naive_before_after")].iloc[0]
    assert (dead["estimate"], dead["ci_low"], dead["treated_followup"]) == ("*", "", "*")
    assert dead["n_people"] == "110"
    b = rel["evaluation_balance.csv"]
    five = b[b["population"] == "per_protocol"].iloc[0]  # n_treated = 5
    assert (five["treated_mean"], five["smd_before"], five["smd_after"]) == ("*", "*", "*")
    assert five["comparison_mean_before"] == "41.900"
    big = b[b["population"] == "itt"].iloc[0]
    assert (big["smd_after"], big["treated_mean"]) == ("0.043", "3090")
    h = rel["headline.csv"]
    assert _cell(h, "value", population="per_protocol_over_6_months", statistic="n_people") == "*"
    five_pct = dict(population="per_protocol_over_6_months", statistic="mean_monthly_change_gbp")
    assert _cell(h, "value", **five_pct) == "*"
    pp = dict(population="per_protocol", statistic="ratio_of_means_pct_change")
    assert _cell(h, "value", **pp) == "-42.0"
    # from the rounded counts: 71.2963% of 108 = 77 people; 100 * 75 / 110 = 68.2 (71.3 to
    # one decimal gave n = 108 back)
    assert _cell(h, "value", population="itt", statistic="pct_with_cost_fall") == "68.2"
    # of 79: 56 people; 100 * 55 / 80 = 68.75
    assert _cell(h, "value", population="per_protocol", statistic="pct_with_cost_fall") == "68.8"
    assert _cell(h, "value", population="itt", statistic="total_change_gbp_simple") == "-570209"
    assert set(h["method"]) == {"naive_before_after"}
    assert h["note"].str.contains("naive").all()
    q = rel["linkage_quality.csv"]
    # linked = 3 -> count and rate suppressed (rate x records would give 3 back)
    assert (_cell(q, "linked", source_group="ae"), _cell(q, "link_rate", source_group="ae")) == (
        "*",
        "*",
    )
    # unlinked = 3 (40 - 37) -> rate suppressed too
    assert _cell(q, "link_rate", dimension="borough") == "*"
    assert _cell(q, "link_rate", source_group="police", dimension="overall") == "0.640"


def _band(v: int) -> list[int]:
    """Counts that publish as ``v`` does (same rounding to 5, same 1-7 status)."""
    from sim_pipeline.publish.disclosure import control_count

    return [w for w in range(max(v - 4, 0), v + 5) if control_count(w) == control_count(v)]


def test_published_rates_cannot_give_back_a_count():
    """An attacker knows a published rate and the rounded counts beside it and looks for the
    exact n. Rates are made from the rounded counts, so every n (and numerator) in the rounding
    band publishes the very same release: nothing tells them apart."""
    base = tables()
    release = build_release(base)
    rates = base["linkage_link_rates"]
    for i in rates.index:
        for records in _band(int(rates.at[i, "records"])):
            for linked in _band(int(rates.at[i, "linked"])):
                if linked > records:
                    continue
                t = {k: v.copy() for k, v in base.items()}
                t["linkage_link_rates"].loc[i, ["records", "linked"]] = [records, linked]
                t["linkage_link_rates"].loc[i, "link_rate"] = linked / records
                out = build_release(t)["linkage_quality.csv"]
                pd.testing.assert_frame_equal(out, release["linkage_quality.csv"])
    head = base["programme_headline"]
    for pop in ("itt", "per_protocol"):
        at = (head["population"] == pop) & (head["statistic"] == "n_with_change")
        n0 = int(head.loc[at, "value"].iloc[0])
        pct = head.loc[(head["population"] == pop) & (head["statistic"] == "pct_with_cost_fall")]
        k0 = round(float(pct["value"].iloc[0]) / 100 * n0)
        seen = set()
        for n in _band(n0):
            for k in _band(k0):
                t = {key: v.copy() for key, v in base.items()}
                h = t["programme_headline"]
                h.loc[(h["population"] == pop) & (h["statistic"] == "n_with_change"), "value"] = n
                h.loc[
                    (h["population"] == pop) & (h["statistic"] == "pct_with_cost_fall"), "value"
                ] = 100 * k / n
                out = build_release(t)["headline.csv"]
                seen.add(_cell(out, "value", population=pop, statistic="pct_with_cost_fall"))
        assert len(seen) == 1, (pop, seen)
    # the attack that worked before: the exact share to one decimal pins n in its band
    exact = {n for n in _band(108) if any(round(100 * k / n, 1) == 71.3 for k in range(n + 1))}
    assert exact == {108}


def test_individual_values_are_never_released():
    rel = build_release(tables())
    h = rel["headline.csv"]
    assert "largest_individual_fall_gbp" not in set(h["statistic"])
    assert "min_months" not in set(h["statistic"])
    text = "".join(df.to_csv() for df in rel.values())
    assert "10134" not in text


@pytest.mark.parametrize("column", ["person_key", "register_id", "nhs_number_token"])
def test_an_identifier_column_raises(column):
    t = tables()
    t["evaluation_trajectory"] = t["evaluation_trajectory"].assign(**{column: "P1"})
    with pytest.raises(ValueError, match=column):
        build_release(t)


def test_mixed_price_years_raise():
    t = tables()
    t["unit_costs"] = t["unit_costs"].assign(price_year="2020/21")
    with pytest.raises(ValueError, match="price_year"):
        build_release(t)


def test_scan_passes_the_clean_release_and_flags_planted_counts(tmp_path):
    write_release(build_release(tables()), tmp_path)
    assert scan_release(tmp_path) == []
    path = tmp_path / "evaluation_trajectory.csv"
    rows = list(csv.DictReader(path.open()))
    rows[0]["n_people"] = "3"
    rows[1]["n_people"] = "12"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    findings = scan_release(tmp_path)
    assert len(findings) == 2, findings
    assert "evaluation_trajectory.csv row 1 column 'n_people': '3'" in findings[0]
    assert "evaluation_trajectory.csv row 2 column 'n_people': '12'" in findings[1]


def test_scan_flags_long_form_counts_and_identifier_columns(tmp_path):
    pd.DataFrame({"statistic": ["n_people", "mean_months"], "value": ["5", "13.2"]}).to_csv(
        tmp_path / "headline.csv", index=False
    )
    pd.DataFrame({"person_key": ["abc"], "records": ["20"]}).to_csv(
        tmp_path / "leak.csv", index=False
    )
    findings = scan_release(tmp_path)
    assert any("headline.csv row 1 column 'value': '5'" in f for f in findings), findings
    assert any("leak.csv: column 'person_key'" in f for f in findings), findings
    assert len(findings) == 2
    assert scan_release(tmp_path / "absent") != []


def test_count_columns_by_name():
    for name in ("n_people", "n_comparison_after", "records", "linked", "persons", "person_months"):
        assert is_count_column(name), name
    for name in ("months_from_index", "link_rate", "population", "mean_total_cost", "scale"):
        assert not is_count_column(name), name


def test_write_release_is_deterministic_atomic_and_removes_stale_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (b).mkdir()
    (b / "old_table.csv").write_text("n_people\n3\n")
    pa = write_release(build_release(tables()), a)
    pb = write_release(build_release(tables()), b)
    assert [p.name for p in pa] == [p.name for p in pb]
    assert pa[-1].name == "README.txt"
    for x, y in zip(pa, pb, strict=True):
        assert x.read_bytes() == y.read_bytes(), x.name
    assert not (b / "old_table.csv").exists()
    assert not list(b.glob(".*tmp"))  # no temporary files left
    readme = (a / "README.txt").read_text()
    for name in ("evaluation_estimates.csv", "harms.csv", "unit_costs.csv"):
        assert name in readme
    assert "largest_individual_fall_gbp" in readme and "1-7" in readme
    assert "unsourced_assumption:police_deployments" in readme
    # a table dropped from the release is removed on the next write
    rel = build_release(tables())
    del rel["harms.csv"]
    write_release(rel, a)
    assert not (a / "harms.csv").exists()
    assert "harms.csv: not produced" in (a / "README.txt").read_text()


class _Page(HTMLParser):
    """The report's visible structure: headings, paragraphs (with their class), tables (the
    heading they sit under, then rows of cell text) and images."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.paragraphs: list[tuple[str, str]] = []
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.images: list[str] = []
        self.items: list[str] = []  # list items' text
        self._item: list[str] | None = None
        self._text: list[str] | None = None
        self._p_class = ""
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2", "h3", "p"):
            self._text, self._p_class = [], a.get("class") or ""
        elif tag == "table":
            self.tables.append((self.headings[-1] if self.headings else "", []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._text is not None:
            self.headings.append("".join(self._text).strip())
            self._text = None
        elif tag == "p" and self._text is not None:
            self.paragraphs.append((self._p_class, "".join(self._text).strip()))
            self._text = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None
        elif tag == "li" and self._item is not None:
            self.items.append("".join(self._item).strip())
            self._item = None

    def handle_data(self, data):
        for buf in (self._text, self._cell, self._item):
            if buf is not None:
                buf.append(data)

    def table(self, heading: str, n: int = 0) -> list[list[str]]:
        """Rows (header first) of the ``n``-th table under ``heading``."""
        return [rows for h, rows in self.tables if h == heading][n]

    def paragraph(self, cls: str, n: int | None = None) -> str:
        """The one paragraph of class ``cls`` (or its ``n``-th)."""
        found = [t for c, t in self.paragraphs if c == cls]
        if n is not None:
            return found[n]
        (text,) = found
        return text


DASH = "\u2013"  # an empty released cell
# The page's figures derived by hand from `tables()` and the release rule: relative changes as
# signed percentages to 1 dp of the released 3-dp value (-0.4213 -> -0.421 -> -42.1%), shares as
# whole percentages (0.61234 -> 0.612 -> 61%), counts rounded to 5, 1-7 people as '*'.
SUMMARY = (
    "On the naive before/after comparison the programme review used (ratio of mean monthly "
    "cost per person), cost fell by 42.0% (per-protocol) and fell by 38.8% (intention to "
    "treat). Against matched comparison people followed over the same months, the "
    "difference-in-differences estimate of the change in mean monthly cost is -12.3% (95% CI "
    "-22.3% to -2.3%) per-protocol; -8.2% (95% CI -18.2% to +1.8%) intention to treat. The "
    "comparison group's own change accounts for 61% (per-protocol) and 61% (intention to "
    "treat) of the naive change (regression to the mean)."
)
ESTIMATES_TABLE = [
    ["outcome", "population", "naive before/after", "difference-in-differences", "95% CI",
     "share of naive change seen in comparison group", "programme people", "comparison people"],
    ["total_cost", "per-protocol", "-42.1%", "-12.3%", "-22.3% to -2.3%", "61%", "80", "310"],
    ["total_cost", "intention to treat", "-38.8%", "-8.2%", "-18.2% to +1.8%", "61%", "110",
     "400"],
    # DiD on 3 people: every statistic and the count suppressed; 40 comparisons shown
    ["police_deployments", "intention to treat", DASH, "*", "*", "*", "*", "40"],
]  # fmt: skip
HEADLINE_TABLE = [
    ["statistic", "itt", "per_protocol", "per_protocol_over_6_months"],
    ["n_allocated", "110", "110", "110"],
    ["n_people", "110", "80", "*"],
    ["person_months", "1120", "1120", "1120"],
    ["pct_with_cost_fall", "68.2", "68.8", "*"],
    ["ratio_of_means_pct_change", "-38.8", "-42.0", "*"],
    ["mean_monthly_change_gbp", "-1298", "-1298", "*"],
]
SENSITIVITY_TABLE = [
    ["primary", "intention to treat", "naive before/after", "-38.8%", DASH, "110", "0"],
    ["primary", "intention to treat", "difference-in-differences", "-8.2%", "-18.2% to +1.8%",
     "110", "400"],
    ["primary", "per-protocol", "naive before/after", "-42.1%", DASH, "80", "0"],
    ["primary", "per-protocol", "difference-in-differences", "-12.3%", "-22.3% to -2.3%", "80",
     "310"],
    # -0.0955 -> -0.096 -> -9.6%; -0.0955 + 0.1 = 0.0045 -> 0.005 -> +0.5%; 104 -> 105
    ["baseline_6_months", "intention to treat", "difference-in-differences", "-9.6%",
     "-19.6% to +0.5%", "105", "380"],
]  # fmt: skip
HARMS_TABLE = [
    ["arrests", "intention to treat", "difference-in-differences", "+5.1%", "-4.9% to +15.1%",
     "110", "400"],
    # 5 of 108 people died (0.0463 x 108): suppressed, with its interval left out
    ["deaths", "intention to treat", "naive before/after", "*", DASH, "110", "0"],
    # risks from counts rounded to 5: 10 / 110 - 35 / 400 = 0.0034 -> 0.003 -> +0.30 pp
    ["deaths", "intention to treat", "difference-in-differences", "+0.30 pp",
     "-9.00 pp to +11.00 pp", "110", "400"],
]  # fmt: skip
BALANCE_TABLE = [
    ["intention to treat", "baseline_total_cost", "3090", "1201", "0.812 \u2717", "3011",
     "0.043 \u2713", "110", "400"],
    # 5 programme people: their mean and both SMDs suppressed
    ["per-protocol", "age", "*", "41.900", "*", "35.900", "*", "*", "310"],
]  # fmt: skip


def _check_page(page: str) -> _Page:
    """The report's content against the figures derived by hand above."""
    doc = _Page(page)
    assert doc.headings[0] == (
        "SIM evaluation: the headline saving beside the comparison-group estimate"
    )
    assert doc.paragraph("summary") == SUMMARY
    assert f"Costs are GBP at price year {PY}." in doc.paragraph("caution")
    assert doc.table("Headline beside the adjusted estimate") == ESTIMATES_TABLE
    assert doc.table("The review's headline, recomputed (naive)") == HEADLINE_TABLE
    assert doc.table("Sensitivity of the total-cost estimate")[1:] == SENSITIVITY_TABLE
    assert [r[:7] for r in doc.table("Harms (balancing measures)")[1:]] == HARMS_TABLE
    assert doc.table("Balance of programme and comparison people")[1:] == BALANCE_TABLE
    assert doc.table("Linkage quality")[1:] == [
        ["overall", "all", "ae", "2000", "*", "*"],  # 3 linked: count and rate suppressed
        ["overall", "all", "police", "1000", "640", "0.640"],
    ]
    assert doc.table("Link rates by age band, sex and borough")[1:] == [
        ["borough", "Merton", "police", "40", "35", "*"]
    ]
    assert doc.table("Implausible links")[1:] == [
        ["activity_after_death", "y", "*"],
        ["two_death_dates", "x", "0"],
    ]
    costs = doc.table("Unit costs")
    assert [r[:8] for r in costs[1:]] == [
        ["ae_attendances", "A&E attendance", "192.00", PY, "1.0000", "192.00", PY, "NSRC 2019"],
        ["police_deployments", "police deployment", "250.00", PY, "1.0000", "250.00", PY,
         "ASSUMPTION: no sourced cost found"],
    ]  # fmt: skip
    assert f"Unit costs version {VERSION}." in [t for _, t in doc.paragraphs]
    assert len(doc.images) == 2  # the trajectory and the forest chart, inline
    assert all(src.startswith("data:image/png;base64,") for src in doc.images)
    return doc


def test_report_states_the_primary_estimate_its_diagnostics_and_sensitivity():
    """The primary design's rows in plain words from the release: the 12-month ITT holding no
    change, a placebo that failed (said plainly, with the warning not to rely on it), the
    negative control that held, the E-value from the released figures, the event study."""
    t = tables()
    design = [
        ("itt_months_0_11", "total_cost", 0.0312, -0.1204, 0.2011),
        ("cace_months_0_11", "total_cost", 0.0421, -0.1627, 0.2718),
        ("placebo_in_time_months_m12_m4", "total_cost", 0.2503, 0.1002, 0.4004),
        ("negative_control_months_m12_m1", "community_contacts", -0.0103, -0.0701, 0.0502),
    ]
    rows = [
        _estimate("primary", pop, outcome, "matched_bias_corrected", e, 98, 300,
                  ci_low=lo, ci_high=hi, n_comparison=300)
        for pop, outcome, e, lo, hi in design
    ]  # fmt: skip
    t["evaluation_estimates"] = pd.concat([t["evaluation_estimates"], pd.DataFrame(rows)])
    event = pd.DataFrame(
        {
            "analysis": "primary",
            "population": "itt_months_0_23",
            "group": ["programme"] * 3 + ["counterfactual"] * 3,
            "months_from_index": [-1, 0, 1] * 2,
            "n_people": [60] * 6,
            "mean_total_cost": [3000.0, 2500.0, 2000.0, 2900.0, 2450.0, 2100.0],
        }
    )
    t["evaluation_trajectory"] = pd.concat([t["evaluation_trajectory"], event])
    rel = build_release(t)
    assert set(rel["evaluation_trajectory.csv"]["group"]) >= {"counterfactual"}
    doc = _Page(render_report({}, rel))
    assert doc.paragraph("plain") == (
        "Over the 12 months from allocation: +3.1%, no detectable effect: the interval runs "
        "from -12% to +20%."
    )
    table = doc.table("The primary estimate: members against people alike at the same month")
    assert table[1] == [
        "months 0-11", "ITT: everyone allocated", "+3.1%", "-12.0% to +20.1%", "100",
        "no detectable effect: the interval runs from -12% to +20%",
    ]  # fmt: skip
    assert table[2][:4] == ["months 0-11", "CACE: those who engaged", "+4.2%", "-16.3% to +27.2%"]
    items = " | ".join(t for _, t in doc.paragraphs) + " | " + " | ".join(doc.items)
    assert (
        "placebo in time (index a year early, months -12..-4): +25.0% [+10.0%, +40.0%]: FAILED"
        in items
    )
    assert (
        "negative control (community contacts in the year before): -1.0% [-7.0%, +5.0%]: "
        "passed" in items
    )
    # E-value of a ratio 1.031: 1.031 + sqrt(1.031 x 0.031) = 1.21; the interval holds 0
    assert "by a risk ratio of 1.21 each" in items
    assert "(its interval already holds no change)" in items
    assert "Diagnostics failed: do not rely on the primary estimate." in doc.paragraph("caution", 1)
    assert len(doc.images) == 3  # trajectory, event study, forest


def test_report_shows_naive_and_did_and_no_suppressed_value(tmp_path):
    t = tables()
    rel = build_release(t)
    page = render_report({}, rel)  # numbers come from the release alone
    assert "fell by 42.0% (per-protocol)" in page
    assert "fell by 38.8% (intention to treat)" in page
    assert "-12.3% (95% CI -22.3% to -2.3%) per-protocol" in page
    assert "-8.2% (95% CI" in page
    assert "61%" in page  # share of the naive change seen in the comparison group
    assert "data:image/png;base64," in page
    assert "unsourced_assumption:police_deployments" in page
    # planted small cells: DiD on 3 people (-0.4567), trajectory mean on 3 people (98765.4),
    # balance on 5 people (35.2), headline on 5 people (-777.7), suppressed link rate (0.0015)
    for raw in (
        "45.7",
        "0.457",
        "98765",
        "98,765",
        "35.2",
        "777.7",
        "-778",
        "0.0015",
        "0.15%",
        "10134",
    ):
        assert raw not in page, raw
    pts = trajectory_points(rel)
    assert 98765.4 not in set(pts["mean_total_cost"]) and len(pts) == 8
    assert "<script" not in page
    _check_page(page)
    # without the warehouse tables the page says so, naming each one
    (missing,) = [t for _, t in _Page(page).paragraphs if t.startswith("Not available")]
    for name in (
        "evaluation_estimates", "evaluation_balance", "evaluation_trajectory",
        "programme_headline", "linkage_link_rates", "linkage_implausible", "unit_costs",
    ):  # fmt: skip
        assert name in missing, name
    html_path, paths = write_report(t, tmp_path)
    assert html_path.name == "evaluation_report.html" and html_path.exists()
    assert {p.name for p in paths} >= {"evaluation_estimates.csv", "README.txt"}
    assert {p.name for p in tmp_path.iterdir()} == RELEASE_CSVS | {
        "README.txt",
        "evaluation_report.html",
    }
    assert scan_release(tmp_path) == []
    # the written page, read back: the same figures, and nothing reported missing
    doc = _check_page(html_path.read_text(encoding="utf-8"))
    assert not [t for _, t in doc.paragraphs if t.startswith("Not available")]
    # the page's DiD figures are the written CSV's cells
    _, rows = _read(tmp_path / "evaluation_estimates.csv")
    pp = rows[ESTIMATE_ROWS.index(("per_protocol", "total_cost", "difference_in_differences"))]
    shown = f"{100 * float(pp['estimate']):+.1f}% (95% CI {100 * float(pp['ci_low']):+.1f}% to "
    assert shown in doc.paragraph("summary")


def test_report_escapes_text():
    """Released text is text wherever the templates draw it (autoescaping): markup, a
    script after closing the style, quotes and template syntax arrive escaped or as written,
    never as markup or as template code run."""
    attack = "<b>evil</b> & co</style><script>alert(1)</script>{{ 7*7 }}{% if 1 %}ran{% endif %}\"'"
    t = tables()
    t["unit_costs"] = t["unit_costs"].assign(source=attack)
    page = render_report(t, build_release(t))
    assert "<b>evil</b>" not in page and "<script" not in page and "</style><" not in page
    assert (
        "&lt;b&gt;evil&lt;/b&gt; &amp; co&lt;/style&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
        "{{ 7*7 }}{% if 1 %}ran{% endif %}&#34;&#39;"
    ) in page  # escaped, and the template syntax as written, not run
    assert page.count("</style>") == 1
    assert [r[7] for r in _Page(page).table("Unit costs")[1:]] == [attack] * 2


def test_cli_report_needs_the_evaluation(tmp_path, monkeypatch, capsys):
    from sim_pipeline import cli

    monkeypatch.setenv("SIM_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert cli.main(["report", "--out", str(tmp_path / "out")]) == 2
    assert "sim-pipeline run" in capsys.readouterr().err
    from sim_pipeline.warehouse import Warehouse

    wh = Warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    with wh.transaction() as tx:
        for name, df in tables().items():
            tx.replace_all(name, df)
    wh.dispose()
    monkeypatch.setenv("SIM_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'wh.db'}")
    out = tmp_path / "out"
    assert cli.main(["report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "evaluation_report.html" in printed and "clean" in printed
    assert (out / "evaluation_report.html").exists()
    assert Path(out / "headline.csv").exists()
    # through the warehouse and back: the same page and the same released cells
    doc = _check_page((out / "evaluation_report.html").read_text(encoding="utf-8"))
    assert not [t for _, t in doc.paragraphs if t.startswith("Not available")]
    assert {p.name for p in out.glob("*.csv")} == RELEASE_CSVS
    h = _frame(out / "headline.csv")
    assert _cell(h, "value", population="per_protocol", statistic="ratio_of_means_pct_change") == (
        "-42.0"
    )
    _, rows = _read(out / "evaluation_estimates.csv")
    assert [(r["population"], r["outcome"], r["method"]) for r in rows] == ESTIMATE_ROWS
    itt = rows[ESTIMATE_ROWS.index(("itt", "total_cost", "difference_in_differences"))]
    assert {k: itt[k] for k in ITT_DID} == ITT_DID


def test_previews_control_counts_of_people_and_suppress_statistics_on_1_to_7():
    from sim_pipeline.publish.disclosure import preview_table

    df = pd.DataFrame(
        {
            "population": ["itt", "small", "none"],
            "people": [108, 5, 0],
            "mean_cost": [1234.5, 99.0, 0.0],
            "change": ["+12.2%", "-3.0%", ""],
            "months": pd.array([12, 3, 0], dtype="Int64"),  # whole numbers: treated as counts
        }
    )
    out = preview_table(df)
    assert out["people"].tolist() == ["110", "*", "0"]
    assert out["months"].tolist() == ["10", "*", "0"]
    assert out.loc[1, "mean_cost"] == "*" and out.loc[1, "change"] == "*"
    assert out.loc[0, "mean_cost"] == 1234.5 and out.loc[0, "change"] == "+12.2%"
    assert out["population"].tolist() == ["itt", "small", "none"]  # labels stay
    # the ledger's record counts stay exact only when the caller says they count records
    assert preview_table(df, counts_of="records").equals(df)


def test_linkage_chart_draws_only_controlled_figures():
    """The linkage-quality chart (asset metadata and reports/linkage_quality.png): each bar is
    the published rate from rounded counts, and nothing is drawn for a suppressed rate or a
    count of 1-7 (hand-derived: 1003 of 1072 linked -> 1005/1070; 5 records -> suppressed;
    1040 of 1045 -> 1040/1045 differ by 5 unlinked -> suppressed)."""
    from sim_pipeline.publish.charts import linkage_quality_figure

    rates = pd.DataFrame(
        {
            "dimension": "overall",
            "value": "all",
            "source_group": ["ae", "police", "mh"],
            "records": [1072, 5, 1045],
            "linked": [1003, 4, 1040],
            "link_rate": [1003 / 1072, 0.8, 1040 / 1045],
        }
    )
    hist = pd.DataFrame({"weight_bin": [0.0, 2.0, 4.0], "pairs": [3, 12, 0]})
    curve = pd.DataFrame({"threshold": [0.5, 0.9], "pairs_at_or_above": [123, 6]})
    bars, hbars, line = linkage_quality_figure(rates, curve, hist).axes
    heights = [p.get_height() for p in bars.patches]
    assert heights[0] == pytest.approx(1005 / 1070)
    assert np.isnan(heights[1]) and np.isnan(heights[2])
    assert [t.get_text() for t in bars.texts] == ["*", "*"]
    h = [p.get_height() for p in hbars.patches]
    assert np.isnan(h[0]) and h[1] == 10 and h[2] == 0
    y = line.lines[0].get_ydata()
    assert y[0] == 125 and np.isnan(y[1])
