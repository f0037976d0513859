"""The warehouse's public schema: every table and column with its type and meaning.

This is the single source for the data dictionary (docs/data_dictionary.md is generated from it
by `sim-pipeline dictionary` and a test keeps the file current), the column schemas shown in the
Dagster UI, and the SQL types used when tables are created.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from sim_pipeline.identity.pseudonymise import IDENTITY_COLUMNS
from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.sources import SOURCE_TABLES, SourceTable
from sim_pipeline.sources.reader import QUARANTINE_COLUMNS

FIELD_DESCRIPTIONS: dict[str, str] = {
    "OrgIDProv": "Organisation code of the submitting trust (RV5 SLaM, RPG Oxleas, RQY SWLSTG)",
    "LocalPatientId": "Trust's local patient identifier (joins MHSDS tables within a trust)",
    "NHSNumberStatus": "NHS number status indicator (01 = present and verified)",
    "Gender": "MHSDS person stated gender code",
    "EthnicCategory": "NHS ethnic category code",
    "PersDeathDate": "Month of death, where known, as the 1st of that month (the day is not kept)",
    "CareContactId": "Care contact identifier (one row per contact, sent in its month)",
    "CareContDate": "Date of the care contact",
    "CareContTime": "Time of the care contact",
    "ConsMechanismMH": (
        "Consultation mechanism: 01 face to face, 02 telephone, 04 talk type, 05 email, "
        "09 text message, 10 video"
    ),
    "AttendOrDNACode": (
        "Attended (5 on time, 6 late but seen), did not attend (3 no warning, 7 too late to be "
        "seen) or cancelled (2 by the patient, 4 by the provider)"
    ),
    "MHActLegalStatusClassPeriodId": "Legal status period identifier",
    "StartDateMHActLegalStatusClass": "Start date of the legal status period",
    "StartTimeMHActLegalStatusClass": "Start time of the legal status period",
    "EndDateMHActLegalStatusClass": "End date of the legal status period (blank while open)",
    "LegalStatusCode": "Mental Health Act legal status (01 informal, 02 s2, 03 s3, 19 s135, 20 s136)",
    "HospProvSpellID": "Hospital provider spell identifier",
    "ServiceRequestId": "Referral (service request) identifier",
    "StartDateHospProvSpell": "Spell start date",
    "DischDateHospProvSpell": "Spell discharge date (blank while open)",
    "WardStayId": "Ward stay identifier",
    "StartDateWardStay": "Ward stay start date",
    "EndDateWardStay": "Ward stay end date (blank while open; bed days use the MHS24 rule)",
    "WardType": "MHSDS ward type code",
    "HospitalBedTypeMH": "Mental-health hospital bed type code",
    "RegisterId": "Programme register row identifier",
    "Borough": "London borough",
    "AllocationDate": "Date the person was allocated to the programme",
    "EngagementDate": "Date the person engaged (blank if never)",
    "DischargeDate": "Date the person left the programme (blank while on it)",
    "DischargeReason": "Why the person left the programme (code list in sources/codes.py)",
    "IncidentNumber": "Police CAD incident number",
    "CallReceivedDateTime": "When the call was received",
    "DespatchedDateTime": "When units were despatched",
    "ArrivedDateTime": "When officers arrived (blank if they did not attend)",
    "ClosedDateTime": "When the incident was closed",
    "CallSource": "999, 101 or partner agency",
    "Grade": "Met grading: I immediate, S significant, E extended, R referred",
    "UnitsAssigned": "Police units assigned",
    "MentalHealthFlag": "Incident flagged as mental-health related (Y/N)",
    "OfficersAttended": "Officers attended the incident (Y = a police deployment)",
    "Outcome": "Incident or call outcome (code list in sources/codes.py)",
    "PersonSex": "Sex recorded by the police (M/F/U)",
    "S136Ref": "Section 136 return record identifier",
    "DetentionDateTime": "When the person was detained under s136",
    "Age": "Age recorded on the s136 return",
    "Sex": "Provider sex code",
    "PerceivedEthnicity": "Officer-perceived ethnicity",
    "Transport": "Transport to the place of safety",
    "AmbulanceRequested": "Whether an ambulance was requested (Y/N)",
    "FirstPlaceOfSafety": "First place of safety",
    "HoursInCustody": "Hours in police custody",
    "ArrestedForOffence": "Arrested for an offence (Y/N)",
    "IncidentId": "London Ambulance Service incident identifier",
    "CallDateTime": "When the 999 call was received",
    "Category": "Ambulance response category C1-C4",
    "ResourcesDespatched": "Number of ambulance resources despatched to the incident",
    "PatientAge": "Patient age recorded by the crew",
    "PatientSex": "Patient sex recorded by the crew (M/F/U)",
    "Generated_Record_ID": "ECDS record identifier",
    "Der_Provider_Code": "Acute trust organisation code",
    "Der_Provider_Site_Code": "A&E site code",
    "Arrival_Date": "Arrival date",
    "Arrival_Time": "Arrival time",
    "EC_Departure_Time_Since_Arrival": "Minutes from arrival to departure",
    "EC_Department_Type": "01 type 1 ED, 02 mono-specialty, 03 UTC/MIU, 04 walk-in",
    "EC_Arrival_Mode_SNOMED_CT": "Arrival mode (SNOMED CT)",
    "EC_Attendance_Source_SNOMED_CT": "Attendance source (SNOMED CT)",
    "EC_Chief_Complaint_SNOMED_CT": "Chief complaint (SNOMED CT)",
    "EC_Injury_Intent_SNOMED_CT": "Injury intent (SNOMED CT; 276853009 self-inflicted)",
    "Der_EC_Diagnosis_All": "Diagnoses (SNOMED CT list)",
    "Discharge_Destination_SNOMED_CT": "Discharge destination (SNOMED CT)",
    "Age_At_Arrival": "Age at arrival",
    "Ethnic_Category": "NHS ethnic category code",
    "Der_Dupe_Flag": "1 when NCDR/provider marks the record as a duplicate attendance",
}

STAGED_ADDED: dict[str, tuple[str, str]] = {
    "source": ("text", "Provider folder the row came from (e.g. slam, met_police, ae_rjz)"),
    "month": ("text", "Partition month YYYY-MM (the drop it arrived in)"),
    "record_ref": (
        "text",
        "Keyed token of the provider's record key (the table's key column): unique per record, "
        "the same for a resent record and on every run under one project key",
    ),
}
STAGED_TRAILING: dict[str, tuple[str, str]] = {
    "source_file": ("text", "Landing file, relative to the landing folder"),
    "line_number": ("integer", "Line of the row in its landing file"),
    "key_id": ("text", "Fingerprint of the pseudonymisation key that made the tokens"),
}

LEDGER: dict[str, tuple[str, str]] = {
    "source": ("text", "Provider folder"),
    "table_name": ("text", "Provider table (file stem)"),
    "month": ("text", "Month YYYY-MM"),
    "file": ("text", "Landing file, relative to the landing folder"),
    "file_sha256": ("text", "SHA-256 of the file as read"),
    "file_status": (
        "text",
        "loaded (the file was read; bad rows quarantined one by one) or rejected (the file could "
        "not be read: every data row quarantined under rejection_rule)",
    ),
    "rejection_rule": (
        "text",
        "Why a rejected file was rejected: file_empty, file_encoding, file_unparseable, "
        "missing_column, duplicate_column, file_truncated, whole_column_contract, "
        "not_regular_file, outside_landing, file_too_large (blank when loaded)",
    ),
    "rows_read": (
        "integer",
        "Non-empty physical lines after the header (one record per line; a file never opened "
        "counts 0)",
    ),
    "rows_loaded": ("integer", "Rows written to the staged table"),
    "rows_quarantined": (
        "integer",
        "Rows written to ingest_quarantine (rows_read = loaded + quarantined)",
    ),
    "identifiers_nulled": (
        "integer",
        "Identifier values (NHS number, name, birth date, postcode) that broke their rule and "
        "were nulled in loaded rows: the rows were kept (see identifier_defects)",
    ),
    "key_id": ("text", "Fingerprint of the pseudonymisation key"),
    "demo_key": ("boolean", "True when the public demo key was used (synthetic data only)"),
}
QUARANTINE: dict[str, tuple[str, str]] = {
    "source": ("text", "Provider folder"),
    "table_name": ("text", "Provider table (file stem)"),
    "month": ("text", "Month YYYY-MM"),
    "file": ("text", "Landing file, relative to the landing folder"),
    "line_number": ("integer", "Line of the rejected row in the file"),
    "column_name": (
        "text",
        "Column that broke the rule (blank for row-level rules; for a rejected file the missing "
        "or failing column(s), comma-separated)",
    ),
    "rule": (
        "text",
        "Contract rule code (e.g. date_format, nhs_number_check_digit, duplicate_row), or for "
        "every row of a rejected file the file's rule (e.g. file_encoding, missing_column)",
    ),
    "reason": (
        "text",
        "Fixed description of the rule (for a rejected file: the file and the problem); never "
        "the rejected value",
    ),
}
assert list(QUARANTINE)[4:] == QUARANTINE_COLUMNS


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class TableDoc:
    name: str
    description: str
    grain: str
    columns: tuple[Column, ...]


def _staged_type(table: SourceTable, col: str) -> str:
    if col in table.date_columns:
        return "date"
    if col in table.datetime_columns:
        return "timestamp"
    if col in table.int_columns:
        return "integer"
    return "text"


KEY_TOKEN_NOTE = (
    " - kept as a keyed token of provider and value (joins within the provider work; the value "
    "sent is not kept: it would let anyone who can search the provider's system find the row)"
)
DAY_NOTE = " - kept to the day (time of day dropped: every metric counts events by day)"
KEPT_TIMES = {
    "Arrival_Time": " - kept: A&E de-duplication matches one person's attendances by site, "
    "date and arrival time",
}


def _staged_description(table: SourceTable, col: str) -> str:
    """The column's meaning and what staging keeps of it, and why (issue 16: per column)."""
    text = FIELD_DESCRIPTIONS.get(col, col)
    if col in table.key_columns:
        return text + KEY_TOKEN_NOTE
    if col in table.datetime_columns:
        return text + DAY_NOTE
    return text + KEPT_TIMES.get(col, "")


def staged_doc(table: SourceTable) -> TableDoc:
    raw = set(table.identifiers.raw_columns())
    cols = [Column(n, t, d) for n, (t, d) in STAGED_ADDED.items()]
    cols += [
        Column(c, _staged_type(table, c), _staged_description(table, c))
        for c in table.staged_columns
    ]
    if raw or table.identifiers.sex:
        cols += [Column(n, "text", d) for n, d in IDENTITY_COLUMNS.items()]
    cols += [Column(n, t, d) for n, (t, d) in STAGED_TRAILING.items()]
    return TableDoc(
        name=table.asset_name,
        description=table.description,
        grain="one row per contract-clean landing row; partitioned by month",
        columns=tuple(cols),
    )


def _doc(name: str, description: str, grain: str, cols: dict[str, tuple[str, str]]) -> TableDoc:
    return TableDoc(name, description, grain, tuple(Column(n, t, d) for n, (t, d) in cols.items()))


RECORD_COLS: dict[str, tuple[str, str]] = {
    "source": ("text", "Provider folder (trust, police, ambulance service or A&E provider)"),
    "table_name": ("text", "Provider table (file stem)"),
    "record_ref": ("text", "Keyed token of the provider's record key (staged tables' record_ref)"),
}
LINKAGE_TABLES = [
    _doc(
        "person_index",
        "The person key of every staged record, from probabilistic linkage over encodings.",
        "one row per staged record (source, table_name, record_ref)",
        {
            **RECORD_COLS,
            "person_key": ("text", "Stable pseudonymous person key (P + 8 digits)"),
            "match_probability": (
                "real",
                "Probability of the strongest link joining the record to its person; 1.0 when "
                "joined by a shared local id or incident; empty when the record stands alone",
            ),
        },
    ),
    _doc(
        "person_key_changes",
        "Audit trail of person keys: records moved between keys by a linkage run.",
        "one row per (run, from key, to key)",
        {
            "change": (
                "text",
                "merge (the old key no longer exists) or split (the old key lives on)",
            ),
            "from_person_key": ("text", "Key the records had before the run"),
            "to_person_key": ("text", "Key the records have after the run"),
            "records_moved": ("integer", "Number of records that moved"),
            "recorded_at": ("text", "When the run recorded the change (UTC, ISO 8601)"),
            "run_id": ("text", "Dagster run that made the change"),
        },
    ),
    _doc(
        "linkage_parameters",
        "Fellegi-Sunter parameters of the latest linkage run (m, u, match weight per level).",
        "one row per comparison level",
        {
            "comparison": ("text", "Compared field (nhs_number, given_name, birth_date, ...)"),
            "level": ("text", "Agreement level (exact, dice>=0.92, day/month swapped, ...)"),
            "m_probability": ("real", "P(level | same person)"),
            "u_probability": ("real", "P(level | different people)"),
            "match_weight": ("real", "log2(m/u): evidence in bits"),
        },
    ),
    _doc(
        "linkage_threshold_curve",
        "How many scored pairs would be links at each match-probability threshold.",
        "one row per threshold",
        {
            "threshold": ("real", "Match-probability threshold"),
            "pairs_at_or_above": ("integer", "Scored profile pairs at or above it"),
            "anchored_pairs": (
                "integer",
                "Of which dates of birth agree (fully or partly) or NHS numbers match",
            ),
        },
    ),
    _doc(
        "linkage_weight_histogram",
        "Distribution of match weights of the scored pairs.",
        "one row per 2-bit weight bin",
        {
            "weight_bin": ("real", "Lower edge of the bin (bits)"),
            "pairs": ("integer", "Scored profile pairs in the bin"),
        },
    ),
    _doc(
        "linkage_link_rates",
        "Share of records linked to another source group, overall and by age band, sex and "
        "borough.",
        "one row per dimension, value and source group",
        {
            "dimension": ("text", "overall, age_band, person_sex or borough"),
            "value": ("text", "Value of the dimension (all for overall)"),
            "source_group": ("text", "mental_health, police, ambulance or ae"),
            "records": ("integer", "Records"),
            "linked": ("integer", "Records whose person has records in another source group"),
            "link_rate": ("real", "linked / records"),
        },
    ),
    _doc(
        "linkage_implausible",
        "Implausible links found in the latest person index, by rule.",
        "one row per rule",
        {
            "rule": ("text", "Rule code"),
            "description": ("text", "What the rule detects"),
            "persons": ("integer", "Persons with at least one such link"),
        },
    ),
]


_METRIC_DESC = {
    "ae_attendances": "A&E attendances (ECDS, duplicates removed)",
    "ambulance_resources": "Ambulance resources despatched",
    "mh_bed_days": "Mental-health bed days (MHS24 rule)",
    "police_deployments": "Police incidents where officers attended",
    "s136_detentions": "s136 detentions, each counted once whichever side recorded it",
    "ae_self_harm": "A&E attendances coded as self-harm (harm measure)",
    "arrests": "Arrests: CAD outcome ARREST or CHARGED, s136 ArrestedForOffence Y (harm)",
    "charges": "Arrests ending in a charge: CAD outcome CHARGED (harm measure)",
    "s136_police_station": "s136 detentions taken first to a police station (harm measure)",
    "community_contacts": "Community mental-health care contacts attended (MHS201)",
    "community_dna": "Community care contacts not attended: disengagement (harm measure)",
}
_PM_KEYS: dict[str, tuple[str, str]] = {
    "person_key": ("text", "Person key (person_index)"),
    "month": ("text", "Calendar month YYYY-MM (partition)"),
}
METRIC_TABLES = [
    _doc(
        "events",
        "Countable events: one row per A&E attendance, ambulance incident (quantity = resources "
        "sent), ward stay-month (quantity = bed days), police deployment and s136 detention, "
        "and per harm event (self-harm attendance, arrest, charge, s136 to a police station, "
        "community contact attended or missed).",
        "one row per event; partitioned by reporting month",
        {
            "person_key": ("text", "Person key (person_index)"),
            **RECORD_COLS,
            "metric": ("text", "Metric the event counts towards (" + ", ".join(_METRIC_DESC) + ")"),
            "event_date": ("date", "Date of the event (first bed day in the month for bed days)"),
            "month": ("text", "Reporting month YYYY-MM (the drop it came in; partition)"),
            "quantity": ("integer", "Count: 1, resources despatched, or bed days in the month"),
        },
    ),
    _doc(
        "cohort",
        "The programme register joined to person keys, with baseline and programme windows "
        "(whole calendar months) and population membership.",
        "one row per register entry (latest snapshot)",
        {
            "register_id": (
                "text",
                "Keyed token of the register row's RegisterId (its record_ref)",
            ),
            "person_key": ("text", "Person key (person_index)"),
            "org_code": ("text", "Trust organisation code (OrgIDProv)"),
            "borough": ("text", "London borough"),
            "allocation_date": ("date", "Date allocated to the programme"),
            "engagement_date": ("date", "Date engaged (empty if never)"),
            "discharge_date": ("date", "Date discharged (empty while on the programme)"),
            "discharge_reason": ("text", "Why the person left the programme"),
            "engaged": ("boolean", "Engaged with the programme"),
            "itt": ("boolean", "In the intention-to-treat population (every allocated person)"),
            "per_protocol": ("boolean", "In the per-protocol population (engaged)"),
            "baseline_first_month": ("text", "First baseline month (YYYY-MM)"),
            "baseline_last_month": ("text", "Last baseline month: the month before allocation"),
            "baseline_months": ("integer", "Baseline months (fewer if the data start later)"),
            "programme_first_month": (
                "text",
                "Month of engagement (of allocation if never engaged)",
            ),
            "programme_last_month": ("text", "Month of discharge, or the last month of data"),
            "programme_months": ("integer", "Exposure: programme months, first and last whole"),
            "linked": ("boolean", "The person has records in sources other than the register"),
            "linked_records": ("integer", "Records of the person outside the register"),
        },
    ),
    _doc(
        "person_month_metrics",
        "The five contact metrics and six harm measures for every cohort member and every "
        "month, zeros included, and for every other person in the months they had any event "
        "(absent rows are zeros).",
        "one row per cohort person and month (zeros included) and per other person and month with any event; partitioned by month",
        {**_PM_KEYS, **{m: ("integer", d) for m, d in _METRIC_DESC.items()}},
    ),
    _doc(
        "person_month_costs",
        "Cost of each metric per person and month (the rows of person_month_metrics), at one "
        "price year.",
        "one row per cohort person and month (zeros included) and per other person and month with any event; partitioned by month",
        {
            **_PM_KEYS,
            **{f"cost_{m}": ("real", f"Cost of {_METRIC_DESC[m].lower()} (GBP)") for m in METRICS},
            "total_cost": ("real", "Sum of the five costs (GBP)"),
            "price_year": ("text", "Price year of every cost in the row (e.g. 2018/19)"),
            "unit_cost_version": ("text", "Version of data/reference/unit_costs.csv used"),
            "cost_flags": (
                "text",
                "Caveats carried by the costs: unsourced_assumption:<metric>, "
                "price_index_unverified",
            ),
        },
    ),
    _doc(
        "unit_costs",
        "The unit costs applied: one row per metric, as found and inflated to the price year.",
        "one row per metric",
        {
            "metric": ("text", "Metric priced"),
            "item": ("text", "What the cost is of"),
            "unit_cost_gbp": ("real", "Cost as published (GBP, its own price year)"),
            "source_price_year": ("text", "Price year of the published cost"),
            "source": ("text", "Where the cost comes from (or ASSUMPTION)"),
            "sourced": ("boolean", "False for a user-supplied assumption without a source"),
            "inflation_factor": ("real", "Index(price year) / index(source price year)"),
            "unit_cost_at_price_year": ("real", "Cost at the price year, to the penny (GBP)"),
            "price_year": ("text", "Price year every cost is expressed in"),
            "unit_cost_version": ("text", "Version of data/reference/unit_costs.csv"),
            "cost_flags": ("text", "Caveats (see person_month_costs)"),
        },
    ),
    _doc(
        "programme_headline",
        "The programme review's headline figures recomputed (a naive before/after comparison, "
        "never an effect estimate on its own).",
        "one row per population and statistic",
        {
            "population": (
                "text",
                "itt, per_protocol, itt_over_6_months or per_protocol_over_6_months",
            ),
            "statistic": ("text", "Statistic name (see measures/headline.py)"),
            "value": ("real", "Value (GBP, months, rates per person-month or percent)"),
            "price_year": ("text", "Price year of the costs"),
            "unit_cost_version": ("text", "Version of the unit costs"),
        },
    ),
]


_EVAL_KEYS: dict[str, tuple[str, str]] = {
    "analysis": (
        "text",
        "primary, or a sensitivity analysis: baseline_6_months, baseline_18_months, "
        "threshold_lower, threshold_higher (eligibility thresholds x0.75 / x1.25)",
    ),
    "population": (
        "text",
        "itt (every allocated person, programme window), per_protocol (engaged: as-treated), "
        "itt_months_0_11 / itt_months_0_23 (ITT on a fixed window from allocation) or "
        "cace_months_0_11 / cace_months_0_23 (that ITT over the share engaged); the primary "
        "design's diagnostics (should hold 0): placebo_in_time_months_m12_m4 (the design "
        "with every index a year before allocation, months -12..-4) and "
        "negative_control_months_m12_m1 (community contacts in the 12 months before "
        "allocation, not matched on)",
    ),
}
EVALUATION_TABLES = [
    _doc(
        "evaluation_estimates",
        "Naive before/after and difference-in-differences estimates against the matched "
        "comparison cohort (95% person-level bootstrap intervals), and the primary matched "
        "design's ITT and CACE (95% analytic intervals).",
        "one row per analysis, population, outcome and method",
        {
            **_EVAL_KEYS,
            "outcome": (
                "text",
                "total_cost, a contact metric, a harm measure (ae_self_harm, arrests, charges, "
                "s136_police_station, community_contacts, community_dna) or deaths",
            ),
            "method": (
                "text",
                "naive_before_after, difference_in_differences (the secondary bracket) or "
                "matched_bias_corrected (the primary design: ITT and CACE on fixed windows)",
            ),
            "scale": (
                "text",
                "relative_change (-0.30 = a 30% fall) or risk_difference (deaths in follow-up)",
            ),
            "estimate": ("real", "Point estimate on the row's scale"),
            "ci_low": (
                "real",
                "Lower end of the 95% interval (bootstrap; analytic for matched_bias_corrected)",
            ),
            "ci_high": (
                "real",
                "Upper end of the 95% interval (bootstrap; analytic for matched_bias_corrected)",
            ),
            "n_people": ("integer", "Programme members in the estimate"),
            "n_comparison": ("integer", "Comparison people in the estimate (0 for naive)"),
            "treated_baseline": ("real", "Members' mean per person-month, baseline"),
            "treated_followup": ("real", "Members' mean per person-month, follow-up"),
            "comparison_baseline": ("real", "Comparisons' mean per person-month, baseline"),
            "comparison_followup": ("real", "Comparisons' mean per person-month, follow-up"),
            "rtm_share": (
                "real",
                "Share of the members' change the comparison cohort shows too (regression to "
                "the mean and secular change); difference-in-differences rows only",
            ),
            "bootstrap_failed": (
                "integer",
                "Bootstrap replicates whose estimate was not finite (counted, never dropped "
                "silently; the interval is over the others); 0 for matched_bias_corrected, "
                "whose interval is analytic",
            ),
            "price_year": ("text", "Price year of the costs"),
            "unit_cost_version": ("text", "Version of the unit costs"),
        },
    ),
    _doc(
        "evaluation_balance",
        "Balance diagnostics: standardised mean differences of the matching covariates and "
        "baseline rates, programme members against the eligible pool and the matched cohort.",
        "one row per analysis, population and covariate",
        {
            **_EVAL_KEYS,
            "covariate": ("text", "Covariate at the (pseudo-)index month"),
            "treated_mean": ("real", "Programme members' mean"),
            "comparison_mean_before": ("real", "Eligible pool's mean (first month eligible)"),
            "smd_before": ("real", "Standardised mean difference before matching"),
            "comparison_mean_after": ("real", "Matched comparisons' mean (set-weighted)"),
            "smd_after": (
                "real",
                "Standardised mean difference after matching (matched members vs comparisons)",
            ),
            "n_treated": ("integer", "Programme members"),
            "n_comparison_before": ("integer", "People in the eligible pool"),
            "n_comparison_after": ("integer", "Matched comparison people"),
        },
    ),
    _doc(
        "evaluation_trajectory",
        "Mean monthly cost by month from the index date, matched members and their comparisons "
        "(itt, per_protocol: the difference-in-differences bracket); for the primary design's "
        "populations (itt_months_*) the event study: members against their bias-corrected "
        "matched counterfactual from 12 months before allocation (the pre-period is a placebo), "
        "per member allocated, no cost counted after death.",
        "one row per analysis, population, group and month from index",
        {
            **_EVAL_KEYS,
            "group": (
                "text",
                "programme, comparison (DiD bracket) or counterfactual (the primary design's "
                "matched, bias-corrected counterfactual)",
            ),
            "months_from_index": ("integer", "Months from allocation / pseudo-index (0 = index)"),
            "n_people": ("integer", "People alive with data in that month"),
            "mean_total_cost": ("real", "Mean total cost per person in that month (GBP)"),
        },
    ),
    _doc(
        "evaluation_matches",
        "Who was matched to whom (internal, never published): programme member, comparison "
        "person and pseudo-index month.",
        "one row per analysis and matched pair",
        {
            "analysis": _EVAL_KEYS["analysis"],
            "person_key": ("text", "Programme member's person key"),
            "comparison_person_key": ("text", "Comparison person's person key"),
            "index_month": ("text", "Member's allocation month"),
            "pseudo_index_month": ("text", "Month the comparison stands in for allocation"),
            "stratum": ("text", "Exact-match stratum: sex|age band"),
            "distance": ("real", "Standardised distance on the matching covariates"),
        },
    ),
]


_DROP_KEYS: dict[str, tuple[str, str]] = {
    "source": ("text", "Provider folder"),
    "table_name": ("text", "Provider table (file stem)"),
    "month": ("text", "Month YYYY-MM the drop is for"),
}
COVERAGE_TABLES = [
    _doc(
        "drop_coverage",
        "Coverage and timeliness of provider drops: expected, received, late, missing, "
        "resubmitted, and volume anomalies (quality/coverage.py; the deadline and volume rule "
        "are configurable assumptions).",
        "one row per expected drop (source, table_name, month), plus one per landing file no "
        "contract expects",
        {
            **_DROP_KEYS,
            "file": ("text", "Landing file, relative to the landing folder"),
            "expected": ("boolean", "A contract expects this drop (false: an unexpected file)"),
            "received": (
                "boolean",
                "The file is in the landing folder or the ingest ledger has ingested it",
            ),
            "arrived_at": (
                "text",
                "Arrival (UTC, ISO 8601): modification time of the first version seen of the "
                "landing file; empty when not received or unknown",
            ),
            "due_at": (
                "text",
                "Deadline (UTC, ISO 8601); default 00:00 Europe/London on day 20 of the month "
                "after",
            ),
            "late": ("boolean", "Arrived after due_at (empty when not received)"),
            "days_late": ("real", "Days after due_at it arrived (0 when on time)"),
            "versions": ("integer", "Distinct contents (SHA-256) seen of the file"),
            "resubmitted": ("boolean", "More than one version seen"),
            "current_version_ingested": (
                "boolean",
                "The ingest ledger holds the file's current contents",
            ),
            "rows_read": ("integer", "Data rows read at ingest (ingest_ledger)"),
            "trailing_median_rows": (
                "real",
                "Median rows_read of the previous 6 received months of the provider table "
                "(needs 3)",
            ),
            "volume_ratio": (
                "real",
                "rows_read / trailing_median_rows, where judged (median at least 30 rows)",
            ),
            "volume_anomaly": ("text", "low (ratio < 0.5), high (> 2), empty otherwise"),
            "status": (
                "text",
                "received (on time), late, missing (not received, past due), not_yet_due, "
                "unexpected",
            ),
        },
    ),
    _doc(
        "landing_file_versions",
        "Every distinct version (content) of every landing file ever seen, from the landing "
        "folder and the ingest ledger; appended by drop_coverage, never rewritten.",
        "one row per landing file and SHA-256",
        {
            "file": ("text", "Landing file, relative to the landing folder"),
            **_DROP_KEYS,
            "file_sha256": ("text", "SHA-256 of the version's contents"),
            "first_seen_at": ("text", "When drop_coverage first recorded it (UTC, ISO 8601)"),
            "modified_at": (
                "text",
                "The landing file's modification time when first seen (UTC, ISO 8601); empty "
                "for a version known only from the ledger",
            ),
            "rows": ("integer", "Data rows read at ingest of this version, when known"),
        },
    ),
]


QUALITY_TABLES = [
    _doc(
        "audit_trail",
        "Per run and stage: the code version, the pseudonymisation key fingerprint (never the "
        "key), the unit-cost version and the rows in and out. Written in the same transaction "
        "as the stage's own output, or alone when a blocking check stopped the write. Appended "
        "run after run: an auditor can trace any table back to the run and commit that made it.",
        "one row per Dagster run and stage (asset)",
        {
            "run_id": ("text", "Dagster run id"),
            "stage": ("text", "Asset that wrote (or refused to write) its output"),
            "months": ("text", "Partitions written: YYYY-MM, YYYY-MM..YYYY-MM, or all"),
            "recorded_at": ("text", "When (UTC, ISO 8601)"),
            "status": (
                "text",
                "written, or not_written when a check stopped the write before it happened",
            ),
            "code_version": (
                "text",
                "Git commit of the code (+dirty when tracked files differ), or SIM_CODE_VERSION",
            ),
            "key_fingerprint": ("text", "Fingerprint of the pseudonymisation key in use"),
            "unit_cost_version": ("text", "Unit-cost version used (costed stages only)"),
            "rows_in": ("integer", "Rows the stage read (landing rows for ingest)"),
            "rows_out": ("integer", "Rows the stage wrote to its table(s)"),
            "rows_rejected": ("integer", "Rows set aside with a reason (quarantine for ingest)"),
            "note": ("text", "What rows_in and rows_out count, where that is not obvious"),
        },
    ),
    _doc(
        "quality_results",
        "Great Expectations results: every expectation of every suite run as a Dagster asset "
        "check (staged tables, their landing files, person-month tables), with counts only "
        "(never a data value) and the Data Docs page that shows it.",
        "one row per expectation per suite and batch (the latest validation of that batch)",
        {
            "suite": ("text", "Suite name: <table>.table (its rows) or <table>.drops (its files)"),
            "asset": ("text", "Dagster asset / warehouse table the suite describes"),
            "batch": ("text", "Months validated: YYYY-MM or YYYY-MM..YYYY-MM"),
            "run_id": ("text", "Dagster run that validated the batch"),
            "validated_at": ("text", "When (UTC, ISO 8601)"),
            "expectation": ("text", "Great Expectations expectation type"),
            "column_names": ("text", "Column(s) the expectation reads (blank: whole table)"),
            "category": (
                "text",
                "schema, row_count, completeness, code_list, format, uniqueness or range",
            ),
            "success": ("boolean", "The expectation held"),
            "element_count": ("integer", "Rows examined (column expectations)"),
            "unexpected_count": ("integer", "Rows that broke the expectation"),
            "unexpected_percent": ("real", "Share of rows that broke it (%)"),
            "observed_value": (
                "text",
                "Table-level observation only (row count, missing/unexpected columns) or the "
                "error raised; never a column's values",
            ),
            "note": ("text", "What the expectation means, for an auditor"),
            "data_docs_page": ("text", "Data Docs page of this validation (local file)"),
        },
    ),
]


# What legitimately differs when the same data is run again: the run log itself, and the
# columns that record which run and when. Everything else must be identical.
RUN_LOG_TABLES = ("audit_trail",)
RUN_SPECIFIC_COLUMNS = ("run_id", "recorded_at", "validated_at", "data_docs_page")


def all_tables() -> list[TableDoc]:
    return [
        *(staged_doc(t) for t in SOURCE_TABLES),
        _doc(
            "ingest_ledger",
            "Row accounting per landing file",
            "one row per landing file read",
            LEDGER,
        ),
        _doc(
            "ingest_quarantine",
            "Rows rejected by a contract rule, with the rule and reason "
            "(never the rejected values)",
            "one row per rejected row and rule",
            QUARANTINE,
        ),
        *COVERAGE_TABLES,
        *LINKAGE_TABLES,
        *METRIC_TABLES,
        *EVALUATION_TABLES,
        *QUALITY_TABLES,
    ]


def table_doc(name: str) -> TableDoc:
    return next(d for d in all_tables() if d.name == name)


_SQL = {
    "date": sa.Date(),
    "timestamp": sa.DateTime(),
    "integer": sa.BigInteger(),
    "text": sa.Text(),
    "boolean": sa.Boolean(),
    "real": sa.Float(),
}


def sql_types(name: str) -> dict[str, sa.types.TypeEngine]:
    return {c.name: _SQL[c.type] for c in table_doc(name).columns}


def render_markdown() -> str:
    out = [
        "# Data dictionary",
        "",
        "Generated from `sim_pipeline/warehouse/dictionary.py` by `sim-pipeline dictionary`; a test",
        "fails when this file is out of date. Provider fields keep their national names (MHSDS,",
        "ECDS); columns the pipeline adds are snake_case. No table holds a name, NHS number, date",
        "of birth, full postcode or address: those become keyed tokens at ingest.",
        "",
    ]
    for doc in all_tables():
        out += [
            f"## `{doc.name}`",
            "",
            f"{doc.description} Grain: {doc.grain}.",
            "",
            "| column | type | description |",
            "|---|---|---|",
        ]
        out += [f"| `{c.name}` | {c.type} | {c.description} |" for c in doc.columns]
        out.append("")
    return "\n".join(out)
