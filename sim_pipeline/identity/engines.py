"""Where the linkage model runs: DuckDB in this process (the default) or Apache Spark.

`identity.linkage` scores profile pairs with Splink; this module gives it a Splink linker on the
engine that `LinkageOptions.engine` names, and a handle to close when done:

- ``duckdb``: an in-memory DuckDB connection in this process (``threads`` from the options).
- ``spark``: a Spark session, for data past one machine. ``spark_url`` is a Spark master
  (``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://...``) or a Spark Connect URL
  (``sc://host:15002``). Without a URL an already active session is used (a test's, or the one
  ``spark-submit`` made), else a local one on every core. A session started here is stopped when
  the linker is closed; a session found active is left running for its owner.

What Spark sees: the profile table only, i.e. keyed tokens, 64-bit hashes of name encodings and
the encodings' bits, never a cleartext identifier (the cleartext benchmark anchor is refused by
`LinkageOptions`). The name encodings travel as 16 signed BIGINT words (Spark has no unsigned
64-bit type): the same bits, so the Hamming counts match DuckDB's (`linkage_model._hamming_sql`).
Spark's own log is set to ERROR (its messages carry no values, but its SQL plans could name
columns at length) and a local session runs without its web UI (no port opened).

Training draws deterministic hash samples (u by random sampling, capped by ``u_max_pairs``).
DuckDB and Spark hash differently, so on data large enough to be sampled the two engines train
on different samples and their estimates differ slightly; below the caps both use every pair.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sim_pipeline.identity.linkage_model import ENGINES, LinkageOptions

LOCAL_SHUFFLE_PARTITIONS_PER_CORE = 2  # a local session's shuffle partitions per core
# Set on the session while linking (and put back on a borrowed one): the comparison vector's
# Hamming sums (32 bit counts per name level) make whole-stage generated code pass the JVM's
# 64 KB method limit; Spark would fall back to interpreted code anyway, after an ERROR logged
# with the failed compile's stack trace.
SESSION_CONF = {"spark.sql.codegen.wholeStage": "false"}
__all__ = ["ENGINES", "Closable", "linker", "spark_builder", "spark_table"]


class Closable(Protocol):
    def close(self) -> None: ...


def linker(table: pd.DataFrame, options: LinkageOptions, settings_dict: dict[str, Any]):
    """A Splink `Linker` over the profile table on the options' engine, and what to close."""
    if options.engine == "duckdb":
        return _duckdb_linker(table, options, settings_dict)
    if options.engine == "spark":
        return _spark_linker(table, options, settings_dict)
    raise ValueError(
        f"unknown linkage engine {options.engine!r}: choose one of {', '.join(ENGINES)}"
    )


def _duckdb_linker(table: pd.DataFrame, options: LinkageOptions, settings_dict: dict[str, Any]):
    import duckdb
    from splink import DuckDBAPI, Linker

    con = duckdb.connect()
    if options.threads:
        con.execute(f"SET threads = {int(options.threads)}")
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(table, dataset_display_name="profiles")
    return Linker(sdf, settings_dict, log_level=logging.WARNING), con


# --------------------------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------------------------


def spark_builder(url: str | None = None, shuffle_partitions: int | None = None):
    """A `SparkSession.Builder` for ``url``: Spark Connect for ``sc://``, else that master
    (default ``local[*]``) with the web UI off and Spark's log at ERROR."""
    from pyspark.sql import SparkSession

    url = url or "local[*]"
    builder = SparkSession.builder.appName("sim_pipeline linkage")
    if url.startswith("sc://"):
        return builder.remote(url)
    builder = (
        builder.master(url)
        .config("spark.log.level", "ERROR")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if url.startswith("local"):
        cores = os.cpu_count() or 1
        parts = shuffle_partitions or max(2, LOCAL_SHUFFLE_PARTITIONS_PER_CORE * cores)
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", str(parts))
            .config("spark.sql.adaptive.enabled", "true")
        )
    elif shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    return builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")


def spark_table(table: pd.DataFrame):
    """The profile table as an Arrow table Spark can take: unsigned 64-bit word columns become
    signed BIGINT with the same bits (two's complement); every other column as it is."""
    import pyarrow as pa

    cols = {}
    for name in table.columns:
        col = table[name]
        if str(col.dtype) in ("UInt64", "uint64"):
            valid = col.notna().to_numpy()
            bits = col.to_numpy(dtype=np.uint64, na_value=0).view(np.int64)
            cols[name] = pa.array(bits, type=pa.int64(), mask=~valid)
        else:
            cols[name] = pa.Array.from_pandas(col)
    return pa.table(cols)


@dataclass
class _SparkHandle:
    session: Any
    owned: bool  # started here: stopped on close
    views_before: set[str]  # a borrowed session's temporary views before linkage
    conf_before: dict[str, str | None]  # and the settings changed for linkage

    def close(self) -> None:
        if self.owned:
            self.session.stop()
            return
        for key, value in self.conf_before.items():
            if value is None:
                self.session.conf.unset(key)
            else:
                self.session.conf.set(key, value)
        for view in _temp_views(self.session) - self.views_before:  # leave it as we found it
            self.session.catalog.uncacheTable(view)
            self.session.catalog.dropTempView(view)


def _temp_views(session: Any) -> set[str]:
    return {t.name for t in session.catalog.listTables() if t.isTemporary}


def _spark_session(options: LinkageOptions) -> tuple[Any, bool]:
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and not options.spark_url:
        return active, False
    session = spark_builder(options.spark_url).getOrCreate()
    # getOrCreate hands back a session already running in this process: its owner stops it
    return session, session is not active


def _spark_linker(table: pd.DataFrame, options: LinkageOptions, settings_dict: dict[str, Any]):
    from splink import Linker, SparkAPI

    session, owned = _spark_session(options)
    before = set() if owned else _temp_views(session)
    conf_before = {k: session.conf.get(k, None) for k in SESSION_CONF}
    for key, value in SESSION_CONF.items():
        session.conf.set(key, value)
    # persist, not Splink's default parquet checkpoints: no checkpoint folder to configure and
    # it works over Spark Connect; the similarity jar's UDFs (Jaro-Winkler etc.) are not used
    db_api = SparkAPI(
        spark_session=session, break_lineage_method="persist", register_udfs_automatically=False
    )
    sdf = db_api.register(
        session.createDataFrame(spark_table(table)), dataset_display_name="profiles"
    )
    return Linker(sdf, settings_dict, log_level=logging.WARNING), _SparkHandle(
        session, owned, before, conf_before
    )
