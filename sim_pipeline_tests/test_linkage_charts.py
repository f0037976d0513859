"""The model's charts (issue 20 item 6): which links the waterfall explains, and a model the
charts cannot draw (the end-to-end test checks the files of a real run)."""

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity.linkage_charts import explain_model, least_sure_links


def test_the_least_sure_cross_source_links_are_explained_one_per_person():
    rows = pd.DataFrame(
        {"source": ["ae", "police", "ae", "ae", "police", "mh", "ae", "police"]},
        index=[10, 11, 12, 13, 14, 15, 16, 17],
    )
    clusters = pd.DataFrame(
        {
            # person 0: two sources; 1: one source only; 2: three rows, two sources; 3: alone
            "cluster": [0, 0, 1, 1, 2, 2, 3, 2],
            "match_probability": [0.99, 0.97, 0.5, 0.5, 0.96, 0.999, np.nan, 0.98],
        },
        index=rows.index,
    )
    pairs = least_sure_links(rows, clusters, n=5)
    # the least sure first: person 2's 0.96 (police, paired with another source's row), then
    # person 0's 0.97; person 1 (one source) and the unlinked row never appear
    assert pairs == [(14, 15), (11, 10)]
    assert least_sure_links(rows, clusters, n=1) == [(14, 15)]


def test_a_spark_model_is_not_drawn_on_duckdb(tmp_path):
    with pytest.raises(ValueError, match="another dialect"):
        explain_model({"sql_dialect": "spark"}, pd.DataFrame(), [], tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_charts_never_fail_the_step_and_never_describe_another_model(tmp_path, monkeypatch):
    """`person_index` draws the charts after its tables are written: a failure to draw is
    reported, not raised; a full relink clears the previous model's charts; an incremental run
    links charts only when they are of the model it used."""
    from sim_pipeline.defs.linkage import linkage_charts
    from sim_pipeline.identity.linkage import LinkResult

    monkeypatch.setenv("SIM_REPORTS_DIR", str(tmp_path))
    folder = tmp_path / "linkage"
    folder.mkdir()
    (folder / "waterfall.html").write_text("an older model's chart")
    (folder / "linkage_model.json").write_text('{"probability_two_random_records_match": 0.5}')
    model = {"probability_two_random_records_match": 0.01, "comparisons": "not a model"}
    result = LinkResult(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), model=model)
    # incremental, with another model's files beside it: nothing linked
    meta = linkage_charts(result, pd.DataFrame(), full=False)
    assert meta == {"linkage_charts": "none for the model in use (its full relink drew none)"}
    # a full relink whose charts cannot be drawn: reported by type, the old files gone
    meta = linkage_charts(result, pd.DataFrame({"source": []}), full=True)
    assert list(meta) == ["linkage_charts"] and meta["linkage_charts"].startswith("not drawn: ")
    assert not (folder / "waterfall.html").exists()
    assert not (folder / "linkage_model.json").exists()


def test_the_waterfall_scores_its_pairs_at_once_as_each_alone(june_run, tmp_path, monkeypatch):
    """The waterfall's pairs are scored in one query (Splink's cartesian `score_pairs`, the
    pairs taken from it in order, a repeated pair too): each pair's record is what scoring it
    alone gives (`score_pair`, as the charts did before)."""
    import json
    import logging

    import duckdb
    from splink import DuckDBAPI, Linker
    from splink.internals.linker_components.inference import LinkerInference

    from sim_pipeline.identity import linkage_charts as lc
    from sim_pipeline.identity.person_index import linkage_rows
    from sim_pipeline.sources import SOURCE_TABLES

    snap = june_run["snap"]
    rows, _ = linkage_rows({t.asset_name: snap[t.asset_name] for t in SOURCE_TABLES})
    keyed = rows.reset_index().merge(
        snap["person_index"], on=["source", "table_name", "record_ref"]
    )
    keyed = keyed[keyed["given_name_bf"].notna() & keyed["family_name_bf"].notna()]
    pairs = []
    for _, g in keyed.groupby("person_key"):
        other = g[g["source"] != g["source"].iloc[0]]
        if len(other) and len(pairs) < 4:
            pairs.append((int(g["index"].iloc[0]), int(other["index"].iloc[0])))
    pairs.append(pairs[0])
    model_file = june_run["root"] / "reports" / "linkage" / lc.MODEL_FILE
    model = json.loads(model_file.read_text())
    scored: list[list[dict]] = []
    at_once = LinkerInference.score_pairs

    def spy(self, *args, **kwargs):
        out = at_once(self, *args, **kwargs)
        scored.append(out.as_record_list())
        return out

    monkeypatch.setattr(LinkerInference, "score_pairs", spy)
    written = lc.explain_model(model, rows, pairs, tmp_path)
    assert len(scored) == 1 and "waterfall" in written
    # each pair alone, as before
    labels = list(dict.fromkeys(label for pair in pairs for label in pair))
    table, of_row = lc.profiles(rows.loc[labels])
    profile = dict(zip(labels, of_row, strict=True))
    freq = {b: rows[b].dropna().value_counts(normalize=True) for b in lc.BLOOM_COLUMNS}
    con = duckdb.connect()
    api = DuckDBAPI(connection=con)
    linker = Linker(
        api.register(table, dataset_display_name="profiles"),
        lc._settings_for_charts(model),
        log_level=logging.WARNING,
    )
    for a, b in pairs:
        left, right = [
            api.register(
                table.iloc[[profile[r]]].assign(
                    **{
                        f"tf_{bf.removesuffix('_bf')}_key": freq[bf].get(rows.at[r, bf])
                        for bf in lc.BLOOM_COLUMNS
                    }
                )
            )
            for r in (a, b)
        ]
        (alone,) = linker.inference.score_pair(left, right).as_record_list()
        ours = next(
            r
            for r in scored[0]
            if (r["profile_id_l"], r["profile_id_r"]) == (profile[a], profile[b])
        )
        assert ours == alone
    con.close()
