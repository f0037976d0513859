"""Column lineage (Dagster's ``dagster/column_lineage``), from landing columns to tokens, to the
person key, to events, metrics and costs. Wiring only: what each column is made from comes
from the stage that makes it (`ingest.tables.landing_lineage`, `measures.events.METRIC_INPUTS`,
the metric and cost names). The lineage is the same for every run, so it is part of each asset's
definition (`defs.common.definition_metadata`), which the UI's column view reads when a
materialisation carries none: it shows, for example, that `staged_ecds.nhs_number_token` is made
from the landing file's `NHS_Number` and nothing else of it passes the boundary. (Reported with
each materialisation it was serialised for every partition of a range, twice: 5 KB each of the
demo's 650 staged partitions.)
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from sim_pipeline.defs.observations import landing_key
from sim_pipeline.identity.linkage_model import ENCODING_COLUMNS
from sim_pipeline.ingest.tables import landing_lineage
from sim_pipeline.measures.events import METRIC_INPUTS
from sim_pipeline.measures.metrics import MEASURES
from sim_pipeline.measures.tables import COST_COLUMNS
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES

Dep = tuple[str, str]  # (asset, column)


def _lineage(deps: dict[str, list[Dep]]) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            col: [dg.TableColumnDep(asset_key=dg.AssetKey(a), column_name=c) for a, c in pairs]
            for col, pairs in deps.items()
            if pairs
        }
    )


def staged_column_deps(asset_name: str) -> dict[str, list[Dep]]:
    """A staged table's columns from its landing source's columns."""
    table = BY_ASSET[asset_name]
    source = landing_key(table).to_user_string()
    return {col: [(source, c) for c in cols] for col, cols in landing_lineage(table).items()}


def person_index_deps() -> dict[str, list[Dep]]:
    """The person key from every staged table's linkage encodings and group labels; the record
    key as each table's."""
    tokens = [
        (t.asset_name, c)
        for t in SOURCE_TABLES
        for c in ENCODING_COLUMNS
        if c in landing_lineage(t)
    ]
    labels = [(t.asset_name, column) for t in SOURCE_TABLES for column, _ns in t.person_links]
    return {
        "person_key": tokens + labels,
        "record_ref": [(t.asset_name, "record_ref") for t in SOURCE_TABLES],
        "source": [(t.asset_name, "source") for t in SOURCE_TABLES],
    }


def events_deps() -> dict[str, list[Dep]]:
    """Events from the staged columns each metric reads, their person from the index."""
    read = sorted({pair for pairs in METRIC_INPUTS.values() for pair in pairs})
    tables = sorted({a for a, _c in read})
    return {
        "person_key": [("person_index", "person_key")],
        "record_ref": [(a, "record_ref") for a in tables],
        "source": [(a, "source") for a in tables],
        "month": [(a, "month") for a in tables],
        "event_date": read,
        "quantity": read,
        "metric": read,
    }


def metrics_deps() -> dict[str, list[Dep]]:
    """Each metric's monthly count from the events of that metric."""
    events = [("events", "metric"), ("events", "quantity"), ("events", "event_date")]
    return {
        "person_key": [("cohort", "person_key"), ("events", "person_key")],
        "month": [("events", "month")],
        **{m: list(events) for m in MEASURES},
    }


def costs_deps() -> dict[str, list[Dep]]:
    """Each cost from its metric's count and the unit cost applied; the total from them."""
    price = [("unit_costs", "unit_cost_at_price_year"), ("unit_costs", "metric")]
    costs = {c: [("person_month_metrics", c.removeprefix("cost_")), *price] for c in COST_COLUMNS}
    return {
        "person_key": [("person_month_metrics", "person_key")],
        "month": [("person_month_metrics", "month")],
        **costs,
        "total_cost": sorted({d for deps in costs.values() for d in deps}),
        "price_year": [("unit_costs", "price_year")],
        "unit_cost_version": [("unit_costs", "unit_cost_version")],
        "cost_flags": [("unit_costs", "cost_flags")],
    }


_BUILDERS = {
    "person_index": person_index_deps,
    "events": events_deps,
    "person_month_metrics": metrics_deps,
    "person_month_costs": costs_deps,
}


@cache
def column_lineage(asset_name: str) -> dg.TableColumnLineage:
    """The lineage of an asset's columns (a staged table or one of `_BUILDERS`)."""
    if asset_name in BY_ASSET:
        return _lineage(staged_column_deps(asset_name))
    return _lineage(_BUILDERS[asset_name]())


def lineage_metadata(asset_name: str) -> dict[str, dg.TableColumnLineage]:
    """``dagster/column_lineage`` for an asset whose lineage is traced; nothing for another."""
    if asset_name not in BY_ASSET and asset_name not in _BUILDERS:
        return {}
    return {"dagster/column_lineage": column_lineage(asset_name)}
