"""The public demo key only on the landing `sim-pipeline synth` wrote, and run config that
cannot redirect storage or output (issue 16, items 6 and 9).

Each attack: real (or changed) drops in a folder demo mode is asked for, by `run`, `backfill`,
`ui` or the pipeline's own key loading; a run config that points the warehouse, the landing
folder or an output folder somewhere else.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from sim_pipeline import cli
from sim_pipeline.config import ConfigError, demo_refusal, load_tokeniser
from sim_pipeline.landing.manifest import MANIFEST_NAME
from sim_pipeline_tests.conftest import PROJECT_KEY, clean_env, link_landing

DROP = "ae_rjz/2019-03/ecds.csv"


@pytest.fixture
def landing(small_synth, tmp_path) -> Path:
    """A project's own copy of the session's synthetic landing (hard links and the manifest)."""
    return link_landing(small_synth[0], tmp_path / "landing")


@pytest.fixture
def demo_env(monkeypatch, landing):
    for k, v in clean_env(SIM_DEMO_MODE="1", SIM_LANDING_DIR=str(landing)).items():
        monkeypatch.setenv(k, v)
    for k in ("SIM_PSEUDONYMISATION_KEY", "SIM_PSEUDONYMISATION_KEY_FILE"):
        monkeypatch.delenv(k, raising=False)
    return landing


def _replace(path: Path, data: bytes) -> None:
    path.unlink()  # a hard link to the shared file: replace, never edit in place
    path.write_bytes(data)


def test_the_generated_landing_and_any_subset_of_it_allow_the_demo_key(
    small_synth, demo_env, tmp_path
):
    assert demo_refusal(demo_env) is None
    assert load_tokeniser().demo
    some = link_landing(small_synth[0], tmp_path / "some", months=lambda m: m.startswith("2019"))
    assert demo_refusal(some) is None
    assert load_tokeniser(some).demo


def test_a_changed_drop_refuses_the_demo_key_naming_the_file(demo_env):
    path = demo_env / DROP
    data = path.read_bytes()
    _replace(path, data + data.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n")  # one line more
    with pytest.raises(ConfigError) as exc:
        load_tokeniser()
    assert DROP in str(exc.value) and "SIM_DEMO_MODE=1 refused" in str(exc.value)
    # the same bytes back: allowed again (the check follows the files, not a cached verdict)
    _replace(path, data)
    assert load_tokeniser().demo


def test_a_drop_added_to_the_synthetic_landing_refuses_the_demo_key(demo_env):
    extra = demo_env / "police_met" / "2019-03" / "extra.csv"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text("a,b\n1,2\n")
    reason = demo_refusal(demo_env)
    assert reason and "police_met/2019-03/extra.csv is not in" in reason


def test_no_manifest_or_a_forged_one_refuses_the_demo_key(demo_env):
    manifest = demo_env / MANIFEST_NAME
    body = json.loads(manifest.read_text())
    manifest.unlink()
    assert "has no synthetic-manifest.json" in (demo_refusal(demo_env) or "")
    manifest.write_text("{not json")
    assert "is not a manifest" in (demo_refusal(demo_env) or "")
    body["files"][DROP] = "0" * 64  # a manifest that does not match the drop
    manifest.write_text(json.dumps(body))
    assert DROP in (demo_refusal(demo_env) or "")


def test_run_and_ui_refuse_demo_mode_on_other_data_with_exit_2(demo_env, capsys):
    shutil.copyfile(demo_env / DROP, demo_env / "copy")
    _replace(demo_env / DROP, (demo_env / "copy").read_bytes().replace(b"2019-03", b"2019-04"))
    for command in (["run"], ["backfill", "--from", "2019-03", "--to", "2019-03"], ["ui"]):
        assert cli.main(command) == 2, command
        err = capsys.readouterr().err
        assert DROP in err and "project's key" in err, command


def test_ui_and_run_never_switch_demo_mode_on_for_real_data_in_the_default_folder(
    small_synth, monkeypatch, tmp_path, capsys
):
    """No key, no SIM_LANDING_DIR: the default landing folder holds drops (copied, no
    manifest) that `synth` did not write. Before this, `ui` switched demo mode on whenever no
    key was set."""
    for k, v in clean_env(SIM_PROJECT_DIR=str(tmp_path)).items():
        monkeypatch.setenv(k, v)
    for k in ("SIM_DEMO_MODE", "SIM_LANDING_DIR", "SIM_PSEUDONYMISATION_KEY"):
        monkeypatch.delenv(k, raising=False)
    dest = tmp_path / "data" / "landing" / DROP
    dest.parent.mkdir(parents=True)
    shutil.copyfile(small_synth[0] / DROP, dest)
    for command in (["ui"], ["run"]):
        assert cli.main(command) == 2, command
        assert "has no synthetic-manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "dagster_home").exists()  # refused before Dagster was started


def test_a_project_key_runs_on_any_landing(demo_env, monkeypatch):
    _replace(demo_env / DROP, b"changed\n")
    monkeypatch.setenv("SIM_PSEUDONYMISATION_KEY", PROJECT_KEY)
    assert not load_tokeniser().demo


# ----------------------------------------------------------------- run config (item 9)

REDIRECTS = [
    ("warehouse", "url"),
    ("landing", "landing_dir"),
    ("landing", "max_drop_bytes"),
    ("linkage", "reports_dir"),
    ("metrics", "reports_dir"),
    ("quality", "quality_dir"),
    ("evaluation", "published_dir"),
]


@pytest.mark.parametrize(("resource", "field"), REDIRECTS)
def test_run_config_cannot_redirect_storage_or_output(resource, field, tmp_path):
    from sim_pipeline.definitions import load_definitions

    defs = load_definitions()

    job = defs.resolve_job_def("sim_pipeline_all")
    value = 1 if field == "max_drop_bytes" else str(tmp_path / "elsewhere")
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"resources": {resource: {"config": {field: value}}}})
    # the same mechanism accepts what stays configurable (the study design, reference files)
    ok = {"resources": {"study": {"config": {"bootstrap": 50}}}}
    assert dg.validate_run_config(job, ok)["resources"]["study"]["config"]["bootstrap"] == 50


def test_no_document_publishes_the_web_ui_on_an_open_address():
    root = Path(__file__).resolve().parents[1]
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "deploy/README.md"]
    for doc in docs:
        assert "0.0.0.0" not in doc.read_text(), doc
    deploy = (root / "deploy/README.md").read_text()
    assert "--read-only" in deploy and "authenticat" in deploy
