"""sim_pipeline: evaluating multi-agency mental-health crisis programmes from linked,
pseudonymised extracts, as a Dagster code location. The packages follow the data: `sources/`
(the providers' extract contracts), `landing/` (the drop folder), `ingest/` (staging behind the
privacy boundary), `identity/` (pseudonymisation and linkage), `measures/` (events, cohort,
metrics, costs, headline), `evaluation/` (the comparison-cohort estimate), `publish/`
(disclosure control, release, report), `quality/` (checks, Great Expectations, coverage),
`warehouse/` (table declarations, storage, migrations); `defs/` wires them into assets and
`definitions.py` is the code location; `synthetic/` makes synthetic worlds and `bench/` measures
(docs/architecture.md)."""

import sys as _sys

# With the optional `spark` group installed, pandera imports pandas-on-Spark (`pyspark.pandas`)
# whenever pyspark is importable: 0.46 s in every process (each CLI command, each Dagster step
# process) and a FutureWarning about pandas 3. Nothing here uses pandas-on-Spark (the Spark
# engine runs Spark SQL through Splink), so unless something imported it already it is marked
# absent, and pandera goes on without its pyspark.pandas types.
_sys.modules.setdefault("pyspark.pandas", None)  # type: ignore[arg-type]
