"""Freshness (issue 20 item 2): the providers' ingest deadline on every staged table and the
headline's, judged by Dagster's own evaluator (what the daemon runs and the UI shows) at
chosen times."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.definitions.freshness_evaluator import CronFreshnessPolicyEvaluator
from dagster._core.test_utils import freeze_time

from sim_pipeline.config import DAGSTER_YAML
from sim_pipeline.definitions import load_definitions
from sim_pipeline.sources import SOURCE_TABLES

LONDON = ZoneInfo("Europe/London")
defs = load_definitions()


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=LONDON)


def _state(instance: dg.DagsterInstance, key: str, now: dt.datetime) -> FreshnessState:
    graph = defs.resolve_asset_graph()
    with freeze_time(now):
        view = AssetGraphView(
            temporal_context=TemporalContext(effective_dt=now, last_event_id=None),
            instance=instance,
            asset_graph=graph,
        )
        return asyncio.run(
            CronFreshnessPolicyEvaluator().evaluate_freshness(view, graph.get(dg.AssetKey(key)))
        )


def _materialise(instance: dg.DagsterInstance, key: str, when: dt.datetime, partition=None):
    with freeze_time(when):
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_every_staged_table_and_the_headline_carry_a_freshness_policy():
    graph = defs.resolve_asset_graph()
    for table in SOURCE_TABLES:
        policy = graph.get(dg.AssetKey(table.asset_name)).freshness_policy
        assert policy is not None and policy.deadline_cron == "0 9 20 * *", table.asset_name
        assert policy.timezone == "Europe/London"
    headline = graph.get(dg.AssetKey("programme_headline")).freshness_policy
    assert headline.deadline_cron == "0 9 25 * *"
    # the daemon evaluates them only when the instance says so: every instance we write does
    assert "freshness:\n  enabled: true" in DAGSTER_YAML


@pytest.mark.parametrize(
    "ingested, now, expected",
    [
        (at(20, 6, 10), at(20, 9, 30), FreshnessState.PASS),  # the schedule's run, on time
        (at(20, 6, 10), at(19, 23, month=4), FreshnessState.PASS),  # until next month's deadline
        (at(20, 6, 10), at(20, 9, 1, month=4), FreshnessState.FAIL),  # next month not ingested
        (at(19, 23), at(20, 9, 30), FreshnessState.FAIL),  # before the drops were due
        (at(21, 8), at(21, 9), FreshnessState.PASS),  # late, fresh from when it ran
    ],
)
def test_a_staged_table_is_fresh_once_ingested_after_the_drop_deadline(ingested, now, expected):
    with dg.DagsterInstance.ephemeral() as instance:
        _materialise(instance, "staged_ecds", ingested, "2026-02-01")
        assert _state(instance, "staged_ecds", now) == expected


def test_the_headline_must_follow_the_ingest_within_five_days():
    with dg.DagsterInstance.ephemeral() as instance:
        assert _state(instance, "programme_headline", at(26, 9)) == FreshnessState.UNKNOWN
        _materialise(instance, "programme_headline", at(10, 12))  # last month's figures
        assert _state(instance, "programme_headline", at(24, 9)) == FreshnessState.PASS
        assert _state(instance, "programme_headline", at(25, 9, 1)) == FreshnessState.FAIL
        _materialise(instance, "programme_headline", at(22, 14))  # after the 20th's ingest
        assert _state(instance, "programme_headline", at(25, 9, 1)) == FreshnessState.PASS
