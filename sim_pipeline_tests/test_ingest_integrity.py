"""The ingest boundary under attack and under messy exports (issue: privacy boundary).

Every line of a landing file is loaded or quarantined under a named rule (one record per physical
line: a stray quote cannot swallow the lines after it); only regular files inside the landing
folder are read; the staged-row identifier check looks inside text with no column exempt; keys
come from `sim-pipeline keygen`; database errors carry no data value.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess

import pandas as pd
import pytest
import sqlalchemy as sa

from sim_pipeline.identity import Tokeniser
from sim_pipeline.identity.keys import KeyRejected, generate_key, parse_key
from sim_pipeline.identity.tokens import DEMO_KEY
from sim_pipeline.ingest.staging import stage_month
from sim_pipeline.quality.identifier_forms import IdentifierMatcher
from sim_pipeline.quality.identifiers import find_identifier_like
from sim_pipeline.quality.landing_identifiers import frame_identifiers
from sim_pipeline.sources import BY_ASSET
from sim_pipeline.sources.contract import verhoeff_ok
from sim_pipeline.sources.drop_files import count_data_lines
from sim_pipeline.sources.reader import data_line_numbers
from sim_pipeline.warehouse import Warehouse
from sim_pipeline.warehouse.store import WarehouseError
from sim_pipeline_tests.conftest import BIN, clean_env
from sim_pipeline_tests.samples import GOOD, NHS_A, NHS_B, csv_text, ref_token, write_drop

TOK = Tokeniser(b"k" * 32)
MONTH = "2019-03"
ECDS = BY_ASSET["staged_ecds"]
S136 = BY_ASSET["staged_police_s136_return"]


def _rows(n: int) -> list[dict[str, str]]:
    """n distinct valid ECDS rows (record ids 1000000001...)."""
    return [
        dict(
            GOOD["staged_ecds"],
            Generated_Record_ID=f"{1000000001 + i}",
            Der_EC_Diagnosis_All="69322001",
        )
        for i in range(n)
    ]


def _ledger(sm) -> tuple[int, int, int]:
    led = sm.ledger.iloc[0]
    return int(led.rows_read), int(led.rows_loaded), int(led.rows_quarantined)


def _landing_file(tmp_path, text: str | bytes, table=ECDS, source: str = "ae_rjz"):
    path = tmp_path / source / MONTH / table.file_name()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


# ----------------------------------------------------------------------------- line accounting


def test_a_stray_quote_loses_no_following_line(tmp_path):
    """The reported attack: 8 data lines, a stray quote in a free-text field of line 3 made the
    CSV reader swallow the lines after it (read 4 / loaded 4 / quarantined 0)."""
    rows = _rows(8)
    lines = csv_text(ECDS, rows).splitlines()
    lines[3] = lines[3].replace(",69322001,", ',"69322001,', 1)  # data line 3 (file line 4)
    _landing_file(tmp_path, "\n".join(lines) + "\n")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert _ledger(sm) == (8, 7, 1)
    assert sm.quarantine[["line_number", "rule"]].values.tolist() == [[4, "unbalanced_quote"]]
    assert sorted(sm.staged["record_ref"]) == sorted(
        ref_token(TOK, "ae_rjz", r["Generated_Record_ID"]) for i, r in enumerate(rows) if i != 2
    )
    # nothing of the swallowed lines sits inside a staged field
    dumped = sm.staged.astype("string").to_csv()
    assert NHS_A not in dumped and "1988-04-09" not in dumped and "SE15 4QT" not in dumped


def test_an_unclosed_quote_near_the_end_of_a_long_file_costs_one_line(tmp_path):
    rows = _rows(170)
    lines = csv_text(ECDS, rows).splitlines()
    lines[160] = lines[160].replace(",RJZ,", ',"RJZ,', 1)
    _landing_file(tmp_path, "\n".join(lines) + "\n")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert _ledger(sm) == (170, 169, 1)
    assert sm.quarantine["rule"].tolist() == ["unbalanced_quote"]


def test_a_record_spread_over_lines_is_quarantined_line_by_line(tmp_path):
    rows = _rows(3)
    text = csv_text(ECDS, rows)
    lines = text.splitlines()
    # a quoted field with a line break inside: two physical lines, neither one a record
    lines[2] = lines[2].replace(",69322001,", ',"69322001\nnote",', 1)
    _landing_file(tmp_path, "\n".join(lines) + "\n")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    read, loaded, quarantined = _ledger(sm)
    assert (read, loaded, quarantined) == (4, 2, 2)  # 4 physical data lines
    assert set(sm.quarantine["rule"]) <= {"unbalanced_quote", "field_count"}
    assert sorted(sm.quarantine["line_number"]) == [3, 4]


def test_control_characters_quarantine_the_line(tmp_path):
    rows = _rows(3)
    lines = csv_text(ECDS, rows).splitlines()
    lines[2] = lines[2].replace("69322001", "6932\x002001", 1)  # a NUL byte
    lines[3] = lines[3].replace("RJZ01", "RJZ\x1b01", 1)  # an escape
    _landing_file(tmp_path, "\n".join(lines) + "\n")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert _ledger(sm) == (3, 1, 2)
    assert sm.quarantine["rule"].tolist() == ["control_character"] * 2
    assert "\x00" not in sm.staged.astype("string").to_csv()


def test_line_endings_blank_lines_and_quoted_commas(tmp_path):
    rows = _rows(3)
    text = csv_text(ECDS, rows).replace("\n", "\r\n")
    text = text.replace("69322001", '"69322001,55680006"', 1) + "\r\n\r\n"
    _landing_file(tmp_path, text)
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert _ledger(sm) == (3, 3, 0)  # blank lines are not data lines
    assert "69322001,55680006" in set(sm.staged["Der_EC_Diagnosis_All"])


def test_a_duplicated_header_column_rejects_the_file_with_every_line_counted(tmp_path):
    header = ",".join(ECDS.columns + ["NHS_Number"])
    body = csv_text(ECDS, _rows(2)).splitlines()[1:]
    _landing_file(tmp_path, header + "\n" + "\n".join(line + ",x" for line in body) + "\n")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    led = sm.ledger.iloc[0]
    assert led.file_status == "rejected" and led.rejection_rule == "duplicate_column"
    assert _ledger(sm) == (2, 0, 2)
    assert "NHS_Number" in str(sm.errors[0]) and "ae_rjz/2019-03/ecds.csv" in str(sm.errors[0])


def test_a_repeated_header_that_is_not_a_contract_column_is_counted_never_echoed(tmp_path):
    # the header row is the provider's text: a value pasted into it twice (an NHS number) must
    # not come back in the message, the ledger or the quarantine
    header = ",".join([*ECDS.columns, NHS_A, NHS_A])
    body = csv_text(ECDS, _rows(2)).splitlines()[1:]
    _landing_file(tmp_path, header + "\n" + "\n".join(line + ",x,y" for line in body) + "\n")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert sm.ledger.iloc[0].rejection_rule == "duplicate_column"
    assert _ledger(sm) == (2, 0, 2)
    message = str(sm.errors[0])
    assert "1 column name(s) not in the contract" in message
    stored = message + sm.ledger.astype("string").to_csv() + sm.quarantine.astype("string").to_csv()
    assert NHS_A not in stored


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_streamed_line_count_equals_the_in_memory_one(chunk, tmp_path):
    samples = [
        b"h\na\nb\n",
        b"h\r\na\r\n\r\nb",
        b"h\ra\rb\r",
        b"h\n\n\nx\n \n",
        b'h,"q\na"\nb\r\n',
        b"header only\n",
    ]
    for i, data in enumerate(samples):
        path = tmp_path / f"{i}.csv"
        path.write_bytes(data)
        assert count_data_lines(path, chunk_bytes=chunk) == data_line_numbers(data), data


# ----------------------------------------------------------------------------- file access


def _stage_with_alarm(tmp_path, table=ECDS, **kw):
    """stage_month, failing instead of hanging (a FIFO opened for reading blocks forever)."""

    def hang(*_):
        raise TimeoutError("staging hung")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    try:
        return stage_month(tmp_path, table, MONTH, TOK, **kw)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_fifo_at_a_drop_path_is_rejected_unopened(tmp_path):
    path = tmp_path / "ae_rjz" / MONTH / "ecds.csv"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    sm = _stage_with_alarm(tmp_path)
    led = sm.ledger.iloc[0]
    assert led.file_status == "rejected" and led.rejection_rule == "not_regular_file"
    assert _ledger(sm) == (0, 0, 0) and led.file_sha256 == "not-read:not_regular_file"
    assert stat.S_ISFIFO(path.stat().st_mode)


def test_a_link_out_of_the_landing_folder_is_not_read(tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(csv_text(ECDS, _rows(2)))
    landing = tmp_path / "landing"
    link = landing / "ae_rjz" / MONTH / "ecds.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    inside = landing / "ae_rj1" / MONTH / "ecds.csv"
    inside.parent.mkdir(parents=True)
    (landing / "shared.csv").write_text(csv_text(ECDS, _rows(1)))
    inside.symlink_to(landing / "shared.csv")  # a link inside the landing folder is fine
    sm = stage_month(landing, ECDS, MONTH, TOK)
    led = sm.ledger.set_index("source")
    assert led.loc["ae_rjz", "rejection_rule"] == "outside_landing"
    assert led.loc["ae_rjz", "rows_read"] == 0
    assert led.loc["ae_rj1", "file_status"] == "loaded" and len(sm.staged) == 1


def test_a_file_over_the_size_cap_is_rejected_with_its_lines_counted(tmp_path):
    _landing_file(tmp_path, csv_text(ECDS, _rows(5)))
    sm = stage_month(tmp_path, ECDS, MONTH, TOK, max_bytes=100)
    led = sm.ledger.iloc[0]
    assert led.rejection_rule == "file_too_large" and "SIM_MAX_DROP_BYTES" in str(sm.errors[0])
    assert _ledger(sm) == (5, 0, 5)
    assert sorted(sm.quarantine["line_number"]) == [2, 3, 4, 5, 6]
    assert _ledger(stage_month(tmp_path, ECDS, MONTH, TOK)) == (5, 5, 0)  # default cap


def test_max_drop_bytes_comes_from_the_environment(monkeypatch):
    from sim_pipeline.config import ConfigError, Settings

    monkeypatch.setenv("SIM_MAX_DROP_BYTES", "1234")
    assert Settings.from_env().max_drop_bytes == 1234
    monkeypatch.setenv("SIM_MAX_DROP_BYTES", "1e9")
    with pytest.raises(ConfigError, match="SIM_MAX_DROP_BYTES"):
        Settings.from_env()


# ----------------------------------------------------------------------------- dates


def test_implausible_dates_quarantine_the_row_not_the_run(tmp_path):
    rows = _rows(4)
    rows[1]["Arrival_Date"] = "2099-03-01"  # after the drop's month
    rows[2]["Arrival_Date"] = "1899-12-31"
    rows[3]["Person_Birth_Date"] = "2019-04-02"  # born after the drop's month: nulled
    write_drop(tmp_path, "staged_ecds", MONTH, rows, source="ae_rjz")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert _ledger(sm) == (4, 2, 2)
    assert sm.quarantine["rule"].tolist() == ["date_out_of_range"] * 2
    kept = sm.staged.set_index("record_ref")
    assert kept.loc[
        ref_token(TOK, "ae_rjz", rows[3]["Generated_Record_ID"]), "identifier_defects"
    ] == ("Person_Birth_Date:date_out_of_range")


# ----------------------------------------------------------------------------- SNOMED CT


def test_verhoeff_check_digit():
    for code in ("272022009", "69322001", "1048061000000105", "306689006", "248062006"):
        assert verhoeff_ok(code), code
        # every single-digit change and every adjacent transposition is caught
        for i in range(len(code)):
            for d in "0123456789":
                if d != code[i]:
                    assert not verhoeff_ok(code[:i] + d + code[i + 1 :])
        for i in range(len(code) - 1):
            if code[i] != code[i + 1]:
                assert not verhoeff_ok(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


# ----------------------------------------------------------------------------- identifier check


def _staged_frame(**columns: list[str]) -> pd.DataFrame:
    base = {
        "record_ref": ["19822141544", "19822141545"],
        "nhs_number_token": ["0" * 32, "a" * 32],
        "given_name_bf": ["f" * 256, "0" * 256],
        "Der_EC_Diagnosis_All": ["69322001", "69322001,55680006"],
    }
    base.update(columns)
    return pd.DataFrame(base).astype("string")


@pytest.mark.parametrize(
    "column, value, rule",
    [
        ("Der_EC_Diagnosis_All", "seen: 999 000 0018 today", "nhs_number_shaped"),
        ("Der_EC_Diagnosis_All", "ref9990000018", "nhs_number_shaped"),
        ("Der_EC_Diagnosis_All", "99 90 00 00 18", "nhs_number_shaped"),
        ("Der_EC_Diagnosis_All", "٩٩٩٠٠٠٠٠١٨", "nhs_number_shaped"),  # Arabic-Indic digits
        ("Der_EC_Diagnosis_All", "999-000-0018", "nhs_number_shaped"),
        ("Der_EC_Diagnosis_All", "lives at se15 4qt now", "full_postcode_shaped"),
        ("Der_EC_Diagnosis_All", "with john smith", "full_name_like"),
        ("Der_EC_Diagnosis_All", "SMITH, JOHN", "full_name_like"),
        ("Der_EC_Diagnosis_All", "noteJohnSmith", "full_name_like"),
        ("EC_Attendance_Source_SNOMED_CT", "Aisha Okafor", "full_name_like"),
        ("nhs_number_token", "9990000018", "token_format"),
        ("given_name_bf", "Aisha", "token_format"),
    ],
)
def test_identifier_check_looks_inside_text_in_every_column(column, value, rule):
    frame = _staged_frame(**{column: ["69322001", value]})
    found = find_identifier_like(frame)
    assert rule in found.get(column, {}), found


def test_identifier_check_is_clean_on_clean_rows_and_record_keys_are_held_to_the_batch():
    assert find_identifier_like(_staged_frame()) == {}
    # a ten-digit record key passing modulus 11 is not an identifier by its shape alone ...
    keyed = _staged_frame(record_ref=[NHS_B, "19822141545"])
    assert find_identifier_like(keyed, record_keys=["record_ref"]) == {}
    # ... but it is when it is the NHS number of a row being staged
    raw = pd.DataFrame([GOOD["staged_ecds"] | {"NHS_Number": NHS_B}])
    known = IdentifierMatcher(frame_identifiers([(ECDS, raw)], set()))
    found = find_identifier_like(keyed, known, record_keys=["record_ref"])
    assert found == {"record_ref": {"landing_nhs": 1}}


def test_a_record_key_sent_as_two_columns_is_scanned_once_and_reported_under_both(monkeypatch):
    """`raw_record_keys` holds a table's record key twice (``record_ref`` and its own column,
    one with pandas' NaN marker, one with NA): scanned once, its findings under both names.
    The same values under other rules (not a record key: the NHS-number shape applies) are
    scanned on their own."""
    import sim_pipeline.quality.identifiers as identifiers

    calls = []
    scan = identifiers._column_findings
    monkeypatch.setattr(
        identifiers, "_column_findings", lambda *a: calls.append(a[0].name) or scan(*a)
    )
    raw = pd.DataFrame([GOOD["staged_ecds"] | {"NHS_Number": NHS_B}])
    known = IdentifierMatcher(frame_identifiers([(ECDS, raw)], set()))
    values = [f"REF{i:05d}" for i in range(50)] + [f"x{NHS_B}"]
    keys = pd.DataFrame(
        {
            "record_ref": pd.Series(values, dtype="str"),
            "Generated_Record_ID": pd.Series(values, dtype="string"),
            "note": pd.Series(values, dtype="string"),
        }
    )
    found = find_identifier_like(keys, known, ["record_ref", "Generated_Record_ID"])
    assert found == {
        "record_ref": {"landing_nhs": 1},
        "Generated_Record_ID": {"landing_nhs": 1},
        "note": {"nhs_number_shaped": 1, "landing_nhs": 1},
    }
    assert calls == ["record_ref", "note"]


def test_known_identifiers_are_counted_exactly_across_match_blocks():
    """The known-identifier match reads values in blocks (`KNOWN_BLOCK`) before one by one:
    identifiers planted first, last and either side of each block edge, among thousands of
    clean values, are each counted once; a clean column stays clean."""
    from sim_pipeline.quality.identifiers import KNOWN_BLOCK

    raw = pd.DataFrame([GOOD["staged_ecds"] | {"NHS_Number": NHS_B}])
    known = IdentifierMatcher(frame_identifiers([(ECDS, raw)], set()))
    n = 3 * KNOWN_BLOCK + 7
    clean = [f"REF{i:07d}" for i in range(n)]
    assert find_identifier_like(pd.DataFrame({"record_ref": clean}), known, ["record_ref"]) == {}
    planted = list(clean)
    spots = [0, KNOWN_BLOCK - 1, KNOWN_BLOCK, 2 * KNOWN_BLOCK, n - 1]
    for i in spots:
        planted[i] = f"note {NHS_B} r{i}"  # distinct values, each holding the staged NHS number
    found = find_identifier_like(pd.DataFrame({"record_ref": planted}), known, ["record_ref"])
    assert found == {"record_ref": {"landing_nhs": len(spots)}}


@pytest.mark.parametrize("plant", ["clean", "known_nhs", "postcode", "names_in_one_month"])
def test_record_key_findings_per_month_equal_one_scan_per_month(plant):
    """`find_identifier_like_by_group` (one pass when clean) against one call per month: the
    same findings for clean keys, a staged NHS number or a postcode in one month, and a month
    whose keys are all single first names (the share rule fires for that month only)."""
    from sim_pipeline.quality.identifiers import find_identifier_like_by_group

    raw = pd.DataFrame([GOOD["staged_ecds"] | {"NHS_Number": NHS_B}])
    known = IdentifierMatcher(frame_identifiers([(ECDS, raw)], set()))
    months = [f"2019-{m:02d}" for m in range(1, 7)]
    keys = pd.DataFrame(
        {
            "month": [m for m in months[:5] for _ in range(40)],  # 2019-06 has no rows
            "record_ref": [f"REF{i:05d}" for i in range(200)],
            "Generated_Record_ID": [f"G{i:06d}" for i in range(200)],
        }
    )
    if plant == "known_nhs":
        keys.loc[45, "record_ref"] = f"note {NHS_B}"
    elif plant == "postcode":
        keys.loc[130, "Generated_Record_ID"] = "SE15 4QT"
    elif plant == "names_in_one_month":
        names = ["Aisha", "John", "Mary", "David", "Sarah", "James", "Fatima", "Peter"]
        keys.loc[keys["month"] == "2019-03", "record_ref"] = [names[i % 8] for i in range(40)]
    cols = ["record_ref", "Generated_Record_ID"]
    got = find_identifier_like_by_group(keys[cols], keys["month"], months, known, cols)
    want = {
        m: find_identifier_like(keys.loc[keys["month"] == m, cols], known, record_keys=cols)
        for m in months
    }
    assert got == want
    assert (got["2019-02"] != {}) == (plant == "known_nhs")
    assert (got["2019-04"] != {}) == (plant == "postcode")
    if plant == "names_in_one_month":
        assert got["2019-03"]["record_ref"]["name_word_column"] == 8
        assert not find_identifier_like(keys[cols], known, record_keys=cols)  # not run-wide


def test_staging_checks_its_rows_against_their_own_identifiers(tmp_path):
    write_drop(tmp_path, "staged_ecds", MONTH, _rows(2), source="ae_rjz")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert sm.identifiers is not None and "IdentifierMatcher" not in repr(sm)
    keys = ["record_ref", *ECDS.key_columns]
    assert find_identifier_like(sm.staged, sm.identifiers, token_columns=keys) == {}
    assert sm.record_key_findings == {}
    leaked = sm.staged.assign(Der_EC_Diagnosis_All="dob 09/04/1988")
    assert "landing_dob" in find_identifier_like(leaked, sm.identifiers)["Der_EC_Diagnosis_All"]
    # a staged record key must be a token: a raw key (or anything else) breaks the token form
    raw = sm.staged.assign(record_ref="100000000001")
    assert find_identifier_like(raw, token_columns=keys) == {"record_ref": {"token_format": 1}}


def test_an_nhs_number_sent_as_a_record_key_is_found_before_it_becomes_a_token(tmp_path):
    """The provider keyed a row by a patient's NHS number: the staged record_ref is a token
    (nothing leaks), and staging still reports the broken contract so ingest blocks the run."""
    rows = _rows(2)
    rows[1]["Generated_Record_ID"] = rows[0]["NHS_Number"]
    write_drop(tmp_path, "staged_ecds", MONTH, rows, source="ae_rjz")
    sm = stage_month(tmp_path, ECDS, MONTH, TOK)
    assert rows[0]["NHS_Number"] not in sm.staged.astype("string").to_csv()
    assert sm.record_key_findings["record_ref"] == {"landing_nhs": 1}
    assert sm.record_key_findings["Generated_Record_ID"] == {"landing_nhs": 1}


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "text",
    [
        "a" * 16,
        "correct horse battery staple and more words",
        DEMO_KEY.decode(),
        "simkey1.0123456789abcdef." + "A" * 43,  # right form, no randomness
        "simkey1.0123456789abcdef." + "A" * 42,  # too short
        "simkey1.0123456789ABCDEF.zI0Dab9skgNO7iS6GoGh3DtOC5tjM1OuyLpPxiK-7Is",
    ],
)
def test_weak_or_hand_made_keys_are_refused_without_echoing_them(text):
    with pytest.raises(KeyRejected) as info:
        parse_key(text)
    assert text not in str(info.value)


def test_generated_keys_parse_and_their_id_says_nothing_about_the_secret():
    a, b = generate_key(), generate_key()
    (sa_, ida), (sb, idb) = parse_key(a), parse_key(b)
    assert len(sa_) == 32 and sa_ != sb and ida != idb
    # the same secret under another id gives the same tokens: the id is not derived from it
    other = a.split(".")
    other[1] = "0123456789abcdef"
    s2, id2 = parse_key(".".join(other))
    assert s2 == sa_ and id2 == "0123456789abcdef"
    t1, t2 = Tokeniser(sa_, fingerprint=ida), Tokeniser(s2, fingerprint=id2)
    s = pd.Series([NHS_A], dtype="string")
    assert t1.tokens(s, "nhs").tolist() == t2.tokens(s, "nhs").tolist()
    assert (t1.key_id, t2.key_id) == (ida, id2)


def test_keygen_writes_a_private_file_and_never_prints_the_key(tmp_path):
    out = tmp_path / "project.key"
    env = clean_env()
    r = subprocess.run(
        [str(BIN / "sim-pipeline"), "keygen", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    key = out.read_text().strip()
    secret, key_id = parse_key(key)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert key not in r.stdout + r.stderr and key.split(".")[2] not in r.stdout
    assert key_id in r.stdout
    again = subprocess.run(
        [str(BIN / "sim-pipeline"), "keygen", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2 and "not overwritten" in again.stderr
    assert out.read_text().strip() == key


def test_the_key_is_read_from_a_key_file_and_refused_when_weak(tmp_path, monkeypatch):
    from sim_pipeline.config import ConfigError, load_tokeniser

    key = generate_key()
    path = tmp_path / "k"
    path.write_text(key + "\n")
    monkeypatch.delenv("SIM_PSEUDONYMISATION_KEY", raising=False)
    monkeypatch.delenv("SIM_DEMO_MODE", raising=False)
    monkeypatch.setenv("SIM_PSEUDONYMISATION_KEY_FILE", str(path))
    tok = load_tokeniser()
    assert not tok.demo and tok.key_id == parse_key(key)[1]
    monkeypatch.setenv("SIM_PSEUDONYMISATION_KEY", "a" * 16)
    with pytest.raises(ConfigError, match="keygen") as info:
        load_tokeniser()
    assert "a" * 16 not in str(info.value)


# ----------------------------------------------------------------------------- errors


def test_a_failed_warehouse_statement_carries_no_value(tmp_path):
    wh = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with wh.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (v TEXT CHECK (v NOT LIKE '999%'))"))
        with pytest.raises(WarehouseError) as info, wh.transaction() as tx:
            tx.replace("t", pd.DataFrame({"v": [NHS_A]}), {"v": [NHS_B]})
        message = str(info.value)
        assert NHS_A not in message and "IntegrityError" in message
    finally:
        wh.dispose()


# ----------------------------------------------------------------------------- bulk reading


def _records_line_by_line(lines, first, header, columns):
    """The reference: every line through `parse_lines`, the frame built from Python lists (as
    the reader did before it read plain lines in bulk)."""
    from sim_pipeline.sources.reader import parse_lines

    parsed = parse_lines(lines, first, len(header))
    values = list(zip(*parsed.rows, strict=True)) if parsed.rows else [()] * len(header)
    frame = pd.DataFrame(
        {c: values[header.index(c)] for c in columns},
        index=pd.Index(parsed.numbers, name="line_number"),
        columns=columns,
        dtype="str",
    )
    return frame, len(parsed.rows) + len(parsed.bad), parsed.bad, parsed.last_ok


# pieces of fields: plain text, padding (spaces, tabs, a no-break space, an em space), quotes
# balanced and not, commas, control characters, other scripts and digits, empty
_PIECES = [
    "abc",
    "X1",
    "2019-01-05",
    " ",
    "\t",
    "  pad  ",
    "\u00a0",
    "\u2003",
    '"',
    '"q,u"',
    '""',
    ",",
    "\x00",
    "\x1b",
    "\x0b",
    "\x1f",
    "\x7f",
    "é",
    "٩٤٣",
    "",
    "O'Brien",
    "a b",
]


@pytest.mark.parametrize("seed", range(6))
def test_bulk_reading_gives_what_line_by_line_reading_gives(seed):
    """Random lines built from awkward pieces (quotes, padding of every kind, control
    characters, other scripts, commas, blank lines, extra and missing fields), read in bulk
    and line by line: the same frame (values, missing values, dtypes, line numbers), the same
    quarantine (rules and reasons, in order), line count and last-line verdict."""
    import random

    from sim_pipeline.sources.reader import read_records

    rng = random.Random(seed)
    header = ["a", "b", "extra", "c"]
    columns = ["c", "a", "b"]  # the contract's order, a column of the header left out
    lines = []
    for _ in range(400):
        kind = rng.random()
        if kind < 0.05:
            lines.append("")
        elif kind < 0.55:  # plain: the bulk path's lines
            lines.append(",".join(rng.choice(["v1", " v2 ", "", "\tt", "x y"]) for _ in header))
        else:
            fields = rng.choice([3, 4, 4, 4, 5])
            lines.append(
                ",".join(
                    "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 3)))
                    for _ in range(fields)
                )
            )
    for first, chunk in ((2, lines), (10, lines[:1]), (2, []), (5, ["", ""]), (3, lines[-7:])):
        got = read_records(chunk, first, header, columns)
        frame, rows_read, bad, last_ok = _records_line_by_line(chunk, first, header, columns)
        pd.testing.assert_frame_equal(got.frame, frame, check_index_type=True)
        assert list(got.frame.dtypes) == list(frame.dtypes)
        assert (got.rows_read, got.bad, got.last_ok) == (rows_read, bad, last_ok)
    # a one-column file: a blank line (one empty field when split) is still not a data line
    one = ["v", "", " ", "", '"q"', "w,x"]
    got = read_records(one, 2, ["a"], ["a"])
    frame, rows_read, bad, last_ok = _records_line_by_line(one, 2, ["a"], ["a"])
    pd.testing.assert_frame_equal(got.frame, frame, check_index_type=True)
    assert (got.rows_read, got.bad, got.last_ok) == (rows_read, bad, last_ok) and rows_read == 4
    # both paths were taken
    assert read_records(lines, 2, header, columns).bad
    assert len(read_records(lines, 2, header, columns).frame) > 150
