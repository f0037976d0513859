"""An adversarial landing corpus: crafted provider files, each one attack or one messy export.

`build_corpus` replaces files of a linked landing folder (two months of the synthetic drops) by
crafted versions and returns one `Case` per file: what the pipeline must say about it (a file
rule, or line rules with the number of good lines that must still load) and the identifying
values planted in it, which must never be stored anywhere.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from sim_pipeline.sources import SOURCE_TABLES

MONTHS = ("2019-01", "2019-02")
PLANTED_NHS = "9990000018"  # valid check digit (the never-issued 999 range)
PLANTED_NAME = ("Gwendolyn", "Fairweather-Okoye")  # given, family
PLANTED_POSTCODE = "SE15 4QT"
PLANTED_DOB = "1961-07-23"


@dataclass
class Case:
    name: str
    file: str  # landing label source/month/table.csv
    file_rule: str | None = None  # whole-file rejection rule, or None when the file loads
    line_rules: set[str] = field(default_factory=set)  # quarantine rules expected (loaded file)
    attacked_lines: int = 0  # data lines that must not load (quarantined)
    defects: set[str] = field(default_factory=set)  # identifier_defects expected (column:rule)
    read: bool = True  # the file is opened (False: FIFO, link out of the folder)


def _table(file_name: str):
    return next(t for t in SOURCE_TABLES if t.file_name() == file_name)


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def _csv(header: list[str], rows: list[dict[str, str]], newline: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator=newline, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _replace(path: Path, data: str | bytes) -> None:
    """Write ``data`` at ``path`` without touching the shared hard-linked original."""
    path.unlink()
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


def _line_attack(landing: Path, label: str, edit, *, lines: int = 1) -> None:
    """Apply ``edit(lines) -> lines`` to the physical lines of a real drop."""
    path = landing / label
    text = path.read_text(encoding="utf-8-sig")
    _replace(path, "\n".join(edit(text.splitlines())) + "\n")


def _set_field(label: str, landing: Path, row: int, **values: str) -> None:
    """Rewrite data row ``row`` (0-based) of a drop with ``values`` (a proper CSV row)."""
    path = landing / label
    header, rows = _rows(path)
    rows[row].update(values)
    _replace(path, _csv(header, rows))


def build_corpus(landing: Path, outside: Path) -> tuple[list[Case], int]:
    """The crafted files (written into ``landing``; ``outside`` receives a link target) and
    the size cap (SIM_MAX_DROP_BYTES) under which every file but the over-size one is read."""
    cases: list[Case] = []
    m1, m2 = MONTHS
    nhs, (given, family), pc, dob = PLANTED_NHS, PLANTED_NAME, PLANTED_POSTCODE, PLANTED_DOB
    full_name = f"{given} {family}"

    def add(case: Case) -> None:
        assert (landing / case.file).exists() or case.file_rule == "not_regular_file", case
        cases.append(case)

    # -- lines that are not one record -------------------------------------------------------
    label = f"ae_rjz/{m1}/ecds.csv"
    _line_attack(landing, label, lambda ls: [*ls[:3], ls[3].replace(",", ',"', 11), *ls[4:]])
    add(Case("stray quote mid-file", label, line_rules={"unbalanced_quote"}, attacked_lines=1))

    label = f"ae_rj1/{m1}/ecds.csv"
    _line_attack(landing, label, lambda ls: [*ls[:-2], ls[-2].replace(",", ',"', 3), ls[-1]])
    add(Case("unclosed quote near the end", label, line_rules={"unbalanced_quote"},
             attacked_lines=1))  # fmt: skip

    label = f"ae_rj2/{m1}/ecds.csv"
    _line_attack(landing, label, lambda ls: [*ls[:2], ls[2][:30] + "\x00" + ls[2][30:], *ls[3:]])
    add(Case("NUL byte in a field", label, line_rules={"control_character"}, attacked_lines=1))

    label = f"ae_rax/{m1}/ecds.csv"
    _set_field(label, landing, 1, EC_Attendance_Source_SNOMED_CT=f"{full_name} {nhs}")
    add(Case("name and NHS number in a SNOMED CT column", label,
             line_rules={"snomed_ct_code"}, attacked_lines=1))  # fmt: skip

    label = f"ae_rj7/{m1}/ecds.csv"
    _set_field(label, landing, 0, Der_EC_Diagnosis_All=f"69322001,{nhs},{pc}")
    add(Case("identifiers in the diagnosis list", label, line_rules={"snomed_ct_code_list"},
             attacked_lines=1))  # fmt: skip

    label = f"met_police/{m1}/s136_return.csv"
    _set_field(label, landing, 0, PerceivedEthnicity=f"{given.upper()} {family.upper()}")
    add(Case("a name as perceived ethnicity", label, line_rules={"code_list"}, attacked_lines=1))

    label = f"met_police/{m1}/cad_incidents.csv"
    _set_field(label, landing, 2, CallReceivedDateTime="2099-01-05 10:00:00")
    add(Case("an event in 2099", label, line_rules={"date_out_of_range"}, attacked_lines=1))

    label = f"las/{m1}/ambulance_incidents.csv"
    arabic = nhs.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    header, rows = _rows(landing / label)
    idx = next(i for i, r in enumerate(rows) if r["NHSNumber"])
    rows[idx]["NHSNumber"] = arabic
    _replace(landing / label, _csv(header, rows))
    add(Case("NHS number in Arabic-Indic digits", label,
             defects={"NHSNumber:nhs_number_check_digit"}))  # fmt: skip

    label = f"slam/{m1}/MHS001MPI.csv"
    _line_attack(landing, label, lambda ls: [*ls, ls[1] + ",extra,fields"])
    add(Case("a line with too many fields", label, line_rules={"field_count"}, attacked_lines=1))

    label = f"oxleas/{m1}/MHS001MPI.csv"
    _line_attack(
        landing, label, lambda ls: [ls[0] + ",NHSNumber", *(x + "," + nhs for x in ls[1:])]
    )
    add(Case("a column named twice", label, file_rule="duplicate_column"))

    label = f"swlstg/{m1}/MHS001MPI.csv"
    (landing / label).unlink()
    os.mkfifo(landing / label)
    add(Case("a FIFO at a drop path", label, file_rule="not_regular_file", read=False))

    label = f"slam/{m1}/MHS201CareContact.csv"
    target = outside / "MHS201CareContact.csv"
    target.write_text(_csv(*_rows(landing / label)))
    (landing / label).unlink()
    (landing / label).symlink_to(target)
    add(Case("a link out of the landing folder", label, file_rule="outside_landing", read=False))

    label = f"oxleas/{m1}/MHS201CareContact.csv"
    header, rows = _rows(landing / label)
    _replace(landing / label, _csv(header, rows, "\r\n") + "\r\n\r\n")
    add(Case("CRLF line ends and blank lines", label))

    label = f"swlstg/{m1}/MHS201CareContact.csv"
    _line_attack(
        landing,
        label,
        lambda ls: [*ls[:2], ls[2].replace(",", ',"note\n' + full_name + '",', 1), *ls[3:]],
    )  # noqa: E501
    add(Case("a record spread over two lines", label, line_rules={"unbalanced_quote"},
             attacked_lines=2))  # fmt: skip

    label = f"slam/{m1}/MHS401MHActPeriod.csv"
    _set_field(label, landing, 0, StartDateMHActLegalStatusClass="1899-12-31")
    add(Case("a date before 1900", label, line_rules={"date_out_of_range"}, attacked_lines=1))

    label = f"oxleas/{m1}/MHS401MHActPeriod.csv"
    path = landing / label
    data = path.read_bytes().replace(b"RPG", "RPG\u00e9".encode("cp1252"), 1)
    _replace(path, data)
    add(Case("not UTF-8", label, file_rule="file_encoding"))

    label = f"swlstg/{m1}/MHS401MHActPeriod.csv"
    path = landing / label
    _replace(path, path.read_bytes().rstrip(b"\n")[:-5])
    add(Case("cut short", label, file_rule="file_truncated"))

    label = f"slam/{m1}/MHS501HospProvSpell.csv"
    _replace(landing / label, b"")
    add(Case("empty", label, file_rule="file_empty"))

    label = f"oxleas/{m1}/MHS501HospProvSpell.csv"
    header, rows = _rows(landing / label)
    _replace(landing / label, _csv([h for h in header if h != "LocalPatientId"], rows))
    add(Case("a required column missing", label, file_rule="missing_column"))

    label = f"slam/{m1}/MHS502WardStay.csv"
    _line_attack(landing, label, lambda ls: [*ls, ls[1], ls[2]])
    add(Case("repeated rows", label, line_rules={"duplicate_row"}, attacked_lines=2))

    label = f"oxleas/{m1}/MHS502WardStay.csv"
    header, rows = _rows(landing / label)
    for r in rows:
        r["HomeAddress"] = f"12 Rye Lane, Peckham, {pc}"
    _replace(landing / label, _csv([*header, "HomeAddress"], rows))
    add(Case("an extra address column", label))

    label = f"swlstg/{m1}/MHS502WardStay.csv"
    _line_attack(landing, label, lambda ls: [*ls[:1], ls[1] + "\x1b[31m", *ls[2:]])
    add(Case("an escape sequence", label, line_rules={"control_character"}, attacked_lines=1))

    label = f"slam/{m1}/programme_register.csv"
    header, rows = _rows(landing / label)
    if rows:
        rows[0]["PersonBirthDate"] = "1850-01-01"
        _replace(landing / label, _csv(header, rows))
        add(Case("a birth date in 1850", label, defects={"PersonBirthDate:date_out_of_range"}))

    label = f"oxleas/{m1}/programme_register.csv"
    header, rows = _rows(landing / label)
    if rows:
        rows[0]["LocalPatientId"] = f"{given} {family}"
        _replace(landing / label, _csv(header, rows))
        add(Case("a name as a patient id", label, line_rules={"format"}, attacked_lines=1))

    # -- the second month --------------------------------------------------------------------
    label = f"ae_rjz/{m2}/ecds.csv"
    _set_field(label, landing, 0, Discharge_Destination_SNOMED_CT=dob)
    add(Case("a birth date as a discharge code", label, line_rules={"snomed_ct_code"},
             attacked_lines=1))  # fmt: skip

    label = f"ae_rj1/{m2}/ecds.csv"
    _set_field(label, landing, 0, EC_Chief_Complaint_SNOMED_CT="272022008")  # check digit off
    add(Case("a SNOMED CT code with a wrong check digit", label,
             line_rules={"snomed_ct_code"}, attacked_lines=1))  # fmt: skip

    label = f"ae_rj2/{m2}/ecds.csv"
    _set_field(label, landing, 0, Postcode_Usual_Address="not a postcode")
    add(Case("a malformed postcode", label,
             defects={"Postcode_Usual_Address:postcode_format"}))  # fmt: skip

    label = f"met_police/{m2}/cad_incidents.csv"
    _set_field(label, landing, 0, PersonGivenName=f"{given} 07700 900123")
    add(Case("a phone number in a name", label, defects={"PersonGivenName:name_format"}))

    label = f"met_police/{m2}/s136_return.csv"
    _set_field(label, landing, 0, IncidentNumber=f"CAD-2019-{nhs}")
    add(Case("an NHS number in a record key", label, line_rules={"format"}, attacked_lines=1))

    label = f"las/{m2}/ambulance_incidents.csv"
    _line_attack(landing, label, lambda ls: [*ls, "," * (ls[0].count(","))])
    add(Case("a line of empty fields", label, line_rules={"required"}, attacked_lines=1))

    label = f"slam/{m2}/MHS001MPI.csv"
    _set_field(label, landing, 0, NHSNumber="999 000 0026")  # spaced: valid, tokenised
    add(Case("an NHS number in 3-3-4 groups", label))

    label = f"oxleas/{m2}/MHS001MPI.csv"
    _set_field(label, landing, 0, PersonBirthDate=f"{dob[8:]}/{dob[5:7]}/{dob[:4]}")
    add(Case("a day-first birth date", label, defects={"PersonBirthDate:date_format"}))

    # last: the size cap is set just above every other file; this one is padded past it with
    # blank lines (not data lines, so its ledger still counts only its records)
    cap = max(p.stat().st_size for p in landing.glob("*/*/*.csv") if p.is_file()) + 1
    label = f"swlstg/{m1}/MHS501HospProvSpell.csv"
    path = landing / label
    _replace(path, path.read_bytes() + b"\n" * (cap + 10))
    add(Case("over the size cap", label, file_rule="file_too_large"))
    return cases, cap


def planted_identifiers() -> dict[str, set[str]]:
    """The planted values, in the form `identifier_forms.IdentifierMatcher` takes."""
    import pandas as pd

    from sim_pipeline.quality.landing_identifiers import frame_identifiers

    given, family = PLANTED_NAME
    mpi = next(t for t in SOURCE_TABLES if t.table == "MHS001MPI")
    frame = pd.DataFrame(
        [
            {
                "NHSNumber": PLANTED_NHS,
                "PersonGivenName": given,
                "PersonFamilyName": family,
                "PersonBirthDate": PLANTED_DOB,
                "Postcode": PLANTED_POSTCODE,
            }
        ]
    )
    return frame_identifiers([(mpi, frame)], set())
