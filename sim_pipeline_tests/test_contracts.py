"""Each contract rule with good and bad rows, and the file-level failures."""

from pathlib import Path

import pandas as pd
import pytest

from sim_pipeline.identity import Tokeniser
from sim_pipeline.ingest.staging import stage_month
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES
from sim_pipeline.sources.reader import DropFileError, read_drop
from sim_pipeline.sources.validation import validate_drop
from sim_pipeline_tests.samples import GOOD, IDENTIFYING_VALUES, csv_text, ref_token, write_drop

TOK = Tokeniser(b"k" * 32)
MONTH = "2019-03"


def _validate(asset: str, rows: list[dict[str, str]], tmp_path: Path):
    table = BY_ASSET[asset]
    path = tmp_path / "f.csv"
    path.write_text(csv_text(table, rows))
    raw = read_drop(path, table, "x/2019-03/f.csv")
    return validate_drop(raw.frame, table, "x/2019-03/f.csv")


@pytest.mark.parametrize("table", SOURCE_TABLES, ids=lambda t: t.asset_name)
def test_good_row_passes(table, tmp_path):
    good, quarantine = _validate(table.asset_name, [GOOD[table.asset_name]], tmp_path)
    assert len(good) == 1 and quarantine.empty


BAD = [
    # (asset, column, bad value, expected rule)
    ("staged_mhs001mpi", "Gender", "7", "code_list"),
    ("staged_mhs001mpi", "OrgIDProv", "XXX", "code_list"),
    ("staged_mhs001mpi", "LocalPatientId", "bad id!", "format"),
    ("staged_mhs201_care_contact", "CareContDate", "2019-02-30", "date_format"),
    ("staged_mhs201_care_contact", "CareContDate", "1899-12-31", "date_out_of_range"),
    ("staged_mhs201_care_contact", "CareContactId", "CC 1; DROP", "format"),
    ("staged_mhs201_care_contact", "CareContDate", "", "required"),
    ("staged_mhs201_care_contact", "CareContTime", "9am", "time_format"),
    ("staged_mhs201_care_contact", "ConsMechanismMH", "03", "code_list"),
    ("staged_mhs201_care_contact", "AttendOrDNACode", "1", "code_list"),
    ("staged_mhs201_care_contact", "LocalPatientId", "bad id!", "format"),
    ("staged_mhs401_mh_act_period", "LegalStatusCode", "21", "code_list"),
    ("staged_mhs401_mh_act_period", "StartTimeMHActLegalStatusClass", "25:00", "time_format"),
    (
        "staged_mhs401_mh_act_period",
        "EndDateMHActLegalStatusClass",
        "2019-03-01",
        "end_not_before_start",
    ),
    (
        "staged_mhs501_hosp_prov_spell",
        "DischDateHospProvSpell",
        "2019-02-01",
        "end_not_before_start",
    ),
    ("staged_mhs502_ward_stay", "WardType", "99", "code_list"),
    ("staged_mhs502_ward_stay", "EndDateWardStay", "2019-01-01", "end_not_before_start"),
    ("staged_programme_register", "DischargeDate", "2019-01-01", "discharge_reason_with_date"),
    ("staged_programme_register", "EngagementDate", "2017-01-01", "dates_in_order"),
    ("staged_programme_register", "Borough", "Atlantis", "code_list"),
    ("staged_police_cad_incidents", "CallReceivedDateTime", "2019-03-02", "datetime_format"),
    ("staged_police_cad_incidents", "ArrivedDateTime", "", "attended_needs_arrival"),
    ("staged_police_cad_incidents", "UnitsAssigned", "-1", "whole_number"),
    ("staged_police_cad_incidents", "IncidentNumber", "INC1", "format"),
    ("staged_police_s136_return", "FirstPlaceOfSafety", "pub", "code_list"),
    ("staged_ambulance_incidents", "Category", "C5", "code_list"),
    ("staged_ambulance_incidents", "ResourcesDespatched", "0", "face_to_face_needs_resource"),
    ("staged_ecds", "EC_Arrival_Mode_SNOMED_CT", "123", "code_list"),
    ("staged_ecds", "Arrival_Time", "3pm", "time_format"),
    ("staged_ecds", "Der_Dupe_Flag", "2", "code_list"),
    # free text is not read past the door: SNOMED CT codes (Verhoeff check digit) and code lists
    ("staged_ecds", "EC_Attendance_Source_SNOMED_CT", "Aisha Okafor", "snomed_ct_code"),
    ("staged_ecds", "Discharge_Destination_SNOMED_CT", "9990000018", "snomed_ct_code"),
    ("staged_ecds", "EC_Chief_Complaint_SNOMED_CT", "272022008", "snomed_ct_code"),
    ("staged_ecds", "EC_Injury_Intent_SNOMED_CT", "2720220٠9", "snomed_ct_code"),
    (
        "staged_ecds",
        "Der_EC_Diagnosis_All",
        "69322001,Aisha Okafor SE15 4QT",
        "snomed_ct_code_list",
    ),
    ("staged_ecds", "Der_EC_Diagnosis_All", "69322001, 9990000018", "snomed_ct_code_list"),
    ("staged_police_s136_return", "PerceivedEthnicity", "Aisha Okafor", "code_list"),
    ("staged_programme_register", "RegisterId", "REG 1 Aisha", "format"),
]

# An identifier that breaks its rule degrades the identifier, not the event: nulled, flagged.
IDENTIFIER_BAD = [
    ("staged_mhs001mpi", "NHSNumber", "9990000019", "nhs_number_check_digit"),
    ("staged_mhs001mpi", "NHSNumber", "999000001", "nhs_number_check_digit"),
    ("staged_mhs001mpi", "NHSNumber", "٩٩٩٠٠٠٠٠١٨", "nhs_number_check_digit"),  # not ASCII
    ("staged_mhs001mpi", "PersonBirthDate", "1988-02-30", "date_format"),
    ("staged_mhs001mpi", "PersonBirthDate", "09/04/1988", "date_format"),
    ("staged_mhs001mpi", "PersonBirthDate", "", "required"),
    ("staged_mhs001mpi", "PersonBirthDate", "1850-01-01", "date_out_of_range"),
    ("staged_mhs001mpi", "Postcode", "SE15", "postcode_format"),
    ("staged_mhs001mpi", "PersonGivenName", "9990000018", "name_format"),
    ("staged_police_cad_incidents", "PersonFamilyName", "Okafor SE15 4QT", "name_format"),
    ("staged_ambulance_incidents", "NHSNumber", "1234567890", "nhs_number_check_digit"),
    ("staged_ecds", "Postcode_Usual_Address", "NOT A POSTCODE", "postcode_format"),
    ("staged_police_s136_return", "Age", "thirty", "whole_number"),
]


@pytest.mark.parametrize("asset, column, value, rule", BAD)
def test_bad_row_is_quarantined_with_its_rule(asset, column, value, rule, tmp_path):
    bad = dict(GOOD[asset], **{column: value})
    good, quarantine = _validate(asset, [GOOD[asset], bad], tmp_path)
    assert len(good) == 1  # the good row survives
    assert quarantine["line_number"].unique().tolist() == [3]  # header is line 1
    assert rule in quarantine["rule"].tolist()
    assert quarantine["reason"].str.len().min() > 5
    # the reason never carries the rejected value
    if value:
        assert not quarantine["reason"].str.contains(value, regex=False).any()


@pytest.mark.parametrize("asset, column, value, rule", IDENTIFIER_BAD)
def test_bad_identifier_is_nulled_and_flagged_and_the_row_kept(
    asset, column, value, rule, tmp_path
):
    key = BY_ASSET[asset].record_ref
    other_key = GOOD[asset][key][:-1] + ("2" if GOOD[asset][key][-1] != "2" else "3")
    bad = dict(GOOD[asset], **{column: value, key: other_key})
    good, quarantine = _validate(asset, [GOOD[asset], bad], tmp_path)
    assert quarantine.empty and len(good) == 2  # the event stays
    assert pd.isna(good.loc[3, column])  # header is line 1: the bad row is line 3
    assert good.loc[3, "identifier_defects"] == f"{column}:{rule}"
    assert pd.isna(good.loc[2, "identifier_defects"])
    assert good.loc[2, column] == GOOD[asset][column]


def test_bad_identifiers_are_counted_in_the_ledger_and_linked_on_the_rest(tmp_path):
    asset = "staged_mhs001mpi"
    bad = dict(GOOD[asset], LocalPatientId="SLAM-P0000002", NHSNumber="9990000019", Postcode="X")
    write_drop(tmp_path, asset, MONTH, [GOOD[asset], bad])
    sm = stage_month(tmp_path, BY_ASSET[asset], MONTH, TOK)
    led = sm.ledger.iloc[0]
    assert (led.rows_read, led.rows_loaded, led.rows_quarantined) == (2, 2, 0)
    assert led.identifiers_nulled == 2
    row = sm.staged.set_index("record_ref").loc[ref_token(TOK, "slam", "SLAM-P0000002")]
    assert pd.isna(row.nhs_number_token) and pd.isna(row.postcode_unit_token)
    assert row.identifier_defects == "NHSNumber:nhs_number_check_digit,Postcode:postcode_format"
    # still linkable on the rest: same name and birth-date tokens as the clean row
    clean = sm.staged.set_index("record_ref").loc[ref_token(TOK, "slam", "SLAM-P0000001")]
    assert row.family_name_bf == clean.family_name_bf
    assert row.birth_date_token == clean.birth_date_token


def test_duplicates_are_quarantined(tmp_path):
    asset = "staged_ecds"
    same_key = dict(GOOD[asset], Arrival_Time="04:00:00")
    good, quarantine = _validate(asset, [GOOD[asset], GOOD[asset], same_key], tmp_path)
    assert len(good) == 1
    assert quarantine.set_index("line_number")["rule"].to_dict() == {
        3: "duplicate_row",
        4: "duplicate_record_ref",
    }


def test_wrong_field_count_is_quarantined_not_lost(tmp_path):
    table = BY_ASSET["staged_ecds"]
    text = csv_text(table, [GOOD["staged_ecds"]]) + "1,2,3\n"
    (tmp_path / "ae_rjz" / MONTH).mkdir(parents=True)
    (tmp_path / "ae_rjz" / MONTH / "ecds.csv").write_text(text)
    sm = stage_month(tmp_path, table, MONTH, TOK)
    led = sm.ledger.set_index("source").loc["ae_rjz"]
    assert (led.rows_read, led.rows_loaded, led.rows_quarantined) == (2, 1, 1)
    assert sm.quarantine["rule"].tolist() == ["field_count"]


@pytest.mark.parametrize(
    "content, problem, rule",
    [
        (b"", "empty", "file_empty"),
        (
            b"Generated_Record_ID,Der_Provider_Code\n1,RJZ\n",
            "missing required column",
            "missing_column",
        ),
        (
            "\ufeffGenerated_Record_ID,caf\u00e9\n".encode("utf-16"),
            "not valid UTF-8",
            "file_encoding",
        ),
        (None, "truncated", "file_truncated"),
    ],
)
def test_unreadable_files_raise_naming_file_and_problem(content, problem, rule, tmp_path):
    table = BY_ASSET["staged_ecds"]
    if content is None:
        full = csv_text(table, [GOOD["staged_ecds"]] * 1)
        content = (full + full.splitlines()[1][:40]).encode()  # cut mid-row, no newline
    path = tmp_path / "ecds.csv"
    path.write_bytes(content)
    with pytest.raises(DropFileError) as info:
        read_drop(path, table, "ae_rjz/2019-03/ecds.csv")
    assert "ae_rjz/2019-03/ecds.csv" in str(info.value)
    assert problem in str(info.value)
    assert info.value.rule == rule


def test_bad_file_is_rejected_and_the_others_of_its_month_load(tmp_path):
    write_drop(tmp_path, "staged_ecds", MONTH, [GOOD["staged_ecds"]], source="ae_rjz")
    (tmp_path / "ae_rj1" / MONTH).mkdir(parents=True)
    (tmp_path / "ae_rj1" / MONTH / "ecds.csv").write_bytes(b"")
    sm = stage_month(tmp_path, BY_ASSET["staged_ecds"], MONTH, TOK)
    assert not sm.ok and "ae_rj1/2019-03/ecds.csv" in str(sm.errors[0])
    led = sm.ledger.set_index("source")
    assert sorted(led.index) == ["ae_rj1", "ae_rjz"]
    assert led.loc["ae_rj1", "file_status"] == "rejected"
    assert led.loc["ae_rj1", "rejection_rule"] == "file_empty"
    assert led.loc["ae_rj1", ["rows_read", "rows_loaded", "rows_quarantined"]].tolist() == [0, 0, 0]
    assert led.loc["ae_rjz", "file_status"] == "loaded" and pd.isna(
        led.loc["ae_rjz", "rejection_rule"]
    )
    assert len(sm.staged) == 1
    assert {"ae_rj2/2019-03/ecds.csv", "ae_rax/2019-03/ecds.csv"} <= set(sm.missing)


@pytest.mark.parametrize("table", SOURCE_TABLES, ids=lambda t: t.asset_name)
def test_staged_rows_keep_record_ref_and_no_identifiers(table, tmp_path):
    write_drop(tmp_path, table.asset_name, MONTH, [GOOD[table.asset_name]] * 2)
    sm = stage_month(tmp_path, table, MONTH, TOK)
    source = table.providers[0]
    key = GOOD[table.asset_name][table.record_ref]
    assert sm.staged["record_ref"].tolist() == [ref_token(TOK, source, key)]
    dumped = sm.staged.astype("string").to_csv() + sm.quarantine.astype("string").to_csv()
    # no provider record key as sent (issue 16 item 3): record_ref and every key column tokens
    assert sm.staged["record_ref"].str.fullmatch("[0-9a-f]{32}").all()
    for c in table.key_columns:
        assert sm.staged[c].str.fullmatch("[0-9a-f]{32}").all(), c
        assert GOOD[table.asset_name][c] not in dumped, c
    for value in IDENTIFYING_VALUES:
        assert value not in dumped
    assert (sm.ledger.rows_read == sm.ledger.rows_loaded + sm.ledger.rows_quarantined).all()


def test_every_contract_rule_has_a_bad_row_test():
    """Adding a rule to a contract without a failing example here makes this test fail."""
    from sim_pipeline.sources.validation import check_names

    declared = set()
    for table in SOURCE_TABLES:
        declared |= {rule for rule, _ in check_names(table).values()}
        schema = table.contract.to_schema()
        if any(not col.nullable for col in schema.columns.values()):
            declared.add("required")
    tested = {rule for *_, rule in BAD + IDENTIFIER_BAD}
    assert declared - tested == set()


def test_every_landing_column_has_a_contract():
    """No column is read past the door unchecked: each has a code list, a format or a range."""
    unchecked = [
        f"{t.table}.{name}"
        for t in SOURCE_TABLES
        for name, col in t.contract.to_schema().columns.items()
        if not col.checks
    ]
    assert unchecked == []


def test_a_column_the_provider_adds_never_passes_the_boundary(tmp_path):
    table = BY_ASSET["staged_ecds"]
    row = dict(GOOD["staged_ecds"], Address="12 Rye Lane, Peckham")
    path = tmp_path / "ae_rjz" / MONTH / "ecds.csv"
    path.parent.mkdir(parents=True)
    path.write_text(",".join(row) + "\n" + ",".join(f'"{v}"' for v in row.values()) + "\n")
    sm = stage_month(tmp_path, table, MONTH, TOK)
    assert sm.ok and len(sm.staged) == 1
    assert "Address" not in sm.staged.columns
    assert "Rye Lane" not in sm.staged.astype("string").to_csv()


def test_typed_columns_come_from_the_contracts_checks():
    """Which columns are dates, date-times and whole numbers is declared once, by the
    contract's checks: a table declares no typed-column lists of its own. Identifier dates
    (birth dates) stay text: they are tokenised as sent."""
    import pandera.pandas as pa

    from sim_pipeline.sources.base import IdentifierColumns, SourceTable
    from sim_pipeline.sources.contract import (
        RawContract,
        Text,
        dates_ok,
        datetimes_ok,
        whole_number_ok,
    )

    class Toy(RawContract):
        Ref: Text
        Seen: Text
        At: Text
        Count: Text
        Born: Text

        @pa.check("Seen", "Born", name="date_format")
        def _d(cls, s):
            return dates_ok(s)

        @pa.check("At", name="datetime_format")
        def _dt(cls, s):
            return datetimes_ok(s)

        @pa.check("Count", name="whole_number")
        def _n(cls, s):
            return whole_number_ok(s)

    toy = SourceTable("staged_toy", "toy", ("p",), Toy, "Ref", IdentifierColumns(birth_date="Born"))
    assert (toy.date_columns, toy.datetime_columns, toy.int_columns) == (
        ("Seen",),
        ("At",),
        ("Count",),
    )
    s136 = next(t for t in SOURCE_TABLES if t.asset_name == "staged_police_s136_return")
    assert s136.int_columns == ("Age", "HoursInCustody")  # the age too: its band is computed
