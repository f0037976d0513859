"""Linkage quality as GUILD / RECORD ask: link rates, weights, threshold sensitivity, implausible
links, linked vs unlinked characteristics. Pure functions over the person index and staged rows;
every output is an aggregate (no record-level rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.identity.person_index import RECORD_KEY, recorded_deaths, with_person_keys
from sim_pipeline.identity.scoring import source_group
from sim_pipeline.identity.tables import LinkageLinkRates
from sim_pipeline.warehouse.model import columns

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999)
IMPLAUSIBLE_RULES = {
    "activity_after_death": "a record dated in a month after the person's recorded death",
    "two_nhs_numbers_one_source": "two different NHS-number tokens from one provider",
    "two_death_dates": "two different recorded dates of death",
}


def record_attributes(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per record: first month seen, age band, sex and borough (aggregates only)."""
    r = rows.copy()
    r["person_sex"] = r["person_sex"].where(r["person_sex"].notna(), "U")
    return r.groupby(RECORD_KEY, as_index=False).agg(
        month=("month", "min"),
        age_band=("age_band", "first"),
        person_sex=("person_sex", "first"),
        borough=("borough", "first"),
    )


def linked_records(index: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    """Every indexed record with its attributes (`record_attributes`), its source group and
    whether its person also has records in another source group: what `link_rates` and
    `linked_vs_unlinked` both read (pass it to each, to join once)."""
    df = index.merge(attrs, on=RECORD_KEY, how="left")
    df["source_group"] = source_group(df["source"])
    groups = df.groupby("person_key")["source_group"].nunique()
    df["linked"] = df["person_key"].map(groups).to_numpy() > 1
    return df


def link_rates(
    index: pd.DataFrame, attrs: pd.DataFrame, linked: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Share of each source group's records whose person also has records in another source
    group, overall and by age band, sex and borough (``linked``: `linked_records` of the
    same index and attributes, when already made)."""
    df = linked_records(index, attrs) if linked is None else linked
    out = []
    for dim in ("overall", "age_band", "person_sex", "borough"):
        value = pd.Series("all", index=df.index) if dim == "overall" else df[dim].fillna("unknown")
        g = df.assign(value=value).groupby(["source_group", "value"])["linked"]
        t = g.agg(records="size", linked="sum").reset_index()
        t.insert(0, "dimension", dim)
        out.append(t)
    res = pd.concat(out, ignore_index=True)
    res["linked"] = res["linked"].astype("int64")
    res["link_rate"] = (res["linked"] / res["records"]).round(4)
    return res[columns(LinkageLinkRates)]


def linked_vs_unlinked(
    index: pd.DataFrame, attrs: pd.DataFrame, linked: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Distribution of age band and sex among linked and among unlinked records (``linked``
    as for `link_rates`)."""
    df = linked_records(index, attrs) if linked is None else linked
    out = []
    for dim in ("age_band", "person_sex"):
        t = (
            df.assign(value=df[dim].fillna("unknown"))
            .groupby(["linked", "value"])
            .size()
            .rename("records")
            .reset_index()
        )
        t["share"] = (t["records"] / t.groupby("linked")["records"].transform("sum")).round(4)
        t.insert(0, "dimension", dim)
        out.append(t)
    res = pd.concat(out, ignore_index=True)
    res["linked"] = np.where(res["linked"], "linked", "unlinked")
    return res.rename(columns={"linked": "status"})


def implausible_links(
    index: pd.DataFrame, rows: pd.DataFrame, deaths: pd.DataFrame
) -> tuple[pd.DataFrame, set[str]]:
    """Persons with implausible links, per rule, and the set of such person keys.

    ``rows`` are linkage rows (record key, month, nhs_number_token); ``deaths`` has the record
    key plus ``death_date`` for records that carry one (MHSDS MPI).
    """
    keyed = with_person_keys(rows[[*RECORD_KEY, "month", "nhs_number_token"]], index, how="inner")
    flagged: dict[str, set[str]] = {}
    nhs = keyed.dropna(subset=["nhs_number_token"])
    per_source = nhs.groupby(["person_key", "source"])["nhs_number_token"].nunique()
    flagged["two_nhs_numbers_one_source"] = set(
        per_source[per_source > 1].index.get_level_values(0)
    )
    d = recorded_deaths(deaths, index)
    n_dates = d.groupby("person_key")["death_date"].nunique()
    flagged["two_death_dates"] = set(n_dates[n_dates > 1].index)
    first_death = d.groupby("person_key")["death_month"].min()
    last_month = keyed.groupby("person_key")["month"].max()
    both = pd.concat([first_death.rename("death"), last_month.rename("last")], axis=1).dropna()
    flagged["activity_after_death"] = set(both[both["last"] > both["death"]].index)
    table = pd.DataFrame(
        [
            {"rule": rule, "description": IMPLAUSIBLE_RULES[rule], "persons": len(flagged[rule])}
            for rule in IMPLAUSIBLE_RULES
        ]
    )
    return table, set().union(*flagged.values())


def threshold_curve(
    pairs: pd.DataFrame, thresholds: tuple[float, ...] = THRESHOLDS
) -> pd.DataFrame:
    """How many scored pairs would count as links at each match-probability threshold."""
    p = pairs["match_probability"].to_numpy(dtype=float)
    anchored = pairs["anchored"].to_numpy(dtype=bool) if len(pairs) else np.zeros(0, bool)
    return pd.DataFrame(
        [
            {
                "threshold": t,
                "pairs_at_or_above": int((p >= t).sum()),
                "anchored_pairs": int(((p >= t) & anchored).sum()),
            }
            for t in thresholds
        ]
    )


def weight_histogram(pairs: pd.DataFrame) -> pd.DataFrame:
    """Scored pairs by match weight, in 2-bit bins (lower edge)."""
    w = np.floor(np.round(pairs["match_weight"].to_numpy(dtype=float), 6) / 2) * 2
    counts = pd.Series(w).value_counts().sort_index()
    return pd.DataFrame({"weight_bin": counts.index.astype(float), "pairs": counts.to_numpy()})
