"""The person_index asset: linkage of the staged encodings into stable person keys, and the tables
the same run writes (key changes, model parameters, threshold curve, weight histogram). Wiring
only: the logic is in `sim_pipeline.identity` (linkage, person_index)."""

import json
import time
from datetime import UTC, datetime
from typing import Literal

import dagster as dg
import pandas as pd

from sim_pipeline.config import Settings, current_key_id
from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.common import DATA_ENGINEERING, table_metadata, table_spec
from sim_pipeline.defs.ingest import STAGED_ASSETS
from sim_pipeline.defs.reads import recorded_death_dates, staged_for_linkage
from sim_pipeline.defs.resources import StudyDesignResource, WarehouseResource
from sim_pipeline.identity import linkage_quality as lq
from sim_pipeline.identity.incremental import link_new_records
from sim_pipeline.identity.linkage import (
    BLOCKING_RULES,
    LinkResult,
    link_encoded,
    stored_model,
)
from sim_pipeline.identity.person_dimension import person_dimension
from sim_pipeline.identity.person_index import (
    RECORD_KEY,
    assign_person_keys,
    index_records,
    linkage_rows,
)
from sim_pipeline.warehouse.store import Warehouse

GROUP = "identity"


_LINKAGE_KINDS = ("python", "splink", "duckdb")
INDEXED_ONCE = Check(
    "every_record_indexed_once",
    "Every staged record (source, table_name, record_ref) appears in the person index exactly "
    "once, with a person key. Checked before the index is written.",
    blocking=True,
)
NO_KEY_REISSUED = Check(
    "no_retired_key_reissued",
    "No person key that a merge retired has been given to anyone again, so a key in an old "
    "extract can never silently point at a different person. Checked before the index is "
    "written.",
    blocking=True,
)
# The tables one linkage run writes, each its own asset (`multi_asset`): the index and what an
# auditor reads beside it. Descriptions of their columns are the data dictionary's.
INDEX_TABLES = {
    "person_index": (
        "One stable person_key for every staged record (source, table_name, record_ref), from "
        "probabilistic linkage of the pseudonymised encodings only (Splink on DuckDB; keyed "
        "tokens, Bloom-filter name similarity, partial dates of birth, postcode levels). Keys of "
        "people already known are kept when new months arrive; merges and splits are written to "
        "person_key_changes. match_probability is the strongest link joining a record to its "
        "person (1.0 when joined by a shared local patient id or incident; empty when alone)."
    ),
    "person_dimension": (
        "Each person's sex, age band by month and death month, derived once from their "
        "records when linkage runs: the evaluation joins it by person_key instead of going "
        "back to the staged rows. One row per person and month with a record."
    ),
    "person_key_changes": (
        "Every record whose person key changed between linkage runs (a merge of two people "
        "into one, or a split), with the run that changed it: the history that lets an old "
        "extract's person key be followed, and proves a retired key is never reissued."
    ),
    "linkage_parameters": (
        "The trained linkage model of the latest run: m and u probabilities and the match "
        "weight of every comparison level (NHS-number token, names, date of birth, postcode, "
        "sex), so an auditor can see why two records were or were not linked."
    ),
    "linkage_model": (
        "The linkage model the latest full relink trained, as Splink's JSON (comparisons, m "
        "and u per level, prior, blocking rules; parameters only): an incremental run scores "
        "the new month's records with it, and an auditor can load it into Splink."
    ),
    "linkage_threshold_curve": (
        "How many scored record pairs each match-probability threshold would count as links "
        "(the latest run): how sensitive the person index is to the threshold chosen."
    ),
    "linkage_weight_histogram": (
        "The distribution of match weights over all scored record pairs of the latest run "
        "(pairs per 2-bit bin): matches and non-matches should form two separate humps."
    ),
}


# Written only by a full relink: an incremental run keeps the trained model and its diagnostics.
MODEL_TABLES = (
    "linkage_model",
    "linkage_parameters",
    "linkage_threshold_curve",
    "linkage_weight_histogram",
)


class LinkageRunConfig(dg.Config):
    """How this run links: ``full`` relinks every record and trains the model afresh (the
    periodic relink; splits and merges possible); ``incremental`` links only the records the
    person index lacks against the people already known, with the model the last full relink
    saved (`linkage_model`), so known keys stay and only merges can happen."""

    mode: Literal["full", "incremental"] = "full"


def saved_model(wh: Warehouse) -> tuple[dict, str]:
    """The saved model of the latest full relink and its run id; refuses, naming what to do,
    when there is none or it was made under another key."""
    table = wh.read("linkage_model")
    if table.empty:
        raise dg.Failure(
            "incremental linkage needs a saved model: materialise person_index with mode "
            "'full' first (linkage_model is empty)"
        )
    row = table.iloc[0]
    if row["key_fingerprint"] != current_key_id():
        raise dg.Failure(
            "incremental linkage refused: the saved model was trained on encodings under "
            f"another key (fingerprint {row['key_fingerprint']}); run a full relink"
        )
    return json.loads(row["model_json"]), str(row["run_id"])


def linkage_charts(
    result: LinkResult, rows: pd.DataFrame, full: bool, log: dg.DagsterLogManager | None = None
) -> dict[str, dg.MetadataValue | str]:
    """The trained model as JSON and Splink's charts (m and u, match weights, the waterfall of
    the least sure links: `identity.linkage_charts`), written by a full relink under the
    reports folder's ``linkage/``; an incremental run links to them only when they are of the
    model it used. Drawn after the tables are written, so a failure to draw is reported (in
    the metadata and the log, by its type) and never fails the step."""
    from sim_pipeline.identity.linkage_charts import (
        CHARTS,
        MODEL_FILE,
        explain_model,
        least_sure_links,
    )

    out = Settings.from_env().reports_dir / "linkage"
    files = {"model": MODEL_FILE, **{c: f"{c}.html" for c in CHARTS}}
    model = stored_model(result.model) if result.model else {}
    if full:
        for name in files.values():  # never leave an older model's charts beside this one
            (out / name).unlink(missing_ok=True)
        if model.get("sql_dialect", "duckdb") != "duckdb":
            return {"linkage_charts": "not drawn: the model was trained on Spark (Spark SQL)"}
        if not model:
            return {"linkage_charts": "not drawn: no model"}
        try:
            paths = explain_model(model, rows, least_sure_links(rows, result.clusters), out)
        except Exception as exc:  # noqa: BLE001 - the tables are written; the charts are extra
            if log is not None:
                log.warning(
                    f"person_index: the model's charts were not drawn ({type(exc).__name__})"
                )
            return {"linkage_charts": f"not drawn: {type(exc).__name__}"}
    else:
        saved = out / MODEL_FILE
        same = saved.exists() and json.loads(saved.read_text()) == model
        paths = {k: out / f for k, f in files.items() if same and (out / f).exists()}
        if not same:
            return {"linkage_charts": "none for the model in use (its full relink drew none)"}
    return {
        ("linkage_model_json" if k == "model" else f"chart_{k}"): dg.MetadataValue.path(str(p))
        for k, p in paths.items()
    }


@dg.multi_asset(
    name="person_index",
    specs=[
        table_spec(
            table,
            description,
            # ingest_summary: its check ingest_accepted holds linkage back while a staged
            # table's ingest checks fail
            deps=[*(a.key for a in STAGED_ASSETS), dg.AssetKey("ingest_summary")],
            group_name=GROUP,
            owners=[DATA_ENGINEERING],
            kinds=_LINKAGE_KINDS,
        )
        for table, description in INDEX_TABLES.items()
    ],
    check_specs=[INDEXED_ONCE.spec("person_index"), NO_KEY_REISSUED.spec("person_index")],
    can_subset=False,
)
def person_index(
    context: dg.AssetExecutionContext,
    config: LinkageRunConfig,
    warehouse: WarehouseResource,
    study: StudyDesignResource,
):
    wh = warehouse.get()
    t0 = time.perf_counter()
    rows, groups = linkage_rows(staged_for_linkage(wh))  # the staged frames freed here
    previous = wh.read("person_index")
    history = wh.read("person_key_changes")
    recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
    full = config.mode == "full"
    if full:
        result = link_encoded(rows, groups, study.linkage_options())
        model_run = context.run.run_id
    else:
        model, model_run = saved_model(wh)
        result, _ = link_new_records(rows, groups, previous, model, study.linkage_options())
    records = index_records(rows, result)
    index, changes = assign_person_keys(
        records, previous if len(previous) else None, recorded_at, history if len(history) else None
    )
    changes["run_id"] = context.run.run_id

    expected = rows[RECORD_KEY].drop_duplicates()
    duplicated = int(index.duplicated(RECORD_KEY).sum())
    missing = len(expected) - len(index.merge(expected, on=RECORD_KEY))
    incomplete = bool(duplicated or missing or index["person_key"].isna().any())
    incomplete_text = (
        f"person index incomplete: {missing} staged records missing, {duplicated} duplicated"
    )
    retired = (
        set(history.loc[history["change"] == "merge", "from_person_key"]) if len(history) else set()
    )
    retired |= set(changes.loc[changes["change"] == "merge", "from_person_key"])
    reissued = sorted(retired & set(index["person_key"]))
    reissue = {"retired_keys": len(retired), "reissued": len(reissued)}
    reissue_text = (
        f"person index would reissue retired person keys: reissued: {len(reissued)} of "
        f"{len(retired)} retired keys"
    )
    problems = [t for t, bad in ((incomplete_text, incomplete), (reissue_text, reissued)) if bad]
    checks = [
        INDEXED_ONCE.result(
            not incomplete,
            description=incomplete_text + "; nothing written" if incomplete else None,
            metadata={"staged_records": len(expected), "indexed": len(index)},
        ),
        NO_KEY_REISSUED.result(
            not reissued,
            description=reissue_text + "; nothing written" if reissued else None,
            metadata=reissue,
        ),
    ]
    curve, histogram = lq.threshold_curve(result.pairs), lq.weight_histogram(result.pairs)
    dimension = person_dimension(rows, index, recorded_death_dates(wh))
    writes = [Write("person_index", index), Write("person_dimension", dimension)]
    if full:
        model_row = pd.DataFrame(
            {
                "run_id": [context.run.run_id],
                "recorded_at": [recorded_at],
                "key_fingerprint": [current_key_id()],
                "records": [len(expected)],
                "profiles": [int(result.counts.get("profiles", 0))],
                "model_json": [json.dumps(stored_model(result.model), sort_keys=True)],
            }
        )
        writes += [
            Write("linkage_model", model_row),
            Write("linkage_parameters", result.parameters),
            Write("linkage_threshold_curve", curve),
            Write("linkage_weight_histogram", histogram),
        ]
    if len(changes):  # the key history grows only when keys move
        writes.append(Write("person_key_changes", changes, {"run_id": [context.run.run_id]}))
    written = yield from write_or_refuse(
        wh,
        context,
        writes,
        checks,
        rows_in=len(expected),
        refusal="; ".join(problems) + "; nothing written",
        note="rows_in: staged records; rows_out: person_index rows",
        stage="person_index",
    )
    charts = linkage_charts(result, rows, full, context.log)
    persons = index["person_key"].nunique()
    sizes = index.groupby("person_key").size()
    change_counts = changes["change"].value_counts().to_dict() if len(changes) else {}
    yield dg.MaterializeResult(
        asset_key="person_index",
        data_version=written.data_version("person_index"),
        metadata={
            "dagster/row_count": len(index),
            **written.metadata,
            "persons": persons,
            "records_per_person_median": float(sizes.median()) if len(sizes) else 0.0,
            "records_linked_to_others": int((sizes[index["person_key"]] > 1).sum()),
            "key_changes_this_run": dg.MetadataValue.json(change_counts),
            "mode": config.mode,
            **charts,
            "model_trained": result.trained,
            "model_of_run": model_run,
            "threshold": study.linkage_threshold,
            "linkage_counts": dg.MetadataValue.json(result.counts),
            "linkage_seconds": dg.MetadataValue.json(
                {k: round(v, 2) for k, v in result.timings.items()}
            ),
            "total_seconds": round(time.perf_counter() - t0, 1),
            "blocking_rules": dg.MetadataValue.md("\n".join(f"- `{r}`" for r in BLOCKING_RULES)),
        },
        check_results=checks,
    )
    yield dg.MaterializeResult(
        asset_key="person_dimension",
        data_version=written.data_version("person_dimension"),
        metadata={
            "dagster/row_count": len(dimension),
            "persons": int(dimension["person_key"].nunique()),
            "persons_with_recorded_sex": int(
                dimension.dropna(subset=["sex"])["person_key"].nunique()
            ),
            "persons_with_recorded_death": int(
                dimension.dropna(subset=["death_month"])["person_key"].nunique()
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key="person_key_changes",
        data_version=written.data_version("person_key_changes"),
        metadata={
            "rows_this_run": len(changes),
            "changes_this_run": dg.MetadataValue.json(change_counts),
        },
    )
    if not full:  # the model and its diagnostics are the last full relink's, unchanged
        for table in MODEL_TABLES:
            yield dg.MaterializeResult(
                asset_key=table,
                data_version=written.data_version(table),
                metadata={"unchanged": f"kept from the full relink of run {model_run}"},
            )
    else:
        params = result.parameters.copy()
        for col in ("m_probability", "u_probability", "match_weight"):
            params[col] = params[col].astype(float).round(4)
        yield dg.MaterializeResult(
            asset_key="linkage_model",
            data_version=written.data_version("linkage_model"),
            metadata={
                "dagster/row_count": 1,
                "run_id": context.run.run_id,
                "comparisons": len(result.model.get("comparisons", [])),
            },
        )
        yield dg.MaterializeResult(
            asset_key="linkage_parameters",
            data_version=written.data_version("linkage_parameters"),
            metadata={"dagster/row_count": len(params), "model_parameters": table_metadata(params)},
        )
        yield dg.MaterializeResult(
            asset_key="linkage_threshold_curve",
            data_version=written.data_version("linkage_threshold_curve"),
            metadata={"dagster/row_count": len(curve), "threshold_curve": table_metadata(curve)},
        )
        yield dg.MaterializeResult(
            asset_key="linkage_weight_histogram",
            data_version=written.data_version("linkage_weight_histogram"),
            metadata={"dagster/row_count": len(histogram)},
        )
    context.log.info(
        f"person_index ({config.mode}): {len(index)} records, {persons} persons, "
        f"changes {change_counts}"
    )
