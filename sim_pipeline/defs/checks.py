"""Asset checks declared once, and the one way an asset writes its tables.

`Check` holds a check's name, description and whether it blocks; its spec and every result
come from it, and the result's severity follows from the declaration: a check that blocks
(its failure stops the step, or the write before it) and a gated one (its failure holds
`ingest_summary:ingest_accepted` and so everything after ingest back) fail as ERROR, any other
check warns. No asset sets a severity by hand.

`write_or_refuse` is the end of every writing asset: the frames are checked against their
table declarations (`warehouse.model.violations`) and the asset's blocking checks; if any
fails nothing is written, the audit row says ``not_written`` and the step fails with the
reason; otherwise every table and the audit row are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from sim_pipeline.defs.common import record_audit
from sim_pipeline.warehouse.store import Warehouse, content_version


@dataclass(frozen=True)
class Check:
    """One asset check: its name, what it means, and whether it blocks (or gates)."""

    name: str
    description: str
    blocking: bool = False
    # fails as ERROR without stopping its step: the ingest gate reads it (defs/quality.py)
    gated: bool = False

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        if self.blocking or self.gated:
            return dg.AssetCheckSeverity.ERROR
        return dg.AssetCheckSeverity.WARN

    def spec(self, asset: str | dg.AssetKey, **kwargs: Any) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name,
            asset=asset,
            blocking=self.blocking,
            description=self.description,
            **kwargs,
        )

    def result(
        self,
        passed: bool,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        asset: str | dg.AssetKey | None = None,
    ) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=self.name,
            asset_key=asset,
            passed=bool(passed),
            severity=self.severity,
            description=description,
            metadata=dict(metadata or {}),
        )


@dataclass(frozen=True)
class Write:
    """One table an asset writes: the frame, and the rows it replaces (``where``: column ->
    values; None replaces the whole table)."""

    table: str
    frame: pd.DataFrame
    where: Mapping[str, Sequence[object]] | None = None


@dataclass
class Written:
    """What `write_or_refuse` wrote: rows per table, the provenance metadata and, for each
    table written whole, its content version (`content_version`)."""

    rows: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, dg.RawMetadataValue] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def data_version(self, table: str) -> dg.DataVersion | None:
        """The data version of an asset that wrote ``table`` whole: equal content, equal
        version, so a re-run that changes nothing leaves what reads it fresh. (A monthly
        asset's run covers a range of partitions with one version, so those keep Dagster's
        own, from their code version and their inputs' versions.)"""
        version = self.versions.get(table)
        return dg.DataVersion(version) if version else None


def refuse(
    wh: Warehouse,
    context: dg.AssetExecutionContext,
    checks: Sequence[dg.AssetCheckResult],
    message: str,
    *,
    rows_in: int | None,
    rows_rejected: int | None = 0,
    note: str | None = None,
    unit_cost_version: str | None = None,
    stage: str | None = None,
    failure_metadata: Mapping[str, dg.RawMetadataValue] | None = None,
) -> Generator[dg.AssetCheckResult, None, None]:
    """A stage that will not write: yield its check results so the UI records why, append its
    ``not_written`` audit row, and fail the step with ``message``. Use as
    ``yield from refuse(...)``; it never returns."""
    yield from checks
    record_audit(
        wh,
        context,
        rows_in=rows_in,
        rows_out=0,
        rows_rejected=rows_rejected,
        status="not_written",
        note=note or message,
        unit_cost_version=unit_cost_version,
        stage=stage,
    )
    raise dg.Failure(description=message, metadata=dict(failure_metadata or {})) from None


def write_or_refuse(
    wh: Warehouse,
    context: dg.AssetExecutionContext,
    writes: Sequence[Write],
    checks: Sequence[dg.AssetCheckResult] = (),
    *,
    rows_in: int | None,
    rows_out: int | None = None,
    rows_rejected: int | None = 0,
    refusal: str | None = None,
    note: str | None = None,
    unit_cost_version: str | None = None,
    stage: str | None = None,
    failure_metadata: Mapping[str, dg.RawMetadataValue] | None = None,
) -> Generator[dg.AssetCheckResult, None, Written]:
    """Write ``writes`` and the audit row in one transaction, or refuse.

    Refuses when a check in ``checks`` whose spec blocks failed, or a frame breaks its table's
    declaration (`warehouse.model.violations`: column, rule and rows, never a value): then
    the checks are yielded so the UI records why, the audit row says ``not_written`` and the
    step fails with ``refusal`` (when a check failed; default: the failed checks' names) and
    the breaches. Use as
    ``written = yield from write_or_refuse(...)``; on success nothing is yielded (the caller
    reports ``checks`` in its `MaterializeResult`)."""
    from sim_pipeline.warehouse.dictionary import RUN_SPECIFIC_COLUMNS, is_declared, model
    from sim_pipeline.warehouse.model import violations

    stops = _blocking_checks(context)
    failed = [c.check_name for c in checks if not c.passed and c.check_name in stops]
    breaches = [
        f"{w.table} {v}"
        for w in writes
        if is_declared(w.table)
        for v in violations(model(w.table), w.frame)
    ]
    if failed or breaches:
        name = stage or context.asset_key.to_user_string()
        reason = (refusal or f"{name}: check(s) {', '.join(failed)} failed") if failed else name
        reason = reason.removesuffix("; nothing written")
        if breaches:
            reason += "; breaks its declaration: " + "; ".join(breaches[:20])
        yield from refuse(
            wh,
            context,
            checks,
            reason + "; nothing written",
            rows_in=rows_in,
            rows_rejected=rows_rejected,
            unit_cost_version=unit_cost_version,
            stage=stage,
            failure_metadata=failure_metadata,
        )
    out = Written()
    with wh.transaction() as tx:
        for w in writes:
            if w.where is None:
                out.rows[w.table] = tx.replace_all(w.table, w.frame)
                out.versions[w.table] = content_version(w.frame, RUN_SPECIFIC_COLUMNS)
            else:
                out.rows[w.table] = tx.replace(w.table, w.frame, w.where)
        out.metadata = record_audit(
            tx,
            context,
            rows_in=rows_in,
            rows_out=rows_out if rows_out is not None else len(writes[0].frame),
            rows_rejected=rows_rejected,
            unit_cost_version=unit_cost_version,
            note=note,
            stage=stage,
        )
    return out


def _blocking_checks(context: dg.AssetExecutionContext) -> set[str]:
    return {spec.name for spec in context.assets_def.check_specs if spec.blocking}
