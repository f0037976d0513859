"""Code lists used by the contracts and the synthetic generator (one place for each list).

Sources: MHSDS v5/v6 technical output specification, ECDS / NCDR column lists and SNOMED CT
codes as summarised in shared/reference/data-standards.md.
"""

from __future__ import annotations

# Provider folder -> organisation code. Mental-health trusts (MHSDS OrgIDProv).
MH_TRUSTS = {"slam": "RV5", "oxleas": "RPG", "swlstg": "RQY"}
# Acute trusts whose type 1 A&E departments serve the six boroughs: folder -> (org, site).
AE_PROVIDERS = {
    "ae_rjz": ("RJZ", "RJZ01"),  # King's College Hospital (Southwark)
    "ae_rj1": ("RJ1", "RJ122"),  # Guy's and St Thomas' (Southwark / Lambeth)
    "ae_rj2": ("RJ2", "RJ224"),  # Lewisham and Greenwich, Queen Elizabeth Woolwich
    "ae_rax": ("RAX", "RAX01"),  # Kingston Hospital (Kingston, Richmond)
    "ae_rj7": ("RJ7", "RJ701"),  # St George's (Wandsworth, Merton)
}
POLICE = "met_police"
AMBULANCE = "las"

MHSDS_GENDER = ("1", "2", "3", "4", "9", "X", "Z")
ETHNIC_CATEGORY = tuple("ABCDEFGHJKLMNPRSZ") + ("99",)
NHS_NUMBER_STATUS = ("01", "02", "03", "04", "05", "06", "07", "08")
# LegalStatusCode 01-20, 98, 99; 19 (s135) and 20 (s136) are the place-of-safety codes.
LEGAL_STATUS_CODES = tuple(f"{i:02d}" for i in range(1, 21)) + ("98", "99")
LEGAL_STATUS_S136 = "20"
WARD_TYPES = ("01", "02", "03", "04", "05", "06")
HOSPITAL_BED_TYPE_MH = tuple(str(i) for i in range(10, 40))
# MHS201 care contacts. ConsMechanismMH (consultation mechanism, v5):
CONS_MECHANISM_MH = {
    "01": "face to face",
    "02": "telephone",
    "04": "talk type for a person unable to speak",
    "05": "email",
    "09": "text message (asynchronous)",
    "10": "video consultation",
}
# AttendOrDNACode (v5; AttendStatus in v6). Attended = 5 or 6; did not attend = 3 or 7 (arrived
# too late to be seen counts as a DNA, as in NHS Digital's DNA measures); 2 and 4 are
# cancellations, neither attended nor DNA.
ATTEND_OR_DNA = {
    "5": "attended on time (or before the professional was ready)",
    "6": "arrived late but was seen",
    "7": "arrived late and could not be seen",
    "2": "appointment cancelled by, or on behalf of, the patient",
    "3": "did not attend, no advance warning given",
    "4": "appointment cancelled or postponed by the health care provider",
}
ATTENDED_CODES = ("5", "6")
DNA_CODES = ("3", "7")
DISCHARGE_REASONS = (
    "goals_met",
    "disengaged",
    "moved_away",
    "died",
    "transferred",
    "programme_closed",
)

ECDS_SEX = ("1", "2", "9", "0")
EC_DEPARTMENT_TYPE = ("01", "02", "03", "04")
ARRIVAL_MODE = {
    "1048031000000100": "emergency road ambulance",
    "1048041000000109": "emergency road ambulance with medical escort",
    "1048021000000102": "non-emergency road ambulance",
    "1048051000000107": "helicopter ambulance",
    "1048001000000106": "police transport",
    "1047991000000102": "prison transport",
    "1048061000000105": "public transport",
    "1048071000000103": "own transport",
}
AMBULANCE_ARRIVAL_MODES = ("1048031000000100", "1048041000000109", "1048021000000102")
POLICE_ARRIVAL_MODE = "1048001000000106"
SELF_HARM_COMPLAINT = "248062006"
SELF_INFLICTED_INTENT = "276853009"
MH_CHIEF_COMPLAINTS = ("272022009", "48694002", "248020004", "6471006", "7011001")

POLICE_SEX = ("M", "F", "U")
# Officer-perceived ethnicity on the s136 return (Home Office police powers and procedures).
PERCEIVED_ETHNICITY = ("White", "Black", "Asian", "Mixed", "Other", "Not stated")
CAD_CALL_SOURCE = ("999", "101", "PARTNER")
CAD_GRADE = ("I", "S", "E", "R")  # immediate, significant, extended, referred
# ARREST = arrested (no charge recorded on the incident); CHARGED = arrested and charged.
# Arrests are ARREST + CHARGED.
CAD_OUTCOME = ("NFA", "S136", "ARREST", "REFERRAL", "CHARGED")
CAD_ARREST_OUTCOMES = ("ARREST", "CHARGED")
S136_TRANSPORT = (
    "ambulance",
    "police_vehicle",
    "other_health_vehicle",
    "other",
    "not_known",
    "none",
)
S136_PLACE_OF_SAFETY = (
    "police_station",
    "ae",
    "private_home",
    "health_based_place_of_safety",
    "other",
    "not_known",
)
YES_NO = ("Y", "N")

AMBULANCE_CATEGORY = ("C1", "C2", "C3", "C4")
AMBULANCE_OUTCOME = ("hear_and_treat", "see_and_treat", "see_and_convey_ed", "convey_elsewhere")
