"""The ingest ledger and quarantine as assets of their own (wiring only): external assets between
the staged tables, whose steps write their rows, and the summaries that read them."""

from sim_pipeline.defs.common import DATA_ENGINEERING, table_spec
from sim_pipeline.defs.ingest import STAGED_ASSETS

# The ingest ledger and quarantine, each an asset of its own in the graph. Their rows are
# written by the staged assets, in the same transaction as the staged rows they account for (a
# ledger written apart could disagree with the rows it counts), and each staged run reports a
# materialisation of both: Dagster does not run them, it records them (external assets).
LEDGER_TABLES = {
    "ingest_ledger": (
        "Row accounting for every landing file ingested: rows read, loaded and quarantined, "
        "the file's SHA-256, whether it was loaded or rejected as a whole, and the key that "
        "tokenised it. Written by each staged table's run with its staged rows (one "
        "transaction); ingest_summary and drop_coverage read it."
    ),
    "ingest_quarantine": (
        "Every rejected row of every landing file with its file, line, column, rule and a "
        "reason (never the rejected values). Written by each staged table's run with its "
        "staged rows (one transaction); ingest_summary counts it by rule."
    ),
}
LEDGER_ASSETS = [
    table_spec(
        name,
        description,
        deps=[a.key for a in STAGED_ASSETS],
        group_name="ingest",
        owners=[DATA_ENGINEERING],
    ).replace_attributes(automation_condition=None)
    for name, description in LEDGER_TABLES.items()
]
