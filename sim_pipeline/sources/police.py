"""Metropolitan Police: CAD mental-health incidents and the section 136 return.

Police records never carry an NHS number; linkage relies on name, date of birth, sex and the
home postcode (blank for people of no fixed abode).
"""

from __future__ import annotations

import pandera.pandas as pa

from sim_pipeline.sources import codes
from sim_pipeline.sources.base import BOROUGHS, IdentifierColumns, SourceTable
from sim_pipeline.sources.contract import (
    DATE_ERROR,
    DATETIME_ERROR,
    NAME_ERROR,
    NUMBER_ERROR,
    POSTCODE_ERROR,
    RawContract,
    Text,
    dates_ok,
    datetimes_ok,
    names_ok,
    postcode_ok,
    whole_number_ok,
)


class CadIncidents(RawContract):
    """Computer-aided despatch incidents flagged mental health, one row per person involved."""

    IncidentNumber: Text = pa.Field(str_matches=r"^CAD-[0-9]{4}-[0-9]{6,8}$")
    CallReceivedDateTime: Text
    DespatchedDateTime: Text = pa.Field(nullable=True)
    ArrivedDateTime: Text = pa.Field(nullable=True)
    ClosedDateTime: Text
    CallSource: Text = pa.Field(isin=list(codes.CAD_CALL_SOURCE))
    Grade: Text = pa.Field(isin=list(codes.CAD_GRADE))
    Borough: Text = pa.Field(isin=list(BOROUGHS))
    UnitsAssigned: Text
    MentalHealthFlag: Text = pa.Field(isin=list(codes.YES_NO))
    OfficersAttended: Text = pa.Field(isin=list(codes.YES_NO))
    Outcome: Text = pa.Field(isin=list(codes.CAD_OUTCOME))
    PersonGivenName: Text = pa.Field(nullable=True)
    PersonFamilyName: Text = pa.Field(nullable=True)
    PersonBirthDate: Text = pa.Field(nullable=True)
    PersonSex: Text = pa.Field(isin=list(codes.POLICE_SEX))
    AddressPostcode: Text = pa.Field(nullable=True)

    @pa.check(
        "CallReceivedDateTime",
        "DespatchedDateTime",
        "ArrivedDateTime",
        "ClosedDateTime",
        name="datetime_format",
        error=DATETIME_ERROR,
    )
    def _dt(cls, s):
        return datetimes_ok(s)

    @pa.check("PersonBirthDate", name="date_format", error=DATE_ERROR)
    def _dob(cls, s):
        return dates_ok(s)

    @pa.check("AddressPostcode", name="postcode_format", error=POSTCODE_ERROR)
    def _pc(cls, s):
        return postcode_ok(s)

    @pa.check("UnitsAssigned", name="whole_number", error=NUMBER_ERROR)
    def _units(cls, s):
        return whole_number_ok(s)

    @pa.dataframe_check(
        name="attended_needs_arrival", error="officers attended but no arrival time recorded"
    )
    def _attended(cls, df):
        return (df["OfficersAttended"] == "N") | df["ArrivedDateTime"].notna()

    @pa.check("PersonGivenName", "PersonFamilyName", name="name_format", error=NAME_ERROR)
    def _names(cls, s):
        return names_ok(s)


class S136Return(RawContract):
    """Home Office section 136 return: one row per detention."""

    S136Ref: Text = pa.Field(str_matches=r"^S136-[0-9]{4}-[0-9]{5,7}$")
    IncidentNumber: Text = pa.Field(nullable=True, str_matches=r"^CAD-[0-9]{4}-[0-9]{6,8}$")
    DetentionDateTime: Text
    PersonGivenName: Text = pa.Field(nullable=True)
    PersonFamilyName: Text = pa.Field(nullable=True)
    PersonBirthDate: Text = pa.Field(nullable=True)
    Age: Text = pa.Field(nullable=True)
    Sex: Text = pa.Field(isin=list(codes.POLICE_SEX))
    PerceivedEthnicity: Text = pa.Field(nullable=True, isin=list(codes.PERCEIVED_ETHNICITY))
    Borough: Text = pa.Field(isin=list(BOROUGHS))
    Transport: Text = pa.Field(isin=list(codes.S136_TRANSPORT))
    AmbulanceRequested: Text = pa.Field(isin=list(codes.YES_NO))
    FirstPlaceOfSafety: Text = pa.Field(isin=list(codes.S136_PLACE_OF_SAFETY))
    HoursInCustody: Text = pa.Field(nullable=True)
    ArrestedForOffence: Text = pa.Field(isin=list(codes.YES_NO))
    AddressPostcode: Text = pa.Field(nullable=True)

    @pa.check("DetentionDateTime", name="datetime_format", error=DATETIME_ERROR)
    def _dt(cls, s):
        return datetimes_ok(s)

    @pa.check("PersonBirthDate", name="date_format", error=DATE_ERROR)
    def _dob(cls, s):
        return dates_ok(s)

    @pa.check("AddressPostcode", name="postcode_format", error=POSTCODE_ERROR)
    def _pc(cls, s):
        return postcode_ok(s)

    @pa.check("Age", "HoursInCustody", name="whole_number", error=NUMBER_ERROR)
    def _num(cls, s):
        return whole_number_ok(s)

    @pa.check("PersonGivenName", "PersonFamilyName", name="name_format", error=NAME_ERROR)
    def _names(cls, s):
        return names_ok(s)


POLICE_IDS = dict(
    given_name="PersonGivenName",
    family_name="PersonFamilyName",
    birth_date="PersonBirthDate",
    postcode="AddressPostcode",
)


def _police_table(table: str, **fields) -> SourceTable:
    """A Met Police table: one provider, the person columns every police return names, and the
    incident number that joins a CAD incident and the s136 detention it led to."""
    return SourceTable(
        asset_name=f"staged_police_{table}",
        table=table,
        providers=(codes.POLICE,),
        person_links=(("IncidentNumber", "incident"),),
        **fields,
    )


TABLES = (
    _police_table(
        "cad_incidents",
        contract=CadIncidents,
        record_ref="IncidentNumber",
        identifiers=IdentifierColumns(
            **POLICE_IDS, sex="PersonSex", event_date="CallReceivedDateTime"
        ),
        description="Met Police CAD mental-health incidents (police deployments).",
    ),
    _police_table(
        "s136_return",
        contract=S136Return,
        record_ref="S136Ref",
        identifiers=IdentifierColumns(
            **POLICE_IDS, sex="Sex", event_date="DetentionDateTime", age="Age"
        ),
        description="Met Police section 136 return (detentions under s136 MHA).",
    ),
)
