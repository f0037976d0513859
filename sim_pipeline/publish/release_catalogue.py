"""The release's catalogue: the tables it is built from and the files it holds (with what each
says), the order its rows are published in (analyses, populations, methods, groups, use and harm
outcomes) and the fixed text it carries (the naive and suppression notes, the caveats, the
statistics withheld as individual-level values). Data only: the tables are built by
`publish.release` and its table modules."""

from __future__ import annotations

from sim_pipeline.evaluation import design_diagnostics, design_estimates, matched_design
from sim_pipeline.measures.headline import HEADLINE_POPULATIONS
from sim_pipeline.measures.metrics import HARM_MEASURES

PRIMARY = "primary"
ANALYSES = (
    "primary",
    "baseline_6_months",
    "baseline_18_months",
    "threshold_lower",
    "threshold_higher",
)
RELEASE_POPULATIONS = (
    *HEADLINE_POPULATIONS,
    *(f(w) for w in matched_design.WINDOWS for f in
      (matched_design.itt_population, matched_design.cace_population)),
    *design_diagnostics.DIAGNOSTIC_POPULATIONS,
)  # fmt: skip
METHODS = ("naive_before_after", "difference_in_differences", design_estimates.METHOD)
GROUPS = ("programme", "comparison", design_diagnostics.COUNTERFACTUAL_GROUP)
USE_OUTCOMES = (
    "total_cost",
    "ae_attendances",
    "ambulance_resources",
    "mh_bed_days",
    "police_deployments",
    "s136_detentions",
)
HARM_OUTCOMES = (*HARM_MEASURES, "deaths")
WITHHELD_STATISTICS = {
    "largest_individual_fall_gbp": "the largest individual monthly cost fall is one person's value",
    "min_months": "the shortest stay on the programme is one person's value",
    "max_months": "the longest stay on the programme is one person's value",
}
RELEASE_INPUTS = (
    "evaluation_estimates",
    "evaluation_balance",
    "evaluation_trajectory",
    "programme_headline",
    "linkage_link_rates",
    "linkage_implausible",
    "unit_costs",
)
RELEASE_FILES = {
    "evaluation_estimates.csv": "primary analysis, every outcome: naive before/after beside "
    "difference-in-differences against the matched comparison group, with 95% CIs",
    "evaluation_sensitivity.csv": "total cost under every analysis (baseline length, "
    "eligibility threshold) for both methods",
    "evaluation_balance.csv": "covariate balance of programme and comparison people before and "
    "after matching (standardised mean differences)",
    "evaluation_trajectory.csv": "mean cost per person-month by month from the index date, "
    "programme and comparison groups",
    "headline.csv": "the programme review's headline recomputed: NAIVE before/after of people "
    "selected at their peak of use, not an effect estimate",
    "harms.csv": "balancing (harm) outcomes of the primary analysis",
    "linkage_quality.csv": "share of records linked to another source group, overall and by age "
    "band, sex and borough",
    "linkage_implausible.csv": "people with implausible links, by rule",
    "unit_costs.csv": "the unit costs applied, their sources and price years, and their caveats",
}
README_NAME = "README.txt"
NAIVE_NOTE = "naive before/after, no comparison group: includes regression to the mean"
SUPPRESSED_NOTE = "* = based on 1-7 people, suppressed"
CAVEATS = (
    "The headline (headline.csv) is a naive before/after comparison of people selected at their "
    "peak of use: their use would have fallen anyway (regression to the mean). Read it beside "
    "the difference-in-differences estimates, never alone.",
    "Comparison people never allocated to the programme are given a pseudo-index date (a month "
    "in which they met the same eligibility rule) and matched on their history before it; "
    "unmeasured differences can remain (see evaluation_balance.csv).",
    "Costs are unit costs times counted contacts at one price year; they are not the "
    "programme's own costs and not cash savings.",
    "Counts are rounded to the nearest 5, so totals may not add up.",
)
