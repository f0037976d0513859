"""sim_pipeline: evaluating multi-agency mental-health crisis programmes from linked,
pseudonymised extracts, as a Dagster code location. The packages follow the data: `sources/`
(the providers' extract contracts), `landing/` (the drop folder), `ingest/` (staging behind the
privacy boundary), `identity/` (pseudonymisation and linkage), `measures/` (events, cohort,
metrics, costs, headline), `evaluation/` (the comparison-cohort estimate), `publish/`
(disclosure control, release, report), `quality/` (checks, Great Expectations, coverage),
`warehouse/` (table declarations, storage, migrations); `defs/` wires them into assets and
`definitions.py` is the code location; `synthetic/` makes synthetic worlds and `bench/` measures
(docs/architecture.md)."""

import warnings as _warnings

# With the optional `spark` group installed, pandera imports pyspark.pandas, which warns that it
# does not yet support pandas 3 on every import: noise in every command (the linkage engine
# does not use pyspark.pandas).
_warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
