"""Reading the warehouse for the measure and evaluation assets: the months a run covers, a
table (or its documented empty frame), the months with data, a staged table without its
encodings, and the staged inputs of the monthly measures. Shared by `defs.events`,
`defs.cohort`, `defs.metrics`, `defs.costs`, `defs.headline` and `defs.evaluation`."""

import dagster as dg
import pandas as pd

from sim_pipeline.defs.common import month_of
from sim_pipeline.identity.linkage import ENCODING_COLUMNS
from sim_pipeline.identity.person_index import DESCRIPTIVE_COLUMNS
from sim_pipeline.measures.costs import CostError, unit_costs_from_table
from sim_pipeline.measures.events import STAGED_INPUTS
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES
from sim_pipeline.warehouse.dictionary import table_doc
from sim_pipeline.warehouse.store import Warehouse

S136_BEFORE = "staged_police_s136_return"


def run_months(context: dg.AssetExecutionContext) -> list[str]:
    """The months (YYYY-MM) of the partitions a run materialises."""
    return [month_of(pk) for pk in context.partition_keys]


def month_before(month: str) -> str:
    """The month before ``month`` (YYYY-MM)."""
    return str(pd.Period(month, "M") - 1)


def staged_deps() -> list[dg.AssetDep]:
    """The staged tables the monthly measures read, each month on its own month (the s136
    police returns also on the month before)."""
    deps = []
    for name in STAGED_INPUTS:
        mapping = (
            # s136: a detention late on a month's last day may start its MHSDS period the next
            # day, so each month also reads the police returns of the month before.
            dg.TimeWindowPartitionMapping(
                start_offset=-1, allow_nonexistent_upstream_partitions=True
            )
            if name == S136_BEFORE
            else None
        )
        deps.append(dg.AssetDep(name, partition_mapping=mapping))
    return deps


def read_table(
    wh: Warehouse, table: str, where: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """A warehouse table, or an empty frame with its documented columns if nothing is there yet
    (an empty cohort writes no table)."""
    df = wh.read(table, where)
    if len(df.columns):
        return df
    dtypes = {"text": "string", "integer": "int64", "real": "float64", "boolean": "bool"}
    return pd.DataFrame(
        {c.name: pd.Series(dtype=dtypes.get(c.type, "object")) for c in table_doc(table).columns}
    )


def data_months(wh: Warehouse) -> list[str]:
    """Months with any ingested drop (the ingest ledger), oldest first."""
    ledger = wh.read("ingest_ledger", columns=["month"])
    return sorted(ledger["month"].dropna().astype(str).unique()) if len(ledger) else []


# the staged table whose records carry a date of death (MHSDS MPI)
DEATHS = BY_ASSET["staged_mhs001mpi"]


def recorded_death_dates(wh: Warehouse) -> pd.DataFrame:
    """Every staged MPI record's date of death (source, table_name, record_ref, death_date; empty
    where none): the input of `identity.person_index.recorded_deaths`."""
    deaths = wh.read(DEATHS.asset_name, columns=["source", "record_ref", "PersDeathDate"])
    return deaths.rename(columns={"PersDeathDate": "death_date"}).assign(table_name=DEATHS.table)


def staged_for_linkage(
    wh: Warehouse, encodings: list[str] = ENCODING_COLUMNS
) -> dict[str, pd.DataFrame]:
    """The staged columns linkage needs (record key, ``encodings``, descriptive and link
    fields), as text (`Warehouse.read_text`: a national month is 3.4 million rows)."""
    out = {}
    for t in SOURCE_TABLES:
        cols = ["source", "record_ref", "month", *encodings, *DESCRIPTIVE_COLUMNS, "Borough"]
        cols += [c for c, _ in t.person_links]
        out[t.asset_name] = wh.read_text(t.asset_name, cols)
    return out


def applied_unit_costs(wh: Warehouse):  # -> sim_pipeline.measures.costs.UnitCosts
    """The costs the `unit_costs` asset applied, read from its table (not the reference file)."""
    try:
        return unit_costs_from_table(wh.read("unit_costs"))
    except CostError as exc:
        raise dg.Failure(description=str(exc)) from None
