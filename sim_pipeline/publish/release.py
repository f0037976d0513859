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

Every released value is text (numbers formatted here, so the same input gives byte-identical
files); an empty cell means "not applicable / not estimated", ``*`` means suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from sim_pipeline.evaluation import comparison as evaluation
from sim_pipeline.evaluation import matched_design
from sim_pipeline.publish.disclosure import (
    SUPPRESSED,
    check_identifiers,
    control_count,
    controlled_rate,
    is_count_statistic,
)
from sim_pipeline.publish.release_catalogue import (
    ANALYSES,
    GROUPS,
    HARM_OUTCOMES,
    METHODS,
    NAIVE_NOTE,
    PRIMARY,
    RELEASE_INPUTS,
    RELEASE_POPULATIONS,
    SUPPRESSED_NOTE,
    USE_OUTCOMES,
    WITHHELD_STATISTICS,
)
from sim_pipeline.publish.release_cells import (
    NUMERIC,
    fmt,
    join_notes,
    require,
    small,
    sort,
    stat,
    text,
)

DIAGNOSTIC_NOTE = (
    "a diagnostic of the primary design, not an effect: its interval should hold 0 (placebo in "
    "time: index a year before allocation, months -12..-4; negative control: community contacts "
    "in the year before allocation)"
)
HARM_NOTES = {
    "ae_self_harm": "A&E attendances for self-harm: a rise may signal harm",
    "arrests": "arrests: a rise may signal criminalisation of a health need",
    "charges": "criminal charges: a rise may signal criminalisation of a health need",
    "s136_police_station": "s136 detentions held at a police station rather than a health-based "
    "place of safety",
    "community_contacts": "community mental-health contacts: a fall may signal withheld care",
    "community_dna": "missed community appointments (did not attend)",
    "deaths": "deaths: a risk difference (share of people), not a relative change",
}
DID_NOTE = (
    "difference-in-differences against matched comparison people; 95% CI from a person-level "
    "(matched-set) bootstrap"
)


def cost_basis(tables: Mapping[str, pd.DataFrame]) -> tuple[str, str]:
    """The one (price_year, unit_cost_version) of every cost in ``tables``; ValueError if the
    tables mix price years or versions ('' when no table says)."""
    found: dict[str, set[str]] = {"price_year": set(), "unit_cost_version": set()}
    for name in ("evaluation_estimates", "programme_headline", "unit_costs"):
        df = tables.get(name)
        if df is None or df.empty:
            continue
        if name == "evaluation_estimates" and "outcome" in df.columns:
            df = df[df["outcome"] == "total_cost"]
        for col, seen in found.items():
            if col in df.columns:
                seen.update(text(v) for v in df[col] if text(v))
    for col, seen in found.items():
        if len(seen) > 1:
            raise ValueError(
                f"the tables mix {col} values {sorted(seen)}: rebuild them from one set of unit "
                "costs before publishing"
            )
    return (
        next(iter(found["price_year"]), ""),
        next(iter(found["unit_cost_version"]), ""),
    )


# released columns: the warehouse table's, then the cost basis and a note
_RELEASE_EXTRA = ["price_year", "unit_cost_version", "note"]
ESTIMATE_COLUMNS = [*evaluation.ESTIMATE_COLUMNS, *_RELEASE_EXTRA]


def _people_with_event_small(risk: object, n: object) -> bool:
    """True when ``risk`` (a share of ``n`` people, e.g. who died) x ``n`` is 1-7 people."""
    if risk is None or n is None or pd.isna(risk) or pd.isna(n):
        return False
    return small(float(risk) * float(n))


def _round5_risk(risk: object, n: object) -> float | None:
    """A risk recomputed from its count and denominator each rounded to 5 (so the published
    risk cannot be multiplied back into an exact count)."""
    if risk is None or n is None or pd.isna(risk) or pd.isna(n) or not float(n):
        return None
    count = round(float(risk) * float(n))
    denom = 5 * round(float(n) / 5)
    return (5 * round(count / 5)) / denom if denom else None


def _risk_from_rounded_counts(out: dict, r: dict, n_t: object, n_c: object) -> None:
    """Deaths rows: follow-up risks and their difference from rounded counts (3 dp), the
    interval to 2 dp only."""
    t = _round5_risk(r.get("treated_followup"), n_t)
    c = _round5_risk(r.get("comparison_followup"), n_c)
    if t is not None:
        out["treated_followup"] = fmt(t, 3)
    if c is not None and out["comparison_followup"] != SUPPRESSED:
        out["comparison_followup"] = fmt(c, 3)
    if out["estimate"] == SUPPRESSED:
        return
    if r.get("method") == "difference_in_differences" and t is not None and c is not None:
        out["estimate"] = fmt(t - c, 3)
    elif t is not None and r.get("method") == "naive_before_after":
        out["estimate"] = fmt(t, 3)
    else:  # a model-adjusted difference (the primary design): to 2 dp, like its interval
        out["estimate"] = fmt(r.get("estimate"), 2)
    for col in ("ci_low", "ci_high"):
        if out[col] not in ("", SUPPRESSED):
            out[col] = fmt(r.get(col), 2)


def _estimates(df: pd.DataFrame, cost_note: str, basis: tuple[str, str]) -> pd.DataFrame:
    """Controlled rows of evaluation_estimates: relative changes and shares to 3 dp, GBP
    levels to whole pounds, other levels (per person-month) to 3 dp; deaths risks recomputed
    from counts rounded to 5 (3 dp) and their intervals to 2 dp.
    Treated levels are suppressed on 1-7 treated people, comparison levels on 1-7 comparison
    people, the estimate, CI and rtm_share on either. On the risk scale (deaths) the same holds
    for 1-7 people with the event (risk x n would give that count back). A missing price year
    or unit-cost version is taken from ``basis``."""
    method_note = {"naive_before_after": NAIVE_NOTE, "difference_in_differences": DID_NOTE}
    rows = []
    for r in df.to_dict("records"):
        n_t = r.get("n_people")
        n_c = r.get("n_comparison", 0)
        risk = r.get("scale") == "risk_difference"
        small_t = small(n_t) or (risk and _people_with_event_small(r.get("treated_followup"), n_t))
        small_c = small(n_c) or (
            risk and _people_with_event_small(r.get("comparison_followup"), n_c)
        )
        edp = 4 if risk else 3
        ldp = 0 if r["outcome"] == "total_cost" else (4 if risk else 3)

        def stat(col: str, dp: int, suppress: bool, r: dict = r) -> str:
            text = fmt(r.get(col), dp)
            return SUPPRESSED if text and suppress else text

        out = {
            "analysis": text(r["analysis"]),
            "population": text(r["population"]),
            "outcome": text(r["outcome"]),
            "method": text(r["method"]),
            "scale": text(r.get("scale")),
            "estimate": stat("estimate", edp, small_t or small_c),
            "ci_low": stat("ci_low", edp, small_t or small_c),
            "ci_high": stat("ci_high", edp, small_t or small_c),
            "n_people": control_count(n_t),
            "n_comparison": control_count(n_c),
            "treated_baseline": stat("treated_baseline", ldp, small_t),
            "treated_followup": stat("treated_followup", ldp, small_t),
            "comparison_baseline": stat("comparison_baseline", ldp, small_c),
            "comparison_followup": stat("comparison_followup", ldp, small_c),
            "rtm_share": stat("rtm_share", 3, small_t or small_c),
            # replicates, not people: a count the reader needs to judge the interval
            "bootstrap_failed": fmt(r.get("bootstrap_failed"), 0),
            "price_year": text(r.get("price_year")) or basis[0],
            "unit_cost_version": text(r.get("unit_cost_version")) or basis[1],
        }
        if risk and out["treated_followup"] != SUPPRESSED:
            # the follow-up risks from rounded counts even when the estimate is suppressed
            # (a 4-decimal risk over a published count would give the exact count back)
            _risk_from_rounded_counts(out, r, n_t, n_c)
        diagnostic = out["population"] in matched_design.DIAGNOSTIC_POPULATIONS
        out["note"] = join_notes(
            method_note.get(out["method"], ""),
            DIAGNOSTIC_NOTE if diagnostic else "",
            "" if diagnostic else HARM_NOTES.get(out["outcome"], ""),
            cost_note if out["outcome"] == "total_cost" else "",
            SUPPRESSED_NOTE + (" or 1-7 people with the event" if risk else "")
            if SUPPRESSED in out.values()
            else "",
        )
        rows.append(out)
    res = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    return sort(
        res,
        [
            ("analysis", ANALYSES),
            ("population", RELEASE_POPULATIONS),
            ("outcome", USE_OUTCOMES + HARM_OUTCOMES),
            ("method", METHODS),
        ],
    )


BALANCE_COLUMNS = [*evaluation.BALANCE_COLUMNS, *_RELEASE_EXTRA]


def _balance(df: pd.DataFrame, basis: tuple[str, str]) -> pd.DataFrame:
    """Controlled balance rows: means to 3 dp (cost covariates to whole pounds), SMDs to 3 dp."""
    rows = []
    for r in df.to_dict("records"):
        nt, nb, na = r.get("n_treated"), r.get("n_comparison_before"), r.get("n_comparison_after")
        dp = 0 if "cost" in str(r["covariate"]) else 3
        out = {
            "analysis": text(r["analysis"]),
            "population": text(r["population"]),
            "covariate": text(r["covariate"]),
            "treated_mean": stat(r.get("treated_mean"), dp, nt),
            "comparison_mean_before": stat(r.get("comparison_mean_before"), dp, nb),
            "smd_before": stat(r.get("smd_before"), 3, nt, nb),
            "comparison_mean_after": stat(r.get("comparison_mean_after"), dp, na),
            "smd_after": stat(r.get("smd_after"), 3, nt, na),
            "n_treated": control_count(nt),
            "n_comparison_before": control_count(nb),
            "n_comparison_after": control_count(na),
            "price_year": basis[0],
            "unit_cost_version": basis[1],
        }
        out["note"] = SUPPRESSED_NOTE if SUPPRESSED in out.values() else ""
        rows.append(out)
    res = pd.DataFrame(rows, columns=BALANCE_COLUMNS)
    return sort(
        res, [("analysis", ANALYSES), ("population", RELEASE_POPULATIONS), ("covariate", None)]
    )


def _trajectory(df: pd.DataFrame, basis: tuple[str, str]) -> pd.DataFrame:
    """Controlled month cells: n_people controlled, means suppressed when n_people is 1-7
    (mean_total_cost to whole pounds, other means to 3 dp)."""
    means = ["mean_total_cost"] if "mean_total_cost" in df.columns else []
    means += sorted(c for c in df.columns if c.startswith("mean_") and c != "mean_total_cost")
    columns = ["analysis", "population", "group", "months_from_index", "n_people", *means]
    rows = []
    for r in df.to_dict("records"):
        n = r.get("n_people")
        out = {
            "analysis": text(r["analysis"]),
            "population": text(r["population"]),
            "group": text(r["group"]),
            "months_from_index": str(int(r["months_from_index"])),
            "n_people": control_count(n),
        }
        for m in means:
            out[m] = stat(r.get(m), 0 if m == "mean_total_cost" else 3, n)
        out["price_year"], out["unit_cost_version"] = basis
        out["note"] = SUPPRESSED_NOTE if small(n) else ""
        rows.append(out)
    res = pd.DataFrame(rows, columns=[*columns, "price_year", "unit_cost_version", "note"])
    return sort(
        res,
        [
            ("analysis", ANALYSES),
            ("population", RELEASE_POPULATIONS),
            ("group", GROUPS),
            ("months_from_index", NUMERIC),
        ],
    )


def _headline_dp(statistic: str) -> int:
    """Decimals of a headline statistic: GBP 0, percentages and months 1, rates 3."""
    if "_gbp" in statistic:
        return 0
    if "pct" in statistic or "months" in statistic:
        return 1
    if "cost" in statistic:
        return 0
    return 3


def controlled_headline(df: pd.DataFrame, cost_note: str) -> pd.DataFrame:
    """The naive headline in long form, flagged as naive; counts controlled, statistics of a
    population with 1-7 people (n_with_change, else n_people) suppressed, withheld statistics
    dropped. GBP to whole pounds, percentages and months to 1 dp, rates to 3 dp."""
    bases: dict[str, object] = {}
    for population, d in df.groupby("population"):
        s = d.set_index("statistic")["value"]
        bases[str(population)] = s.get("n_with_change", s.get("n_people"))
    rows = []
    for r in df.to_dict("records"):
        statistic = str(r["statistic"])
        if statistic in WITHHELD_STATISTICS:
            continue
        population = str(r["population"])
        if is_count_statistic(statistic):
            value = control_count(r["value"])
        elif statistic == "pct_with_cost_fall":
            # from the rounded counts (people with a fall, of n_with_change): to one decimal,
            # the exact share gave n back
            n = bases.get(population)
            k = None if n is None or pd.isna(r["value"]) else float(r["value"]) / 100 * float(n)
            rate = controlled_rate(k, n, 100)
            value = fmt(rate, 1) if rate is not None else (SUPPRESSED if k is not None else "")
        else:
            value = stat(r["value"], _headline_dp(statistic), bases.get(population))
        notes = [NAIVE_NOTE]
        if "gbp" in statistic or "cost" in statistic:
            notes.append(cost_note)
        if value == SUPPRESSED and not is_count_statistic(statistic):
            notes.append(SUPPRESSED_NOTE)
        rows.append(
            {
                "population": population,
                "statistic": statistic,
                "value": value,
                "method": "naive_before_after",
                "price_year": text(r.get("price_year")),
                "unit_cost_version": text(r.get("unit_cost_version")),
                "note": join_notes(*notes),
            }
        )
    columns = ["population", "statistic", "value", "method", "price_year", "unit_cost_version"]
    res = pd.DataFrame(rows, columns=[*columns, "note"])
    return sort(res, [("population", RELEASE_POPULATIONS), ("statistic", None)])


def headline_preview(head: pd.DataFrame, statistics: Sequence[str]) -> pd.DataFrame:
    """The headline as an asset preview shows it: the published (controlled) values, wide
    (statistics as rows, populations as columns)."""
    ctl = controlled_headline(head, "")
    wide = ctl.pivot(index="statistic", columns="population", values="value")
    wide = wide.reindex(columns=[p for p in RELEASE_POPULATIONS if p in wide.columns])
    return wide.reindex([s for s in statistics if s in wide.index]).reset_index()


def controlled_shares(
    df: pd.DataFrame, counts: str, by: str | list[str], share: str = "share", dp: int = 3
) -> pd.DataFrame:
    """``df`` with ``share`` (``counts`` over its ``by`` group's total) recomputed from the
    rounded counts (`controlled_rate`), so the share gives back no exact count."""
    out = df.copy()
    totals = out.groupby(by)[counts].transform("sum")
    out[share] = [
        fmt(r, dp) if (r := controlled_rate(k, n)) is not None else SUPPRESSED
        for k, n in zip(out[counts], totals, strict=True)
    ]
    return out


def controlled_link_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Controlled link rates (3 dp) computed from the rounded counts (`controlled_rate`); a rate
    is suppressed when records, linked or unlinked is 1-7 (the rate would give the suppressed
    count back)."""
    rows = []
    for r in df.to_dict("records"):
        records, linked = r["records"], r["linked"]
        rate = controlled_rate(linked, records)
        out = {
            "dimension": text(r["dimension"]),
            "value": text(r["value"]),
            "source_group": text(r["source_group"]),
            "records": control_count(records),
            "linked": control_count(linked),
            # from the rounded counts: 3 decimals of linked / records would give them back
            "link_rate": fmt(rate, 3)
            if rate is not None
            else (SUPPRESSED if fmt(r.get("link_rate"), 3) else ""),
        }
        out["note"] = (
            "* = 1-7 records, linked or unlinked records: suppressed"
            if SUPPRESSED in out.values()
            else ""
        )
        rows.append(out)
    res = pd.DataFrame(
        rows,
        columns=["dimension", "value", "source_group", "records", "linked", "link_rate", "note"],
    )
    dims = ("overall", "age_band", "person_sex", "borough")
    return sort(res, [("dimension", dims), ("value", None), ("source_group", None)])


def _implausible(df: pd.DataFrame) -> pd.DataFrame:
    """Controlled implausible-link counts per rule."""
    res = pd.DataFrame(
        {
            "rule": [text(v) for v in df["rule"]],
            "description": [text(v) for v in df["description"]]
            if "description" in df.columns
            else "",
            "persons": [control_count(v) for v in df["persons"]],
        }
    )
    res["note"] = ["* = 1-7 people, suppressed" if v == SUPPRESSED else "" for v in res["persons"]]
    return sort(res, [("rule", None)])


FLAG_TEXT = {
    "price_index_unverified": "the price index used to inflate costs to one price year is "
    "indicative, not verified against the published index",
}


def explain_flag(flag: str) -> str:
    """A cost flag (``unsourced_assumption:<metric>``, ``price_index_unverified``) in words."""
    if flag.startswith("unsourced_assumption:"):
        metric = flag.split(":", 1)[1]
        return f"the unit cost of {metric} is a user-supplied assumption with no published source"
    return FLAG_TEXT.get(flag, flag)


def _flags(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every distinct cost flag carried by the unit costs (sorted)."""
    df = tables.get("unit_costs")
    if df is None or df.empty or "cost_flags" not in df.columns:
        return []
    return sorted({f for v in df["cost_flags"] for f in text(v).split(";") if f})


def _unit_costs(df: pd.DataFrame) -> pd.DataFrame:
    """The unit costs applied, as published reference values (not counts: no control)."""
    rows = []
    for r in df.to_dict("records"):
        sourced = str(r.get("sourced")).lower() in {"true", "1"}
        flags = [f for f in text(r.get("cost_flags")).split(";") if f]
        factor = r.get("inflation_factor")
        notes = []
        if not sourced:
            notes.append("ASSUMPTION: no published cost found; user-supplied")
        if "price_index_unverified" in flags and not pd.isna(factor) and float(factor) != 1:
            notes.append("inflated with an unverified price index")
        rows.append(
            {
                "metric": text(r["metric"]),
                "item": text(r.get("item")),
                "unit_cost_gbp": fmt(r.get("unit_cost_gbp"), 2),
                "source_price_year": text(r.get("source_price_year")),
                "source": text(r.get("source")),
                "sourced": "true" if sourced else "false",
                "inflation_factor": fmt(factor, 4),
                "unit_cost_at_price_year": fmt(r.get("unit_cost_at_price_year"), 2),
                "price_year": text(r.get("price_year")),
                "unit_cost_version": text(r.get("unit_cost_version")),
                "cost_flags": ";".join(flags),
                "note": join_notes(*notes),
            }
        )
    columns = [
        "metric",
        "item",
        "unit_cost_gbp",
        "source_price_year",
        "source",
        "sourced",
        "inflation_factor",
        "unit_cost_at_price_year",
        "price_year",
        "unit_cost_version",
        "cost_flags",
        "note",
    ]
    return sort(pd.DataFrame(rows, columns=columns), [("metric", USE_OUTCOMES)])


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
    basis = cost_basis(tables)
    flags = _flags(tables)
    cost_note = f"cost caveats: {';'.join(flags)} (see unit_costs.csv)" if flags else ""
    release: dict[str, pd.DataFrame] = {}
    est = _present(tables, "evaluation_estimates")
    if est is not None:
        require("evaluation_estimates", est, ["analysis", "population", "outcome", "method"])
        require("evaluation_estimates", est, ["estimate", "n_people"])
        release["evaluation_estimates.csv"] = _estimates(
            est[est["analysis"] == PRIMARY], cost_note, basis
        )
        release["evaluation_sensitivity.csv"] = _estimates(
            est[est["outcome"] == "total_cost"], cost_note, basis
        )
        harms = est[(est["analysis"] == PRIMARY) & est["outcome"].isin(HARM_OUTCOMES)]
        release["harms.csv"] = _estimates(harms, cost_note, basis)
    bal = _present(tables, "evaluation_balance")
    if bal is not None:
        require("evaluation_balance", bal, ["analysis", "population", "covariate", "n_treated"])
        release["evaluation_balance.csv"] = _balance(bal, basis)
    traj = _present(tables, "evaluation_trajectory")
    if traj is not None:
        require(
            "evaluation_trajectory",
            traj,
            ["analysis", "population", "group", "months_from_index", "n_people"],
        )
        release["evaluation_trajectory.csv"] = _trajectory(traj, basis)
    head = _present(tables, "programme_headline")
    if head is not None:
        require("programme_headline", head, ["population", "statistic", "value"])
        release["headline.csv"] = controlled_headline(head, cost_note)
    rates = _present(tables, "linkage_link_rates")
    if rates is not None:
        require("linkage_link_rates", rates, ["dimension", "value", "source_group"])
        require("linkage_link_rates", rates, ["records", "linked"])
        release["linkage_quality.csv"] = controlled_link_rates(rates)
    implausible = _present(tables, "linkage_implausible")
    if implausible is not None:
        require("linkage_implausible", implausible, ["rule", "persons"])
        release["linkage_implausible.csv"] = _implausible(implausible)
    costs = _present(tables, "unit_costs")
    if costs is not None:
        require("unit_costs", costs, ["metric"])
        release["unit_costs.csv"] = _unit_costs(costs)
    for name, df in release.items():
        check_identifiers(name, df)
    return dict(sorted(release.items()))
