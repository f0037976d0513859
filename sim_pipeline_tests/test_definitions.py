"""The code location loads, and every asset explains itself."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from sim_pipeline.definitions import load_definitions
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES

defs = load_definitions()
STAGED = dg.AssetKey("staged_ecds")


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {t.asset_name for t in SOURCE_TABLES} | {"ingest_summary"} <= keys
    assert defs.resolve_job_def("sim_pipeline_all") is not None


def test_monthly_partitions_cover_the_data_period():
    keys = defs.resolve_asset_graph().get(STAGED).partitions_def.get_partition_keys()
    assert keys[0] == "2016-01-01" and keys[-1] == "2021-05-01" and len(keys) == 65


def test_every_asset_has_description_owner_group_kinds_and_described_checks():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.owners, key
        groups = {"sources", "ingest", "identity", "metrics", "evaluation", "quality"}
        assert node.group_name in groups, key
        assert node.kinds, key
    check_keys = list(graph.asset_check_keys)
    assert len(check_keys) >= 4 * len(SOURCE_TABLES)
    for ck in check_keys:
        spec = graph.get_check_spec(ck)
        assert spec.description and len(spec.description) > 30, ck


# Assets that write no warehouse table: reports (metadata, charts, published files).
REPORT_ASSETS = {"ingest_summary", "linkage_quality", "evaluation_report"}
# Warehouse tables without an asset of their own: the run logs every asset appends to.
TABLES_WITHOUT_ASSET = {"audit_trail", "quality_results"}


def test_every_table_has_one_asset_named_as_it_with_its_documented_columns():
    """An honest graph: each warehouse table is one asset whose ``dagster/table_name`` is the
    table and whose column schema is the data dictionary's; a report names no table."""
    from sim_pipeline.warehouse.dictionary import all_tables, table_doc

    graph = defs.resolve_asset_graph()
    named: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        meta, name = graph.get(key).metadata, key.to_user_string()
        if graph.get(key).is_observable:  # files outside the warehouse (`defs.observations`)
            assert "dagster/table_name" not in meta, name
            continue
        if name in REPORT_ASSETS:
            assert "dagster/table_name" not in meta and "dagster/column_schema" not in meta, name
            continue
        table = meta["dagster/table_name"]
        assert table == name, (name, table)
        documented = [c.name for c in table_doc(table).columns]
        assert [c.name for c in meta["dagster/column_schema"].columns] == documented, key
        named.setdefault(table, []).append(name)
    tables = {t.name for t in all_tables()}
    assert set(named) == tables - TABLES_WITHOUT_ASSET
    assert all(len(v) == 1 for v in named.values()), named


def test_the_ledger_and_quarantine_are_assets_between_staging_and_the_summaries():
    """ingest_ledger and ingest_quarantine stand in the graph as assets of their own: after
    every staged table (whose steps write and report them: Dagster records, never runs, them)
    and before the summaries that read them."""
    graph = defs.resolve_asset_graph()
    staged = {dg.AssetKey(t.asset_name) for t in SOURCE_TABLES}
    ledger, quarantine = dg.AssetKey("ingest_ledger"), dg.AssetKey("ingest_quarantine")
    for key in (ledger, quarantine):
        node = graph.get(key)
        assert not node.is_executable and node.parent_keys == staged, key
        assert node.group_name == "ingest" and node.description, key
    assert {ledger, quarantine} <= graph.get(dg.AssetKey("ingest_summary")).parent_keys
    for table in ("drop_coverage", "landing_file_versions"):
        assert ledger in graph.get(dg.AssetKey(table)).parent_keys, table


def test_the_code_location_loads_without_heavy_libraries():
    """Splink, DuckDB, Great Expectations, matplotlib and SciPy are imported where they are used,
    not when the webserver or a run loads the code location. Prints the load time."""
    code = (
        "import sys, time; t = time.perf_counter(); import sim_pipeline.definitions; "
        "print(round(time.perf_counter() - t, 2)); "
        "print(','.join(m for m in ('splink', 'duckdb', 'great_expectations', 'matplotlib', "
        "'scipy') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    seconds, heavy = r.stdout.splitlines()
    print(f"\ncode location import: {seconds}s")
    assert heavy == "", heavy


def test_staged_assets_publish_their_column_schema():
    graph = defs.resolve_asset_graph()
    for t in SOURCE_TABLES:
        meta = graph.get(dg.AssetKey(t.asset_name)).metadata
        cols = [c.name for c in meta["dagster/column_schema"].columns]
        assert "record_ref" in cols and "key_id" in cols
        assert not set(t.identifiers.raw_columns()) & set(cols)


def test_workspace_yaml_loads_the_code_location():
    """What `dagster dev` from the repo root loads (dagster.yaml there keeps telemetry off)."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Validation successful for code location sim_pipeline" in r.stdout + r.stderr


def test_dg_check_defs_validates_the_project(tmp_path):
    """The project is a dg project (pyproject [tool.dg]): `dg check defs` loads the code
    location from sim_pipeline.definitions, as `dg dev` serves it; telemetry off (the home's
    dagster.yaml)."""
    from sim_pipeline.config import ensure_dagster_home

    root = Path(__file__).resolve().parents[1]
    home = ensure_dagster_home(tmp_path / "home")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"DAGSTER_HOME": str(home), "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    r = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "All definitions loaded successfully" in r.stdout + r.stderr
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert not inst.telemetry_enabled


def test_each_staged_table_has_its_own_write_pool_limited_to_one(tmp_path):
    from sim_pipeline.config import ensure_dagster_home

    graph = defs.resolve_asset_graph()
    pools = [set(graph.get(dg.AssetKey(t.asset_name)).pools or ()) for t in SOURCE_TABLES]
    assert pools == [{f"warehouse_write_{t.asset_name}"} for t in SOURCE_TABLES]
    repo_copy = tmp_path / "repo_yaml"
    repo_copy.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", repo_copy / "dagster.yaml")
    for home in (ensure_dagster_home(tmp_path / "home"), repo_copy):
        with dg.DagsterInstance.from_config(str(home)) as inst:
            assert inst.get_concurrency_config().pool_config.default_pool_limit == 1
            assert not inst.telemetry_enabled


def test_open_ended_partitions_for_production():
    """SIM_LAST_MONTH=open: a partition for every closed month up to now (read at load)."""
    code = (
        "import dagster as dg; from sim_pipeline.definitions import load_definitions;"
        "g = load_definitions().resolve_asset_graph();"
        "k = g.get(dg.AssetKey('staged_ecds')).partitions_def.get_partition_keys();"
        "print(k[0], k[-1], len(k))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, SIM_LAST_MONTH="open"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    first, last, n = r.stdout.split()
    today = dt.datetime.now(ZoneInfo("Europe/London")).date()  # the partitions' timezone
    closed = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    assert first == "2016-01-01" and last == closed.isoformat() and int(n) > 65


def test_the_baseline_is_configured_once_for_the_headline_and_the_evaluation():
    """One study-design resource holds every analysis setting (the baseline window, the price
    year, linkage and evaluation settings): the cohort (so the headline), costing, linkage and
    the evaluation read them there; every other resource holds connections and paths only."""
    from sim_pipeline.defs.resources import StudyDesignResource

    resources = defs.resources
    with_config = {name: sorted(type(r).model_fields) for name, r in resources.items()}
    assert with_config.pop("metrics") == ["price_index_path", "unit_costs_path"]  # files
    analysis = with_config.pop("study")
    assert {"baseline_months", "price_year", "linkage_threshold", "bootstrap"} <= set(analysis)
    assert all(fields == [] for fields in with_config.values()), with_config
    study = StudyDesignResource(baseline_months=7, linkage_threshold=0.9)
    assert study.evaluation_settings().baseline_months == 7
    assert study.linkage_options().threshold == 0.9
    for key in ("cohort", "evaluation_estimates", "person_index", "unit_costs"):
        assets_def = defs.resolve_assets_def(dg.AssetKey(key))
        assert "study" in assets_def.required_resource_keys, key


def test_settings_are_read_when_the_definitions_load_not_at_import():
    """The code location is a ``@dg.definitions`` function: importing the modules reads no
    setting, and each load builds the Definitions from the environment of that moment (the
    CLI no longer has to set the environment before the first import)."""
    code = (
        "import os, dagster as dg\n"
        "os.environ['SIM_LAST_MONTH'] = 'not a month'\n"
        "import sim_pipeline.definitions as d\n"  # importing reads nothing
        "assert type(d.defs).__name__ == 'LazyDefinitions', type(d.defs)\n"
        "for last in ('2019-12', '2020-06'):\n"
        "    os.environ['SIM_LAST_MONTH'] = last\n"
        "    g = d.defs().resolve_asset_graph()\n"
        "    k = g.get(dg.AssetKey('staged_ecds')).partitions_def.get_partition_keys()\n"
        "    print(k[-1])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in os.environ.items() if k != "SIM_LAST_MONTH"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["2019-12-01", "2020-06-01"]


def test_previews_are_typed_tables_with_counts_of_people_controlled():
    """Metadata previews are Dagster table metadata (issue 20 item 3): typed columns, one record
    per row, a count of 1-7 people shown as `*` (its column then typed as text)."""
    import pandas as pd

    from sim_pipeline.defs.common import table_metadata

    df = pd.DataFrame(
        {
            "month": ["2019-01", "2019-02"],
            "people": [3, 40],
            "mean_cost": [12.5, 80.25],
            "flag": [True, False],
            "note": ["a", None],
        }
    )
    value = table_metadata(df)
    assert isinstance(value, dg.TableMetadataValue)
    types = {c.name: c.type for c in value.schema.columns}
    assert types == {
        "month": "string",
        "people": "string",  # "*" and "40": controlled counts are text
        "mean_cost": "string",  # "*" on the row of 3 people
        "flag": "bool",
        "note": "string",
    }
    rows = [r.data for r in value.records]
    assert rows[0]["people"] == "*" and rows[0]["mean_cost"] == "*"  # a statistic on 1-7
    assert rows[1] == {
        "month": "2019-02",
        "people": "40",
        "mean_cost": 80.25,
        "flag": False,
        "note": None,
    }
    exact = table_metadata(
        pd.DataFrame({"rows_read": [3, 12], "share": [0.5, 0.25]}), counts_of="records"
    )
    assert [c.type for c in exact.schema.columns] == ["int", "float"]
    assert [r.data["rows_read"] for r in exact.records] == [3, 12]
    empty = table_metadata(pd.DataFrame({"a": pd.Series([], dtype="int64")}))
    assert [c.name for c in empty.schema.columns] == ["a"] and not empty.records


def test_column_lineage_names_real_columns_from_landing_to_costs():
    """Every column an asset's lineage names exists in that asset's schema and every column it
    depends on in the upstream asset's (the data dictionary; a landing source's: its contract);
    each metric reads its events; the identity tokens come from the raw identifiers only."""
    from sim_pipeline.defs.lineage import column_lineage, staged_column_deps
    from sim_pipeline.measures.events import METRIC_INPUTS
    from sim_pipeline.measures.metrics import MEASURES
    from sim_pipeline.warehouse.dictionary import table_doc

    def columns_of(asset: str) -> set[str]:
        if asset.startswith("landing_"):
            return set(BY_ASSET["staged_" + asset.removeprefix("landing_")].columns)
        return {c.name for c in table_doc(asset).columns}

    assets = [t.asset_name for t in SOURCE_TABLES]
    assets += ["person_index", "events", "person_month_metrics", "person_month_costs"]
    for asset in assets:
        lineage = column_lineage(asset)
        assert lineage.deps_by_column, asset
        for column, deps in lineage.deps_by_column.items():
            assert column in columns_of(asset), (asset, column)
            for dep in deps:
                upstream = dep.asset_key.to_user_string()
                assert dep.column_name in columns_of(upstream), (asset, column, upstream, dep)
    assert set(METRIC_INPUTS) == set(MEASURES)
    ecds = staged_column_deps("staged_ecds")
    assert ecds["nhs_number_token"] == [("landing_ecds", "NHS_Number")]
    assert ecds["record_ref"] == [("landing_ecds", "Generated_Record_ID")]
    assert "NHS_Number" not in ecds  # no raw identifier is a staged column
    costs = column_lineage("person_month_costs").deps_by_column["cost_ae_attendances"]
    assert {(d.asset_key.to_user_string(), d.column_name) for d in costs} >= {
        ("person_month_metrics", "ae_attendances"),
        ("unit_costs", "unit_cost_at_price_year"),
    }


def test_every_asset_that_runs_links_to_the_function_that_makes_it():
    """Source-code references (issue 20 item 3): a file of this package and the line of the
    function (or its decorator) that makes or observes the asset."""
    package = Path(__file__).resolve().parents[1] / "sim_pipeline"
    graph = defs.resolve_asset_graph()
    runs = [k for k in graph.get_all_asset_keys() if graph.get(k).is_executable]
    assert len(runs) > 40
    for key in runs:
        refs = graph.get(key).metadata["dagster/code_references"].code_references
        path = Path(refs[0].file_path)
        assert path.is_relative_to(package) and path.is_file(), (key, path)
        line = path.read_text().splitlines()[refs[0].line_number - 1].strip()
        assert line.startswith(("def ", "@")), (key, line)
