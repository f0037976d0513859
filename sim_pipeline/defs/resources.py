"""Dagster resources: configuration comes from the environment with safe embedded defaults."""

import os
from functools import cached_property
from pathlib import Path

import dagster as dg

from sim_pipeline.config import REFERENCE_DIR, Settings, load_tokeniser
from sim_pipeline.identity.linkage import LinkageOptions
from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.sources.reader import DEFAULT_MAX_DROP_BYTES
from sim_pipeline.warehouse import Warehouse, redact_url


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (``SIM_WAREHOUSE_URL``; default SQLite under data/)."""

    url: str

    @cached_property
    def _warehouse(self) -> Warehouse:
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return Warehouse(self.url)

    def get(self) -> Warehouse:
        return self._warehouse

    @property
    def display_url(self) -> str:
        return redact_url(self.url)


class LandingResource(dg.ConfigurableResource):
    """The landing folder of provider drops: ``<dir>/<source>/<YYYY-MM>/<table>.csv``."""

    landing_dir: str
    # Largest drop file read (SIM_MAX_DROP_BYTES); a bigger one is rejected unread.
    max_drop_bytes: int = DEFAULT_MAX_DROP_BYTES

    @property
    def path(self) -> Path:
        return Path(self.landing_dir)


class PseudonymisationKeyResource(dg.ConfigurableResource):
    """The pseudonymisation key, read from ``SIM_PSEUDONYMISATION_KEY`` at run time.

    The key itself is never part of the resource config (so it never appears in the UI or the
    run's stored config); only its fingerprint is recorded.
    """

    def tokeniser(self) -> Tokeniser:
        return load_tokeniser()


class LinkageResource(dg.ConfigurableResource):
    """Linkage settings (see `LinkageOptions`) and the implausible-link limit of the check."""

    threshold: float = 0.95
    attach_threshold: float = 0.5
    ambiguity_margin: float = 3.0
    implausible_link_rate_limit: float = 0.01
    reports_dir: str = "data/reports"

    def options(self) -> LinkageOptions:
        return LinkageOptions(
            threshold=self.threshold,
            attach_threshold=self.attach_threshold,
            ambiguity_margin=self.ambiguity_margin,
        )


class QualityResource(dg.ConfigurableResource):
    """Where the Great Expectations project (suites, results, Data Docs) lives:
    ``<quality_dir>/gx``; the Data Docs site is ``<quality_dir>/gx/uncommitted/data_docs``."""

    quality_dir: str = "data/quality"

    @property
    def path(self) -> Path:
        return Path(self.quality_dir)


class MetricsResource(dg.ConfigurableResource):
    """Cohort windows and costing: baseline length, price year, unit-cost and index tables."""

    baseline_months: int = 12
    price_year: str = "2018/19"
    unit_costs_path: str = "data/reference/unit_costs.csv"
    price_index_path: str = "data/reference/price_index.csv"
    unit_cost_version: str | None = None  # default: the newest version in the file
    reports_dir: str = "data/reports"

    def unit_costs(self):  # -> sim_pipeline.measures.costs.UnitCosts
        from sim_pipeline.measures.costs import load_unit_costs

        index = Path(self.price_index_path) if self.price_index_path else None
        return load_unit_costs(
            Path(self.unit_costs_path), self.price_year, index, self.unit_cost_version
        )


class EvaluationResource(dg.ConfigurableResource):
    """Comparison cohort and estimates (see sim_pipeline/measures/evaluation.py)."""

    eligibility_rule: str = "s136_detentions>=2, ae_attendances>=12, police_deployments>=12"
    eligibility_window_months: int = 12
    baseline_months: int = 12
    controls_per_person: int = 3
    caliper: float = 1.5
    max_month_gap: int = 12
    bootstrap: int = 1000
    seed: int = 20180101
    sensitivity: bool = True
    published_dir: str = "data/published"

    def settings(self):  # -> sim_pipeline.measures.evaluation.EvaluationSettings
        from sim_pipeline.measures.evaluation import EligibilityRule, EvaluationSettings

        return EvaluationSettings(
            rule=EligibilityRule.parse(self.eligibility_rule, self.eligibility_window_months),
            baseline_months=self.baseline_months,
            controls_per_person=self.controls_per_person,
            caliper=self.caliper,
            max_month_gap=self.max_month_gap,
            bootstrap=self.bootstrap,
            seed=self.seed,
        )


def quality_dir(settings: Settings) -> Path:
    """``SIM_QUALITY_DIR``, else the quality folder beside the landing folder (data/quality by
    default, like data/reports and data/published)."""
    env = os.environ.get("SIM_QUALITY_DIR")
    return Path(env).resolve() if env else settings.landing_dir.parent / "quality"


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    url: str | dg.EnvVar = (
        dg.EnvVar("SIM_WAREHOUSE_URL")
        if os.environ.get("SIM_WAREHOUSE_URL")
        else settings.warehouse_url
    )
    return {
        "warehouse": WarehouseResource(url=url),
        "landing": LandingResource(
            landing_dir=str(settings.landing_dir), max_drop_bytes=settings.max_drop_bytes
        ),
        "pseudonymisation": PseudonymisationKeyResource(),
        "linkage": LinkageResource(reports_dir=str(settings.landing_dir.parent / "reports")),
        "metrics": MetricsResource(
            unit_costs_path=str(REFERENCE_DIR / "unit_costs.csv"),
            price_index_path=str(REFERENCE_DIR / "price_index.csv"),
            reports_dir=str(settings.landing_dir.parent / "reports"),
        ),
        "quality": QualityResource(quality_dir=str(quality_dir(settings))),
        "evaluation": EvaluationResource(
            published_dir=str(settings.landing_dir.parent / "published")
        ),
    }
