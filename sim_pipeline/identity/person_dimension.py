"""The person dimension: each person's sex, age band by month and death month, derived once from
their records when linkage runs (`person_dimension`, written beside `person_index`). Later stages
join it by person_key; none goes back to the staged rows for a person's demographics."""

from __future__ import annotations

import pandas as pd

from sim_pipeline.identity.person_index import recorded_deaths, with_person_keys
from sim_pipeline.identity.tables import PersonDimension
from sim_pipeline.warehouse.model import columns

DIMENSION_COLUMNS = columns(PersonDimension)


def most_frequent(df: pd.DataFrame, by: list[str], col: str) -> pd.Series:
    """Most frequent ``col`` per ``by`` group (ties: the first value in sort order); groups
    with no value are absent."""
    n = df.groupby([*by, col], observed=True).size().rename("n").reset_index()
    n = n.sort_values([*by, "n", col], ascending=[True] * len(by) + [False, True])
    return n.drop_duplicates(by).set_index(by)[col]


def person_dimension(
    rows: pd.DataFrame, index: pd.DataFrame, deaths: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per person and month with a record: the person's sex, that month's age band and
    the person's death month.

    ``rows``: staged rows (source, table_name, record_ref, month, person_sex, age_band; one row
    per staged row, a record resent monthly counts each month); ``index``: the person index;
    ``deaths``: records (source, table_name, record_ref) with ``death_date``. Sex is the
    person's most frequent recorded M/F over all rows, the age band the month's most frequent
    (ties: first in sort order), the death month the earliest recorded death's.
    """
    keyed = with_person_keys(
        rows[["source", "table_name", "record_ref", "month", "person_sex", "age_band"]],
        index,
        how="inner",
    ).astype({"month": "string", "person_sex": "string", "age_band": "string"})
    out = keyed[["person_key", "month"]].drop_duplicates().astype("string")
    known = keyed.dropna(subset=["person_sex"])
    sex = most_frequent(known[known["person_sex"] != "U"], ["person_key"], "person_sex")
    band = most_frequent(keyed.dropna(subset=["age_band"]), ["person_key", "month"], "age_band")
    out["sex"] = out["person_key"].map(sex)
    out = out.merge(band.rename("age_band").reset_index(), on=["person_key", "month"], how="left")
    if deaths is not None and len(deaths):
        first = recorded_deaths(deaths, index).groupby("person_key")["death_month"].min()
        out["death_month"] = out["person_key"].map(first)
    else:
        out["death_month"] = pd.NA
    out = out.astype({c: "string" for c in DIMENSION_COLUMNS})
    return out.sort_values(["person_key", "month"]).reset_index(drop=True)[DIMENSION_COLUMNS]
