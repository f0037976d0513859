"""Ingest: staging a table-month (read, validate, pseudonymise, ledger rows; `staging`) and the
whole-landing accounting (`ledger`). Provider contracts live in `sim_pipeline.sources`."""
