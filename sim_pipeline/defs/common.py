"""Shared Dagster definitions: partitions (defined once), owners, metadata helpers.

Nothing here reads the settings when imported: the partitioned assets are declared with the
open-ended `MONTHLY` and `apply_settings` (called by `definitions.build_definitions` when Dagster
loads the code location) gives them the study's months, the warehouse's kind and the Data Docs
link from the one `Settings` object built there.
"""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd

from sim_pipeline.config import FIRST_MONTH, Settings, current_key_id, project_key_text
from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.publish.disclosure import preview_table
from sim_pipeline.quality.audit import audit_row, code_version
from sim_pipeline.warehouse.store import Transaction, Warehouse

# backfill_policy is marked beta; we rely on single-run backfills deliberately.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def _month_after(month: str) -> str:
    return (pd.Period(month, "M") + 1).strftime("%Y-%m-01")


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """The study's months as partitions. The demo's data ends in 2021-05; production sets
    SIM_LAST_MONTH=open (no end: a new partition appears as each month closes)."""
    return dg.MonthlyPartitionsDefinition(
        start_date=f"{FIRST_MONTH}-01",
        end_date=None if settings.last_month == "open" else _month_after(settings.last_month),
        timezone="Europe/London",
    )


# What partitioned assets are declared with; `apply_settings` replaces it by the study's months.
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=f"{FIRST_MONTH}-01", timezone="Europe/London")


def study_months(settings: Settings | None = None) -> list[str]:
    """Every month of the study (YYYY-MM): the partitions `apply_settings` gives the assets,
    for the steps and sensors that read all months (settings from the environment, through
    `config.Settings`, unless given)."""
    keys = monthly_partitions(settings or Settings.from_env()).get_partition_keys()
    return [month_of(k) for k in keys]


DATA_ENGINEERING = "team:data-engineering"
DATA_QUALITY = "team:data-quality"
ANALYSTS = "team:analysts"


def month_of(partition_key: str) -> str:
    return partition_key[:7]


def warehouse_kind(settings: Settings) -> str:
    return "postgresql" if settings.warehouse_url.startswith("postgresql") else "sqlite"


def apply_settings(
    assets: list[dg.AssetsDefinition], settings: Settings
) -> list[dg.AssetsDefinition]:
    """The assets as this deployment runs them: partitioned ones over the study's months, every
    warehouse table with the warehouse's kind (sqlite or postgresql), every asset that runs a
    Great Expectations suite with the link to the Data Docs site."""
    from sim_pipeline.defs.gx import GX_KINDS
    from sim_pipeline.quality.gx_docs import docs_index

    monthly = monthly_partitions(settings)
    kind = warehouse_kind(settings)
    docs = {"data_docs": dg.MetadataValue.path(str(docs_index(settings.quality_dir)))}

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        changes: dict[str, Any] = {}
        if spec.partitions_def == MONTHLY:
            changes["partitions_def"] = monthly
        if "dagster/table_name" in spec.metadata:
            changes["kinds"] = {*spec.kinds, kind}
        if set(spec.kinds) >= GX_KINDS:
            changes["metadata"] = {**spec.metadata, **docs}
        return spec.replace_attributes(**changes) if changes else spec

    return list(dg.map_asset_specs(apply, assets))


def key_metadata(tokeniser: Tokeniser | None = None) -> dict[str, dg.RawMetadataValue]:
    """Which key made (or would make) the tokens: the tokeniser's, or without one the key the
    environment names (no landing check: a summary reads the ledger, it makes no token)."""
    if tokeniser is None:
        demo, key_id = project_key_text() is None, current_key_id()
    else:
        demo, key_id = tokeniser.demo, tokeniser.key_id
    label = "DEMO key (public, synthetic data only)" if demo else "project key"
    return {"pseudonymisation_key": label, "key_fingerprint": key_id}


def _cell(value: Any) -> str | int | float | bool | None:
    """A preview cell as Dagster's table metadata holds it (plain Python scalars)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return str(value)


def _column_type(cells: list[Any]) -> str:
    present = [c for c in cells if c is not None]
    if present and all(isinstance(c, bool) for c in present):
        return "bool"
    if present and all(isinstance(c, int) and not isinstance(c, bool) for c in present):
        return "int"
    if present and all(isinstance(c, int | float) and not isinstance(c, bool) for c in present):
        return "float"
    return "string"


def table_metadata(
    df: pd.DataFrame, counts_of: Literal["people", "records"] = "people"
) -> dg.MetadataValue:
    """A metadata preview as Dagster's typed table (columns with their types, rows as
    records), always through the disclosure function (`disclosure.preview_table`: counts of
    people controlled as published counts are, so a suppressed count is the text ``*`` and its
    column is typed as text; ``counts_of="records"`` for the ledger's and checks' exact row and
    file counts)."""
    df = preview_table(df, counts_of)
    names = [str(c) for c in df.columns]
    rows = [[_cell(v) for v in row] for row in df.itertuples(index=False)]
    columns = [
        dg.TableColumn(name, _column_type([r[i] for r in rows])) for i, name in enumerate(names)
    ]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(names, r, strict=True))) for r in rows],
        schema=dg.TableSchema(columns=columns),
    )


def figure_metadata(fig, path: Path, title: str) -> dg.MetadataValue:  # fig: matplotlib Figure
    """Save a matplotlib figure as PNG at ``path`` and return it inline (base64) as markdown
    metadata, so the web UI shows the picture without a file server."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    data = base64.b64encode(buf.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{data})")


def column_schema(table: str) -> dg.TableSchema:
    from sim_pipeline.warehouse.dictionary import table_doc

    doc = table_doc(table)
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in doc.columns]
    )


def definition_metadata(table: str) -> dict[str, Any]:
    """What a table asset's definition says of its table: the data dictionary's columns
    (``dagster/column_schema``), its name and, where the project traces it, its column lineage
    (`defs.lineage`; the UI reads a definition's when a materialisation reports none)."""
    from sim_pipeline.defs.lineage import lineage_metadata

    return {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table,
        **lineage_metadata(table),
    }


def table_spec(
    name: str,
    description: str,
    *,
    owners: list[str],
    group_name: str,
    deps: Any = (),
    kinds: tuple[str, ...] = ("python", "pandas"),
) -> dg.AssetSpec:
    """The spec of one warehouse table in a `multi_asset` that writes several: the same
    arguments as `table_asset` gives a single-table asset (name, dictionary columns,
    ``dagster/table_name``, group, owners, automation, kinds)."""
    args = table_asset(name, owners=owners, group_name=group_name, deps=deps, kinds=kinds)
    return dg.AssetSpec(name, description=description, **args)


def table_asset(
    table: str,
    *,
    owners: list[str],
    group_name: str,
    deps: Any = (),
    monthly: bool = False,
    gx: bool = False,
    kinds: tuple[str, ...] = ("python", "pandas"),
) -> dict[str, Any]:
    """The `dg.asset` arguments every single-table asset shares: the table's name, the data
    dictionary's columns and any column lineage (`definition_metadata`), group, owners and the
    downstream automation condition; ``monthly`` assets are partitioned by month and run a
    range as one backfill; ``gx`` ones run a Great Expectations suite. (The warehouse kind, the
    study's months and the Data Docs link come at load: `apply_settings`.) Use as
    ``@dg.asset(**table_asset(...), description=..., ...)``."""
    from sim_pipeline.defs.automation import DOWNSTREAM_AUTOMATION, MONTHLY_AUTOMATION, MONTHLY_TAG
    from sim_pipeline.defs.gx import GX_KINDS

    args: dict[str, Any] = {
        "deps": list(deps),
        "group_name": group_name,
        "owners": owners,
        "automation_condition": DOWNSTREAM_AUTOMATION,
        "kinds": {*kinds, *(GX_KINDS if gx else ())},
        "metadata": definition_metadata(table),
    }
    if monthly:
        args |= {
            "partitions_def": MONTHLY,
            "backfill_policy": dg.BackfillPolicy.single_run(),
            "automation_condition": MONTHLY_AUTOMATION,
            "tags": MONTHLY_TAG,
        }
    return args


def record_audit(
    target: Warehouse | Transaction,
    context: dg.AssetExecutionContext,
    *,
    rows_in: int | None,
    rows_out: int | None,
    rows_rejected: int | None = 0,
    unit_cost_version: str | None = None,
    status: str = "written",
    note: str | None = None,
    stage: str | None = None,
) -> dict[str, dg.RawMetadataValue]:
    """Append this run's `audit_trail` row for the asset (replacing it if the run repeats the
    stage): inside the asset's own write transaction when given one, else on its own. Returns
    metadata for the materialisation (the code version)."""

    key_id = current_key_id()
    name = stage or context.asset_key.to_user_string()
    partitioned = context.has_partition_key or context.has_partition_key_range
    months = [month_of(k) for k in context.partition_keys] if partitioned else []
    row = audit_row(
        run_id=context.run.run_id,
        stage=name,
        months=months,
        key_fingerprint=key_id,
        rows_in=rows_in,
        rows_out=rows_out,
        rows_rejected=rows_rejected,
        unit_cost_version=unit_cost_version,
        status=status,
        note=note,
    )
    where = {"run_id": [context.run.run_id], "stage": [name]}
    if isinstance(target, Warehouse):
        with target.transaction() as tx:
            tx.replace("audit_trail", row, where)
    else:
        target.replace("audit_trail", row, where)
    return {"code_version": code_version()}
