"""The analysts' web UI, in a real browser: the real dagster-webserver on loopback over a
materialised instance, driven by headless Chromium (Debian's ``chromium`` package; `.ci/run`
installs it, nothing is downloaded at test time). Screenshots go to ``test-artifacts/ui/``."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sim_pipeline_tests.conftest import JUNE_2019, cli, copy_project, project_env

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "ui"
LAST_MONTH = JUNE_2019  # programme allocations start in 2018: the headline has people
# Removed after the full run, then its month re-run: provider_drops_present fails on staged_ecds,
# ingest_summary's gate ingest_accepted (blocking) fails on it, and the assets after the gate
# keep their materialisations from the full run.
MISSING_DROP = ("ae_rjz", "2019-03", "ecds.csv")


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "Chromium not found: install Debian's chromium package (apt-get install chromium); "
        ".ci/run does this"
    )


class Served(str):
    """The web server's address, with the project folder it serves (``root``)."""

    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(june_project, tmp_path_factory):
    # a copy of the session's project materialised by the CLI up to 2019-06
    root = copy_project(june_project["root"], tmp_path_factory.mktemp("ui"))
    landing = root / "landing"
    env = project_env(landing, root, SIM_LAST_MONTH=LAST_MONTH)
    # a provider's drop goes missing and its month is re-run: the staged check fails, the gate
    # on ingest_summary fails its step (exit 1) and nothing after it runs
    (landing.joinpath(*MISSING_DROP)).unlink()  # a link to the shared file: only ours goes
    month = MISSING_DROP[1]
    r = cli("backfill", "--from", month, "--to", month, env=env, cwd=root)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED staged_ecds:provider_drops_present" in r.stdout
    assert "FAILED ingest_summary:ingest_accepted" in r.stdout
    port = _free_port()
    log = (root / "webserver.log").open("w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "sim_pipeline.definitions"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole below
    )
    url = Served(f"http://127.0.0.1:{port}")
    url.root = root
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "dagster-webserver did not start: " + (root / "webserver.log").read_text()
                    ) from None
                time.sleep(0.5)
        print(f"\nwebserver ready in {time.perf_counter() - t0:.1f}s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _open(page, url: str) -> None:
    """Open ``url`` and dismiss Dagster's first-visit community dialog. It can appear after
    the page has settled, and while it is open it takes every click (a test that ran first,
    before the web server had warmed up, timed out clicking behind it)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("button", name="Skip")
    with contextlib.suppress(PlaywrightTimeout):  # no dialog this time
        skip.first.click(timeout=5_000)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_asset_graph_shows_every_group(webserver, page):
    from sim_pipeline.definitions import load_definitions

    defs = load_definitions()

    groups = {
        spec.group_name for spec in defs.resolve_all_asset_specs() if spec.group_name is not None
    }
    assert groups >= {"ingest", "identity", "metrics", "evaluation", "quality"}
    _open(page, f"{webserver}/asset-groups")
    for group in sorted(groups):
        page.get_by_text(group, exact=True).first.wait_for()
    page.wait_for_timeout(2000)  # let the graph lay out before the screenshot
    _shot(page, "asset_graph")


def _row(page, label: str) -> str:
    """The text of the metadata table row whose first cell is ``label`` (scrolled into view)."""
    row = page.locator("tr").filter(has=page.get_by_text(label, exact=True)).last
    row.scroll_into_view_if_needed()
    return row.inner_text()


def _check_result(root: Path, asset: str, check: str):
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as inst:
        record = inst.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(asset), check)]
        )[dg.AssetCheckKey(dg.AssetKey(asset), check)]
        return record.event.dagster_event.event_specific_data


def test_an_analysts_walk(webserver, page):
    """Issue 20 item 7, the way an analyst or auditor goes, each page asserted on what it shows
    and kept as a screenshot (test-artifacts/ui/walk_*.png):

    1. the headline asset: the programme's own figures (per population, price year);
    2. beside it the adjusted estimate: the naive change next to the difference-in-differences
       with its interval, and the design's diagnostics in plain words (its check);
    3. a failing check with its description: a provider's missing drop, then the gate that holds
       linkage back because of it;
    4. that table's Data Docs page, opened from the path its Great Expectations check reports:
       the suite's expectations and results, offline."""
    # 1. the headline
    _open(page, f"{webserver}/assets/programme_headline")
    page.get_by_text("The programme review's headline figures").first.wait_for()
    text = _row(page, "headline")
    for want in ("statistic", "itt", "per_protocol", "n_allocated", "mean_monthly_change_gbp"):
        assert want in text, want
    assert "2018/19" in _row(page, "price_year")
    _shot(page, "walk_1_headline")
    # 2. the adjusted estimate beside it, and its diagnostics
    _open(page, f"{webserver}/assets/evaluation_estimates")
    page.get_by_text("The headline beside what survives a fair comparison").first.wait_for()
    text = _row(page, "total_cost_naive_vs_did")
    for want in ("naive_before_after", "difference_in_differences", "95% CI", "itt"):
        assert want in text, want
    assert "placebo_in_time" in text  # the design's placebo beside its estimates
    _shot(page, "walk_2_estimate")
    _open(page, f"{webserver}/assets/evaluation_estimates?view=checks")
    page.get_by_text("design_diagnostics").first.click()
    page.get_by_text("The primary design's diagnostics hold no change").first.wait_for()
    body = page.inner_text("body")
    assert "the placebo in time" in body and "e_value" in body, body[-3000:]
    _shot(page, "walk_2_diagnostics")
    # 3. the failing check and the gate it trips
    _open(page, f"{webserver}/assets/staged_ecds?view=checks")
    page.get_by_text("provider_drops_present").first.click()
    page.get_by_text("delivered a drop for every month").first.wait_for()
    body = page.inner_text("body")
    assert "provider_drops_present" in body
    assert "Failed" in body, body[:2000]
    assert "/".join(MISSING_DROP) in body  # the latest result names the missing file
    _shot(page, "walk_3_failing_check")
    _open(page, f"{webserver}/assets/ingest_summary?view=checks")
    page.get_by_text("ingest_accepted").first.click()
    page.get_by_text("linkage and every later asset wait").first.wait_for()
    body = page.inner_text("body")
    assert "blocking" in body  # "This is a blocking asset check"
    assert "Failed" in body, body[:2000]
    assert "staged_ecds:provider_drops_present" in body  # the result's description
    _shot(page, "walk_3_failing_gate")
    # 4. the table's Data Docs page, from the path its GX check reports (shown in the UI too)
    _open(page, f"{webserver}/assets/staged_ecds?view=checks")
    page.get_by_text("gx_drops").first.click()
    page.get_by_text("drops over this run's landing files").first.wait_for()
    assert "Failed" in page.inner_text("body")  # the month's drops failed their suite too
    result = _check_result(webserver.root, "staged_ecds", "gx_drops")
    assert result.passed is False
    docs = Path(result.metadata["data_docs_page"].path)
    assert docs.is_file(), docs
    page.goto(docs.as_uri())
    body = " ".join((page.text_content("body") or "").split())
    assert "Expectation Suite: staged_ecds.drops" in body, body[:2000]
    assert "Status: Failed" in body and "Unsuccessful Expectations1" in body, body[:2000]
    assert "Must have exactly 5 rows." in body  # five providers' drops expected, four came
    _shot(page, "walk_4_data_docs")


def test_data_docs_read_the_same_with_the_network_blocked(june_project, browser):
    """Every Data Docs page is self-contained: no external address in any page, and in
    Chromium with every non-file request blocked the index and a validation page show their
    suites and results and try to fetch nothing from outside."""
    from sim_pipeline.quality.gx_docs import SELF_CONTAINED_MARK, docs_index

    quality = Path(june_project["env"]["SIM_QUALITY_DIR"])
    site = docs_index(quality).parent
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    for p in pages:
        text = p.read_text()
        assert "http://" not in text and "https://" not in text, p
        assert SELF_CONTAINED_MARK in text, p
    validation = next(p for p in pages if "validations" in p.parts and "table" in p.name)
    context = browser.new_context()
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    try:
        page.goto(docs_index(quality).as_uri())
        body = " ".join((page.text_content("body") or "").split())  # hidden tabs' tables too
        assert "Validation Results" in body and "Expectation Suites" in body
        assert "staged_ecds.table" in body and "person_month_costs.table" in body
        page.goto(validation.as_uri())
        body = " ".join((page.text_content("body") or "").split())
        assert "Expectation Suite:" in body and "Evaluated Expectations" in body
        assert "Status: Succeeded" in body or "Status: Failed" in body
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "data_docs_offline.png"))
    finally:
        context.close()
    assert outside == []


def _graphql(url: str, query: str) -> dict:
    import json

    req = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_the_ui_serves_versions_freshness_and_the_observed_sources(webserver):
    """What the asset pages read from the webserver's GraphQL: each asset's code version and
    freshness policy, and the sources' observed data versions (issue 20 items 1 and 2)."""
    nodes = _graphql(
        webserver,
        """{ assetNodes { assetKey { path } opVersion isObservable isExecutable
             internalFreshnessPolicy { ... on CronFreshnessPolicy { deadlineCron timezone } } } }""",
    )["data"]["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert by_key["programme_headline"]["internalFreshnessPolicy"] == {
        "deadlineCron": "0 9 25 * *",
        "timezone": "Europe/London",
    }
    assert by_key["staged_ecds"]["internalFreshnessPolicy"]["deadlineCron"] == "0 9 20 * *"
    run = [k for k, n in by_key.items() if n["isExecutable"] and not n["isObservable"]]
    assert len(run) > 30 and all(by_key[k]["opVersion"] for k in run), run
    assert by_key["reference_unit_costs"]["isObservable"]
    # the project's run observed the sources first: the unit-cost file has a data version
    latest = _graphql(
        webserver,
        """{ assetNodes(assetKeys: [{path: ["reference_unit_costs"]}]) {
             assetObservations(limit: 1) { tags { key value } } } }""",
    )["data"]["assetNodes"][0]["assetObservations"]
    assert latest and any(t["key"] == "dagster/data_version" for t in latest[0]["tags"]), latest


def test_the_ui_reads_column_lineage_from_the_definitions(webserver):
    """The column view's query (the UI's AssetColumnLineage: the definition's lineage entry when
    the latest materialisation has none) finds each traced asset's lineage: the NHS-number
    token from the landing file's NHS_Number only, the person key from the staged tokens."""
    nodes = _graphql(
        webserver,
        """{ assetNodes(loadMaterializations: true, assetKeys: [{path: ["staged_ecds"]},
               {path: ["person_index"]}, {path: ["person_month_costs"]}]) {
             assetKey { path }
             metadataEntries { __typename label ... on TableColumnLineageMetadataEntry {
               lineage { columnName columnDeps { assetKey { path } columnName } } } }
             assetMaterializations(limit: 1) { metadataEntries { label } } } }""",
    )["data"]["assetNodes"]
    lineage = {}
    for node in nodes:
        key = "/".join(node["assetKey"]["path"])
        (entry,) = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_lineage"]
        assert entry["__typename"] == "TableColumnLineageMetadataEntry"
        lineage[key] = {
            c["columnName"]: {
                ("/".join(d["assetKey"]["path"]), d["columnName"]) for d in c["columnDeps"]
            }
            for c in entry["lineage"]
        }
        for m in node["assetMaterializations"]:  # the run's materialisations carry none
            assert "dagster/column_lineage" not in {e["label"] for e in m["metadataEntries"]}
    assert lineage["staged_ecds"]["nhs_number_token"] == {("landing_ecds", "NHS_Number")}
    assert ("staged_ecds", "nhs_number_token") in lineage["person_index"]["person_key"]
    assert ("person_month_metrics", "ae_attendances") in lineage["person_month_costs"][
        "cost_ae_attendances"
    ]


REPORT_ARTIFACTS = ARTIFACTS.parent / "report"
REPORT_SECTIONS = [
    "Monthly cost around the index date",
    "The primary estimate: members against people alike at the same month",
    "Headline beside the adjusted estimate",
    "The review's headline, recomputed (naive)",
    "Harms (balancing measures)",
    "Balance of programme and comparison people",
    "Sensitivity of the total-cost estimate",
    "Linkage quality",
    "Unit costs",
    "Methods and limitations",
]


def test_the_report_reads_right_in_chromium_on_screen_and_in_print(june_project, browser):
    """The published report of the session's run (drawn from the Jinja2 templates), opened in
    Chromium with every non-file request blocked: its sections in order, every contents link
    landing on its section, the three charts decoded, the per-protocol DiD cell the one in the
    published CSV, no template syntax or script on the page. Printed (print media, A4): the
    contents hidden, table headers repeated, nothing wider than the page, at least two pages.
    Kept: test-artifacts/report/evaluation_report.png (screen) and .pdf (print)."""
    import csv

    from sim_pipeline.publish.report_cells import pct

    published = june_project["root"] / "published"
    report = published / "evaluation_report.html"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(("file://", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        assert page.title() == "SIM evaluation report"
        assert page.locator("h2").all_inner_texts() == REPORT_SECTIONS
        summary = page.locator("p.summary").inner_text()
        assert summary.startswith("On the naive before/after comparison the programme review")
        assert "the difference-in-differences estimate of the change in mean monthly cost" in (
            summary
        )
        # every contents link lands on a section whose heading it names
        links = page.locator("nav.contents a")
        assert links.count() == len(REPORT_SECTIONS)
        for i in range(links.count()):
            target = links.nth(i).get_attribute("href")
            heading = page.locator(f"{target} > h2").inner_text()
            assert heading.startswith(links.nth(i).inner_text()), (target, heading)
        # the charts are inline PNGs that decode, each with its alternative text
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.naturalWidth, i.alt, i.src.slice(0, 22)])"
        )
        assert len(images) == 3
        for width, alt, src in images:
            assert width > 100 and len(alt) > 20 and src == "data:image/png;base64,"
        # the page's per-protocol total-cost DiD is the published CSV's cell
        with (published / "evaluation_estimates.csv").open(newline="") as f:
            (did,) = [
                r
                for r in csv.DictReader(f)
                if (r["analysis"], r["population"], r["outcome"], r["method"])
                == ("primary", "per_protocol", "total_cost", "difference_in_differences")
            ]
        rows = page.locator("#estimates table tbody tr").all()
        cells = [r.locator("td").all_inner_texts() for r in rows]
        (shown,) = [c for c in cells if c[:2] == ["total_cost", "per-protocol"]]
        assert shown[3] == pct(did["estimate"])
        body = page.locator("body").inner_text()
        assert "{{" not in body and "{%" not in body
        assert page.locator("script").count() == 0
        REPORT_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(REPORT_ARTIFACTS / "evaluation_report.png"), full_page=True)
        # in print: A4's printable width (186 mm at 96 px/in is 703 px)
        page.set_viewport_size({"width": 703, "height": 1000})
        page.emulate_media(media="print")
        assert page.locator("nav.contents").evaluate("n => getComputedStyle(n).display") == "none"
        assert page.locator("thead").first.evaluate("n => getComputedStyle(n).display") == (
            "table-header-group"
        )
        overflow = page.evaluate(
            "Array.from(document.querySelectorAll('table, figure, p'))"
            ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth"
            " + 1).map(e => e.tagName + ': ' + e.textContent.slice(0, 60))"
        )
        assert overflow == [], overflow
        pdf = page.pdf(path=str(REPORT_ARTIFACTS / "evaluation_report.pdf"), format="A4")
        assert pdf.startswith(b"%PDF")
        assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2  # pages, not the page tree
    finally:
        context.close()
    assert outside == [] and errors == []
