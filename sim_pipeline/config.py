"""Settings from environment variables with safe embedded defaults (see README, DESIGN.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sim_pipeline.identity.keys import KeyRejected, parse_key
from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
from sim_pipeline.landing.manifest import not_synthetic_reason
from sim_pipeline.sources.drop_files import DEFAULT_MAX_DROP_BYTES

KEY_ENV = "SIM_PSEUDONYMISATION_KEY"
DEMO_ENV = "SIM_DEMO_MODE"
FIRST_MONTH = "2016-01"
DEFAULT_LAST_MONTH = "2021-05"
# Output folders: beside the landing folder, unless `output_folder_env` names another.
OUTPUT_FOLDERS = ("quality", "reports", "published")


def output_folder_env(name: str) -> str:
    """The environment variable that places output folder ``name`` (`OUTPUT_FOLDERS`)."""
    return f"SIM_{name.upper()}_DIR"


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
# Freshness policies (the providers' ingest deadline, the headline's) evaluated by the daemon.
freshness:
  enabled: true
# Dagster's SQLite storage, with event-log connections kept open (sim_pipeline/dagster_instance.py).
instance_class:
  module: sim_pipeline.dagster_instance
  class: SimInstance
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
    # Output folders (default: beside the landing folder, data/quality, data/reports and
    # data/published). Environment only: no run config can point a run's output elsewhere.
    quality_dir: Path
    reports_dir: Path
    published_dir: Path
    last_month: str = DEFAULT_LAST_MONTH
    max_drop_bytes: int = DEFAULT_MAX_DROP_BYTES

    @classmethod
    def from_env(cls, root: Path | None = None) -> Settings:
        root = root or project_dir()
        landing = os.environ.get("SIM_LANDING_DIR")
        landing_dir = Path(landing).resolve() if landing else root / "data" / "landing"

        def folder(name: str) -> Path:
            value = os.environ.get(output_folder_env(name))
            return Path(value).resolve() if value else landing_dir.parent / name

        return cls(
            quality_dir=folder("quality"),
            reports_dir=folder("reports"),
            published_dir=folder("published"),
            landing_dir=landing_dir,
            truth_dir=Path(os.environ.get("SIM_TRUTH_DIR", root / "data" / "truth")).resolve(),
            warehouse_url=os.environ.get("SIM_WAREHOUSE_URL") or default_warehouse_url(root),
            dagster_home=Path(os.environ.get("DAGSTER_HOME", root / "dagster_home")).resolve(),
            landing_from_env=bool(landing),
            key_from_env=bool(os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV)),
            last_month=os.environ.get("SIM_LAST_MONTH", DEFAULT_LAST_MONTH),
            max_drop_bytes=_max_drop_bytes(),
        )


def _max_drop_bytes() -> int:
    raw = os.environ.get("SIM_MAX_DROP_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_DROP_BYTES
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ConfigError("SIM_MAX_DROP_BYTES must be a whole number of bytes >= 1")
    return int(raw)


LINKAGE_ENGINE_ENV = "SIM_LINKAGE_ENGINE"
SPARK_URL_ENV = "SIM_SPARK_URL"


def linkage_engine() -> tuple[str, str | None]:
    """Where linkage runs, from the environment: ``SIM_LINKAGE_ENGINE`` ("duckdb", the default,
    or "spark") and, for Spark, ``SIM_SPARK_URL``: a Spark master (``local[4]``,
    ``spark://host:7077``) or a Spark Connect URL (``sc://host:15002``); unset, an active
    session or a local one (`identity.engines`). Environment only, like every place data goes."""
    from sim_pipeline.identity.linkage_model import ENGINES

    engine = os.environ.get(LINKAGE_ENGINE_ENV, "").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise ConfigError(
            f"{LINKAGE_ENGINE_ENV}={engine!r} is not a linkage engine: use one of "
            f"{', '.join(ENGINES)}"
        )
    url = os.environ.get(SPARK_URL_ENV, "").strip() or None
    if url and engine != "spark":
        raise ConfigError(f"{SPARK_URL_ENV} is set but {LINKAGE_ENGINE_ENV} is not spark")
    return engine, url


def demo_mode_allowed() -> bool:
    return os.environ.get(DEMO_ENV, "").lower() in {"1", "true", "yes"}


KEY_FILE_ENV = "SIM_PSEUDONYMISATION_KEY_FILE"


def project_key_text() -> str | None:
    """The project key's text from ``SIM_PSEUDONYMISATION_KEY`` or the file named by
    ``SIM_PSEUDONYMISATION_KEY_FILE`` (never a command-line argument), or None."""
    key = os.environ.get(KEY_ENV)
    if key:
        return key
    path = os.environ.get(KEY_FILE_ENV)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{KEY_FILE_ENV}: cannot read the key file ({exc.strerror})"
            ) from None
    return None


def demo_refusal(landing: Path) -> str | None:
    """Why the public demo key may not be used on ``landing`` (None when it may): only on
    drops `sim-pipeline synth` wrote, by its manifest (`sim_pipeline.landing.manifest`)."""
    reason = not_synthetic_reason(landing)
    if reason is None:
        return None
    return (
        f"the public demo key is only for the synthetic landing `sim-pipeline synth` writes, "
        f"and {reason}. Set {KEY_ENV} (or {KEY_FILE_ENV}) to the project's key (make one with "
        "`sim-pipeline keygen`)"
    )


def load_tokeniser(landing_dir: Path | None = None) -> Tokeniser:
    """The project key (`project_key_text`, checked by `identity.keys.parse_key`); the public
    demo key only in demo mode and only on the synthetic landing (`demo_refusal`; the landing
    folder is ``SIM_LANDING_DIR``'s unless given)."""
    key = project_key_text()
    if key:
        try:
            secret, key_id = parse_key(key)
        except KeyRejected as exc:
            raise ConfigError(f"{KEY_ENV}: {exc}. Make a key with `sim-pipeline keygen`.") from None
        return Tokeniser(secret, demo=False, fingerprint=key_id)
    if demo_mode_allowed():
        refusal = demo_refusal(landing_dir or Settings.from_env().landing_dir)
        if refusal:
            raise ConfigError(f"{DEMO_ENV}=1 refused: {refusal}.")
        return Tokeniser(DEMO_KEY, demo=True)
    raise ConfigError(
        f"{KEY_ENV} (or {KEY_FILE_ENV}) is not set. Set it to the project's key (make one with "
        f"`sim-pipeline keygen`), or set {DEMO_ENV}=1 to run on synthetic data with the public "
        "demo key."
    )


def current_key_id() -> str | None:
    """The fingerprint of the key this process would use (for audit rows), None without one.
    Cheap: it does not re-check the landing folder (`load_tokeniser` does, where tokens are
    made)."""
    key = project_key_text()
    if key:
        try:
            return parse_key(key)[1]
        except KeyRejected:
            return None
    return Tokeniser(DEMO_KEY, demo=True).key_id if demo_mode_allowed() else None


def ensure_dagster_home(path: Path) -> Path:
    """Create the instance folder with a telemetry-off dagster.yaml if it has none."""
    path.mkdir(parents=True, exist_ok=True)
    yaml = path / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(DAGSTER_YAML)
    return path
