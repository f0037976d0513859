import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    """The test process environment without any SIM_* / DAGSTER_HOME setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_") and k != "DAGSTER_HOME"}
    env.update(extra)
    return env


def project_env(landing: Path, root: Path, **extra: str) -> dict[str, str]:
    """A clean environment for one project under ``root``: its own SQLite warehouse and Dagster
    instance, the given landing folder, demo mode unless a key is passed in ``extra``."""
    base = {
        "SIM_LANDING_DIR": str(landing),
        "SIM_WAREHOUSE_URL": f"sqlite:///{root / 'warehouse.db'}",
        "DAGSTER_HOME": str(root / "dagster_home"),
        "SIM_PROJECT_DIR": str(root),
    }
    if "SIM_PSEUDONYMISATION_KEY" not in extra:
        base["SIM_DEMO_MODE"] = "1"
    return clean_env(**base, **extra)


def cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "sim-pipeline"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory) -> tuple[Path, Path]:
    """A small synthetic landing + truth, generated once per session through the CLI."""
    root = tmp_path_factory.mktemp("synth")
    landing, truth = root / "landing", root / "truth"
    r = cli(
        "synth",
        "--out",
        str(landing),
        "--truth",
        str(truth),
        "--seed",
        "7",
        "--people",
        "800",
        "--comparison-people",
        "120",
        env=clean_env(),
        cwd=root,
    )
    assert r.returncode == 0, r.stderr
    return landing, truth
