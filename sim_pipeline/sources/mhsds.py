"""Mental-health trusts (SLaM, Oxleas, SWLSTG): MHSDS-shaped tables and the programme register.

Field names follow MHSDS v5/v6 (NHS Digital). Trusts' local extracts add the patient's given and
family name to MHS001MPI so police records (which carry no NHS number) can be linked; those, like
NHSNumber, PersonBirthDate and Postcode, are tokenised and dropped at ingest.
"""

from __future__ import annotations

import pandera.pandas as pa

from sim_pipeline.sources import codes
from sim_pipeline.sources.base import BOROUGHS, IdentifierColumns, SourceTable
from sim_pipeline.sources.contract import (
    DATE_ERROR,
    NAME_ERROR,
    NHS_ERROR,
    POSTCODE_ERROR,
    TIME_ERROR,
    RawContract,
    Text,
    dates_ok,
    names_ok,
    nhs_ok,
    postcode_ok,
    times_ok,
)

TRUSTS = tuple(codes.MH_TRUSTS)
TRUST_ORGS = list(codes.MH_TRUSTS.values())


class MHS001MPI(RawContract):
    """Master patient index: one row per patient in the month's submission."""

    OrgIDProv: Text = pa.Field(isin=TRUST_ORGS)
    LocalPatientId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    NHSNumber: Text = pa.Field(nullable=True)
    NHSNumberStatus: Text = pa.Field(isin=list(codes.NHS_NUMBER_STATUS))
    PersonGivenName: Text = pa.Field(nullable=True)
    PersonFamilyName: Text = pa.Field(nullable=True)
    PersonBirthDate: Text
    Postcode: Text = pa.Field(nullable=True)
    Gender: Text = pa.Field(isin=list(codes.MHSDS_GENDER))
    EthnicCategory: Text = pa.Field(nullable=True, isin=list(codes.ETHNIC_CATEGORY))
    PersDeathDate: Text = pa.Field(nullable=True)

    @pa.check("NHSNumber", name="nhs_number_check_digit", error=NHS_ERROR)
    def _nhs(cls, s):
        return nhs_ok(s)

    @pa.check("PersonBirthDate", "PersDeathDate", name="date_format", error=DATE_ERROR)
    def _dates(cls, s):
        return dates_ok(s)

    @pa.check("Postcode", name="postcode_format", error=POSTCODE_ERROR)
    def _postcode(cls, s):
        return postcode_ok(s)

    @pa.check("PersonGivenName", "PersonFamilyName", name="name_format", error=NAME_ERROR)
    def _names(cls, s):
        return names_ok(s)


class MHS201CareContact(RawContract):
    """Care contacts with community mental-health teams (planned appointments, attended or not).

    One row per contact, sent in the month of the contact. Attended = AttendOrDNACode 5 or 6,
    did not attend = 3 or 7, cancelled = 2 or 4 (``codes.ATTENDED_CODES`` / ``DNA_CODES``).
    """

    OrgIDProv: Text = pa.Field(isin=TRUST_ORGS)
    CareContactId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    ServiceRequestId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    LocalPatientId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    CareContDate: Text
    CareContTime: Text = pa.Field(nullable=True)
    ConsMechanismMH: Text = pa.Field(isin=list(codes.CONS_MECHANISM_MH))
    AttendOrDNACode: Text = pa.Field(isin=list(codes.ATTEND_OR_DNA))

    @pa.check("CareContDate", name="date_format", error=DATE_ERROR)
    def _dates(cls, s):
        return dates_ok(s)

    @pa.check("CareContTime", name="time_format", error=TIME_ERROR)
    def _time(cls, s):
        return times_ok(s)


class MHS401MHActPeriod(RawContract):
    """Mental Health Act legal status periods; LegalStatusCode 20 is a s136 detention."""

    OrgIDProv: Text = pa.Field(isin=TRUST_ORGS)
    MHActLegalStatusClassPeriodId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    LocalPatientId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    StartDateMHActLegalStatusClass: Text
    StartTimeMHActLegalStatusClass: Text = pa.Field(nullable=True)
    EndDateMHActLegalStatusClass: Text = pa.Field(nullable=True)
    LegalStatusCode: Text = pa.Field(isin=list(codes.LEGAL_STATUS_CODES))

    @pa.check(
        "StartDateMHActLegalStatusClass",
        "EndDateMHActLegalStatusClass",
        name="date_format",
        error=DATE_ERROR,
    )
    def _dates(cls, s):
        return dates_ok(s)

    @pa.check("StartTimeMHActLegalStatusClass", name="time_format", error=TIME_ERROR)
    def _time(cls, s):
        return times_ok(s)

    @pa.dataframe_check(name="end_not_before_start", error="period ends before it starts")
    def _order(cls, df):
        end = df["EndDateMHActLegalStatusClass"]
        return end.isna() | (end >= df["StartDateMHActLegalStatusClass"])


class MHS501HospProvSpell(RawContract):
    """Hospital provider spells (carries LocalPatientId from the referral for linkage)."""

    OrgIDProv: Text = pa.Field(isin=TRUST_ORGS)
    HospProvSpellID: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    ServiceRequestId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    LocalPatientId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    StartDateHospProvSpell: Text
    DischDateHospProvSpell: Text = pa.Field(nullable=True)

    @pa.check(
        "StartDateHospProvSpell", "DischDateHospProvSpell", name="date_format", error=DATE_ERROR
    )
    def _dates(cls, s):
        return dates_ok(s)

    @pa.dataframe_check(name="end_not_before_start", error="spell ends before it starts")
    def _order(cls, df):
        end = df["DischDateHospProvSpell"]
        return end.isna() | (end >= df["StartDateHospProvSpell"])


class MHS502WardStay(RawContract):
    """Ward stays within a hospital spell; bed days are counted from these (MHS24 rule)."""

    OrgIDProv: Text = pa.Field(isin=TRUST_ORGS)
    WardStayId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    HospProvSpellID: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    StartDateWardStay: Text
    EndDateWardStay: Text = pa.Field(nullable=True)
    WardType: Text = pa.Field(isin=list(codes.WARD_TYPES))
    HospitalBedTypeMH: Text = pa.Field(nullable=True, isin=list(codes.HOSPITAL_BED_TYPE_MH))

    @pa.check("StartDateWardStay", "EndDateWardStay", name="date_format", error=DATE_ERROR)
    def _dates(cls, s):
        return dates_ok(s)

    @pa.dataframe_check(name="end_not_before_start", error="ward stay ends before it starts")
    def _order(cls, df):
        end = df["EndDateWardStay"]
        return end.isna() | (end >= df["StartDateWardStay"])


class ProgrammeRegister(RawContract):
    """The trust's own register of people allocated to the programme (a monthly snapshot)."""

    OrgIDProv: Text = pa.Field(isin=TRUST_ORGS)
    RegisterId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    LocalPatientId: Text = pa.Field(str_matches=r"^[A-Z0-9-]{4,20}$")
    NHSNumber: Text = pa.Field(nullable=True)
    PersonGivenName: Text = pa.Field(nullable=True)
    PersonFamilyName: Text = pa.Field(nullable=True)
    PersonBirthDate: Text
    Borough: Text = pa.Field(isin=list(BOROUGHS))
    AllocationDate: Text
    EngagementDate: Text = pa.Field(nullable=True)
    DischargeDate: Text = pa.Field(nullable=True)
    DischargeReason: Text = pa.Field(nullable=True, isin=list(codes.DISCHARGE_REASONS))

    @pa.check("NHSNumber", name="nhs_number_check_digit", error=NHS_ERROR)
    def _nhs(cls, s):
        return nhs_ok(s)

    @pa.check(
        "PersonBirthDate",
        "AllocationDate",
        "EngagementDate",
        "DischargeDate",
        name="date_format",
        error=DATE_ERROR,
    )
    def _dates(cls, s):
        return dates_ok(s)

    @pa.dataframe_check(
        name="discharge_reason_with_date", error="discharge date and reason must come together"
    )
    def _discharge(cls, df):
        return df["DischargeDate"].isna() == df["DischargeReason"].isna()

    @pa.dataframe_check(name="dates_in_order", error="engagement or discharge precedes allocation")
    def _order(cls, df):
        alloc = df["AllocationDate"]
        eng_ok = df["EngagementDate"].isna() | (df["EngagementDate"] >= alloc)
        dis_ok = df["DischargeDate"].isna() | (df["DischargeDate"] >= alloc)
        return eng_ok & dis_ok

    @pa.check("PersonGivenName", "PersonFamilyName", name="name_format", error=NAME_ERROR)
    def _names(cls, s):
        return names_ok(s)


MPI_IDS = IdentifierColumns(
    nhs_number="NHSNumber",
    given_name="PersonGivenName",
    family_name="PersonFamilyName",
    birth_date="PersonBirthDate",
    postcode="Postcode",
    sex="Gender",
)

TABLES = (
    SourceTable(
        asset_name="staged_mhs001mpi",
        table="MHS001MPI",
        providers=TRUSTS,
        contract=MHS001MPI,
        record_ref="LocalPatientId",
        identifiers=MPI_IDS,
        person_links=(("LocalPatientId", "patient"),),
        description="MHSDS master patient index from the three mental-health trusts.",
    ),
    SourceTable(
        asset_name="staged_mhs201_care_contact",
        table="MHS201CareContact",
        providers=TRUSTS,
        contract=MHS201CareContact,
        record_ref="CareContactId",
        not_kept=("CareContTime",),
        person_links=(("LocalPatientId", "patient"),),
        description="MHSDS care contacts with community mental-health teams (attended, did not "
        "attend or cancelled).",
    ),
    SourceTable(
        asset_name="staged_mhs401_mh_act_period",
        table="MHS401MHActPeriod",
        providers=TRUSTS,
        contract=MHS401MHActPeriod,
        record_ref="MHActLegalStatusClassPeriodId",
        not_kept=("StartTimeMHActLegalStatusClass",),
        person_links=(("LocalPatientId", "patient"),),
        description="MHSDS Mental Health Act legal status periods (LegalStatusCode 20 = s136).",
    ),
    SourceTable(
        asset_name="staged_mhs501_hosp_prov_spell",
        table="MHS501HospProvSpell",
        providers=TRUSTS,
        contract=MHS501HospProvSpell,
        record_ref="HospProvSpellID",
        person_links=(("LocalPatientId", "patient"), ("HospProvSpellID", "spell")),
        description="MHSDS hospital provider spells.",
    ),
    SourceTable(
        asset_name="staged_mhs502_ward_stay",
        table="MHS502WardStay",
        providers=TRUSTS,
        contract=MHS502WardStay,
        record_ref="WardStayId",
        person_links=(("HospProvSpellID", "spell"),),
        description="MHSDS ward stays (source of mental-health bed days, MHS24 rule).",
    ),
    SourceTable(
        asset_name="staged_programme_register",
        table="programme_register",
        providers=TRUSTS,
        contract=ProgrammeRegister,
        record_ref="RegisterId",
        identifiers=IdentifierColumns(
            nhs_number="NHSNumber",
            given_name="PersonGivenName",
            family_name="PersonFamilyName",
            birth_date="PersonBirthDate",
            event_date="AllocationDate",
        ),
        person_links=(("LocalPatientId", "patient"),),
        description="Programme register kept by each trust: allocation, engagement, discharge.",
    ),
)
