"""The evaluation report: one self-contained HTML page built from the published release.

The page is a published output, so every number on it (text, tables and charts) comes from the
disclosure-controlled release of `sim_pipeline.publish.release`, never from the warehouse
tables. matplotlib is imported inside the chart functions (the code location must import fast).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.evaluation import matched_design as md
from sim_pipeline.identity.tables import LinkageLinkRates
from sim_pipeline.publish.disclosure import SMALL_MAX, SUPPRESSED
from sim_pipeline.publish.release import build_release
from sim_pipeline.publish.release_catalogue import (
    PRIMARY,
    RELEASE_INPUTS,
    USE_OUTCOMES,
    WITHHELD_STATISTICS,
)
from sim_pipeline.publish.release_costs import explain_flag
from sim_pipeline.publish.release_files import write_release, write_text_atomic
from sim_pipeline.publish.report_cells import (
    METHOD_LABEL,
    POPULATION_LABEL,
    REPORT_POPULATIONS,
    effect,
    escape,
    html_table,
    interval,
    num,
    pct,
    row,
    share,
    shown,
)
from sim_pipeline.publish.report_charts import event_study_chart, forest_chart, trajectory_chart
from sim_pipeline.warehouse.model import columns

REPORT_NAME = "evaluation_report.html"
HEADLINE_STATISTICS = (
    "n_allocated",
    "n_engaged",
    "n_people",
    "mean_months",
    "person_months",
    "pct_with_cost_fall",
    "mean_pct_change_per_person",
    "ratio_of_means_pct_change",
    "mean_baseline_monthly_cost_gbp",
    "mean_programme_monthly_cost_gbp",
    "mean_monthly_change_gbp",
    "total_change_gbp",
)
CSS = """
body{font-family:Arial,Helvetica,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#212b32;line-height:1.45}
h1{color:#005eb8}h2{color:#005eb8;border-bottom:2px solid #e8edee;padding-bottom:.2em;
margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #d8dde0;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#e8edee}td.num{text-align:right;font-variant-numeric:tabular-nums}
.summary{background:#f0f4f5;border-left:6px solid #005eb8;padding:.8em 1em;font-size:1.08em}
.plain{background:#f0f4f5;border-left:6px solid #768692;padding:.6em 1em}
.caution{background:#fff9c4;border-left:6px solid #ffb81c;padding:.6em 1em}
.ok{background:#e6f4ea}.bad{background:#fdecea}
img{max-width:100%;height:auto}small,.note{color:#425563}
"""


def _released_design(release: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The primary design's released rows as numbers (a suppressed cell is NaN)."""
    est = release.get("evaluation_estimates.csv")
    cols = ["analysis", "population", "outcome", "method", "scale", "estimate", "ci_low", "ci_high"]
    if est is None or est.empty:
        return pd.DataFrame(columns=[*cols, "n_people"])
    d = est[(est["analysis"] == PRIMARY) & (est["method"] == md.METHOD)].copy()
    for c in ("estimate", "ci_low", "ci_high"):
        d[c] = [np.nan if num(v) is None else num(v) for v in d[c]]
    return d[[*cols, "n_people"]].reset_index(drop=True)


def _design_section(release: Mapping[str, pd.DataFrame], price_year: str) -> list[str]:
    """The primary estimate: ITT and CACE per window in plain words, the diagnostics (a failed
    one is said plainly), the E-values and the event-study chart."""
    d = _released_design(release)
    cost = d[d["outcome"] == "total_cost"]
    rows, words = [], []
    for w in md.WINDOWS:
        for pop, what in (
            (md.itt_population(w), "ITT: everyone allocated"),
            (md.cace_population(w), "CACE: those who engaged"),
        ):
            r = cost[cost["population"] == pop]
            if r.empty:
                continue
            x = r.iloc[0]
            if not np.isfinite(x.estimate) or not np.isfinite(x.ci_low):
                meaning = "not estimable here (too few people, or suppressed)"
                est, ci = "", ""
            else:
                est, ci = f"{x.estimate:+.1%}", f"{x.ci_low:+.1%} to {x.ci_high:+.1%}"
                if x.ci_low <= 0 <= x.ci_high:
                    meaning = (
                        f"no detectable effect: the interval runs from {x.ci_low:+.0%} to "
                        f"{x.ci_high:+.0%}"
                    )
                else:
                    meaning = "a fall" if x.estimate < 0 else "a rise"
            rows.append([f"months {w[0]}-{w[1]}", what, est, ci, x.n_people, meaning])
            if pop == md.itt_population(md.WINDOWS[0]):
                words.append(f"Over the 12 months from allocation: {est or 'n/a'}, {meaning}.")
    table = pd.DataFrame(
        rows, columns=["window", "estimand", "change", "95% CI", "people", "in plain words"]
    )
    diagnostics = md.diagnostic_lines(d)
    failed = md.failed_diagnostics(d)
    out = [
        "<h2>The primary estimate: members against people alike at the same month</h2>",
        "<p>Each member is compared with the five people not yet allocated, at the same "
        "calendar month, whose history predicts the most similar future cost and whose crisis "
        "contacts rose alike, corrected for what differences remain (bias-corrected matching); "
        "the intervals come from the matched outcomes' spread (a variance that the validation "
        "over 400 synthetic worlds found calibrated). ITT counts everyone "
        "allocated; CACE divides it by the share who engaged (the effect on those who engage). "
        "This, not the naive headline, is the estimate of what the programme changed.</p>",
        f"<p class='plain'>{escape(' '.join(words) or 'No primary estimate released.')}</p>",
        html_table(table, list(table.columns), numeric=["change", "people"]),
        "<h3>Diagnostics and sensitivity</h3>",
        "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in diagnostics) + "</ul>",
    ]
    if failed:
        out.append(
            "<p class='caution'>Diagnostics failed: do not rely on the primary estimate. "
            f"{escape('; '.join(failed))}.</p>"
        )
    out.append(event_study_chart(release, price_year))
    return out


def _change_words(cell: object) -> str:
    """A released percentage change (e.g. '-42.0') in words."""
    v = num(cell)
    if str(cell) == SUPPRESSED:
        return f"is suppressed (based on 1-{SMALL_MAX} people)"
    if v is None:
        return "is not available"
    if v < 0:
        return f"fell by {abs(v):.1f}%"
    if v > 0:
        return f"rose by {v:.1f}%"
    return "did not change"


def _summary(release: Mapping[str, pd.DataFrame]) -> str:
    head = release.get("headline.csv")
    est = release.get("evaluation_estimates.csv")
    naive_parts, did_parts, rtm_parts = [], [], []
    for population in REPORT_POPULATIONS:
        label = POPULATION_LABEL[population]
        h = row(head, population=population, statistic="ratio_of_means_pct_change")
        naive_parts.append(f"{_change_words(h['value'] if h else '')} ({label})")
        r = row(
            est,
            population=population,
            outcome="total_cost",
            method="difference_in_differences",
        )
        if r is None or num(r["estimate"]) is None:
            shown = r["estimate"] if r else ""
            did_parts.append(f"{label}: {_change_words(shown).removeprefix('is ')}")
        else:
            ci = interval(r["ci_low"], r["ci_high"], "relative_change")
            did_parts.append(f"{pct(r['estimate'])} (95% CI {ci}) {label}")
            if num(r.get("rtm_share", "")) is not None:
                rtm_parts.append(f"{share(r['rtm_share'])} ({label})")
    text = (
        "On the naive before/after comparison the programme review used (ratio of mean monthly "
        f"cost per person), cost {' and '.join(naive_parts)}. Against matched comparison people "
        "followed over the same months, the difference-in-differences estimate of the change "
        f"in mean monthly cost is {'; '.join(did_parts)}."
    )
    if rtm_parts:
        text += (
            " The comparison group's own change accounts for "
            f"{' and '.join(rtm_parts)} of the naive change (regression to the mean)."
        )
    return f"<p class='summary'>{escape(text)}</p>"


def _estimates_table(est: pd.DataFrame, outcomes: Sequence[str]) -> str:
    """Naive beside DiD, one row per outcome and population (primary analysis)."""
    rows = []
    for outcome in outcomes:
        for population in REPORT_POPULATIONS:
            naive = row(est, outcome=outcome, population=population, method="naive_before_after")
            did = row(
                est, outcome=outcome, population=population, method="difference_in_differences"
            )
            if naive is None and did is None:
                continue
            scale = (did or naive or {}).get("scale", "relative_change")
            rows.append(
                [
                    outcome,
                    POPULATION_LABEL.get(population, population),
                    effect(naive["estimate"], scale) if naive else "\u2013",
                    effect(did["estimate"], scale) if did else "\u2013",
                    interval(did["ci_low"], did["ci_high"], scale) if did else "\u2013",
                    share(did["rtm_share"]) if did else "\u2013",
                    shown(did["n_people"] if did else naive["n_people"]),
                    shown(did["n_comparison"]) if did else "\u2013",
                ]
            )
    df = pd.DataFrame(
        rows,
        columns=["outcome", "population", "naive", "did", "ci", "rtm", "n", "nc"],
    )
    return html_table(
        df,
        [
            "outcome",
            "population",
            "naive before/after",
            "difference-in-differences",
            "95% CI",
            "share of naive change seen in comparison group",
            "programme people",
            "comparison people",
        ],
        numeric=["naive", "did", "ci", "rtm", "n", "nc"],
    )


def _harms_table(harms: pd.DataFrame) -> str:
    rows = []
    for r in harms.to_dict("records"):
        scale = r["scale"]
        rows.append(
            [
                r["outcome"],
                POPULATION_LABEL.get(r["population"], r["population"]),
                METHOD_LABEL.get(r["method"], r["method"]),
                effect(r["estimate"], scale),
                interval(r["ci_low"], r["ci_high"], scale),
                shown(r["n_people"]),
                shown(r["n_comparison"]),
                r["note"],
            ]
        )
    df = pd.DataFrame(rows, columns=["o", "p", "m", "e", "ci", "n", "nc", "note"])
    return html_table(
        df,
        [
            "outcome",
            "population",
            "method",
            "estimate",
            "95% CI",
            "programme people",
            "comparison people",
            "note",
        ],
        numeric=["e", "ci", "n", "nc"],
    )


def _smd_cell(cell: str) -> str | tuple[str, str]:
    v = num(cell)
    if v is None:
        return shown(cell)
    return (f"{cell} \u2713", "ok") if abs(v) < 0.1 else (f"{cell} \u2717", "bad")


def _balance_table(bal: pd.DataFrame) -> str:
    d = bal[bal["analysis"] == PRIMARY]
    rows = [
        [
            POPULATION_LABEL.get(r["population"], r["population"]),
            r["covariate"],
            shown(r["treated_mean"]),
            shown(r["comparison_mean_before"]),
            _smd_cell(r["smd_before"]),
            shown(r["comparison_mean_after"]),
            _smd_cell(r["smd_after"]),
            shown(r["n_treated"]),
            shown(r["n_comparison_after"]),
        ]
        for r in d.to_dict("records")
    ]
    df = pd.DataFrame(rows, columns=["p", "c", "t", "cb", "sb", "ca", "sa", "nt", "nc"])
    return html_table(
        df,
        [
            "population",
            "covariate",
            "programme mean",
            "comparison mean (all eligible)",
            "SMD before matching",
            "comparison mean (matched)",
            "SMD after matching",
            "programme people",
            "matched comparison people",
        ],
        numeric=["t", "cb", "sb", "ca", "sa", "nt", "nc"],
    )


def _sensitivity_table(sens: pd.DataFrame) -> str:
    rows = [
        [
            r["analysis"],
            POPULATION_LABEL.get(r["population"], r["population"]),
            METHOD_LABEL.get(r["method"], r["method"]),
            pct(r["estimate"]),
            interval(r["ci_low"], r["ci_high"], "relative_change"),
            shown(r["n_people"]),
            shown(r["n_comparison"]),
        ]
        for r in sens.to_dict("records")
    ]
    df = pd.DataFrame(rows, columns=["a", "p", "m", "e", "ci", "n", "nc"])
    return html_table(
        df,
        ["analysis", "population", "method", "total cost change", "95% CI", "programme people"]
        + ["comparison people"],
        numeric=["e", "ci", "n", "nc"],
    )


def _linkage_section(release: Mapping[str, pd.DataFrame]) -> str:
    parts = []
    rates = release.get("linkage_quality.csv")
    if rates is not None and not rates.empty:
        cols = columns(LinkageLinkRates)
        overall = rates[rates["dimension"] == "overall"][cols]
        parts.append(
            html_table(
                overall.map(shown),
                ["dimension", "value", "source group", "records", "linked", "link rate"],
                numeric=["records", "linked", "link_rate"],
            )
        )
        rest = rates[rates["dimension"] != "overall"][cols]
        if not rest.empty:
            parts.append(
                "<details><summary>By age band, sex and borough</summary>"
                + html_table(
                    rest.map(shown),
                    ["dimension", "value", "source group", "records", "linked", "link rate"],
                    numeric=["records", "linked", "link_rate"],
                )
                + "</details>"
            )
    imp = release.get("linkage_implausible.csv")
    if imp is not None and not imp.empty:
        parts.append("<h3>Implausible links</h3>")
        parts.append(
            html_table(
                imp[["rule", "description", "persons"]].map(shown),
                ["rule", "description", "people"],
                numeric=["persons"],
            )
        )
    return "".join(parts) or "<p class='note'>No linkage quality released.</p>"


def _unit_cost_section(costs: pd.DataFrame | None) -> str:
    if costs is None or costs.empty:
        return "<p class='note'>No unit costs released.</p>"
    cols = [
        "metric",
        "item",
        "unit_cost_gbp",
        "source_price_year",
        "inflation_factor",
        "unit_cost_at_price_year",
        "price_year",
        "source",
        "note",
    ]
    table = html_table(
        costs[cols].map(shown),
        [
            "metric",
            "item",
            "unit cost (GBP)",
            "its price year",
            "inflation factor",
            "unit cost at price year (GBP)",
            "price year",
            "source",
            "note",
        ],
        numeric=["unit_cost_gbp", "inflation_factor", "unit_cost_at_price_year"],
    )
    flags = sorted({f for v in costs["cost_flags"] for f in str(v).split(";") if f})
    items = "".join(f"<li><b>{escape(f)}</b>: {escape(explain_flag(f))}</li>" for f in flags)
    caveats = (
        f"<div class='caution'><b>Cost caveats</b><ul>{items}</ul></div>"
        if flags
        else "<p>No cost caveats.</p>"
    )
    version = ", ".join(sorted(set(costs["unit_cost_version"])))
    return f"<p>Unit costs version {escape(version)}.</p>{table}{caveats}"


METHODS_TEXT = (
    "Each programme member's index date is the month of allocation. People in the same areas "
    "who were never allocated but met the same eligibility rule (high use of crisis services) "
    "are given a pseudo-index date: a month in which they met the rule. Each programme member "
    "is matched to comparison people on their use and cost in the months before the index "
    "(balance before and after matching is shown above; |SMD| < 0.1 is conventionally taken as "
    "balanced). The effect on each outcome is estimated by difference-in-differences: the "
    "change from before to after the index among programme members minus the change among "
    "their matched comparison people, as a relative change (a risk difference for deaths). "
    "95% confidence intervals come from a person-level bootstrap that resamples matched sets "
    "(a programme member with their comparison people), so the pairing and repeated months of "
    "one person are kept together. The naive before/after change, the figure the programme "
    "review reported, is shown beside each estimate: people are selected at a peak of use, so "
    "their use falls afterwards whatever happens (regression to the mean), and the comparison "
    "group's change shows how much of the naive fall that accounts for."
)
LIMITATIONS_TEXT = (
    "Limitations: matching uses recorded history only, so differences in need that were not "
    "recorded can remain; the pseudo-index date of comparison people approximates, but is not, "
    "a referral decision; outcomes count contacts with services and do not measure wellbeing; "
    "a fall in contacts can mean withheld care as well as better health (see the harms table); "
    "costs are unit costs times contacts, not cash savings, and some unit costs are assumptions "
    "(see the cost caveats); small groups are suppressed, so some cells are blank ('*'); "
    "counts are rounded to the nearest 5 and may not add up."
)


def render_report(tables: dict[str, pd.DataFrame], release: dict[str, pd.DataFrame]) -> str:
    """The evaluation report as one self-contained HTML page (inline CSS and charts).

    Every number on the page comes from ``release`` (disclosure-controlled); ``tables`` is only
    used to say which warehouse tables were missing.
    """
    est = release.get("evaluation_estimates.csv", pd.DataFrame())
    costs = release.get("unit_costs.csv")
    price_year = ""
    if costs is not None and not costs.empty:
        price_year = ", ".join(sorted(set(costs["price_year"])))
    missing = [t for t in RELEASE_INPUTS if tables.get(t) is None or tables[t].empty]
    sections: list[str] = [
        "<h1>SIM evaluation: the headline saving beside the comparison-group estimate</h1>",
        _summary(release),
        "<p class='caution'>The programme review's headline is a naive before/after "
        "comparison of people selected at their peak of use. It is shown here only beside the "
        "comparison-group estimate. All figures are disclosure-controlled: counts rounded to "
        f"the nearest 5, counts and statistics based on 1-{SMALL_MAX} people shown as "
        f"'{SUPPRESSED}'. Costs are GBP at price year {escape(price_year or 'not stated')}.</p>",
    ]
    if missing:
        sections.append(
            f"<p class='note'>Not available (warehouse table missing): {escape(', '.join(missing))}."
            "</p>"
        )
    sections += [
        "<h2>Monthly cost around the index date</h2>",
        "<p>Mean cost per person-month of programme members and matched comparison people, by "
        "month from the index date (primary analysis). Months with 1-7 people are not drawn."
        "</p>",
        trajectory_chart(release, price_year),
    ]
    if not est.empty:
        sections += _design_section(release, price_year)
        sections += [
            "<h2>Headline beside the adjusted estimate</h2>",
            _estimates_table(est, [o for o in USE_OUTCOMES if o in set(est["outcome"])]),
            forest_chart(est),
        ]
    head = release.get("headline.csv")
    if head is not None and not head.empty:
        wide = head.pivot(index="statistic", columns="population", values="value")
        pops = [p for p in ("itt", "per_protocol", "itt_over_6_months") if p in wide.columns]
        pops += [p for p in wide.columns if p not in pops]
        stats = [s for s in HEADLINE_STATISTICS if s in wide.index]
        wide = wide.reindex(index=stats, columns=pops).fillna("").map(shown).reset_index()
        sections += [
            "<h2>The review's headline, recomputed (naive)</h2>",
            "<p>As the programme review most likely computed it. Not an effect estimate. "
            f"Withheld as individual-level values: {escape(', '.join(WITHHELD_STATISTICS))}.</p>",
            html_table(wide, ["statistic", *pops], numeric=pops),
        ]
    harms = release.get("harms.csv")
    if harms is not None and not harms.empty:
        sections += [
            "<h2>Harms (balancing measures)</h2>",
            _harms_table(harms),
        ]
    bal = release.get("evaluation_balance.csv")
    if bal is not None and not bal.empty:
        sections += [
            "<h2>Balance of programme and comparison people</h2>",
            "<p>Standardised mean differences (SMD); \u2713 marks |SMD| &lt; 0.1.</p>",
            _balance_table(bal),
        ]
    sens = release.get("evaluation_sensitivity.csv")
    if sens is not None and not sens.empty:
        sections += [
            "<h2>Sensitivity of the total-cost estimate</h2>",
            _sensitivity_table(sens),
        ]
    sections += [
        "<h2>Linkage quality</h2>",
        _linkage_section(release),
        "<h2>Unit costs</h2>",
        _unit_cost_section(costs),
        "<h2>Methods and limitations</h2>",
        f"<p>{escape(METHODS_TEXT)}</p>",
        f"<p>{escape(LIMITATIONS_TEXT)}</p>",
        "<p class='note'>Every figure on this page is taken from the disclosure-controlled "
        "tables published beside it (see README.txt).</p>",
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>SIM evaluation report</title>"
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(tables: dict[str, pd.DataFrame], out_dir: Path) -> tuple[Path, list[Path]]:
    """Build the release, write its CSVs and README.txt and ``evaluation_report.html`` into
    ``out_dir``; return (html path, release paths)."""
    out_dir = Path(out_dir)
    release = build_release(tables)
    paths = write_release(release, out_dir)
    page = out_dir / REPORT_NAME
    write_text_atomic(page, render_report(tables, release))
    return page, paths
