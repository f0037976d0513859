"""Settings from environment variables with safe embedded defaults (see README, DESIGN.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser

KEY_ENV = "SIM_PSEUDONYMISATION_KEY"
DEMO_ENV = "SIM_DEMO_MODE"
FIRST_MONTH = "2016-01"
DEFAULT_LAST_MONTH = "2021-05"
# Versioned reference data shipped with the code (unit costs, price index); SIM_REFERENCE_DIR
# points elsewhere to use a local copy.
REFERENCE_DIR = Path(
    os.environ.get("SIM_REFERENCE_DIR", Path(__file__).resolve().parents[1] / "data" / "reference")
)
DAGSTER_YAML = """\
# sim_pipeline's Dagster instance (written by sim-pipeline if missing).
# Health data: no telemetry.
telemetry:
  enabled: false
# Each staged table has its own pool (warehouse_write_<table>): one writer at a time per table.
concurrency:
  pools:
    default_limit: 1
    granularity: op
"""


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def project_dir() -> Path:
    return Path(os.environ.get("SIM_PROJECT_DIR", os.getcwd())).resolve()


def default_warehouse_url(root: Path | None = None) -> str:
    return f"sqlite:///{(root or project_dir()) / 'data' / 'warehouse.db'}"


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    truth_dir: Path
    warehouse_url: str = field(repr=False)
    dagster_home: Path
    landing_from_env: bool
    key_from_env: bool
    last_month: str = DEFAULT_LAST_MONTH

    @classmethod
    def from_env(cls, root: Path | None = None) -> Settings:
        root = root or project_dir()
        landing = os.environ.get("SIM_LANDING_DIR")
        return cls(
            landing_dir=Path(landing).resolve() if landing else root / "data" / "landing",
            truth_dir=Path(os.environ.get("SIM_TRUTH_DIR", root / "data" / "truth")).resolve(),
            warehouse_url=os.environ.get("SIM_WAREHOUSE_URL") or default_warehouse_url(root),
            dagster_home=Path(os.environ.get("DAGSTER_HOME", root / "dagster_home")).resolve(),
            landing_from_env=bool(landing),
            key_from_env=bool(os.environ.get(KEY_ENV)),
            last_month=os.environ.get("SIM_LAST_MONTH", DEFAULT_LAST_MONTH),
        )


def demo_mode_allowed() -> bool:
    return os.environ.get(DEMO_ENV, "").lower() in {"1", "true", "yes"}


def load_tokeniser() -> Tokeniser:
    """The project key from ``SIM_PSEUDONYMISATION_KEY``; the public demo key only in demo mode."""
    key = os.environ.get(KEY_ENV)
    if key:
        return Tokeniser(key.encode(), demo=False)
    if demo_mode_allowed():
        return Tokeniser(DEMO_KEY, demo=True)
    raise ConfigError(
        f"{KEY_ENV} is not set. Set it to the project's secret key (>= 16 bytes), or set "
        f"{DEMO_ENV}=1 to run on synthetic data with the public demo key."
    )


def ensure_dagster_home(path: Path) -> Path:
    """Create the instance folder with a telemetry-off dagster.yaml if it has none."""
    path.mkdir(parents=True, exist_ok=True)
    yaml = path / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(DAGSTER_YAML)
    return path
