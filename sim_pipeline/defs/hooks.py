"""Step hooks: each finished step advances the command's progress (`sim_pipeline.progress`),
when a command in this process shows one; otherwise they do nothing. Wiring only."""

from __future__ import annotations

import dagster as dg

from sim_pipeline.progress import current


def _rows(context: dg.HookContext) -> int:
    """Rows the step reported (``dagster/row_count`` of its outputs)."""
    total = 0
    for meta in (context.op_output_metadata or {}).values():
        value = meta.get("dagster/row_count") if isinstance(meta, dict) else None
        value = getattr(value, "value", value)
        if isinstance(value, int):
            total += value
    return total


@dg.success_hook(name="progress_step_done")
def step_done(context: dg.HookContext) -> None:
    progress = current()
    if progress is not None:
        progress.advance(stage=context.op.name, rows=_rows(context))


@dg.failure_hook(name="progress_step_failed")
def step_failed(context: dg.HookContext) -> None:
    progress = current()
    if progress is not None:
        progress.advance(stage=f"{context.op.name} FAILED")


PROGRESS_HOOKS = {step_done, step_failed}
