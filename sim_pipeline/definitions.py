"""The sim_pipeline code location (workspace.yaml and the dg project load it).

The settings are read once, here, when Dagster loads the code location: the ``@dg.definitions``
function builds the `Settings` from the environment and the Definitions from them (the study's
months as partitions, the warehouse's kind, the Data Docs link: `defs.common.apply_settings`;
the resources: `defs.resources.build_resources`). Nothing reads them when a module is imported.
"""

from __future__ import annotations

import dagster as dg

from sim_pipeline.config import Settings
from sim_pipeline.defs.automation import ingest_job, landing_sensor, monthly_ingest_schedule
from sim_pipeline.defs.cohort import cohort
from sim_pipeline.defs.common import apply_settings
from sim_pipeline.defs.costs import person_month_costs, unit_costs
from sim_pipeline.defs.coverage import drop_coverage
from sim_pipeline.defs.evaluation import evaluation
from sim_pipeline.defs.events import events
from sim_pipeline.defs.headline import programme_headline_asset
from sim_pipeline.defs.hooks import PROGRESS_HOOKS
from sim_pipeline.defs.ingest import STAGED_ASSETS
from sim_pipeline.defs.ledger import LEDGER_ASSETS
from sim_pipeline.defs.linkage import person_index
from sim_pipeline.defs.linkage_quality import linkage_quality
from sim_pipeline.defs.metrics import person_month_metrics
from sim_pipeline.defs.observations import (
    observe_sources_job,
    observe_sources_schedule,
    source_assets,
)
from sim_pipeline.defs.quality import ingest_summary
from sim_pipeline.defs.report import evaluation_report
from sim_pipeline.defs.resources import build_resources
from sim_pipeline.defs.versions import with_code_versions

ALL_ASSETS = [
    *STAGED_ASSETS,
    *LEDGER_ASSETS,
    ingest_summary,
    drop_coverage,
    person_index,
    linkage_quality,
    events,
    cohort,
    person_month_metrics,
    unit_costs,
    person_month_costs,
    programme_headline_asset,
    evaluation,
    evaluation_report,
]

all_assets_job = dg.define_asset_job(
    "sim_pipeline_all",
    selection=dg.AssetSelection.all(),
    description="Materialise the whole asset graph (ingest all months, then the summaries).",
    hooks=PROGRESS_HOOKS,
)


def load_definitions(
    settings: Settings | None = None, resources: dict[str, dg.ConfigurableResource] | None = None
) -> dg.Definitions:
    """The Definitions for ``settings`` (default: from the environment, now); ``resources``
    replace the named resources (tests: reference files elsewhere)."""
    settings = settings or Settings.from_env()
    return dg.Definitions(
        # each asset with its code version and a link to the function that makes it
        assets=[
            *dg.with_source_code_references(
                with_code_versions(apply_settings(ALL_ASSETS, settings))
            ),
            *source_assets(settings),
        ],
        jobs=[all_assets_job, ingest_job, observe_sources_job],
        schedules=[monthly_ingest_schedule, observe_sources_schedule],
        sensors=[landing_sensor],
        resources={**build_resources(), **(resources or {})},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads: the Definitions for the settings of this load."""
    return load_definitions()
