"""Dagster resources: configuration comes from the environment with safe embedded defaults."""

from functools import cached_property
from pathlib import Path

import dagster as dg

from sim_pipeline.config import REFERENCE_DIR, Settings, linkage_engine, load_tokeniser
from sim_pipeline.identity.linkage import LinkageOptions
from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.warehouse import Warehouse, redact_url


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse: ``SIM_WAREHOUSE_URL`` (default SQLite under data/). Environment
    only: the resource has no config, so no run config can point a run at another database."""

    @cached_property
    def _warehouse(self) -> Warehouse:
        url = Settings.from_env().warehouse_url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return Warehouse(url)

    def get(self) -> Warehouse:
        return self._warehouse

    @property
    def display_url(self) -> str:
        return redact_url(Settings.from_env().warehouse_url)


class LandingResource(dg.ConfigurableResource):
    """The landing folder of provider drops, ``<dir>/<source>/<YYYY-MM>/<table>.csv``
    (``SIM_LANDING_DIR``), and the largest drop read (``SIM_MAX_DROP_BYTES``; a bigger one is
    rejected unread). Environment only, like every storage and output path."""

    @property
    def path(self) -> Path:
        return Settings.from_env().landing_dir

    @property
    def max_drop_bytes(self) -> int:
        return Settings.from_env().max_drop_bytes


class PseudonymisationKeyResource(dg.ConfigurableResource):
    """The pseudonymisation key, read from ``SIM_PSEUDONYMISATION_KEY`` at run time.

    The key itself is never part of the resource config (so it never appears in the UI or the
    run's stored config); only its fingerprint is recorded.
    """

    def tokeniser(self) -> Tokeniser:
        return load_tokeniser()


class LinkageResource(dg.ConfigurableResource):
    """Where the linkage charts go (``SIM_REPORTS_DIR``; environment only). The linkage
    settings are the study design's (`StudyDesignResource`)."""

    @property
    def reports_dir(self) -> Path:
        """Charts (``SIM_REPORTS_DIR``; environment only)."""
        return Settings.from_env().reports_dir


class QualityResource(dg.ConfigurableResource):
    """Where the Great Expectations project (suites, results, Data Docs) lives:
    ``<SIM_QUALITY_DIR>/gx``; the Data Docs site is ``<SIM_QUALITY_DIR>/gx/uncommitted/
    data_docs``. Environment only."""

    @property
    def path(self) -> Path:
        return Settings.from_env().quality_dir


class StudyDesignResource(dg.ConfigurableResource):
    """The study design, set once for every asset that uses it: the baseline window the cohort,
    the headline and the evaluation all compare against (so the headline and the adjusted
    estimate can never use different baselines), the price year, the linkage settings and the
    evaluation's. The other resources hold connections and paths only."""

    baseline_months: int = 12
    # costing
    price_year: str = "2018/19"
    unit_cost_version: str | None = None  # default: the newest version in the file
    # linkage (see `LinkageOptions`)
    linkage_threshold: float = 0.95
    attach_threshold: float = 0.5
    ambiguity_margin: float = 3.0
    # evaluation (see sim_pipeline/evaluation/comparison.py)
    eligibility_rule: str = "s136_detentions>=2, ae_attendances>=12, police_deployments>=12"
    eligibility_window_months: int = 12
    controls_per_person: int = 3
    caliper: float = 1.5
    max_month_gap: int = 12
    bootstrap: int = 1000
    seed: int = 20180101
    sensitivity: bool = True

    def linkage_options(self) -> LinkageOptions:
        # where the model runs is the environment's (SIM_LINKAGE_ENGINE, SIM_SPARK_URL), never
        # run config: it decides where the encodings go
        engine, spark_url = linkage_engine()
        return LinkageOptions(
            threshold=self.linkage_threshold,
            attach_threshold=self.attach_threshold,
            ambiguity_margin=self.ambiguity_margin,
            engine=engine,
            spark_url=spark_url,
        )

    def evaluation_settings(self):  # -> sim_pipeline.evaluation.comparison.EvaluationSettings
        from sim_pipeline.evaluation.comparison import EvaluationSettings
        from sim_pipeline.evaluation.matching import EligibilityRule

        return EvaluationSettings(
            rule=EligibilityRule.parse(self.eligibility_rule, self.eligibility_window_months),
            baseline_months=self.baseline_months,
            controls_per_person=self.controls_per_person,
            caliper=self.caliper,
            max_month_gap=self.max_month_gap,
            bootstrap=self.bootstrap,
            seed=self.seed,
        )


class MetricsResource(dg.ConfigurableResource):
    """Costing's reference files (unit costs and price index; the price year and the version
    are the study design's) and where its charts go."""

    unit_costs_path: str = "data/reference/unit_costs.csv"
    price_index_path: str = "data/reference/price_index.csv"

    @property
    def reports_dir(self) -> Path:
        """Charts (``SIM_REPORTS_DIR``; environment only)."""
        return Settings.from_env().reports_dir

    def unit_costs(self, study: StudyDesignResource):  # -> sim_pipeline.measures.costs.UnitCosts
        from sim_pipeline.measures.costs import load_unit_costs

        index = Path(self.price_index_path) if self.price_index_path else None
        return load_unit_costs(
            Path(self.unit_costs_path), study.price_year, index, study.unit_cost_version
        )


class EvaluationResource(dg.ConfigurableResource):
    """Where the disclosure-controlled release goes (``SIM_PUBLISHED_DIR``; environment only).
    The evaluation's settings are the study design's."""

    @property
    def published_dir(self) -> Path:
        """The disclosure-controlled release (``SIM_PUBLISHED_DIR``; environment only)."""
        return Settings.from_env().published_dir


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources. Storage and output paths are not among their config (each reads them
    from the environment when used), so a run's config cannot redirect them; the reference
    files and the study design (`study`: every analysis setting) stay configurable."""
    return {
        "warehouse": WarehouseResource(),
        "landing": LandingResource(),
        "pseudonymisation": PseudonymisationKeyResource(),
        "linkage": LinkageResource(),
        "metrics": MetricsResource(
            unit_costs_path=str(REFERENCE_DIR / "unit_costs.csv"),
            price_index_path=str(REFERENCE_DIR / "price_index.csv"),
        ),
        "quality": QualityResource(),
        "study": StudyDesignResource(),
        "evaluation": EvaluationResource(),
    }
