"""Provider tables: contracts, landing layout and identifier columns (one module per provider)."""

from sim_pipeline.sources import ambulance, ecds, mhsds, police
from sim_pipeline.sources.base import IdentifierColumns, SourceTable

SOURCE_TABLES: tuple[SourceTable, ...] = (
    *mhsds.TABLES,
    *police.TABLES,
    *ambulance.TABLES,
    *ecds.TABLES,
)
BY_ASSET = {t.asset_name: t for t in SOURCE_TABLES}

__all__ = ["SOURCE_TABLES", "BY_ASSET", "IdentifierColumns", "SourceTable"]
