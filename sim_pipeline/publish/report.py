"""The evaluation report: one self-contained HTML page built from the published release.

The page is a published output, so every number on it (text, tables and charts) comes from the
disclosure-controlled release of `sim_pipeline.publish.release`, never from the warehouse
tables. matplotlib is imported inside the chart functions (the code location must import fast).

This module owns the page (`render_report`: its sections in order, the summary paragraph, the
fixed text and the style) and writing it beside the release (`write_report`). Its parts are in
`publish.report_design` (the primary estimate), `publish.report_tables` (the released tables),
`publish.report_charts` (the charts) and `publish.report_cells` (how a released cell is shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from sim_pipeline.measures.headline import KEY_STATISTICS
from sim_pipeline.publish import report_cells as cells
from sim_pipeline.publish.disclosure import SMALL_MAX, SUPPRESSED
from sim_pipeline.publish.release import build_release
from sim_pipeline.publish.release_catalogue import RELEASE_INPUTS, USE_OUTCOMES, WITHHELD_STATISTICS
from sim_pipeline.publish.release_files import write_release, write_text_atomic
from sim_pipeline.publish.report_charts import forest_chart, trajectory_chart
from sim_pipeline.publish.report_design import design_section
from sim_pipeline.publish.report_tables import (
    balance_table,
    estimates_table,
    harms_table,
    linkage_section,
    sensitivity_table,
    unit_cost_section,
)

REPORT_NAME = "evaluation_report.html"
# the report's headline table: the key statistics but the spread of months and the extremes
HEADLINE_STATISTICS = tuple(
    s
    for s in KEY_STATISTICS
    if s
    not in {"min_months", "max_months", "total_change_gbp_simple", "largest_individual_fall_gbp"}
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


def _change_words(cell: object) -> str:
    """A released percentage change (e.g. '-42.0') in words."""
    v = cells.num(cell)
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
    for population in cells.REPORT_POPULATIONS:
        label = cells.POPULATION_LABEL[population]
        h = cells.row(head, population=population, statistic="ratio_of_means_pct_change")
        naive_parts.append(f"{_change_words(h['value'] if h else '')} ({label})")
        r = cells.row(
            est,
            population=population,
            outcome="total_cost",
            method="difference_in_differences",
        )
        if r is None or cells.num(r["estimate"]) is None:
            shown = r["estimate"] if r else ""
            did_parts.append(f"{label}: {_change_words(shown).removeprefix('is ')}")
        else:
            ci = cells.interval(r["ci_low"], r["ci_high"], "relative_change")
            did_parts.append(f"{cells.pct(r['estimate'])} (95% CI {ci}) {label}")
            if cells.num(r.get("rtm_share", "")) is not None:
                rtm_parts.append(f"{cells.share(r['rtm_share'])} ({label})")
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
    return f"<p class='summary'>{cells.escape(text)}</p>"


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
        f"'{SUPPRESSED}'. Costs are GBP at price year {cells.escape(price_year or 'not stated')}.</p>",
    ]
    if missing:
        sections.append(
            f"<p class='note'>Not available (warehouse table missing): {cells.escape(', '.join(missing))}."
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
        sections += design_section(release, price_year)
        sections += [
            "<h2>Headline beside the adjusted estimate</h2>",
            estimates_table(est, [o for o in USE_OUTCOMES if o in set(est["outcome"])]),
            forest_chart(est),
        ]
    head = release.get("headline.csv")
    if head is not None and not head.empty:
        wide = head.pivot(index="statistic", columns="population", values="value")
        pops = [p for p in ("itt", "per_protocol", "itt_over_6_months") if p in wide.columns]
        pops += [p for p in wide.columns if p not in pops]
        stats = [s for s in HEADLINE_STATISTICS if s in wide.index]
        wide = wide.reindex(index=stats, columns=pops).fillna("").map(cells.shown).reset_index()
        sections += [
            "<h2>The review's headline, recomputed (naive)</h2>",
            "<p>As the programme review most likely computed it. Not an effect estimate. "
            f"Withheld as individual-level values: {cells.escape(', '.join(WITHHELD_STATISTICS))}.</p>",
            cells.html_table(wide, ["statistic", *pops], numeric=pops),
        ]
    # the released tables shown as they are, each under its heading (when released)
    for file, heading, intro, render in (
        ("harms.csv", "Harms (balancing measures)", None, harms_table),
        (
            "evaluation_balance.csv",
            "Balance of programme and comparison people",
            "Standardised mean differences (SMD); \u2713 marks |SMD| &lt; 0.1.",
            balance_table,
        ),
        (
            "evaluation_sensitivity.csv",
            "Sensitivity of the total-cost estimate",
            None,
            sensitivity_table,
        ),
    ):
        released = release.get(file)
        if released is not None and not released.empty:
            sections.append(f"<h2>{heading}</h2>")
            sections += [f"<p>{intro}</p>"] if intro else []
            sections.append(render(released))
    sections += [
        "<h2>Linkage quality</h2>",
        linkage_section(release),
        "<h2>Unit costs</h2>",
        unit_cost_section(costs),
        "<h2>Methods and limitations</h2>",
        f"<p>{cells.escape(METHODS_TEXT)}</p>",
        f"<p>{cells.escape(LIMITATIONS_TEXT)}</p>",
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
