"""London Ambulance Service: CAD/EPR-shaped incidents, one row per patient per incident.

No national field-level schema is public; the shape follows the Ambulance Data Set description
(call, category, resources despatched, outcome) with EPR patient details. NHS number is present
only where the crew or control traced it.
"""

from __future__ import annotations

import pandera.pandas as pa

from sim_pipeline.sources import codes
from sim_pipeline.sources.base import BOROUGHS, IdentifierColumns, SourceTable
from sim_pipeline.sources.contract import (
    DATE_ERROR,
    DATETIME_ERROR,
    NAME_ERROR,
    NHS_ERROR,
    NUMBER_ERROR,
    POSTCODE_ERROR,
    RawContract,
    Text,
    dates_ok,
    datetimes_ok,
    names_ok,
    nhs_ok,
    postcode_ok,
    whole_number_ok,
)


class AmbulanceIncidents(RawContract):
    IncidentId: Text = pa.Field(str_matches=r"^LAS-[0-9]{4}-[0-9]{6,8}$")
    CallDateTime: Text
    Category: Text = pa.Field(isin=list(codes.AMBULANCE_CATEGORY))
    ResourcesDespatched: Text
    Outcome: Text = pa.Field(isin=list(codes.AMBULANCE_OUTCOME))
    Borough: Text = pa.Field(isin=list(BOROUGHS))
    PatientGivenName: Text = pa.Field(nullable=True)
    PatientFamilyName: Text = pa.Field(nullable=True)
    PatientBirthDate: Text = pa.Field(nullable=True)
    PatientAge: Text = pa.Field(nullable=True)
    PatientSex: Text = pa.Field(isin=list(codes.POLICE_SEX))
    NHSNumber: Text = pa.Field(nullable=True)
    IncidentPostcode: Text = pa.Field(nullable=True)

    @pa.check("CallDateTime", name="datetime_format", error=DATETIME_ERROR)
    def _dt(cls, s):
        return datetimes_ok(s)

    @pa.check("PatientBirthDate", name="date_format", error=DATE_ERROR)
    def _dob(cls, s):
        return dates_ok(s)

    @pa.check("NHSNumber", name="nhs_number_check_digit", error=NHS_ERROR)
    def _nhs(cls, s):
        return nhs_ok(s)

    @pa.check("IncidentPostcode", name="postcode_format", error=POSTCODE_ERROR)
    def _pc(cls, s):
        return postcode_ok(s)

    @pa.check("ResourcesDespatched", "PatientAge", name="whole_number", error=NUMBER_ERROR)
    def _num(cls, s):
        return whole_number_ok(s)

    @pa.dataframe_check(
        name="face_to_face_needs_resource",
        error="a see-and-treat or conveyance outcome with no resource despatched",
    )
    def _resources(cls, df):
        return (df["Outcome"] == "hear_and_treat") | (df["ResourcesDespatched"] != "0")

    @pa.check("PatientGivenName", "PatientFamilyName", name="name_format", error=NAME_ERROR)
    def _names(cls, s):
        return names_ok(s)


TABLES = (
    SourceTable(
        asset_name="staged_ambulance_incidents",
        table="ambulance_incidents",
        providers=(codes.AMBULANCE,),
        contract=AmbulanceIncidents,
        record_ref="IncidentId",
        identifiers=IdentifierColumns(
            nhs_number="NHSNumber",
            given_name="PatientGivenName",
            family_name="PatientFamilyName",
            birth_date="PatientBirthDate",
            postcode="IncidentPostcode",
            sex="PatientSex",
            event_date="CallDateTime",
            age="PatientAge",
        ),
        description="London Ambulance Service incidents: resources despatched and outcome.",
    ),
)
