"""One declaration per table (`warehouse.model`): what derives from it, the rules it carries,
the tables it creates and the migrations that bring an existing warehouse up to it."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sim_pipeline.defs.common import column_schema
from sim_pipeline.measures.tables import PersonMonthMetrics
from sim_pipeline.quality.model_suites import model_expectations
from sim_pipeline.warehouse import Warehouse, migrate
from sim_pipeline.warehouse.dictionary import all_tables, model, models
from sim_pipeline.warehouse.model import (
    Integer,
    Text,
    WarehouseTable,
    col,
    column_docs,
    columns,
    description,
    sa_table,
    table_name,
    violations,
)

PACKAGE = Path(__file__).resolve().parents[1] / "sim_pipeline"


def test_every_derived_form_agrees_with_the_declaration():
    """Dictionary, Dagster column schema and SQL table (with comments) all come from the
    model: the same columns in the same order, the same types and descriptions."""
    docs = {d.name: d for d in all_tables()}
    assert len(docs) == len(models()) >= 31
    for m in models():
        name = table_name(m)
        cols = column_docs(m)
        assert [c.name for c in docs[name].columns] == columns(m) == [c.name for c in cols]
        assert all(c.description for c in cols), name
        schema = column_schema(name)
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (c.name, c.type, c.description) for c in cols
        ]
        table = sa_table(m)
        assert table.comment == description(m) != ""
        assert [(c.name, c.comment) for c in table.columns] == [
            (c.name, c.description) for c in cols
        ]


def _string_lists(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.List | ast.Tuple)
            and len(node.elts) >= 4
            and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
        ):
            yield node.lineno, [e.value for e in node.elts]


def test_no_module_spells_out_a_declared_tables_columns():
    """A table's column list is written once, in its declaration: a literal list elsewhere
    with the same columns as a declared table is a second declaration to keep in step."""
    tables = {frozenset(columns(m)): table_name(m) for m in models()}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, values in _string_lists(ast.parse(path.read_text())):
            if frozenset(values) in tables:
                found.append(f"{path.relative_to(PACKAGE)}:{line} = {tables[frozenset(values)]}")
    assert found == []


def test_the_check_catches_a_spelled_out_column_list(tmp_path):
    """The scan above can fail: the ingest ledger's columns written out are found."""
    code = f"LEDGER = {columns(model('ingest_ledger'))!r}\n"
    lists = list(_string_lists(ast.parse(code)))
    assert lists and frozenset(lists[0][1]) in {frozenset(columns(m)) for m in models()}


def _person_months() -> pd.DataFrame:
    cols = columns(PersonMonthMetrics)
    rows = [
        {c: 0 for c in cols} | {"person_key": f"P{i:08d}", "month": "2019-01"} for i in range(4)
    ]
    return pd.DataFrame(rows)[cols]


def test_violations_name_column_rule_and_rows_never_a_value():
    good = _person_months()
    assert violations(PersonMonthMetrics, good) == []
    bad = good.copy()
    bad.loc[0, "arrests"] = -7777
    bad.loc[1, "mh_bed_days"] = 4242
    bad.loc[2, "person_key"] = "Q12345678"
    bad = pd.concat([bad, bad.iloc[[3]]], ignore_index=True)
    found = {(v.column, v.rule.split("(")[0], v.rows) for v in violations(PersonMonthMetrics, bad)}
    assert {
        ("arrests", "greater_than_or_equal_to", 1),
        ("mh_bed_days", "less_than_or_equal_to", 1),
        ("person_key", "str_matches", 1),
        ("person_key,month", "multiple_fields_uniqueness", 2),
    } <= found
    text = "; ".join(str(v) for v in violations(PersonMonthMetrics, bad))
    assert "7777" not in text and "4242" not in text and "Q12345678" not in text
    missing = violations(PersonMonthMetrics, good.drop(columns="arrests").assign(extra=1))
    assert {(v.column, v.rule) for v in missing} == {
        ("arrests", "column_missing"),
        ("extra", "column_not_declared"),
    }


def test_great_expectations_rules_follow_the_declaration():
    """Change a rule in a declaration and the GX suite changes with it."""

    class Toy(WarehouseTable):
        """A toy table."""

        person_key: Text = col("key", nullable=False, str_matches=r"^P[0-9]+$")
        visits: Integer = col("visits", nullable=False, ge=0, le=5)

        class Config:
            name = "toy"
            unique = ["person_key"]

    kinds = {(e.kind, e.kwargs.get("column")): e.kwargs for e in model_expectations(Toy)}
    assert kinds[("ExpectColumnValuesToBeBetween", "visits")] == {
        "column": "visits",
        "min_value": 0,
        "max_value": 5,
    }
    assert ("ExpectColumnValuesToNotBeNull", "person_key") in kinds
    assert kinds[("ExpectColumnValuesToMatchRegex", "person_key")]["regex"] == r"^P[0-9]+$"
    assert kinds[("ExpectCompoundColumnsToBeUnique", None)]["column_list"] == ["person_key"]
    bed = {
        e.kwargs.get("column"): e.kwargs
        for e in model_expectations(PersonMonthMetrics)
        if e.kind == "ExpectColumnValuesToBeBetween"
    }
    assert bed["mh_bed_days"]["max_value"] == 31 and bed["arrests"]["max_value"] == 1000


def test_a_declared_table_is_created_from_its_declaration(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    wh = Warehouse(url)
    with wh.transaction() as tx:
        tx.replace_all("linkage_implausible", pd.DataFrame())  # nothing to write: still made
    inspector = sa.inspect(wh.engine)
    got = [
        (c["name"], type(c["type"]).__name__) for c in inspector.get_columns("linkage_implausible")
    ]
    assert got == [("rule", "TEXT"), ("description", "TEXT"), ("persons", "BIGINT")]
    refused = r"lacks column\(s\) \['extra'\].*warehouse upgrade"
    with pytest.raises(RuntimeError, match=refused), wh.transaction() as tx:
        tx.replace_all("linkage_implausible", pd.DataFrame({"rule": ["r"], "extra": [1]}))
    wh.dispose()


def test_migrations_on_sqlite_are_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert migrate.current(url) is None
    assert migrate.upgrade(url) == migrate.head() == migrate.upgrade(url)
    assert migrate.drift(url) == {}


def test_migration_0003_gives_an_old_ledger_its_form_and_keeps_its_rows(tmp_path):
    """A ledger written before tokenised drops existed (no drop_form, no contract_version):
    upgraded in place, every row kept and marked raw, no drift left."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(url, "0002")
    old = pd.DataFrame(
        {
            "source": ["slam"],
            "table_name": ["MHS001MPI"],
            "month": ["2019-03"],
            "file": ["slam/2019-03/MHS001MPI.csv"],
            "file_sha256": ["ab"],
            "file_status": ["loaded"],
            "rejection_rule": [None],
            "rows_read": [3],
            "rows_loaded": [3],
            "rows_quarantined": [0],
            "identifiers_nulled": [0],
            "key_id": ["k"],
            "demo_key": [True],
        }
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        old.to_sql("ingest_ledger", conn, index=False)
    assert migrate.drift(url)["ingest_ledger"]["missing"] == ["drop_form", "contract_version"]
    assert migrate.upgrade(url) == migrate.head() == "0003"
    assert migrate.drift(url) == {}
    kept = pd.read_sql("SELECT * FROM ingest_ledger", engine)
    pd.testing.assert_frame_equal(kept[old.columns], old, check_dtype=False)
    assert kept["drop_form"].tolist() == ["raw"] and kept["contract_version"].isna().all()
    engine.dispose()


def test_migrations_bring_an_old_postgres_warehouse_up_to_date(pg):
    """A warehouse written before migrations (tables made by pandas, no comments, no
    revision) is upgraded in place: comments added, every row kept, no rebuild; a second
    upgrade changes nothing; a declared column the warehouse lacks shows as drift and a write
    to it refuses."""
    pg.create_database("migrate_old")
    url = pg.url("migrate_old")
    engine = sa.create_engine(url)
    index = pd.DataFrame(
        {
            "source": ["slam"] * 3,
            "table_name": ["MHS001MPI"] * 3,
            "record_ref": ["a", "b", "c"],
            "person_key": ["P00000001", "P00000001", "P00000002"],
            "match_probability": [1.0, 0.98, None],
        }
    )
    with engine.begin() as conn:
        index.to_sql("person_index", conn, index=False)  # the old way: no comments
    inspector = sa.inspect(engine)
    assert inspector.get_table_comment("person_index")["text"] is None
    assert migrate.current(url) is None

    assert migrate.upgrade(url) == migrate.head()
    inspector = sa.inspect(engine)
    assert inspector.get_table_comment("person_index")["text"].startswith("The person key")
    comments = {c["name"]: c["comment"] for c in inspector.get_columns("person_index")}
    assert comments["person_key"] == "Stable pseudonymous person key (P + 8 digits)"
    kept = pd.read_sql("SELECT * FROM person_index ORDER BY record_ref", engine)
    pd.testing.assert_frame_equal(kept, index)
    assert migrate.upgrade(url) == migrate.head()  # nothing left to do

    # a table created now carries its comments from the start
    wh = Warehouse(url)
    with wh.transaction() as tx:
        tx.replace_all("linkage_implausible", pd.DataFrame())
    assert sa.inspect(engine).get_table_comment("linkage_implausible")["text"]

    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE person_index DROP COLUMN match_probability"))
    assert migrate.drift(url) == {
        "person_index": {"missing": ["match_probability"], "undeclared": []}
    }
    with pytest.raises(RuntimeError, match="warehouse upgrade"), wh.transaction() as tx:
        tx.replace_all("person_index", index)
    wh.dispose()
    engine.dispose()


def test_a_checks_severity_follows_from_whether_it_blocks():
    """No asset sets a severity: blocking and gated checks fail as ERROR, the rest warn."""
    from sim_pipeline.defs.checks import Check

    assert Check("a", "d", blocking=True).result(False).severity == dg.AssetCheckSeverity.ERROR
    assert Check("b", "d", gated=True).result(False).severity == dg.AssetCheckSeverity.ERROR
    assert Check("c", "d").result(False).severity == dg.AssetCheckSeverity.WARN
    hand_made = [
        f"{path.relative_to(PACKAGE)}"
        for path in sorted((PACKAGE / "defs").glob("*.py"))
        if path.name != "checks.py"
        and any(
            s in path.read_text() for s in ("severity=", "AssetCheckResult(", "AssetCheckSpec(")
        )
    ]
    assert hand_made == []


def test_a_write_that_breaks_its_declaration_is_refused_and_audited(tmp_path):
    """An asset whose frame breaks its table's declaration (a negative count) writes nothing,
    records a not_written audit row, and fails naming table, column and rule, not the value."""
    from sim_pipeline.defs.checks import Write, write_or_refuse

    url = f"sqlite:///{tmp_path / 'w.db'}"
    bad = _person_months()
    bad.loc[0, "arrests"] = -31337

    @dg.asset(name="person_month_metrics")
    def writer(context):
        wh = Warehouse(url)
        yield from write_or_refuse(wh, context, [Write("person_month_metrics", bad)], rows_in=4)
        yield dg.MaterializeResult()

    result = dg.materialize([writer], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.error.message
    assert "person_month_metrics column arrests: greater_than_or_equal_to(0) (1 rows)" in text
    assert "31337" not in text
    wh = Warehouse(url)
    assert wh.count("person_month_metrics") == 0
    audit = wh.read("audit_trail")
    assert audit[["stage", "status"]].values.tolist() == [["person_month_metrics", "not_written"]]
    wh.dispose()
