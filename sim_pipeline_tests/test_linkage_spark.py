"""Linkage on Spark (issue 19 item 5): the Spark engine gives DuckDB's person index, and the
engine is chosen by configuration.

The comparison runs on the session's small synthetic set (conftest `SYNTH`), its first
`MONTHS` months staged under the demo key (~5,600 rows, ~1,500 profiles, ~5,000 candidate
pairs), with the model's documented default parameters on both engines: the blocking rules,
the comparison SQL (Hamming similarity of the name encodings included), the scores and the
clustering must agree. Training is not compared: Splink draws its samples by hashing, and
DuckDB and Spark hash differently (`identity.engines`), so trained parameters differ between
the engines; `sim-pipeline bench linkage --engine both` measures how much at scale.

Spark runs in local mode (``local[2]``, 4 shuffle partitions) in one session shared by the
module and stopped after it. With CI=true a missing Java or pyspark fails the test (`.ci/run`
installs Java from the distribution's packages; the README's test command installs the `spark`
group); elsewhere it skips, saying which is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity.linkage import LinkageOptions, link_encoded
from sim_pipeline.identity.linkage_model import comparisons
from sim_pipeline.identity.person_index import assign_person_keys, index_records, linkage_rows
from sim_pipeline_tests.conftest import IN_CI

MONTHS = 3  # the synthetic set's first months (Spark on 2 cores: ~20 s for these)
UNTRAINED = 10**9  # min_profiles_to_train: the default parameters, on both engines


def _spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java (java not on PATH, JAVA_HOME unset): apt-get install default-jre-headless"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: uv sync --group spark (or uv run --group spark pytest)"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = _spark_missing()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true and the Spark engine cannot run: {reason}")
        pytest.skip(reason)
    from sim_pipeline.identity.engines import spark_builder

    session = spark_builder("local[2]", shuffle_partitions=4).getOrCreate()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def first_months(small_synth) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Linkage rows and group labels of the synthetic set's first `MONTHS` months."""
    from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
    from sim_pipeline.ingest.staging import stage_run
    from sim_pipeline.landing.layout import Landing
    from sim_pipeline.sources import SOURCE_TABLES

    landing, _ = small_synth
    months = Landing(landing).months()[:MONTHS]
    tokeniser = Tokeniser(DEMO_KEY, demo=True)
    staged = {}
    for table in SOURCE_TABLES:
        run = stage_run(landing, table, months, tokeniser)
        if len(run.staged):
            staged[table.asset_name] = run.staged
    return linkage_rows(staged)


def _index(rows: pd.DataFrame, groups: pd.DataFrame, options: LinkageOptions):
    result = link_encoded(rows, groups, options)
    index, _ = assign_person_keys(index_records(rows, result))
    return result, index.sort_values(["source", "table_name", "record_ref"]).reset_index(drop=True)


@pytest.mark.slow
def test_spark_gives_the_same_person_index_as_duckdb(spark, first_months):
    rows, groups = first_months
    options = LinkageOptions(min_profiles_to_train=UNTRAINED)
    duck, duck_index = _index(rows, groups, options)
    # the module's session is active: the engine borrows it (and leaves it running)
    sp, spark_index = _index(rows, groups, replace(options, engine="spark"))
    assert spark.getActiveSession() is not None

    assert duck.counts == sp.counts  # profiles, candidate pairs, links used, clusters
    people = duck_index.groupby("person_key").size()
    assert (people > 1).sum() > 100  # a set with many linked people, so the test can fail
    # every scored pair, with its weight (the SQL of both dialects gives the same levels)
    cols = ["left", "right", "anchored", "certain"]
    pd.testing.assert_frame_equal(duck.pairs[cols], sp.pairs[cols])
    np.testing.assert_allclose(sp.pairs["match_weight"], duck.pairs["match_weight"], atol=1e-9)
    # the index: the same records under the same person keys ...
    key_cols = ["source", "table_name", "record_ref", "person_key"]
    pd.testing.assert_frame_equal(duck_index[key_cols], spark_index[key_cols])
    # ... with the same match probability to the 6 decimals the index stores (NaN, a record
    # linked to nothing, on both or neither)
    p_duck = duck_index["match_probability"].to_numpy(dtype=float)
    p_spark = spark_index["match_probability"].to_numpy(dtype=float)
    np.testing.assert_array_equal(np.isnan(p_duck), np.isnan(p_spark))
    np.testing.assert_allclose(p_spark, p_duck, rtol=0, atol=1e-6, equal_nan=True)


def test_the_environment_picks_the_linkage_engine(monkeypatch):
    from sim_pipeline.config import LINKAGE_ENGINE_ENV, SPARK_URL_ENV, ConfigError
    from sim_pipeline.defs.resources import StudyDesignResource

    study = StudyDesignResource()
    monkeypatch.delenv(LINKAGE_ENGINE_ENV, raising=False)
    monkeypatch.delenv(SPARK_URL_ENV, raising=False)
    assert (study.linkage_options().engine, study.linkage_options().spark_url) == ("duckdb", None)
    monkeypatch.setenv(LINKAGE_ENGINE_ENV, "Spark")
    monkeypatch.setenv(SPARK_URL_ENV, "sc://spark.example:15002")
    options = study.linkage_options()
    assert (options.engine, options.spark_url) == ("spark", "sc://spark.example:15002")
    assert options.threshold == study.linkage_threshold  # the study's settings still apply

    monkeypatch.setenv(LINKAGE_ENGINE_ENV, "postgres")
    with pytest.raises(ConfigError, match=r"SIM_LINKAGE_ENGINE='postgres'.*duckdb, spark"):
        study.linkage_options()
    monkeypatch.setenv(LINKAGE_ENGINE_ENV, "duckdb")  # a URL for an engine that takes none
    with pytest.raises(ConfigError, match="SIM_SPARK_URL is set"):
        study.linkage_options()


def test_bad_engines_are_refused_and_spark_sql_quotes_identifiers():
    with pytest.raises(ValueError, match="unknown linkage engine 'sparc'"):
        LinkageOptions(engine="sparc")
    # the cleartext benchmark anchor never goes to Spark
    with pytest.raises(ValueError, match="pseudonymised encodings only"):
        LinkageOptions(engine="spark", name_similarity="jaro_winkler")
    levels = [
        lvl["sql_condition"] for c in comparisons(dialect="spark") for lvl in c["comparison_levels"]
    ]
    duck = [lvl["sql_condition"] for c in comparisons() for lvl in c["comparison_levels"]]
    assert len(levels) == len(duck)
    # in Spark SQL "x" is a string: every identifier must be in backticks
    assert not any('"' in sql for sql in levels)
    assert any("bit_count(`given_name_w15_l` ^ `given_name_w15_r`)" in sql for sql in levels)
    assert all('"' in sql or sql == "ELSE" for sql in duck)  # DuckDB's SQL keeps its quotes
