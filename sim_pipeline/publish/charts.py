"""The charts the assets show in the web UI (and save under the reports folder), drawn from
frames into matplotlib figures. Each bar, point or line is a figure that could be published: the
linkage chart takes rates and counts through the disclosure rule (`chart_rates`,
`chart_counts`), the trajectories draw no point on fewer than 8 people. Wiring turns a figure
into metadata (`defs.common.figure_metadata`); the HTML report (`publish.report_charts`) draws
the released values only (suppressed cells are gaps) with the report figures here and inlines
them. Every chart of the project is drawn in this module; matplotlib is imported when a chart
is drawn, never at import.
"""

from __future__ import annotations

import math

import pandas as pd

from sim_pipeline.publish.disclosure import chart_counts, chart_rates

BLUE, LIGHT_BLUE, ORANGE, GREY = "#005eb8", "#41b6e6", "#ed8b00", "#768692"
MIN_PEOPLE_DRAWN = 8  # no trajectory point on fewer people


def new_figure(width: float, height: float, ncols: int = 1, sharey: bool = False):
    """An Agg figure and its row of axes, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, sharey=sharey, squeeze=False)[0]
    return fig, axes


def linkage_quality_figure(rates: pd.DataFrame, curve: pd.DataFrame, hist: pd.DataFrame):
    """Three panels: link rate by source group, scored pairs by match weight, pairs counted as
    links by threshold; a suppressed rate is marked "*", not drawn."""
    fig, axes = new_figure(13, 3.6, 3)
    overall = rates[rates["dimension"] == "overall"]
    link_rate = chart_rates(overall["linked"], overall["records"])
    axes[0].bar(overall["source_group"], link_rate, color=BLUE)
    for i, r in enumerate(link_rate):
        if math.isnan(r):  # suppressed: said on the chart, not drawn
            axes[0].annotate("*", (i, 0.02), ha="center")
    axes[0].set_ylim(0, 1)
    axes[0].set_title("Records linked to another source (* = suppressed)")
    axes[1].bar(hist["weight_bin"], chart_counts(hist["pairs"]), width=1.8, color=LIGHT_BLUE)
    axes[1].set_yscale("log")
    axes[1].set_title("Scored pairs by match weight (bits)")
    axes[2].plot(
        curve["threshold"].astype(str), chart_counts(curve["pairs_at_or_above"]), marker="o"
    )
    axes[2].set_title("Pairs counted as links, by threshold")
    axes[2].tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def cohort_trajectory_figure(traj: pd.DataFrame, price_year: str):
    """Mean monthly cost per person around allocation, ITT and per-protocol (the headline's
    view: no comparison group)."""
    fig, (ax,) = new_figure(9, 3.6)
    for population, colour in (("itt", BLUE), ("per_protocol", ORANGE)):
        d = traj[traj["population"] == population]
        ax.plot(d["relative_month"], d["mean_cost"], marker=".", label=population, color=colour)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("months from allocation (0 = allocation month)")
    ax.set_ylabel(f"mean cost per person-month (GBP, {price_year})")
    ax.set_title("Programme cohort: monthly cost around allocation (no comparison group)")
    ax.legend()
    fig.tight_layout()
    return fig


def matched_trajectory_figure(traj: pd.DataFrame, price_year: str):
    """Members against their comparisons: the DiD bracket's two populations, then the primary
    design's event study (the longest window with rows) against the bias-corrected matched
    counterfactual."""
    from sim_pipeline.evaluation import matched_design as md
    from sim_pipeline.evaluation.design_diagnostics import COUNTERFACTUAL_GROUP

    design = [
        p for p in (md.itt_population(w) for w in reversed(md.WINDOWS)) if p in set(traj.population)
    ][:1]
    panels = ["itt", "per_protocol", *design]
    fig, axes = new_figure(5.5 * len(panels), 3.6, len(panels), sharey=True)
    for ax, population in zip(axes, panels, strict=True):
        groups = (("programme", BLUE), ("comparison", GREY))
        if population in design:
            groups = (("programme", BLUE), (COUNTERFACTUAL_GROUP, ORANGE))
        for group, colour in groups:
            d = traj[(traj["population"] == population) & (traj["group"] == group)]
            d = d[d["n_people"] >= MIN_PEOPLE_DRAWN]
            ax.plot(
                d["months_from_index"], d["mean_total_cost"], marker=".", label=group, color=colour
            )
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        ax.set_title(population)
        ax.set_xlabel("months from allocation / pseudo-index")
    axes[0].set_ylabel(f"mean cost per person-month (GBP, {price_year})")
    axes[0].legend()
    fig.tight_layout()
    return fig


# -- the HTML report's charts (released values only: a suppressed cell is a gap) ---------------


def bracket_trajectory_figure(pts: pd.DataFrame, labels: dict[str, str], price_year: str):
    """Mean monthly cost of members and comparisons by month from index, one panel per
    population of ``labels`` (the DiD bracket); ``pts`` as `report.trajectory_points`."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = new_figure(10, 3.8, len(labels), sharey=True)
    for ax, (population, title) in zip(axes, labels.items(), strict=True):
        for group, colour in (("programme", BLUE), ("comparison", GREY)):
            d = pts[(pts["population"] == population) & (pts["group"] == group)]
            # full month range with gaps (NaN) where a cell was suppressed: no line across it
            d = d.set_index("months_from_index")["mean_total_cost"]
            if len(d):
                d = d.reindex(range(int(d.index.min()), int(d.index.max()) + 1))
            ax.plot(d.index, d.to_numpy(), marker=".", color=colour, label=group)
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("months from index (0 = allocation / pseudo-index month)")
        ax.legend()
    axes[0].set_ylabel(f"mean cost per person-month (GBP, {price_year or 'price year ?'})")
    fig.tight_layout()
    return fig


def forest_figure(d: pd.DataFrame, outcomes: list[str], labels: dict[tuple[str, str], str]):
    """Estimates with 95% CIs (relative change, as numbers; missing where suppressed) per outcome:
    difference-in-differences as points with bars, naive changes as crosses, for the
    (population, method) pairs of ``labels``."""
    fig, axes = new_figure(11, 0.45 * len(outcomes) + 1.6, sharey=True)
    ax = axes[0]
    for k, (population, colour) in enumerate((("per_protocol", ORANGE), ("itt", BLUE))):
        offset = -0.15 if k == 0 else 0.15
        for method, marker in (("difference_in_differences", "o"), ("naive_before_after", "x")):
            rows = d[(d["population"] == population) & (d["method"] == method)]
            ys, xs, lo, hi = [], [], [], []
            for r in rows.to_dict("records"):
                x = r["estimate"]
                if pd.isna(x) or r["outcome"] not in outcomes:
                    continue
                ys.append(outcomes.index(r["outcome"]) + offset)
                xs.append(100 * x)
                low, high = r["ci_low"], r["ci_high"]
                lo.append(0.0 if pd.isna(low) else 100 * (x - low))
                hi.append(0.0 if pd.isna(high) else 100 * (high - x))
            if not xs:
                continue
            label = labels[(population, method)]
            if method == "difference_in_differences":
                ax.errorbar(xs, ys, xerr=[lo, hi], fmt=marker, color=colour, capsize=3, label=label)
            else:
                ax.scatter(xs, ys, marker=marker, color=colour, label=label)
    drawn = {r["outcome"] for r in d.to_dict("records") if not pd.isna(r["estimate"])}
    for i, outcome in enumerate(outcomes):
        if outcome not in drawn:
            ax.annotate(
                "suppressed or not estimated",
                (0.01, i),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=8,
                color=GREY,
            )
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(range(len(outcomes)), outcomes)
    ax.invert_yaxis()
    ax.set_xlabel("relative change (%): DiD with 95% CI; x = naive before/after")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def event_study_figure(pts: pd.DataFrame, population: str, counterfactual: str, price_year: str):
    """Members against their matched, bias-corrected counterfactual (group ``counterfactual``)
    by month from allocation; months before 0 are the pre-period placebo."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = new_figure(8, 3.6, sharey=True)
    ax = axes[0]
    for group, colour, label in (
        ("programme", BLUE, "members"),
        (counterfactual, ORANGE, "counterfactual (matched, bias-corrected)"),
    ):
        g = pts[(pts["population"] == population) & (pts["group"] == group)]
        g = g.set_index("months_from_index")["mean_total_cost"]
        if len(g):
            g = g.reindex(range(int(g.index.min()), int(g.index.max()) + 1))
        ax.plot(g.index, g.to_numpy(), marker=".", color=colour, label=label)
    ax.axvline(-0.5, color="grey", linestyle="--", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"event study ({population}): months before 0 are a placebo")
    ax.set_xlabel("months from allocation")
    ax.set_ylabel(f"mean cost per member-month (GBP, {price_year or 'price year ?'})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
