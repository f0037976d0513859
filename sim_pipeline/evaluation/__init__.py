"""The evaluation of the programme against a comparison cohort: the primary matched design
(`matched_design`, with `prognostic_score`, `design_estimates` and `design_diagnostics`), the
comparison cohort, DiD and balance tables (`comparison`, with `panel`, `demographics`,
`matching`, `did_estimates`, `balance` and `trajectory`), the tables' declarations (`tables`)
and the validation of both on synthetic worlds with known truth (`validation`)."""
