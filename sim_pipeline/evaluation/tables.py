"""The evaluation's warehouse tables, each declared once (`warehouse.model`): estimates,
balance diagnostics, trajectories and the matched pairs."""

from __future__ import annotations

from sim_pipeline.warehouse.model import Integer, Real, Text, WarehouseTable, col, shared_col

analysis_col = shared_col(
    "primary, or a sensitivity analysis: baseline_6_months, baseline_18_months, "
    "threshold_lower, threshold_higher (eligibility thresholds x0.75 / x1.25)"
)


population_col = shared_col(
    "itt (every allocated person, programme window), per_protocol (engaged: as-treated), "
    "itt_months_0_11 / itt_months_0_23 (ITT on a fixed window from allocation) or "
    "cace_months_0_11 / cace_months_0_23 (that ITT over the share engaged); the primary "
    "design's diagnostics (should hold 0): placebo_in_time_months_m12_m4 (the design "
    "with every index a year before allocation, months -12..-4) and "
    "negative_control_months_m12_m1 (community contacts in the 12 months before "
    "allocation, not matched on)"
)


class EvaluationEstimates(WarehouseTable):
    """Naive before/after and difference-in-differences estimates against the matched comparison
    cohort (95% person-level bootstrap intervals), and the primary matched design's ITT and CACE
    (95% analytic intervals).
    """

    analysis: Text = analysis_col()
    population: Text = population_col()
    outcome: Text = col(
        "total_cost, a contact metric, a harm measure (ae_self_harm, arrests, charges, "
        "s136_police_station, community_contacts, community_dna) or deaths"
    )
    method: Text = col(
        "naive_before_after, difference_in_differences (the secondary bracket) or "
        "matched_bias_corrected (the primary design: ITT and CACE on fixed windows)"
    )
    scale: Text = col(
        "relative_change (-0.30 = a 30% fall) or risk_difference (deaths in follow-up)"
    )
    estimate: Real = col("Point estimate on the row's scale")
    ci_low: Real = col(
        "Lower end of the 95% interval (bootstrap; analytic for matched_bias_corrected)"
    )
    ci_high: Real = col(
        "Upper end of the 95% interval (bootstrap; analytic for matched_bias_corrected)"
    )
    n_people: Integer = col("Programme members in the estimate")
    n_comparison: Integer = col("Comparison people in the estimate (0 for naive)")
    treated_baseline: Real = col("Members' mean per person-month, baseline")
    treated_followup: Real = col("Members' mean per person-month, follow-up")
    comparison_baseline: Real = col("Comparisons' mean per person-month, baseline")
    comparison_followup: Real = col("Comparisons' mean per person-month, follow-up")
    rtm_share: Real = col(
        "Share of the members' change the comparison cohort shows too (regression to the "
        "mean and secular change); difference-in-differences rows only"
    )
    bootstrap_failed: Integer = col(
        "Bootstrap replicates whose estimate was not finite (counted, never dropped "
        "silently; the interval is over the others); 0 for matched_bias_corrected, whose "
        "interval is analytic"
    )
    price_year: Text = col("Price year of the costs")
    unit_cost_version: Text = col("Version of the unit costs")

    class Config:
        name = "evaluation_estimates"
        metadata = {"grain": "one row per analysis, population, outcome and method"}


class EvaluationBalance(WarehouseTable):
    """Balance diagnostics: standardised mean differences of the matching covariates and baseline
    rates, programme members against the eligible pool and the matched cohort.
    """

    analysis: Text = analysis_col()
    population: Text = population_col()
    covariate: Text = col("Covariate at the (pseudo-)index month")
    treated_mean: Real = col("Programme members' mean")
    comparison_mean_before: Real = col("Eligible pool's mean (first month eligible)")
    smd_before: Real = col("Standardised mean difference before matching")
    comparison_mean_after: Real = col("Matched comparisons' mean (set-weighted)")
    smd_after: Real = col(
        "Standardised mean difference after matching (matched members vs comparisons)"
    )
    n_treated: Integer = col("Programme members")
    n_comparison_before: Integer = col("People in the eligible pool")
    n_comparison_after: Integer = col("Matched comparison people")

    class Config:
        name = "evaluation_balance"
        metadata = {"grain": "one row per analysis, population and covariate"}


class EvaluationTrajectory(WarehouseTable):
    """Mean monthly cost by month from the index date, matched members and their comparisons (itt,
    per_protocol: the difference-in-differences bracket); for the primary design's populations
    (itt_months_*) the event study: members against their bias-corrected matched counterfactual
    from 12 months before allocation (the pre-period is a placebo), per member allocated, no
    cost counted after death.
    """

    analysis: Text = analysis_col()
    population: Text = population_col()
    group: Text = col(
        "programme, comparison (DiD bracket) or counterfactual (the primary design's "
        "matched, bias-corrected counterfactual)"
    )
    months_from_index: Integer = col("Months from allocation / pseudo-index (0 = index)")
    n_people: Integer = col("People alive with data in that month")
    mean_total_cost: Real = col("Mean total cost per person in that month (GBP)")

    class Config:
        name = "evaluation_trajectory"
        metadata = {"grain": "one row per analysis, population, group and month from index"}


class EvaluationMatches(WarehouseTable):
    """Who was matched to whom (internal, never published): programme member, comparison person and
    pseudo-index month.
    """

    analysis: Text = analysis_col()
    person_key: Text = col("Programme member's person key")
    comparison_person_key: Text = col("Comparison person's person key")
    index_month: Text = col("Member's allocation month")
    pseudo_index_month: Text = col("Month the comparison stands in for allocation")
    stratum: Text = col("Exact-match stratum: sex|age band")
    distance: Real = col("Standardised distance on the matching covariates")

    class Config:
        name = "evaluation_matches"
        metadata = {"grain": "one row per analysis and matched pair"}
