"""The charts the assets show in the web UI (and save under the reports folder), drawn from
frames into matplotlib figures. Each bar, point or line is a figure that could be published: the
linkage chart takes rates and counts through the disclosure rule (`chart_rates`,
`chart_counts`), the trajectories draw no point on fewer than 8 people. Wiring turns a figure
into metadata (`defs.common.figure_metadata`); the HTML report draws its own charts inline
(`publish.report`). matplotlib is imported when a chart is drawn, never at import.
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

    design = [
        p for p in (md.itt_population(w) for w in reversed(md.WINDOWS)) if p in set(traj.population)
    ][:1]
    panels = ["itt", "per_protocol", *design]
    fig, axes = new_figure(5.5 * len(panels), 3.6, len(panels), sharey=True)
    for ax, population in zip(axes, panels, strict=True):
        groups = (("programme", BLUE), ("comparison", GREY))
        if population in design:
            groups = (("programme", BLUE), (md.COUNTERFACTUAL_GROUP, ORANGE))
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
