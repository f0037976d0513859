"""The programme cohort: the register joined to person keys, with each person's windows.

Windows are whole calendar months (the grain of every metric):

* baseline: the ``baseline_months`` months before the allocation month (default 12), cut at the
  start of the data;
* programme period: from the month of engagement (of allocation, for people who never engaged)
  to the month of discharge, or the last month of data while still on the programme, cut to the
  months of data. First and last months count whole even when partial, as the programme review
  counted "months on SIM";
* populations: intention-to-treat (every allocated person) and per-protocol (engaged).

The register is a monthly snapshot of everyone allocated so far; its latest row per RegisterId
is the truth about that person. A register row whose person has no record in any other source is
kept and flagged (``linked`` false), not dropped.
"""

from __future__ import annotations

import pandas as pd

from sim_pipeline.identity.person_index import with_person_keys
from sim_pipeline.measures.tables import Cohort
from sim_pipeline.warehouse.model import columns

WINDOW_COLUMNS = [
    "baseline_first_month",
    "baseline_last_month",
    "baseline_months",
    "programme_first_month",
    "programme_last_month",
    "programme_months",
]
COHORT_COLUMNS = columns(Cohort)


def _month(d: pd.Series) -> pd.Series:
    return pd.to_datetime(d).dt.to_period("M")


def months_between(first: str, last: str) -> list[str]:
    """Calendar months first..last inclusive, as YYYY-MM."""
    if first > last:
        return []
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def build_cohort(
    register: pd.DataFrame,
    index: pd.DataFrame,
    first_month: str,
    last_month: str,
    baseline_months: int = 12,
) -> pd.DataFrame:
    """One row per register entry (latest snapshot), with person key and windows.

    ``register`` is staged_programme_register (any months); ``index`` the person index;
    ``first_month``/``last_month`` bound the data (YYYY-MM)."""
    if baseline_months < 1:
        raise ValueError("baseline_months must be at least 1")
    if register.empty:
        return _empty()
    latest = (
        register.assign(record_ref=register["record_ref"].astype("string"))
        .sort_values(["record_ref", "month"], kind="stable")
        .drop_duplicates("record_ref", keep="last")
    )
    keys = index[["source", "table_name", "record_ref", "person_key"]].astype("string")
    df = with_person_keys(latest, index, table_name="programme_register")
    if df["person_key"].isna().any():
        raise ValueError(
            f"{int(df['person_key'].isna().sum())} register rows are missing from the person "
            "index (materialise person_index first)"
        )
    per_person = keys.groupby("person_key").size()
    own = keys[keys["table_name"] == "programme_register"].groupby("person_key").size()
    others = per_person.sub(own, fill_value=0)

    alloc = pd.to_datetime(df["AllocationDate"])
    engage = pd.to_datetime(df["EngagementDate"])
    discharge = pd.to_datetime(df["DischargeDate"])
    win = cohort_windows(alloc, engage, discharge, first_month, last_month, baseline_months)
    engaged = engage.notna()
    out = pd.DataFrame(
        {
            "register_id": df["record_ref"].astype("string"),
            "person_key": df["person_key"].astype("string"),
            "org_code": df["OrgIDProv"].astype("string"),
            "borough": df["Borough"].astype("string"),
            "allocation_date": alloc.dt.date,
            "engagement_date": engage.dt.date,
            "discharge_date": discharge.dt.date,
            "discharge_reason": df["DischargeReason"].astype("string"),
            "engaged": engaged,
            "itt": True,
            "per_protocol": engaged,
            **{c: win[c] for c in WINDOW_COLUMNS},
            "linked": df["person_key"].map(others).fillna(0).to_numpy() > 0,
            "linked_records": df["person_key"].map(others).fillna(0).astype("int64").to_numpy(),
        }
    )
    out["discharge_reason"] = out["discharge_reason"].replace("", pd.NA)
    return out.sort_values("register_id", kind="stable").reset_index(drop=True)[COHORT_COLUMNS]


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="string") for c in COHORT_COLUMNS})
    flags = ["engaged", "itt", "per_protocol", "linked"]
    counts = ["baseline_months", "programme_months", "linked_records"]
    return out.astype({**dict.fromkeys(flags, "bool"), **dict.fromkeys(counts, "int64")})


def cohort_windows(
    alloc: pd.Series,
    engage: pd.Series,
    discharge: pd.Series,
    first_month: str,
    last_month: str,
    baseline_months: int = 12,
) -> pd.DataFrame:
    """Baseline and programme windows (whole months, see the module docstring) from allocation,
    engagement and discharge dates (datetime Series; NaT when absent)."""
    first_p, last_p = pd.Period(first_month, "M"), pd.Period(last_month, "M")
    alloc_m = _month(alloc)
    base_first = (alloc_m - baseline_months).where(alloc_m - baseline_months >= first_p, first_p)
    base_last = alloc_m - 1
    prog_first = _month(engage.fillna(alloc))
    prog_first = prog_first.where(prog_first >= first_p, first_p)
    prog_last = _month(discharge).fillna(last_p)
    prog_last = prog_last.where(prog_last <= last_p, last_p)

    def span(a: pd.Series, b: pd.Series) -> pd.Series:
        n = [(y - x).n + 1 if x <= y else 0 for x, y in zip(a, b, strict=True)]
        return pd.Series(n, index=a.index, dtype="int64")

    return pd.DataFrame(
        {
            "baseline_first_month": base_first.astype("string"),
            "baseline_last_month": base_last.astype("string"),
            "baseline_months": span(base_first, base_last),
            "programme_first_month": prog_first.astype("string"),
            "programme_last_month": prog_last.astype("string"),
            "programme_months": span(prog_first, prog_last),
        },
        index=alloc.index,
    )


def cohort_people(cohort: pd.DataFrame) -> pd.DataFrame:
    """One row per person key (a person allocated twice keeps their first allocation; on the
    same day, the lower register id). The one de-duplication of the cohort: the headline, the
    metrics and the evaluation all take their people from it."""
    order = [c for c in ("person_key", "allocation_date", "register_id") if c in cohort.columns]
    return cohort.sort_values(order, kind="stable").drop_duplicates("person_key", keep="first")
