"""The evaluation of the programme against a comparison cohort: the primary matched design
(`matched_design`), the comparison cohort, DiD and balance tables (`comparison`) and the
validation of both on synthetic worlds with known truth (`validation`)."""
