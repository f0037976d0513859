"""The measures stage's warehouse tables, each declared once (`warehouse.model`): events, the
cohort, the person-month metric and cost tables, the unit costs applied and the headline.

The person-month tables' columns follow from the metric list (`measures.metrics`), so a new
metric is one line there; their rules (one row per person and month, never empty, never
negative, bed days at most 31) are declared here and checked before writing and by Great
Expectations."""

from __future__ import annotations

from typing import Any

from sim_pipeline.identity.tables import record_ref_col, record_source_col, record_table_col
from sim_pipeline.measures.metrics import (
    HARM_DESCRIPTIONS,
    MEASURES,
    METRIC_DESCRIPTIONS,
    METRICS,
)
from sim_pipeline.warehouse.model import (
    Boolean,
    Date,
    Integer,
    Real,
    Text,
    WarehouseTable,
    col,
    make_table,
    shared_col,
)

MAX_COUNT_PER_MONTH = 1000  # more contacts of one kind in one month is not plausible
MAX_BED_DAYS = 31
PERSON_KEY_RE = r"^P[0-9]+$"
PERSON_MONTH = ["person_key", "month"]
PERSON_MONTH_GRAIN = (
    "one row per cohort person and month (zeros included) and per other person and month "
    "with any event; partitioned by month"
)


person_key_col = shared_col("Person key (person_index)")


month_col = shared_col("Calendar month YYYY-MM (partition)")


class Events(WarehouseTable):
    """Countable events: one row per A&E attendance, ambulance incident (quantity = resources
    sent), ward stay-month (quantity = bed days), police deployment and s136 detention, and per
    harm event (self-harm attendance, arrest, charge, s136 to a police station, community
    contact attended or missed).
    """

    person_key: Text = person_key_col(nullable=False)
    source: Text = record_source_col()
    table_name: Text = record_table_col()
    record_ref: Text = record_ref_col()
    metric: Text = col("Metric the event counts towards (" + ", ".join(MEASURES) + ")")
    event_date: Date = col(
        "Date of the event (first bed day in the month for bed days)", nullable=False
    )
    month: Text = col("Reporting month YYYY-MM (the drop it came in; partition)")
    quantity: Integer = col(
        "Count: 1, resources despatched, or bed days in the month", nullable=False, ge=1
    )

    class Config:
        name = "events"
        metadata = {"grain": "one row per event; partitioned by reporting month"}


class Cohort(WarehouseTable):
    """The programme register joined to person keys, with baseline and programme windows (whole
    calendar months) and population membership.
    """

    register_id: Text = col("Keyed token of the register row's RegisterId (its record_ref)")
    person_key: Text = person_key_col(nullable=False)
    org_code: Text = col("Trust organisation code (OrgIDProv)")
    borough: Text = col("London borough")
    allocation_date: Date = col("Date allocated to the programme")
    engagement_date: Date = col("Date engaged (empty if never)")
    discharge_date: Date = col("Date discharged (empty while on the programme)")
    discharge_reason: Text = col("Why the person left the programme")
    engaged: Boolean = col("Engaged with the programme")
    itt: Boolean = col("In the intention-to-treat population (every allocated person)")
    per_protocol: Boolean = col("In the per-protocol population (engaged)")
    baseline_first_month: Text = col("First baseline month (YYYY-MM)")
    baseline_last_month: Text = col("Last baseline month: the month before allocation")
    baseline_months: Integer = col("Baseline months (fewer if the data start later)", ge=0)
    programme_first_month: Text = col("Month of engagement (of allocation if never engaged)")
    programme_last_month: Text = col("Month of discharge, or the last month of data")
    programme_months: Integer = col("Exposure: programme months, first and last whole", ge=0)
    linked: Boolean = col("The person has records in sources other than the register")
    linked_records: Integer = col("Records of the person outside the register")

    class Config:
        name = "cohort"
        metadata = {"grain": "one row per register entry (latest snapshot)"}


def _count_rules(measure: str) -> dict[str, Any]:
    cap = MAX_BED_DAYS if measure == "mh_bed_days" else MAX_COUNT_PER_MONTH
    return {"nullable": False, "ge": 0, "le": cap}


PersonMonthMetrics = make_table(
    "person_month_metrics",
    "The five contact metrics and six harm measures for every cohort member and every month, "
    "zeros included, and for every other person in the months they had any event (absent rows "
    "are zeros).",
    PERSON_MONTH_GRAIN,
    [
        ("person_key", "text", person_key_col(nullable=False, str_matches=PERSON_KEY_RE)),
        ("month", "text", month_col(nullable=False)),
        *(
            (m, "integer", col(d, **_count_rules(m)))
            for m, d in {**METRIC_DESCRIPTIONS, **HARM_DESCRIPTIONS}.items()
        ),
    ],
    unique=PERSON_MONTH,
)
PersonMonthCosts = make_table(
    "person_month_costs",
    "Cost of each metric per person and month (the rows of person_month_metrics), at one price "
    "year.",
    PERSON_MONTH_GRAIN,
    [
        ("person_key", "text", person_key_col(nullable=False, str_matches=PERSON_KEY_RE)),
        ("month", "text", month_col(nullable=False)),
        *(
            (f"cost_{m}", "real", col(f"Cost of {d.lower()} (GBP)", nullable=False, ge=0))
            for m, d in METRIC_DESCRIPTIONS.items()
        ),
        ("total_cost", "real", col("Sum of the five costs (GBP)", nullable=False, ge=0)),
        ("price_year", "text", col("Price year of every cost in the row (e.g. 2018/19)")),
        ("unit_cost_version", "text", col("Version of data/reference/unit_costs.csv used")),
        (
            "cost_flags",
            "text",
            col(
                "Caveats carried by the costs: unsourced_assumption:<metric>, "
                "price_index_unverified"
            ),
        ),
    ],
    unique=PERSON_MONTH,
)
COST_COLUMNS: tuple[str, ...] = tuple(f"cost_{m}" for m in METRICS)


class UnitCosts(WarehouseTable):
    """The unit costs applied: one row per metric, as found and inflated to the price year."""

    metric: Text = col("Metric priced")
    item: Text = col("What the cost is of")
    unit_cost_gbp: Real = col("Cost as published (GBP, its own price year)")
    source_price_year: Text = col("Price year of the published cost")
    source: Text = col("Where the cost comes from (or ASSUMPTION)")
    sourced: Boolean = col("False for a user-supplied assumption without a source")
    inflation_factor: Real = col("Index(price year) / index(source price year)")
    unit_cost_at_price_year: Real = col("Cost at the price year, to the penny (GBP)")
    price_year: Text = col("Price year every cost is expressed in")
    unit_cost_version: Text = col("Version of data/reference/unit_costs.csv")
    cost_flags: Text = col("Caveats (see person_month_costs)")

    class Config:
        name = "unit_costs"
        metadata = {"grain": "one row per metric"}


class ProgrammeHeadline(WarehouseTable):
    """The programme review's headline figures recomputed (a naive before/after comparison, never
    an effect estimate on its own).
    """

    population: Text = col("itt, per_protocol, itt_over_6_months or per_protocol_over_6_months")
    statistic: Text = col("Statistic name (see measures/headline.py)")
    value: Real = col("Value (GBP, months, rates per person-month or percent)")
    price_year: Text = col("Price year of the costs")
    unit_cost_version: Text = col("Version of the unit costs")

    class Config:
        name = "programme_headline"
        metadata = {"grain": "one row per population and statistic"}
