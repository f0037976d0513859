"""Measures: events, cohort, person-month metrics, costs, headline."""
