"""The published release: the disclosure-controlled tables (written to disk and scanned by
`publish.release_files`).

Pure functions over warehouse tables (no Dagster, no matplotlib). The disclosure rule is the one
in `sim_pipeline.publish.disclosure` (NHS Digital HES/ECDS, September 2018): a count of 1-7 is
shown as ``*`` and every other count is rounded to the nearest 5 (0 stays 0); a mean, estimate,
rate, percentage or SMD based on 1-7 people is shown as ``*``. Beyond the rule:

* individual-level values are never released: no row per person, no person key or register id
  (an input carrying such a column raises ``ValueError``), and the headline statistics that are
  one person's value (`WITHHELD_STATISTICS`: the largest individual fall, the shortest and the
  longest stay) are dropped and named in the README;
* a link rate is also suppressed when its numerator (linked) or the unlinked remainder is 1-7,
  and a risk (deaths) when 1-7 people had the event, because rate x n would give the
  suppressed count back.

Every released value is text (numbers formatted by `publish.release_cells`, so the same input
gives byte-identical files); an empty cell means "not applicable / not estimated", ``*`` means
suppressed.

This module owns the release as a whole (`build_release`: which input makes which file, the
checks on every input and file). Its tables are built in `publish.release_evaluation`
(estimates, sensitivity, harms, balance, trajectory), `publish.release_headline`,
`publish.release_linkage` and `publish.release_costs`; what it holds and says (files, orders,
notes, caveats) is in `publish.release_catalogue`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sim_pipeline.publish import (
    release_costs,
    release_evaluation,
    release_headline,
    release_linkage,
)
from sim_pipeline.publish.disclosure import check_identifiers
from sim_pipeline.publish.release_catalogue import HARM_OUTCOMES, PRIMARY, RELEASE_INPUTS
from sim_pipeline.publish.release_cells import require


def _present(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    df = tables.get(name)
    return None if df is None or df.empty else df


def build_release(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The release: file name -> disclosure-controlled table (every cell text). A file whose
    input table is missing or empty is left out. ValueError if an input that would be published
    has an identifier column, lacks a needed column, or the tables mix price years."""
    for name in RELEASE_INPUTS:
        df = _present(tables, name)
        if df is not None:
            check_identifiers(name, df)
    basis = release_costs.cost_basis(tables)
    flags = release_costs.flags(tables)
    cost_note = f"cost caveats: {';'.join(flags)} (see unit_costs.csv)" if flags else ""
    release: dict[str, pd.DataFrame] = {}
    est = _present(tables, "evaluation_estimates")
    if est is not None:
        require("evaluation_estimates", est, ["analysis", "population", "outcome", "method"])
        require("evaluation_estimates", est, ["estimate", "n_people"])
        release["evaluation_estimates.csv"] = release_evaluation.estimates(
            est[est["analysis"] == PRIMARY], cost_note, basis
        )
        release["evaluation_sensitivity.csv"] = release_evaluation.estimates(
            est[est["outcome"] == "total_cost"], cost_note, basis
        )
        harms = est[(est["analysis"] == PRIMARY) & est["outcome"].isin(HARM_OUTCOMES)]
        release["harms.csv"] = release_evaluation.estimates(harms, cost_note, basis)
    bal = _present(tables, "evaluation_balance")
    if bal is not None:
        require("evaluation_balance", bal, ["analysis", "population", "covariate", "n_treated"])
        release["evaluation_balance.csv"] = release_evaluation.balance(bal, basis)
    traj = _present(tables, "evaluation_trajectory")
    if traj is not None:
        require(
            "evaluation_trajectory",
            traj,
            ["analysis", "population", "group", "months_from_index", "n_people"],
        )
        release["evaluation_trajectory.csv"] = release_evaluation.trajectory(traj, basis)
    head = _present(tables, "programme_headline")
    if head is not None:
        require("programme_headline", head, ["population", "statistic", "value"])
        release["headline.csv"] = release_headline.controlled_headline(head, cost_note)
    rates = _present(tables, "linkage_link_rates")
    if rates is not None:
        require("linkage_link_rates", rates, ["dimension", "value", "source_group"])
        require("linkage_link_rates", rates, ["records", "linked"])
        release["linkage_quality.csv"] = release_linkage.controlled_link_rates(rates)
    implausible = _present(tables, "linkage_implausible")
    if implausible is not None:
        require("linkage_implausible", implausible, ["rule", "persons"])
        release["linkage_implausible.csv"] = release_linkage.implausible(implausible)
    costs = _present(tables, "unit_costs")
    if costs is not None:
        require("unit_costs", costs, ["metric"])
        release["unit_costs.csv"] = release_costs.unit_costs(costs)
    for name, df in release.items():
        check_identifiers(name, df)
    return dict(sorted(release.items()))
