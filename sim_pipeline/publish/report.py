"""The evaluation report: one self-contained HTML page built from the published release.

The page is a published output, so every number on it (text, tables and charts) comes from the
disclosure-controlled release of `sim_pipeline.publish.release`, never from the warehouse
tables. matplotlib is imported inside the chart functions (the code location must import fast).

This module owns the page: what goes on it (`report_context`: the summary paragraph, the fixed
text, each section's values), drawing it from the Jinja2 templates in ``templates/``
(`render_report`: ``report.html.j2`` lays out the sections, ``macros.html.j2`` draws a table,
a chart or a note, ``report.css`` styles it for the screen and for print) and writing it beside
the release (`write_report`). The templates are autoescaped: every value they are given is
text, escaped where it is drawn, so a released cell can never become markup. Its parts are in
`publish.report_design` (the primary estimate), `publish.report_tables` (the released tables),
`publish.report_charts` (the charts) and `publish.report_cells` (how a released cell is shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from sim_pipeline.measures.headline import KEY_STATISTICS
from sim_pipeline.publish import report_cells as cells
from sim_pipeline.publish.disclosure import SMALL_MAX, SUPPRESSED
from sim_pipeline.publish.release import build_release
from sim_pipeline.publish.release_catalogue import RELEASE_INPUTS, USE_OUTCOMES, WITHHELD_STATISTICS
from sim_pipeline.publish.release_files import write_release, write_text_atomic
from sim_pipeline.publish.report_cells import Table, table
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
# the folder of the templates (and the style sheet they inline), beside this module; declared
# as data files, so an edit to them changes the code version of the asset that writes the
# report (`defs.versions` reads the literal)
TEMPLATES = "templates"
__data_files__ = ("templates",)


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
    """The page's first paragraph: the naive change beside the difference-in-differences
    estimate, per population, and the share of it the comparison group's own change shows."""
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
    return text


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


@cache
def _environment() -> jinja2.Environment:
    """The report's templates, autoescaped, failing on any name the page does not get."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sim_pipeline.publish", TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _headline_table(head: pd.DataFrame | None) -> Table | None:
    """The review's key statistics per population, recomputed from the released headline."""
    if head is None or head.empty:
        return None
    wide = head.pivot(index="statistic", columns="population", values="value")
    pops = [p for p in ("itt", "per_protocol", "itt_over_6_months") if p in wide.columns]
    pops += [p for p in wide.columns if p not in pops]
    stats = [s for s in HEADLINE_STATISTICS if s in wide.index]
    wide = wide.reindex(index=stats, columns=pops).fillna("").map(cells.shown).reset_index()
    return table(wide, ["statistic", *pops], numeric=pops)


# the released tables shown as they are, each under its heading (when released):
# (file, heading, introduction, how it is shown)
RELEASED_SECTIONS = (
    ("harms.csv", "Harms (balancing measures)", "", harms_table),
    (
        "evaluation_balance.csv",
        "Balance of programme and comparison people",
        "Standardised mean differences (SMD); \u2713 marks |SMD| < 0.1.",
        balance_table,
    ),
    ("evaluation_sensitivity.csv", "Sensitivity of the total-cost estimate", "", sensitivity_table),
)


def report_context(
    tables: Mapping[str, pd.DataFrame], release: Mapping[str, pd.DataFrame]
) -> dict[str, Any]:
    """What the page shows, as plain values for its template. Every number comes from
    ``release`` (disclosure-controlled); ``tables`` is only used to say which warehouse tables
    were missing."""
    est = release.get("evaluation_estimates.csv", pd.DataFrame())
    costs = release.get("unit_costs.csv")
    price_year = ""
    if costs is not None and not costs.empty:
        price_year = ", ".join(sorted(set(costs["price_year"])))
    released = []
    for file, heading, intro, render in RELEASED_SECTIONS:
        frame = release.get(file)
        if frame is not None and not frame.empty:
            released.append({"heading": heading, "intro": intro, "table": render(frame)})
    return {
        "summary": _summary(release),
        "small_max": SMALL_MAX,
        "suppressed": SUPPRESSED,
        "price_year": price_year or "not stated",
        "missing": [t for t in RELEASE_INPUTS if tables.get(t) is None or tables[t].empty],
        "trajectory": trajectory_chart(release, price_year),
        "design": design_section(release, price_year) if not est.empty else None,
        "estimates": (
            estimates_table(est, [o for o in USE_OUTCOMES if o in set(est["outcome"])])
            if not est.empty
            else None
        ),
        "forest": forest_chart(est) if not est.empty else None,
        "headline": _headline_table(release.get("headline.csv")),
        "withheld": ", ".join(WITHHELD_STATISTICS),
        "released": released,
        "linkage": linkage_section(release),
        "unit_costs": unit_cost_section(costs),
        "methods": METHODS_TEXT,
        "limitations": LIMITATIONS_TEXT,
    }


def render_report(tables: dict[str, pd.DataFrame], release: dict[str, pd.DataFrame]) -> str:
    """The evaluation report as one self-contained HTML page (inline style and charts, no
    script), printable: drawn from ``report.html.j2`` with `report_context`."""
    page = _environment().get_template("report.html.j2")
    return page.render(report_context(tables, release))


def write_report(tables: dict[str, pd.DataFrame], out_dir: Path) -> tuple[Path, list[Path]]:
    """Build the release, write its CSVs and README.txt and ``evaluation_report.html`` into
    ``out_dir``; return (html path, release paths)."""
    out_dir = Path(out_dir)
    release = build_release(tables)
    paths = write_release(release, out_dir)
    page = out_dir / REPORT_NAME
    write_text_atomic(page, render_report(tables, release))
    return page, paths
