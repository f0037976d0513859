"""The report's tables: each released table as the page shows it: naive before/after beside
difference-in-differences per outcome, harms, covariate balance (|SMD| < 0.1 marked), the
total-cost sensitivity, linkage quality (overall, by age band, sex and borough, implausible links)
and the unit costs with their cost caveats. Each is returned as plain values (`Table`,
`Linkage`, `UnitCosts`) for the page's templates to draw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from sim_pipeline.identity.tables import LinkageLinkRates
from sim_pipeline.publish.release_catalogue import PRIMARY
from sim_pipeline.publish.release_costs import explain_flag
from sim_pipeline.publish.report_cells import (
    METHOD_LABEL,
    POPULATION_LABEL,
    REPORT_POPULATIONS,
    Table,
    effect,
    interval,
    num,
    pct,
    row,
    share,
    shown,
    table,
)
from sim_pipeline.warehouse.model import columns


def estimates_table(est: pd.DataFrame, outcomes: Sequence[str]) -> Table:
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
    return table(
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


def harms_table(harms: pd.DataFrame) -> Table:
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
    return table(
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


def balance_table(bal: pd.DataFrame) -> Table:
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
    return table(
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


def sensitivity_table(sens: pd.DataFrame) -> Table:
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
    return table(
        df,
        ["analysis", "population", "method", "total cost change", "95% CI", "programme people"]
        + ["comparison people"],
        numeric=["e", "ci", "n", "nc"],
    )


LINK_RATE_HEADERS = ("dimension", "value", "source group", "records", "linked", "link rate")


@dataclass(frozen=True)
class Linkage:
    """The released linkage quality: link rates overall and by age band, sex and borough, and
    the implausible links (each None when not released)."""

    overall: Table | None = None
    by_group: Table | None = None
    implausible: Table | None = None


def linkage_section(release: Mapping[str, pd.DataFrame]) -> Linkage:
    overall = by_group = implausible = None
    rates = release.get("linkage_quality.csv")
    numeric = ["records", "linked", "link_rate"]
    if rates is not None and not rates.empty:
        cols = columns(LinkageLinkRates)
        is_overall = rates["dimension"] == "overall"
        overall = table(rates[is_overall][cols].map(shown), LINK_RATE_HEADERS, numeric)
        rest = rates[~is_overall][cols]
        if not rest.empty:
            by_group = table(rest.map(shown), LINK_RATE_HEADERS, numeric)
    imp = release.get("linkage_implausible.csv")
    if imp is not None and not imp.empty:
        implausible = table(
            imp[["rule", "description", "persons"]].map(shown),
            ["rule", "description", "people"],
            numeric=["persons"],
        )
    return Linkage(overall, by_group, implausible)


@dataclass(frozen=True)
class UnitCosts:
    """The released unit costs: their version, the table and each cost caveat explained."""

    version: str
    table: Table
    caveats: tuple[tuple[str, str], ...]


def unit_cost_section(costs: pd.DataFrame | None) -> UnitCosts | None:
    if costs is None or costs.empty:
        return None
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
    shown_costs = table(
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
    version = ", ".join(sorted(set(costs["unit_cost_version"])))
    return UnitCosts(version, shown_costs, tuple((f, explain_flag(f)) for f in flags))
