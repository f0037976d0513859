"""Hand-built valid rows, one per provider table, for contract and ingest tests.

All identifiers are invented; NHS numbers are in the never-issued 999 range.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sim_pipeline.sources import BY_ASSET, SourceTable

NHS_A = "9990000018"  # valid check digit
NHS_B = "9990000026"

GOOD: dict[str, dict[str, str]] = {
    "staged_mhs001mpi": {
        "OrgIDProv": "RV5",
        "LocalPatientId": "SLAM-P0000001",
        "NHSNumber": NHS_A,
        "NHSNumberStatus": "01",
        "PersonGivenName": "Aisha",
        "PersonFamilyName": "Okafor",
        "PersonBirthDate": "1988-04-09",
        "Postcode": "SE15 4QT",
        "Gender": "2",
        "EthnicCategory": "N",
        "PersDeathDate": "",
    },
    "staged_mhs201_care_contact": {
        "OrgIDProv": "RV5",
        "CareContactId": "CC-0000001",
        "ServiceRequestId": "SR-5000001",
        "LocalPatientId": "SLAM-P0000001",
        "CareContDate": "2019-03-04",
        "CareContTime": "10:15:00",
        "ConsMechanismMH": "01",
        "AttendOrDNACode": "5",
    },
    "staged_mhs401_mh_act_period": {
        "OrgIDProv": "RV5",
        "MHActLegalStatusClassPeriodId": "MHA-0000001",
        "LocalPatientId": "SLAM-P0000001",
        "StartDateMHActLegalStatusClass": "2019-03-02",
        "StartTimeMHActLegalStatusClass": "23:10:00",
        "EndDateMHActLegalStatusClass": "2019-03-03",
        "LegalStatusCode": "20",
    },
    "staged_mhs501_hosp_prov_spell": {
        "OrgIDProv": "RV5",
        "HospProvSpellID": "HPS-0000001",
        "ServiceRequestId": "SR-0000001",
        "LocalPatientId": "SLAM-P0000001",
        "StartDateHospProvSpell": "2019-03-03",
        "DischDateHospProvSpell": "",
    },
    "staged_mhs502_ward_stay": {
        "OrgIDProv": "RV5",
        "WardStayId": "WS-0000001",
        "HospProvSpellID": "HPS-0000001",
        "StartDateWardStay": "2019-03-03",
        "EndDateWardStay": "",
        "WardType": "02",
        "HospitalBedTypeMH": "10",
    },
    "staged_programme_register": {
        "OrgIDProv": "RV5",
        "RegisterId": "REG-0001",
        "LocalPatientId": "SLAM-P0000001",
        "NHSNumber": NHS_A,
        "PersonGivenName": "Aisha",
        "PersonFamilyName": "Okafor",
        "PersonBirthDate": "1988-04-09",
        "Borough": "Southwark",
        "AllocationDate": "2018-02-01",
        "EngagementDate": "2018-02-20",
        "DischargeDate": "",
        "DischargeReason": "",
    },
    "staged_police_cad_incidents": {
        "IncidentNumber": "CAD-2019-0000001",
        "CallReceivedDateTime": "2019-03-02 21:40:00",
        "DespatchedDateTime": "2019-03-02 21:45:00",
        "ArrivedDateTime": "2019-03-02 22:01:00",
        "ClosedDateTime": "2019-03-03 01:00:00",
        "CallSource": "999",
        "Grade": "I",
        "Borough": "Southwark",
        "UnitsAssigned": "2",
        "MentalHealthFlag": "Y",
        "OfficersAttended": "Y",
        "Outcome": "S136",
        "PersonGivenName": "Aysha",
        "PersonFamilyName": "Okafor",
        "PersonBirthDate": "1988-09-04",
        "PersonSex": "F",
        "AddressPostcode": "SE15 4QT",
    },
    "staged_police_s136_return": {
        "S136Ref": "S136-2019-00001",
        "IncidentNumber": "CAD-2019-0000001",
        "DetentionDateTime": "2019-03-02 22:20:00",
        "PersonGivenName": "Aisha",
        "PersonFamilyName": "Okafor",
        "PersonBirthDate": "1988-04-09",
        "Age": "30",
        "Sex": "F",
        "PerceivedEthnicity": "Black",
        "Borough": "Southwark",
        "Transport": "ambulance",
        "AmbulanceRequested": "Y",
        "FirstPlaceOfSafety": "health_based_place_of_safety",
        "HoursInCustody": "0",
        "ArrestedForOffence": "N",
        "AddressPostcode": "",
    },
    "staged_ambulance_incidents": {
        "IncidentId": "LAS-2019-0000001",
        "CallDateTime": "2019-03-05 03:12:00",
        "Category": "C2",
        "ResourcesDespatched": "2",
        "Outcome": "see_and_convey_ed",
        "Borough": "Southwark",
        "PatientGivenName": "Aisha",
        "PatientFamilyName": "Okafor",
        "PatientBirthDate": "",
        "PatientAge": "30",
        "PatientSex": "F",
        "NHSNumber": NHS_A,
        "IncidentPostcode": "SE15 5AB",
    },
    "staged_ecds": {
        "Generated_Record_ID": "100000000001",
        "Der_Provider_Code": "RJZ",
        "Der_Provider_Site_Code": "RJZ01",
        "Arrival_Date": "2019-03-05",
        "Arrival_Time": "03:40:00",
        "EC_Departure_Time_Since_Arrival": "245",
        "EC_Department_Type": "01",
        "EC_Arrival_Mode_SNOMED_CT": "1048031000000100",
        "EC_Attendance_Source_SNOMED_CT": "",
        "EC_Chief_Complaint_SNOMED_CT": "6471006",
        "EC_Injury_Intent_SNOMED_CT": "",
        "Der_EC_Diagnosis_All": "",
        "Discharge_Destination_SNOMED_CT": "",
        "Age_At_Arrival": "30",
        "Sex": "2",
        "Ethnic_Category": "N",
        "Der_Dupe_Flag": "0",
        "NHS_Number": NHS_A,
        "Person_Birth_Date": "1988-04-09",
        "Postcode_Usual_Address": "SE15 4QT",
    },
}

# Identifying values that appear in GOOD rows: none may survive ingest.
IDENTIFYING_VALUES = [
    NHS_A,
    "Aisha",
    "Aysha",
    "Okafor",
    "1988-04-09",
    "1988-09-04",
    "SE15 4QT",
    "SE15 5AB",
    "AISHA",
    "OKAFOR",
]


def csv_text(table: SourceTable, rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=table.columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def write_drop(
    landing: Path, asset: str, month: str, rows: list[dict[str, str]], source: str | None = None
) -> Path:
    table = BY_ASSET[asset]
    src = source or table.providers[0]
    path = landing / src / month / table.file_name()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(table, rows))
    return path


def ref_token(tokeniser, source: str, value: str) -> str:
    """The staged ``record_ref`` (a keyed token, `identity.record_keys`) of a provider's key."""
    import pandas as pd

    from sim_pipeline.identity.record_keys import record_key_tokens

    return str(record_key_tokens(tokeniser, pd.Series([source]), pd.Series([value])).iloc[0])
