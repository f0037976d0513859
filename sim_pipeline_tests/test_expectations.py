"""Great Expectations suites, the audit trail and the pre-write domain checks: each one fails
on deliberately broken data (and says why) and passes on good data."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from sim_pipeline.evaluation.trajectory import trajectory_problems
from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
from sim_pipeline.ingest.staging import stage_run
from sim_pipeline.measures.costs import unit_cost_problems
from sim_pipeline.measures.headline import impossible_values
from sim_pipeline.measures.metrics import HARM_MEASURES, METRICS
from sim_pipeline.measures.tables import PersonMonthCosts, PersonMonthMetrics
from sim_pipeline.quality import expectations as qe
from sim_pipeline.quality import gx_docs, model_suites, staged_suites
from sim_pipeline.quality import gx_runner as gx
from sim_pipeline.quality.audit import AUDIT_COLUMNS, audit_row, code_version
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.warehouse.dictionary import sql_types

ECDS = next(t for t in SOURCE_TABLES if t.asset_name == "staged_ecds")
MONTHS = ["2019-03", "2019-04"]


@pytest.fixture(scope="module")
def quality_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality")


@pytest.fixture(scope="module")
def staged(small_synth):
    """Two months of A&E rows staged exactly as the ingest asset stages them."""
    landing, _ = small_synth
    run = stage_run(landing, ECDS, MONTHS, Tokeniser(DEMO_KEY, demo=True))
    return run.staged, run.ledger


def _staged_suite(frame: pd.DataFrame, ledger: pd.DataFrame) -> qe.Suite:
    expected = int((ledger["rows_read"] - ledger["rows_quarantined"]).sum())
    return staged_suites.staged_table_suite(
        ECDS, list(sql_types(ECDS.asset_name)), MONTHS, expected
    )


def _failed(outcome: qe.SuiteOutcome) -> set[tuple[str, str]]:
    return {(r.category, r.column_names) for r in outcome.failed.itertuples()}


def test_staged_suite_passes_on_staged_rows(staged, quality_dir):
    frame, ledger = staged
    suite = _staged_suite(frame, ledger)
    out = gx.validate(suite, frame, quality_dir, "2019-03..2019-04", "good-run")
    assert out.success, out.failure_lines()
    assert len(out.results) == len(suite) > 30
    assert set(out.results["category"]) >= {
        "schema",
        "row_count",
        "uniqueness",
        "completeness",
        "code_list",
        "format",
        "range",
    }
    assert out.docs_page is not None and out.docs_page.exists()


def test_staged_suite_fails_on_broken_rows_and_says_why(staged, quality_dir):
    frame, ledger = staged
    bad = frame.copy()
    bad["NHSNumber"] = "9434765919"  # a raw identifier column slipped through
    bad.loc[0, "Der_Dupe_Flag"] = "7"  # not in the code list
    bad.loc[1, "EC_Departure_Time_Since_Arrival"] = -5  # impossible
    bad.loc[2, "Arrival_Date"] = pd.Timestamp("2031-01-01")  # in the future
    bad.loc[3, "record_ref"] = pd.NA  # provenance lost
    bad.loc[4, "nhs_number_token"] = "9434765919"  # a raw value where a token belongs
    bad = pd.concat([bad, bad.iloc[[5]]], ignore_index=True)  # a repeated record
    out = gx.validate(_staged_suite(frame, ledger), bad, quality_dir, "broken", "bad-run")
    assert not out.success
    failed = _failed(out)
    assert ("schema", "") in failed
    assert ("row_count", "") in failed
    assert ("uniqueness", "source, month, record_ref") in failed
    assert ("code_list", "Der_Dupe_Flag") in failed
    assert ("range", "EC_Departure_Time_Since_Arrival") in failed
    assert ("range", "Arrival_Date") in failed
    assert ("completeness", "record_ref") in failed
    assert ("format", "nhs_number_token") in failed
    lines = "\n".join(out.failure_lines())
    assert '"unexpected": ["NHSNumber"]' in lines  # the schema failure names the column
    assert "1 of" in lines  # counts, never values
    code = out.results.set_index("column_names").loc["Der_Dupe_Flag"]
    code = code[code["category"] == "code_list"].iloc[0]
    # the counts a failure is judged by, kept whatever GX's result format
    assert (code["element_count"], code["unexpected_count"]) == (len(bad), 1)
    assert code["unexpected_percent"] == pytest.approx(100 / len(bad))
    # privacy: no stored result, suite or Data Docs page holds the value
    for path in gx_docs.gx_root(quality_dir).rglob("*"):
        if path.is_file() and path.suffix in {".json", ".html", ".yml"}:
            assert "9434765919" not in path.read_text(errors="ignore"), path


def test_drops_suite_fails_on_damaged_drops(staged, quality_dir):
    _, ledger = staged
    suite = staged_suites.drops_suite(ECDS, MONTHS)
    good = gx.validate(suite, staged_suites.drops_frame(ledger), quality_dir, "drops-good", "run")
    assert good.success, good.failure_lines()

    missing = gx.validate(
        suite, staged_suites.drops_frame(ledger.iloc[1:]), quality_dir, "missing", "run"
    )
    assert ("row_count", "") in _failed(missing)

    damaged = ledger.copy()
    damaged["file_status"] = "loaded"
    damaged.loc[0, "file_status"] = "rejected"  # e.g. wrong encoding: rejected whole
    damaged.loc[1, ["rows_loaded", "rows_quarantined"]] = [0, damaged.loc[1, "rows_read"]]
    damaged.loc[2, "rows_loaded"] = damaged.loc[2, "rows_loaded"] - 1  # a row lost
    out = gx.validate(suite, staged_suites.drops_frame(damaged), quality_dir, "damaged", "run")
    failed = _failed(out)
    assert ("completeness", "file_status") in failed
    assert ("range", "quarantine_allowance, rows_quarantined") in failed
    assert ("row_count", "rows_read, rows_accounted") in failed


def _person_months(n_people: int = 4) -> pd.DataFrame:
    rows = [
        {"person_key": f"P{i:08d}", "month": m, **{c: i % 3 for c in (*METRICS, *HARM_MEASURES)}}
        for i in range(1, n_people + 1)
        for m in MONTHS
    ]
    return pd.DataFrame(rows)[list(sql_types("person_month_metrics"))]


def test_person_month_suites(quality_dir):
    pm = _person_months()
    suite = model_suites.person_month_suite(PersonMonthMetrics, MONTHS, min_rows=len(pm))
    assert gx.validate(suite, pm, quality_dir, "pm-good", "run").success

    bad = pm.copy()
    bad.loc[0, "mh_bed_days"] = 40  # more bed days than days in a month
    bad.loc[1, "arrests"] = -1
    bad = pd.concat([bad, bad.iloc[[2]]], ignore_index=True)
    failed = _failed(gx.validate(suite, bad, quality_dir, "pm-bad", "run"))
    assert {("range", "mh_bed_days"), ("range", "arrests")} <= failed
    assert ("uniqueness", "person_key, month") in failed

    cost_cols = list(sql_types("person_month_costs"))
    pc = pm[["person_key", "month"]].assign(
        **{f"cost_{m}": 10.0 for m in METRICS},
        total_cost=50.0,
        price_year="2018/19",
        unit_cost_version="v1",
        cost_flags="",
    )[cost_cols]
    csuite = model_suites.person_month_suite(
        PersonMonthCosts, MONTHS, len(pc), len(pc), "2018/19", "v1"
    )
    assert gx.validate(csuite, pc, quality_dir, "pc-good", "run").success
    badc = pc.copy()
    badc.loc[0, "price_year"] = "2019/20"
    badc.loc[1, "cost_police_deployments"] = -250.0
    failed = _failed(gx.validate(csuite, badc, quality_dir, "pc-bad", "run"))
    assert {("code_list", "price_year"), ("range", "cost_police_deployments")} <= failed


STATUS = r"Status:</span> <i [^>]*></i> {}"


def test_data_docs_site_lists_every_suite_with_its_status(staged, tmp_path):
    """Its own GX project (no reliance on other tests' results): three suites validated, one
    of them failing; the site's index lists each suite and each validation page carries the
    suite's name and the status its result had."""
    frame, ledger = staged
    quality = tmp_path / "quality"
    outcomes = {
        "staged_ecds/table": gx.validate(_staged_suite(frame, ledger), frame, quality, "a", "r"),
        "staged_ecds/drops": gx.validate(
            staged_suites.drops_suite(ECDS, MONTHS),
            staged_suites.drops_frame(ledger.iloc[1:]),
            quality,
            "b",
            "r",
        ),
        "person_month_metrics/table": gx.validate(
            model_suites.person_month_suite(PersonMonthMetrics, MONTHS, 8),
            _person_months(),
            quality,
            "c",
            "r",
        ),
    }
    assert [o.success for o in outcomes.values()] == [True, False, True]  # a drop is missing
    index = gx.build_docs(quality)
    assert index == gx_docs.docs_index(quality) and index.exists()
    site = index.parent
    pages = "\n".join(str(p.relative_to(site)) for p in site.rglob("*.html"))
    home = index.read_text()
    for suite, outcome in outcomes.items():
        assert f"expectations/{suite}" in pages
        assert f"validations/{suite}" in pages
        name = suite.replace("/", ".")
        assert name in home, name
        page = outcome.docs_page.read_text()
        assert name in page
        status = "Succeeded" if outcome.success else "Failed"
        assert re.search(STATUS.format(status), page), (suite, status)


def test_a_run_that_rebuilds_the_index_after_writes_only_each_validations_pages(
    staged, tmp_path, monkeypatch
):
    """`sim-pipeline run` sets INDEX_AFTER_RUN_ENV: each validation writes its own pages (the
    page quality_results links says its status) and the index is left to `build_docs_index`,
    called once after the run, which lists every validation and renders no page again."""
    frame, ledger = staged
    quality = tmp_path / "quality"
    monkeypatch.setenv(gx.INDEX_AFTER_RUN_ENV, "1")
    table = gx.validate(_staged_suite(frame, ledger), frame, quality, "a", "r")
    drops = gx.validate(
        staged_suites.drops_suite(ECDS, MONTHS),
        staged_suites.drops_frame(ledger.iloc[1:]),
        quality,
        "b",
        "r",
    )
    index = gx_docs.docs_index(quality)
    assert not index.exists()
    for outcome, status in ((table, "Succeeded"), (drops, "Failed")):
        assert re.search(STATUS.format(status), outcome.docs_page.read_text())
    drops.docs_page.write_text("not rendered again")
    assert gx.build_docs_index(quality) == index
    home = index.read_text()
    for name in ("staged_ecds.table", "staged_ecds.drops"):
        assert name in home, name
    assert home.count("validations/staged_ecds/") >= 2
    assert drops.docs_page.read_text() == "not rendered again"


def test_code_version_is_the_git_commit():
    v = code_version()
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", v), v
    row = audit_row(
        run_id="r1",
        stage="events",
        months=MONTHS,
        key_fingerprint="abc123",
        rows_in=10,
        rows_out=9,
        rows_rejected=1,
    )
    assert list(row.columns) == AUDIT_COLUMNS == list(sql_types("audit_trail"))
    assert row.loc[0, "months"] == "2019-03..2019-04" and row.loc[0, "code_version"] == v


def test_headline_impossible_values():
    def head(**values: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"population": "itt", "statistic": list(values), "value": list(values.values())}
        )

    good = head(n_allocated=10, n_engaged=8, n_people=10, pct_with_cost_fall=60, min_months=1)
    assert impossible_values(good) == []
    bad = head(
        n_allocated=10,
        n_engaged=12,
        n_people=10,
        pct_with_cost_fall=130,
        mean_baseline_monthly_cost_gbp=-5,
        ratio_of_means_pct_change=-150,
        mean_months=float("nan"),
    )
    problems = "\n".join(impossible_values(bad))
    for expected in (
        "n_engaged exceeds n_allocated",
        "pct_with_cost_fall is outside",
        "mean_baseline_monthly_cost_gbp is negative",
        "ratio_of_means_pct_change is a fall of more than 100%",
        "mean_months is missing",
    ):
        assert expected in problems


def test_unit_cost_problems():
    good = pd.DataFrame(
        {
            "metric": list(METRICS),
            "unit_cost_gbp": 100.0,
            "unit_cost_at_price_year": 100.0,
            "inflation_factor": 1.0,
            "source": "PSSRU",
            "source_price_year": "2018/19",
            "price_year": "2018/19",
            "unit_cost_version": "v1",
        }
    )
    assert unit_cost_problems(good) == []
    bad = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    bad.loc[1, "unit_cost_gbp"] = 0
    bad.loc[2, "source"] = ""
    problems = "\n".join(unit_cost_problems(bad))
    assert f"{METRICS[0]} is priced 2 times" in problems
    assert f"{METRICS[1]}: unit_cost_gbp is not a positive number" in problems
    assert f"{METRICS[2]}: source is missing" in problems


def test_trajectory_problems():
    good = pd.DataFrame(
        {
            "analysis": "primary",
            "population": "itt",
            "group": "programme",
            "months_from_index": [-1, 0, 1, 2],
            "n_people": [5, 5, 4, 0],
            "mean_total_cost": [100.0, 90.0, 80.0, float("nan")],  # month 2: no one there yet
        }
    )
    assert trajectory_problems(good) == []
    bad = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    bad.loc[1, "mean_total_cost"] = -1.0
    bad.loc[2, "n_people"] = 0
    problems = "\n".join(trajectory_problems(bad))
    assert "given twice" in problems and "negative mean" in problems and "no people" in problems


def test_error_messages_are_kept_without_values():
    """An expectation that raises keeps its error in quality_results, with column names but
    without any quoted value or long number (a conversion error can quote the value)."""
    masked = gx._masked(
        "could not convert string to float: 'Jane Smith' in column \"Age\"; got 9434765919",
        {"Age"},
    )
    assert masked == 'could not convert string to float: <value> in column "Age"; got <number>'


PLANTED = "9434765919"  # a valid NHS number


class _Poison:
    """A cell that makes an expectation comparing its column raise, quoting a value (what a
    conversion error does: ``could not convert string to float: '943 476 5919'``)."""

    def _raise(self, other: object) -> bool:
        raise ValueError(f"could not convert '{PLANTED}' near {PLANTED} in row 3")

    __ge__ = __gt__ = __le__ = __lt__ = _raise

    def __hash__(self) -> int:
        return 0

    def __str__(self) -> str:
        return "poison"


class _PoisonEverywhere(_Poison):
    """A cell that raises with a value whenever it is hashed (GX hashes the batch before any
    expectation runs): the error escapes GX itself."""

    def __hash__(self) -> int:
        raise ValueError(f"could not convert '{PLANTED}'")

    def __str__(self) -> str:
        raise ValueError(f"could not convert '{PLANTED}'")


def _scan_gx(root: Path) -> list[Path]:
    pages = [p for p in gx_docs.gx_root(root).rglob("*") if p.is_file()]
    for path in pages:
        text = path.read_text(errors="ignore")
        assert PLANTED not in text and "943 476 5919" not in text, path
    return pages


def test_an_expectation_that_raises_with_a_value_stores_no_value(staged, tmp_path):
    """Fault injection into GX itself: an expectation over a column holding a poisoned cell
    raises with an NHS number in its message and traceback. GX's stored result files and the
    Data Docs pages are masked at the source (before GX writes them), and so is our results
    frame; the fault is shown to have fired (a masked error is reported)."""
    frame, ledger = staged
    bad = frame.copy()
    col = "EC_Departure_Time_Since_Arrival"
    bad[col] = bad[col].astype(object)
    bad.loc[3, col] = _Poison()
    out = gx.validate(_staged_suite(frame, ledger), bad, tmp_path, "poisoned", "fault-run")
    errors = out.results["observed_value"].dropna()
    errors = errors[errors.str.startswith("error:")]
    assert len(errors) >= 1  # the fault fired: an expectation raised and it is reported
    assert all("<value>" in e or "<number>" in e for e in errors), errors.tolist()
    assert PLANTED not in out.results.astype("string").to_csv()
    pages = _scan_gx(tmp_path)
    results = [p for p in pages if "validations" in p.parts and p.suffix == ".json"]
    assert results and any(p.suffix == ".html" and "validations" in p.parts for p in pages)
    assert any("withheld" in p.read_text() for p in results)  # the traceback was replaced


def test_an_error_escaping_gx_is_raised_without_its_value(staged, tmp_path):
    frame, ledger = staged
    bad = frame.copy()
    bad["Der_Dupe_Flag"] = bad["Der_Dupe_Flag"].astype(object)
    bad.loc[3, "Der_Dupe_Flag"] = _PoisonEverywhere()
    with pytest.raises(gx.ValidationRunError) as exc:
        gx.validate(_staged_suite(frame, ledger), bad, tmp_path, "escaped", "fault-run")
    assert "<value>" in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    assert PLANTED not in str(exc.value) and PLANTED not in repr(exc.value)
    _scan_gx(tmp_path)


def test_gx_gets_nanosecond_datetimes_only_where_every_value_fits():
    """`_for_gx`: microsecond datetime columns become nanoseconds (GX's vectorised `between`),
    the same instants; a column holding a date outside the nanosecond range is left as it is
    (converting would raise), other columns and the caller's frame untouched."""
    from sim_pipeline.quality.gx_runner import _for_gx

    us = pd.to_datetime(pd.Series(["2019-01-02 03:04:05", None])).astype("datetime64[us]")
    old = pd.Series([pd.Timestamp("1600-01-01").as_unit("us"), pd.NaT], dtype="datetime64[us]")
    frame = pd.DataFrame({"when": us, "ancient": old, "n": [1, 2]})
    got = _for_gx(frame)
    assert str(got["when"].dtype) == "datetime64[ns]"
    assert got["when"].tolist()[0] == us.tolist()[0] and pd.isna(got["when"].iloc[1])
    assert str(got["ancient"].dtype) == "datetime64[us]" and got["n"].tolist() == [1, 2]
    assert str(frame["when"].dtype) == "datetime64[us]"  # the caller's frame unchanged


def test_a_validation_renders_its_pages_without_listing_every_stored_result(
    staged, tmp_path, monkeypatch
):
    """Each validation renders its own pages without listing (and parsing) every validation
    result the project holds, so it does not slow down as results accumulate; the pages are
    byte for byte those GX's own section builder renders for the same resources."""
    frame, ledger = staged
    quality = tmp_path / "quality"
    monkeypatch.setenv(gx.INDEX_AFTER_RUN_ENV, "1")
    suite, drops = staged_suites.drops_suite(ECDS, MONTHS), staged_suites.drops_frame(ledger)
    for batch in ("a", "b"):
        gx.validate(suite, drops, quality, batch, "r")
    ctx = gx._context(quality)
    store_class = type(ctx.validation_results_store)
    listed = []
    every_key = store_class.list_keys
    monkeypatch.setattr(store_class, "list_keys", lambda self: listed.append(1) or every_key(self))
    last = gx.validate(suite, drops.iloc[1:], quality, "c", "r")
    assert listed == [], "a validation listed every stored result"
    assert last.docs_page is not None and last.docs_page.exists()
    monkeypatch.setattr(store_class, "list_keys", every_key)

    site = gx_docs.docs_index(quality).parent

    def pages() -> dict[str, bytes]:
        return {
            str(p.relative_to(site)): p.read_bytes()
            for p in sorted(site.rglob("*.html"))
            if p.name != "index.html"
        }

    ours = pages()
    assert sum("validations/" in p for p in ours) == 3 and len(ours) == 4  # and the suite's
    for name in ours:
        (site / name).unlink()
    from great_expectations.render.renderer.site_builder import DefaultSiteSectionBuilder

    monkeypatch.setattr(
        DefaultSiteSectionBuilder, "build", DefaultSiteSectionBuilder._sim_every_key_build
    )
    named = [*ctx.validation_results_store.list_keys(), *ctx.expectations_store.list_keys()]
    ctx.build_data_docs(resource_identifiers=named, build_index=False)
    gx_docs.make_docs_self_contained(quality)  # as `validate` leaves every page
    assert pages() == ours


def _after_gx_import(code: str) -> str:
    """``code``'s output, run in a fresh interpreter (as a command starts) after `gx_runner`
    imports GX (``sys`` imported); fails with its error output if it fails."""
    import subprocess
    import sys

    prefix = "import sys\nfrom sim_pipeline.quality import gx_runner\ngx_runner.import_gx()\n"
    r = subprocess.run([sys.executable, "-c", prefix + code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_great_expectations_imports_without_pyspark_which_still_imports_after():
    """`gx_runner` shows GX pyspark as absent while GX imports (with the `spark` group
    installed GX would import pyspark and pyspark.ml: 0.4 s a process); afterwards pyspark
    imports as usual, for Splink on Spark. In a fresh interpreter, as a command starts."""
    code = (
        "import importlib.util\n"
        "from great_expectations.compatibility import pyspark as compat\n"
        "from great_expectations.compatibility.not_imported import NotImported\n"
        "assert 'pyspark' not in sys.modules and 'pyspark.ml' not in sys.modules\n"
        "assert isinstance(compat.pyspark, NotImported)\n"
        "if importlib.util.find_spec('pyspark') is not None:\n"
        "    import pyspark.sql\n"
        "    print('pyspark', pyspark.sql.SparkSession.__name__)\n"
        "else:\n"
        "    print('no pyspark')\n"
    )
    assert _after_gx_import(code).strip() in {"pyspark SparkSession", "no pyspark"}


def test_updating_a_stored_suite_compares_each_expectation_once_and_stores_what_gx_would(
    staged, tmp_path, monkeypatch
):
    """A suite the project already holds is updated with each expectation's comparable form
    made once (GX rebuilt both forms at every comparison: n squared for n expectations), and
    the update stores the same expectations as GX's own (their ids are GX's new UUIDs)."""
    from great_expectations.core.factory.suite_factory import SuiteFactory
    from great_expectations.expectations.expectation import Expectation

    frame, ledger = staged
    suite = _staged_suite(frame, ledger)
    n = len(suite.expectations)
    changed = staged_suites.staged_table_suite(  # another month's count: one expectation differs
        ECDS, list(sql_types(ECDS.asset_name)), MONTHS, 1 + len(frame)
    )

    def stored_after_update(quality: Path, ours: bool) -> tuple[list[dict], int]:
        gx.validate(suite, frame, quality, "a", "r")
        ctx = gx._context(quality)
        forms = []
        original = Expectation._to_normalized_self_dict
        monkeypatch.setattr(
            Expectation,
            "_to_normalized_self_dict",
            lambda self: forms.append(1) or original(self),
        )
        gx_own = getattr(SuiteFactory, "_sim_gx_add_or_update", SuiteFactory.add_or_update)
        update = SuiteFactory.add_or_update if ours else gx_own
        mod = gx._gx()
        update(ctx.suites, gx._gx_suite(mod, suite))  # unchanged
        update(ctx.suites, gx._gx_suite(mod, changed))
        monkeypatch.setattr(Expectation, "_to_normalized_self_dict", original)
        stored = ctx.suites.get(suite.name)
        return [e.dict(exclude={"rendered_content"}) for e in stored.expectations], len(forms)

    ours, ours_forms = stored_after_update(tmp_path / "ours", ours=True)
    theirs, gx_forms = stored_after_update(tmp_path / "gx", ours=False)
    assert ours_forms <= 4 * n < gx_forms, (ours_forms, gx_forms)

    def content(stored: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "id"} for e in stored]

    assert content(ours) == content(theirs)
    assert len(ours) == n


def test_the_config_variables_file_is_parsed_once_until_it_or_the_environment_changes(
    tmp_path, monkeypatch
):
    """GX reads its project's variables at every read of a setting; they are parsed once and
    read again only when the file or the environment changes (then with the new values)."""
    from great_expectations.core import config_provider

    provider = config_provider._ConfigurationVariablesConfigurationProvider
    gx._gx()
    path = tmp_path / "config_variables.yml"
    path.write_text("colour: red\nplace: ${SIM_TEST_PLACE}\n")
    monkeypatch.setenv("SIM_TEST_PLACE", "harbour")
    reads = []
    p = provider(str(path))
    original = config_provider.yaml.load
    monkeypatch.setattr(config_provider.yaml, "load", lambda t: reads.append(1) or original(t))
    first = p.get_values()
    first["colour"] = "changed by a caller"
    assert p.get_values() == {"colour": "red", "place": "harbour"}
    assert p.get_values() == p.get_values()
    assert len(reads) == 1
    monkeypatch.setenv("SIM_TEST_PLACE", "hill")
    assert p.get_values()["place"] == "hill" and len(reads) == 2
    path.write_text("colour: blue\nplace: ${SIM_TEST_PLACE}\n")
    os.utime(path, ns=(0, 1))  # a different modification time even within one clock tick
    assert p.get_values() == {"colour": "blue", "place": "hill"} and len(reads) == 3
    assert provider(str(tmp_path / "absent.yml")).get_values() == {}


def test_scipy_stats_waits_for_its_first_use_and_is_whole_then():
    """GX imports scipy.stats (0.6-0.7 s) only for distributional expectations the suites never
    use: after GX's import it is in place but not executed; its first use loads all of it, for
    GX's modules too. In a fresh interpreter, as a command starts."""
    code = (
        "assert 'scipy.stats' in sys.modules\n"
        "assert 'scipy.stats._stats_py' not in sys.modules, 'scipy.stats executed at import'\n"
        "from great_expectations.expectations.core import "
        "expect_column_kl_divergence_to_be_less_than as kl\n"
        "from scipy import stats\n"
        "assert kl.stats is stats\n"
        "print(stats.norm.cdf(0.0), 'scipy.stats._stats_py' in sys.modules)\n"
    )
    assert _after_gx_import(code).split() == ["0.5", "True"]
