"""The linkage model made inspectable: the trained model as JSON and Splink's standard charts.

After a full relink, `explain_model` writes to a folder:

- ``linkage_model.json``: the model as Splink saves it (m and u per comparison level, the
  prior, the comparisons' SQL; no values);
- ``m_u_parameters.html`` and ``match_weights.html``: Splink's charts of the model (what each
  level of each comparison weighs);
- ``waterfall.html``: Splink's waterfall for a sample of linked pairs, the links the model was
  least sure of (lowest match probability among records joined to another source's): each bar
  a comparison level and its weight, summing to the pair's match weight.

The charts are self-contained HTML (Splink's offline charts: the Vega libraries inlined, nothing
fetched). The waterfall is drawn with ``remove_sensitive_data``: it shows comparison levels and
weights only, no value from either record, not even a token or an encoding. Pseudonymised
profiles are all the engine sees; nothing here reads an identifier.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from sim_pipeline.identity.linkage import profiles
from sim_pipeline.identity.linkage_model import BLOOM_COLUMNS

CHARTS = ("m_u_parameters", "match_weights", "waterfall")
MODEL_FILE = "linkage_model.json"


def least_sure_links(
    rows: pd.DataFrame, clusters: pd.DataFrame, n: int = 8
) -> list[tuple[object, object]]:
    """Up to ``n`` pairs of row labels joined into one person from different sources, the
    least sure first: each row with the lowest match probability whose cluster holds a row of
    another source, paired with that row. ``rows``: linkage rows (``source`` and encodings);
    ``clusters``: `LinkResult.clusters` on the same index."""
    c = clusters[["cluster", "match_probability"]].join(rows[["source"]])
    mixed = c.groupby("cluster")["source"].nunique()
    c = c[c["cluster"].isin(mixed.index[mixed > 1])]  # people with records of two sources
    linked = c[c["match_probability"].notna()].sort_values("match_probability", kind="stable")
    pairs: list[tuple[object, object]] = []
    for cluster, first in linked.groupby("cluster", sort=False).head(1).head(n).iterrows():
        others = c[(c["cluster"] == first["cluster"]) & (c["source"] != first["source"])]
        pairs.append((cluster, others.index[0]))
    return pairs


def _settings_for_charts(model: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(model))
    out["retain_matching_columns"] = True
    out["retain_intermediate_calculation_columns"] = True
    return out


def explain_model(
    model: dict[str, Any],
    rows: pd.DataFrame,
    pairs: list[tuple[object, object]],
    out_dir: Path,
) -> dict[str, Path]:
    """Write the model's JSON and Splink's charts to ``out_dir``; returns {name: path}.
    ``rows``: linkage rows holding at least the pairs' rows; ``pairs``: row labels to draw in
    the waterfall (`least_sure_links`)."""
    import duckdb
    from splink import DuckDBAPI, Linker

    if model.get("sql_dialect", "duckdb") != "duckdb":  # Spark SQL: drawn by Spark's linker
        raise ValueError("the charts are drawn on DuckDB: the model's SQL is another dialect's")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"model": out_dir / MODEL_FILE}
    written["model"].write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
    labels = list(dict.fromkeys(label for pair in pairs for label in pair))
    sample = rows.loc[labels] if labels else rows.head(2)
    table, profile_of_row = profiles(sample)
    profile = dict(zip(sample.index, profile_of_row, strict=True))
    con = duckdb.connect()
    try:
        api = DuckDBAPI(connection=con)
        linker = Linker(
            api.register(table, dataset_display_name="profiles"),
            _settings_for_charts(model),
            log_level=logging.WARNING,
        )
        charts = {
            "m_u_parameters": linker.visualisations.m_u_parameters_chart(),
            "match_weights": linker.visualisations.match_weights_chart(),
        }
        # the exact-name levels' term frequencies, over every record's encoding (the run takes
        # them over its profiles: the same figures up to records repeated within a profile)
        freq = {b: rows[b].dropna().value_counts(normalize=True) for b in BLOOM_COLUMNS}
        # the pairs' profiles (no encodings, or one profile by construction: not drawn)
        drawn = [
            (profile[a], profile[b], a, b)
            for a, b in pairs
            if profile[a] >= 0 and profile[b] >= 0 and profile[a] != profile[b]
        ]
        records = []
        if drawn:
            # every left profile against every right one in one scoring (Splink's cartesian
            # `score_pairs`), then the drawn pairs taken from it in their order: one query
            # where a query per pair cost 0.15 s each
            sides = []
            for side in (0, 1):
                chosen = {d[side]: d[side + 2] for d in drawn}  # profile -> a record of it
                sides.append(
                    api.register(
                        table.iloc[list(chosen)].assign(
                            **{
                                f"tf_{bf.removesuffix('_bf')}_key": [
                                    freq[bf].get(rows.at[r, bf]) for r in chosen.values()
                                ]
                                for bf in BLOOM_COLUMNS
                            }
                        ),
                        dataset_display_name=f"records_{'lr'[side]}",
                    )
                )
            scored = {
                (r["profile_id_l"], r["profile_id_r"]): r
                for r in linker.inference.score_pairs(*sides).as_record_list()
            }
            records = [scored[(pa, pb)] for pa, pb, _, _ in drawn]
        if records:
            charts["waterfall"] = linker.visualisations.waterfall_chart(
                records, filter_nulls=True, remove_sensitive_data=True
            )
        for name, chart in charts.items():
            path = out_dir / f"{name}.html"
            chart.save_offline_chart(str(path), overwrite=True, print_msg=False)
            written[name] = path
    finally:
        con.close()
    return written
