"""The identity stage's warehouse tables, each declared once (`warehouse.model`): the person
index and its audit trail, the linkage model's parameters and diagnostics, and the linkage
quality tables."""

from __future__ import annotations

from sim_pipeline.warehouse.model import Integer, Real, Text, WarehouseTable, col, shared_col

record_source_col = shared_col("Provider folder (trust, police, ambulance service or A&E provider)")


record_table_col = shared_col("Provider table (file stem)")


record_ref_col = shared_col("Keyed token of the provider's record key (staged tables' record_ref)")


class PersonIndex(WarehouseTable):
    """The person key of every staged record, from probabilistic linkage over encodings."""

    source: Text = record_source_col()
    table_name: Text = record_table_col()
    record_ref: Text = record_ref_col()
    person_key: Text = col("Stable pseudonymous person key (P + 8 digits)")
    match_probability: Real = col(
        "Probability of the strongest link joining the record to its person; 1.0 when "
        "joined by a shared local id or incident; empty when the record stands alone"
    )

    class Config:
        name = "person_index"
        metadata = {"grain": "one row per staged record (source, table_name, record_ref)"}


class PersonDimension(WarehouseTable):
    """Each person's demographics, derived once from their records (linkage writes it; every
    later stage joins it rather than re-reading staged rows): sex and date of death per
    person, age band per month (a person's band changes as they age)."""

    person_key: Text = col("Stable pseudonymous person key (person_index)", nullable=False)
    month: Text = col("Month with at least one record of the person (YYYY-MM)", nullable=False)
    sex: Text = col(
        "The person's most frequent recorded sex, M or F (ties: the first in sort "
        "order; U and empty left out); empty when none is recorded"
    )
    age_band: Text = col(
        "The most frequent age band among the person's records of that month (ties: the first "
        "in sort order); empty when none of them records an age"
    )
    death_month: Text = col(
        "Month of the person's earliest recorded date of death (MHSDS MPI); empty if none"
    )

    class Config:
        name = "person_dimension"
        metadata = {"grain": "one row per person and month with a record (person_key, month)"}
        unique = ["person_key", "month"]


class PersonKeyChanges(WarehouseTable):
    """Audit trail of person keys: records moved between keys by a linkage run."""

    change: Text = col("merge (the old key no longer exists) or split (the old key lives on)")
    from_person_key: Text = col("Key the records had before the run")
    to_person_key: Text = col("Key the records have after the run")
    records_moved: Integer = col("Number of records that moved")
    recorded_at: Text = col("When the run recorded the change (UTC, ISO 8601)")
    run_id: Text = col("Dagster run that made the change")

    class Config:
        name = "person_key_changes"
        metadata = {"grain": "one row per (run, from key, to key)"}


class LinkageParameters(WarehouseTable):
    """Fellegi-Sunter parameters of the latest linkage run (m, u, match weight per level)."""

    comparison: Text = col("Compared field (nhs_number, given_name, birth_date, ...)")
    level: Text = col("Agreement level (exact, dice>=0.92, day/month swapped, ...)")
    m_probability: Real = col("P(level | same person)")
    u_probability: Real = col("P(level | different people)")
    match_weight: Real = col("log2(m/u): evidence in bits")

    class Config:
        name = "linkage_parameters"
        metadata = {"grain": "one row per comparison level"}


class LinkageModel(WarehouseTable):
    """The linkage model the latest full relink trained, as Splink saves it: what an
    incremental run scores new records with, and what an auditor can load into Splink."""

    run_id: Text = col("Dagster run of the full relink that trained the model")
    recorded_at: Text = col("When it was trained (UTC, ISO 8601)")
    key_fingerprint: Text = col(
        "Fingerprint of the pseudonymisation key the encodings were made under (the model "
        "scores only encodings made under the same key)"
    )
    records: Integer = col("Staged records the relink linked")
    profiles: Integer = col("Distinct profiles it scored")
    model_json: Text = col(
        "Splink's JSON of the model: comparisons and their SQL, m and u per level, the "
        "prior and blocking rules; parameters only, no record's values"
    )

    class Config:
        name = "linkage_model"
        metadata = {"grain": "one row: the model of the latest full relink"}


class LinkageThresholdCurve(WarehouseTable):
    """How many scored pairs would be links at each match-probability threshold."""

    threshold: Real = col("Match-probability threshold")
    pairs_at_or_above: Integer = col("Scored profile pairs at or above it")
    anchored_pairs: Integer = col(
        "Of which dates of birth agree (fully or partly) or NHS numbers match"
    )

    class Config:
        name = "linkage_threshold_curve"
        metadata = {"grain": "one row per threshold"}


class LinkageWeightHistogram(WarehouseTable):
    """Distribution of match weights of the scored pairs."""

    weight_bin: Real = col("Lower edge of the bin (bits)")
    pairs: Integer = col("Scored profile pairs in the bin")

    class Config:
        name = "linkage_weight_histogram"
        metadata = {"grain": "one row per 2-bit weight bin"}


class LinkageLinkRates(WarehouseTable):
    """Share of records linked to another source group, overall and by age band, sex and borough."""

    dimension: Text = col("overall, age_band, person_sex or borough")
    value: Text = col("Value of the dimension (all for overall)")
    source_group: Text = col("mental_health, police, ambulance or ae")
    records: Integer = col("Records")
    linked: Integer = col("Records whose person has records in another source group")
    link_rate: Real = col("linked / records")

    class Config:
        name = "linkage_link_rates"
        metadata = {"grain": "one row per dimension, value and source group"}


class LinkageImplausible(WarehouseTable):
    """Implausible links found in the latest person index, by rule."""

    rule: Text = col("Rule code")
    description: Text = col("What the rule detects")
    persons: Integer = col("Persons with at least one such link")

    class Config:
        name = "linkage_implausible"
        metadata = {"grain": "one row per rule"}
