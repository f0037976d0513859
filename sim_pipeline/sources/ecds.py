"""A&E departments: Emergency Care Data Set (ECDS) attendances as submitted by the acute trusts.

NCDR/SUS column names. The submitted record carries NHS number, birth date and the usual-address
postcode (no names); those are tokenised and dropped at ingest.
"""

from __future__ import annotations

import pandera.pandas as pa

from sim_pipeline.sources import codes
from sim_pipeline.sources.base import IdentifierColumns, SourceTable
from sim_pipeline.sources.contract import (
    DATE_ERROR,
    NHS_ERROR,
    NUMBER_ERROR,
    POSTCODE_ERROR,
    SNOMED_ERROR,
    SNOMED_LIST_ERROR,
    TIME_ERROR,
    RawContract,
    Text,
    dates_ok,
    nhs_ok,
    postcode_ok,
    snomed_list_ok,
    snomed_ok,
    times_ok,
    whole_number_ok,
)

AE_ORGS = [org for org, _ in codes.AE_PROVIDERS.values()]
AE_SITES = [site for _, site in codes.AE_PROVIDERS.values()]


class Ecds(RawContract):
    Generated_Record_ID: Text = pa.Field(str_matches=r"^[0-9]{8,14}$")
    Der_Provider_Code: Text = pa.Field(isin=AE_ORGS)
    Der_Provider_Site_Code: Text = pa.Field(isin=AE_SITES)
    Arrival_Date: Text
    Arrival_Time: Text
    EC_Departure_Time_Since_Arrival: Text = pa.Field(nullable=True)
    EC_Department_Type: Text = pa.Field(isin=list(codes.EC_DEPARTMENT_TYPE))
    EC_Arrival_Mode_SNOMED_CT: Text = pa.Field(isin=list(codes.ARRIVAL_MODE))
    EC_Attendance_Source_SNOMED_CT: Text = pa.Field(nullable=True)
    EC_Chief_Complaint_SNOMED_CT: Text = pa.Field(nullable=True)
    EC_Injury_Intent_SNOMED_CT: Text = pa.Field(nullable=True)
    Der_EC_Diagnosis_All: Text = pa.Field(nullable=True)
    Discharge_Destination_SNOMED_CT: Text = pa.Field(nullable=True)
    Age_At_Arrival: Text = pa.Field(nullable=True)
    Sex: Text = pa.Field(isin=list(codes.ECDS_SEX))
    Ethnic_Category: Text = pa.Field(nullable=True, isin=list(codes.ETHNIC_CATEGORY))
    Der_Dupe_Flag: Text = pa.Field(isin=["0", "1"])
    NHS_Number: Text = pa.Field(nullable=True)
    Person_Birth_Date: Text = pa.Field(nullable=True)
    Postcode_Usual_Address: Text = pa.Field(nullable=True)

    @pa.check("Arrival_Date", "Person_Birth_Date", name="date_format", error=DATE_ERROR)
    def _dates(cls, s):
        return dates_ok(s)

    @pa.check("Arrival_Time", name="time_format", error=TIME_ERROR)
    def _time(cls, s):
        return times_ok(s)

    @pa.check("NHS_Number", name="nhs_number_check_digit", error=NHS_ERROR)
    def _nhs(cls, s):
        return nhs_ok(s)

    @pa.check("Postcode_Usual_Address", name="postcode_format", error=POSTCODE_ERROR)
    def _pc(cls, s):
        return postcode_ok(s)

    @pa.check(
        "EC_Attendance_Source_SNOMED_CT",
        "EC_Chief_Complaint_SNOMED_CT",
        "EC_Injury_Intent_SNOMED_CT",
        "Discharge_Destination_SNOMED_CT",
        name="snomed_ct_code",
        error=SNOMED_ERROR,
    )
    def _snomed(cls, s):
        return snomed_ok(s)

    @pa.check("Der_EC_Diagnosis_All", name="snomed_ct_code_list", error=SNOMED_LIST_ERROR)
    def _snomed_list(cls, s):
        return snomed_list_ok(s)

    @pa.check(
        "EC_Departure_Time_Since_Arrival", "Age_At_Arrival", name="whole_number", error=NUMBER_ERROR
    )
    def _num(cls, s):
        return whole_number_ok(s)


TABLES = (
    SourceTable(
        asset_name="staged_ecds",
        table="ecds",
        providers=tuple(codes.AE_PROVIDERS),
        contract=Ecds,
        record_ref="Generated_Record_ID",
        identifiers=IdentifierColumns(
            nhs_number="NHS_Number",
            birth_date="Person_Birth_Date",
            postcode="Postcode_Usual_Address",
            sex="Sex",
            event_date="Arrival_Date",
            age="Age_At_Arrival",
        ),
        description="ECDS A&E attendances from the acute trusts serving the six boroughs.",
    ),
)
