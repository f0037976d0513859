"""Automation: monthly schedule, landing-folder sensor, declarative downstream (wiring only).

- ``monthly_ingest_schedule``: at 06:00 (Europe/London) on the 20th, after the providers' drop
  deadline, ingest the month that has just closed.
- ``landing_sensor``: every 5 minutes, ingest the table-months whose drops are new or changed
  since the last tick (cursor of file hashes; an unchanged file never triggers again).
- Downstream assets carry ``DOWNSTREAM_AUTOMATION`` (update when dependencies change, and only
  once every dependency's blocking checks passed), evaluated by the default automation sensor.
Both are stopped by default: an operator turns them on (README, operator section).
"""

from datetime import timedelta

import dagster as dg

from sim_pipeline.defs.common import DATA_ENGINEERING, study_months
from sim_pipeline.defs.resources import LandingResource
from sim_pipeline.landing.watch import (
    changed_drops,
    decode_cursor,
    encode_cursor,
    run_key,
    scan_landing,
)

ingest_job = dg.define_asset_job(
    "ingest_monthly",
    selection=dg.AssetSelection.groups("ingest"),
    description="Ingest one month (or a range, as one run) of every provider table.",
)

monthly_ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job,
    name="monthly_ingest_schedule",
    description=(
        "06:00 on the 20th of each month (after the providers' drop deadline): ingest the month "
        "that has just closed. Downstream assets follow through declarative automation."
    ),
    hour_of_day=6,
    day_of_month=20,
    owners=[DATA_ENGINEERING],
)


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=300,
    description=(
        "Watches the landing folder. Requests ingest of exactly the table-months whose drops are "
        "new or whose content changed (resubmissions) since the last tick."
    ),
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
    previous = decode_cursor(context.cursor)
    months = study_months()
    current = scan_landing(landing.path, months, previous)
    requests = [
        dg.RunRequest(
            run_key=run_key(month, [f for files in assets.values() for f in files], current),
            partition_key=f"{month}-01",
            asset_selection=[dg.AssetKey(a) for a in sorted(assets)],
            tags={
                "trigger": "landing_sensor",
                "changed_files": str(sum(map(len, assets.values()))),
            },
        )
        for month, assets in sorted(changed_drops(previous, current).items())
    ]
    return dg.SensorResult(run_requests=requests, cursor=encode_cursor(current))


# Like eager(), but without eager's "no dependency partition missing" clause: a whole-landing
# summary must update when a new month lands even if some old month is absent (it reports the
# gap). It still waits for in-progress dependencies and for every blocking check to pass.
AC = dg.AutomationCondition
DOWNSTREAM_AUTOMATION = (
    (AC.newly_missing() | AC.any_deps_updated()).since_last_handled()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
    & AC.all_deps_blocking_checks_passed()
).with_label("update when deps change and their blocking checks pass")

# Monthly assets: a month is requested when that month of a monthly dependency was updated, or
# when an unpartitioned dependency's content changed (its data version: a new cohort member
# needs a row in every month, a new unit cost re-costs every month), never for every month
# because something merely re-ran. The person index is not among those: a new month's records
# come with that month's staged rows, and the older months an incremental link's merges touch
# are brought up to date by `sim-pipeline backfill --linkage incremental` (`months_touched`) or
# a backfill after a full relink, as the architecture notes say.
MONTHLY_TAG = {"partitioning": "monthly"}
MONTHLY = dg.AssetSelection.tag(*next(iter(MONTHLY_TAG.items())))
IDENTITY = dg.AssetSelection.groups("identity")
MONTHLY_AUTOMATION = (
    (
        AC.newly_missing()
        | AC.any_deps_match(AC.newly_updated()).allow(MONTHLY)
        | AC.any_deps_match(AC.data_version_changed()).ignore(MONTHLY | IDENTITY)
    ).since_last_handled()
    & ~AC.any_deps_missing()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
    & AC.all_deps_blocking_checks_passed()
).with_label("update the months whose inputs changed, once their blocking checks pass")


# Freshness (shown on each asset's page; evaluated by the daemon, `freshness: enabled` in
# dagster.yaml). The providers' drops are due by 00:00 on the 20th and `monthly_ingest_schedule`
# ingests them at 06:00: each staged table must have been updated between 00:00 and 09:00 that
# day (or since). The headline must follow within five days: updated between the ingest and
# 09:00 on the 25th. A provider's own lateness is `drop_coverage`'s (`drops_on_time`).
TZ = "Europe/London"
INGEST_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 9 20 * *", lower_bound_delta=timedelta(hours=9), timezone=TZ
)
HEADLINE_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 9 25 * *", lower_bound_delta=timedelta(days=5, hours=3), timezone=TZ
)
