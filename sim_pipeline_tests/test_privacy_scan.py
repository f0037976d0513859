"""The auditor's privacy scan (sim_pipeline.quality.privacy_scan) against planted leaks.

A hand-built landing folder (a few MHSDS, police and ECDS rows) supplies the identifiers. Every
form an identifier can take is planted in a text file, in a SQLite database (a text column and a
zlib-compressed blob, as Dagster stores snapshots) and in a PostgreSQL table (text and
compressed bytea), and must be found as the right kind. Each form also records whether the scanner
before this change (OLD_* below, a copy of its rules) found it: most did not, so these tests prove
new capability. Negative tests: hex tokens and other eight-digit runs, our own data dictionary,
event dates inside the data period and the synthetic generator's non-identifying columns.

No pipeline run. The PostgreSQL tests start one throwaway server for the module
(sim_pipeline_tests/postgres.py); without PostgreSQL they skip, except in CI (CI=true), where
that is a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sqlite3
import uuid
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from sim_pipeline.quality.identifier_forms import (
    COMPACT_DATE_RE,
    DOB_COMPACT,
    NAME_PAIRS,
    IdentifierMatcher,
    _compact_forms,
    software_vocabulary,
)
from sim_pipeline.quality.landing_identifiers import landing_identifiers, own_vocabulary
from sim_pipeline.quality.privacy_scan import (
    dagster_storage_dirs,
    dagster_storage_urls,
    scan,
    scan_database,
    scan_warehouse_tables,
)
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.warehouse.dictionary import render_markdown
from sim_pipeline_tests.conftest import link_landing
from sim_pipeline_tests.postgres import PostgresServer
from sim_pipeline_tests.samples import GOOD, write_drop

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- the old scanner
# The rules of the scanner before this change, copied from privacy_scan.py as it was: NHS numbers
# only as ten digits in a row, dates of birth only as ISO, postcodes only with \b edges (so not
# after "_") and an optional space, names only as a whole token exactly as collected (as written,
# or upper case). Applied to the same identifier sets (for this landing folder the old collection
# gave the same sets: single-part names, ISO dates of birth, well-formed postcodes).
OLD_NHS_RE = re.compile(r"(?<!\d)\d{10}(?!\d)")
OLD_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
OLD_POSTCODE_RE = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b")
OLD_WORD_RE = re.compile(r"[A-Za-z0-9_]+")


def old_scanner_kinds(text: str, ids: dict[str, set[str]]) -> list[str]:
    kinds = []
    if set(OLD_NHS_RE.findall(text)) & ids["nhs"]:
        kinds.append("nhs")
    if set(OLD_DATE_RE.findall(text)) & ids["dob"]:
        kinds.append("dob")
    if set(OLD_POSTCODE_RE.findall(text.upper())) & ids["postcode"]:
        kinds.append("postcode")
    if set(OLD_WORD_RE.findall(text)) & ids["name"]:
        kinds.append("name")
    return kinds


# ----------------------------------------------------------------------------- the landing folder
# Arun Okafor: NHS 943 476 5919, born 12 March 1985, SE15 4QT (MHSDS).
# Siobhan McKenzie: born 4 November 1971, SW17 9NF (MHSDS).
# WILL SUTTON (police CAD, upper case as the CAD writes names): "will" is a word our software
# writes in lower case everywhere, "Sutton" a borough (a value of the CAD's Borough column), born
# inside the data period (2016-05-01, not a date of birth the scan can look for).
# An ECDS attendance: NHS 999 000 0018, born 9 April 1988, KT6 8AX; a code column holds 19880409,
# one eight-digit form of that date of birth.
NHS_ARUN = "9434765919"


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    mpi = GOOD["staged_mhs001mpi"]
    write_drop(
        root,
        "staged_mhs001mpi",
        "2019-03",
        [
            dict(
                mpi,
                LocalPatientId="SLAM-P0000001",
                NHSNumber=NHS_ARUN,
                PersonGivenName="Arun",
                PersonFamilyName="Okafor",
                PersonBirthDate="1985-03-12",
                Postcode="SE15 4QT",
            ),
            dict(
                mpi,
                LocalPatientId="SLAM-P0000002",
                NHSNumber="9990000026",
                PersonGivenName="Siobhan",
                PersonFamilyName="McKenzie",
                PersonBirthDate="1971-11-04",
                Postcode="SW17 9NF",
            ),
        ],
    )
    write_drop(
        root,
        "staged_police_cad_incidents",
        "2019-03",
        [
            dict(
                GOOD["staged_police_cad_incidents"],
                PersonGivenName="WILL",
                PersonFamilyName="SUTTON",
                PersonBirthDate="2016-05-01",
                AddressPostcode="",
                Borough="Sutton",
            )
        ],
    )
    write_drop(
        root,
        "staged_ecds",
        "2019-03",
        [
            dict(
                GOOD["staged_ecds"],
                Postcode_Usual_Address="KT6 8AX",
                EC_Injury_Intent_SNOMED_CT="19880409",
            )
        ],
    )
    return root


@pytest.fixture(scope="module")
def ids(landing: Path) -> dict[str, set[str]]:
    return landing_identifiers(landing, own_vocabulary())


def test_landing_identifiers_collects_the_planted_people(ids):
    assert ids["nhs"] == {NHS_ARUN, "9990000026", "9990000018"}
    assert {"Arun", "ARUN", "Okafor", "Siobhan", "McKenzie", "WILL"} <= ids["name"]
    assert not {"Sutton", "SUTTON"} & ids["name"]  # a borough: a value of a non-identifying column
    assert ids["dob"] == {"1985-03-12", "1971-11-04", "1988-04-09"}  # not 2016-05-01
    assert {"SE15 4QT", "SE154QT", "SW179NF", "KT68AX"} <= ids["postcode"]
    assert {"arun okafor", "siobhan mckenzie", "will sutton"} <= ids[NAME_PAIRS]
    assert "19850312" in ids[DOB_COMPACT] and "12031985" in ids[DOB_COMPACT]
    assert "19880409" not in ids[DOB_COMPACT]  # also a value of a code column
    assert "will" in software_vocabulary() and "arun" not in software_vocabulary()


def test_a_name_of_hex_letters_is_not_found_inside_lower_case_hex():
    """Found on a real run: a UUID in a GX result held the hex group "abda", a landing name.
    Lower-case hex (UUIDs, hashes, tokens) is not a name; the name as written still is."""
    m = IdentifierMatcher({"name": {"Abda", "ABDA", "Arun"}}, lower_case_words=())
    assert m.kinds('"id": "7e3cb780-30f8-401d-abda-29a5ef069d52"') == set()
    assert m.kinds("token 3fa9c0deadbeefabdaface") == set()
    assert m.kinds("seen Abda today") == {"name"} and m.kinds("ABDA") == {"name"}
    assert m.kinds("seen arun today") == {"name"}  # other names still in any case


# ----------------------------------------------------------------------------- the forms
# (id, text planted, kind found, whether the old scanner found it)
FORMS: list[tuple[str, str, str, bool]] = [
    # NHS numbers
    ("nhs-plain", "seen 9434765919 today", "nhs", True),
    ("nhs-spaces", "NHS no. 943 476 5919.", "nhs", False),
    ("nhs-hyphens", "nhs=943-476-5919", "nhs", False),
    ("nhs-glued-letters", "nhs9434765919", "nhs", True),
    ("nhs-glued-underscores", "ref_9434765919_x", "nhs", True),
    # dates of birth
    ("dob-iso", "born 1985-03-12", "dob", True),
    ("dob-iso-datetime", "1985-03-12T00:00:00", "dob", True),
    ("dob-year-first-slashes", "1985/03/12", "dob", False),
    ("dob-day-first-slashes", "DOB 12/03/1985", "dob", False),
    ("dob-day-first-hyphens", "12-03-1985", "dob", False),
    ("dob-day-first-dots", "12.03.1985", "dob", False),
    ("dob-day-first-spaces", "12 03 1985", "dob", False),
    ("dob-single-digits", "born 4/11/1971", "dob", False),
    ("dob-us-order", "03/12/1985", "dob", False),
    ("dob-us-single-digits", "11/4/1971", "dob", False),
    ("dob-eight-digits", "dob: 19850312", "dob", False),
    ("dob-eight-digits-day-first", "12031985", "dob", False),
    ("dob-eight-digits-us-order", "03121985", "dob", False),
    ("dob-eight-digits-in-file-name", "extract_19850312.csv", "dob", False),
    ("dob-iso-basic-datetime", "19850312T000000Z", "dob", False),
    ("dob-month-abbreviation", "born 12 Mar 1985", "dob", False),
    ("dob-month-name-upper", "12 MARCH 1985", "dob", False),
    ("dob-month-abbreviation-hyphens", "12-mar-1985", "dob", False),
    ("dob-ordinal", "the 12th March, 1985", "dob", False),
    ("dob-month-first", "March 12, 1985", "dob", False),
    ("dob-month-first-abbreviation", "Nov 4 1971", "dob", False),
    # postcodes
    ("postcode-spaced", "SE15 4QT", "postcode", True),
    ("postcode-unspaced", "SE154QT", "postcode", True),
    ("postcode-lower", "lives at se15 4qt, flat 2", "postcode", True),
    ("postcode-lower-unspaced", "pc=sw179nf", "postcode", True),
    ("postcode-after-underscore", "addr_SE154QT_x", "postcode", False),
    ("postcode-hyphen", "KT6-8AX", "postcode", False),
    # single names
    ("name-title", "seen Arun today", "name", True),
    ("name-upper", "ARUN", "name", True),
    ("name-possessive", "Arun's", "name", True),
    ("name-lower", "seen arun today", "name", False),
    ("name-mixed-case", "aRuN", "name", False),
    ("name-family-lower", "dr okafor", "name", False),
    ("name-camel-case-name-lower", "mckenzie", "name", False),
    ("name-software-word-upper", "WILL", "name", True),
    ("name-software-word-title", "Dear Will,", "name", False),
    ("name-software-word-mixed-case", "wILL", "name", False),
    # one record's given and family name together
    ("pair-glued-lower", "arunokafor", "name", False),
    ("pair-glued-camel", "ArunOkafor", "name", False),
    ("pair-glued-reversed-upper", "OKAFORARUN", "name", False),
    ("pair-dot", "arun.okafor@example.org", "name", False),
    ("pair-underscore", "arun_okafor", "name", False),
    ("pair-hyphen", "okafor-arun", "name", False),
    ("pair-comma", "okafor,arun", "name", False),
    ("pair-upper-space", "OKAFOR ARUN", "name", True),
    ("pair-comma-space", "Okafor, Arun", "name", True),
    ("pair-in-camel-identifier", "reportArunOkafor2019", "name", False),
    ("pair-in-snake-identifier", "arun_okafor_2019", "name", False),
    ("pair-camel-case-family", "siobhan.mckenzie", "name", False),
    # neither name alone is looked for ("will": software word in lower case, "Sutton": borough)
    ("pair-of-words", "will.sutton", "name", False),
    ("pair-of-words-joined", "WillSutton", "name", False),
]
FORM_IDS = [f[0] for f in FORMS]

# Texts that hold no landing identifier in any form the scan looks for.
NOT_FOUND: list[tuple[str, str]] = [
    ("longer-digit-run", "19434765919 94347659190 943 476 59190"),
    ("postcode-district-and-longer", "SE15 SE154QTX"),
    ("name-inside-identifier", "Arun_start_end patientArun arunsmithson okafors"),
    ("software-word-lower", "this will run; the page will load"),
    ("borough", "Sutton SUTTON sutton"),
    ("event-dates", "2019-03-05 05/03/2019 5 Mar 2019 20190305 2019-03-05T03:40:00"),
    ("date-of-birth-in-data-period", "2016-05-01 01/05/2016 20160501"),
    ("person-key", "P19850312 P12031985"),
    ("decimals", "0.19850312 19850312.5 3.12031985e-05"),
    ("uuid", "19850312-ab12-4c3d-8e9f-0123456789ab"),
    ("code-value", "19880409"),  # a value of a non-identifying landing column
    ("hex-glued", "ab19850312cd 0x19850312"),
]


def _plant_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _plant_sqlite(path: Path, text: str, compressed: bool) -> Path:
    con = sqlite3.connect(path)
    try:
        con.execute("create table t (id integer, v text, b blob)")
        value = (None, zlib.compress(text.encode())) if compressed else (text, None)
        con.execute("insert into t values (1, ?, ?)", value)
        con.commit()
    finally:
        con.close()
    return path


@pytest.mark.parametrize(("form", "text", "kind", "old_found"), FORMS, ids=FORM_IDS)
def test_form_is_found_in_text_and_sqlite(tmp_path, ids, form, text, kind, old_found):
    places = [
        _plant_file(tmp_path / "leak.txt", text),
        _plant_sqlite(tmp_path / "leak_text.db", text, compressed=False),
        _plant_sqlite(tmp_path / "leak_blob.db", text, compressed=True),
    ]
    assert scan(places, ids) == {str(p): [kind] for p in places}
    assert old_scanner_kinds(text, ids) == ([kind] if old_found else [])


@pytest.mark.parametrize(("case", "text"), NOT_FOUND, ids=[c for c, _ in NOT_FOUND])
def test_no_false_alarm(tmp_path, ids, case, text):
    places = [
        _plant_file(tmp_path / "clean.txt", text),
        _plant_sqlite(tmp_path / "clean_blob.db", text, compressed=True),
    ]
    assert scan(places, ids) == {}


def test_forms_inside_a_large_text_are_all_found(tmp_path, ids):
    """Many forms at once among plenty of clean text (blocks, distinct lines) in one file."""
    filler = "\n".join(
        f"{uuid.UUID(int=i)} 2019-03-{i % 28 + 1:02d} Southwark" for i in range(2000)
    )
    for form, text, kind, _ in FORMS:
        path = _plant_file(tmp_path / f"{form}.txt", f"{filler}\n{filler}\nnote: {text}\n{filler}")
        assert scan([path], ids) == {str(path): [kind]}, form


def test_one_place_reports_every_kind_once(tmp_path, ids):
    text = "943 476 5919 | 12/03/1985 | addr_se154qt | arun"
    path = _plant_file(tmp_path / "all.txt", text)
    assert scan([path], ids) == {str(path): ["nhs", "dob", "postcode", "name"]}
    assert old_scanner_kinds(text, ids) == []


# ----------------------------------------------------------------------------- negative tests


def test_eight_digit_runs_in_hex_tokens_are_not_dates(tmp_path):
    """Measured: these 7.5 MB of hex tokens (HMAC tokens, Bloom filters, UUIDs) hold 22,112
    eight-digit runs with no digit on either side; with every date from 1920 to 2014 a date of
    birth, a rule asking only for that reads 15 of them as one (with the demo's 6,000 dates of
    birth about two runs in ten thousand: tens of false alarms on a warehouse of Bloom filters).
    The scan's rule (a number of its own) reads none."""
    rng = random.Random(20260101)
    first, last = dt.date(1920, 1, 1).toordinal(), dt.date(2014, 12, 31).toordinal()
    dobs = {dt.date.fromordinal(d).isoformat() for d in range(first, last + 1)}
    ids = {"nhs": set(), "name": set(), "postcode": set(), "dob": dobs}
    tokens = [f"{rng.getrandbits(128):032x}" for _ in range(50_000)]  # HMAC tokens
    tokens += [f"{rng.getrandbits(1024):0256x}" for _ in range(20_000)]  # Bloom filters
    tokens += [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(20_000)]
    text = "\n".join(tokens)
    compact = _compact_forms(dobs)
    runs = re.findall(r"(?<!\d)\d{8}(?!\d)", text)
    naive = set(runs) & compact
    assert len(runs) > 20_000 and len(naive) >= 5  # the hazard is real (measured: 22,112 and 15)
    assert not set(COMPACT_DATE_RE.findall(text)) & compact
    path = _plant_file(tmp_path / "tokens.txt", text)
    assert scan([path], ids) == {}
    # and the same date of birth as a number of its own is still found
    leaked = _plant_file(tmp_path / "leak.txt", f"{text}\n{sorted(naive)[0]}\n")
    assert scan([leaked], ids) == {str(leaked): ["dob"]}


def test_data_dictionary_text_is_not_a_hit(tmp_path, ids, synth_ids):
    path = _plant_file(tmp_path / "dictionary.md", render_markdown())
    assert scan([path], ids) == {}
    assert scan([path], synth_ids) == {}


@pytest.fixture(scope="module")
def synth_landing(small_synth, tmp_path_factory) -> Path:
    """The session's synthetic landing, two months of it (all providers)."""
    landing, _ = small_synth
    root = tmp_path_factory.mktemp("synth")
    return link_landing(landing, root / "landing", months=lambda m: m in {"2019-05", "2019-06"})


@pytest.fixture(scope="module")
def synth_ids(synth_landing: Path) -> dict[str, set[str]]:
    ids = landing_identifiers(synth_landing, own_vocabulary())
    assert min(len(v) for v in ids.values()) > 50
    return ids


def test_synthetic_non_identifying_columns_are_not_hits(tmp_path, synth_landing, synth_ids):
    """Every value of every non-identifying column the generator writes (codes, dates, times,
    boroughs, ethnicities, outcomes, record keys), as text and in SQLite."""
    from sim_pipeline.quality.landing_identifiers import _read_any

    values: set[str] = set()
    for table in SOURCE_TABLES:
        raw = set(table.identifiers.raw_columns())
        for path in synth_landing.glob(f"*/*/{table.file_name()}"):
            df = _read_any(path)
            for col in df.columns:
                if col not in raw:
                    values |= set(df[col].tolist())
    assert len(values) > 1000
    text = "\n".join(sorted(values))
    places = [
        _plant_file(tmp_path / "columns.txt", text),
        _plant_sqlite(tmp_path / "columns.db", text, compressed=False),
    ]
    assert scan(places, synth_ids) == {}
    # while a name from the identifying columns among them is found (the test can fail)
    name = sorted(n for n in synth_ids["name"] if n.istitle())[0]
    leaked = _plant_file(tmp_path / "leak.txt", f"{text}\n{name}")
    assert scan([leaked], synth_ids) == {str(leaked): ["name"]}


# ----------------------------------------------------------------------------- databases


def test_scan_database_reads_every_table_of_a_sqlite_url(tmp_path, ids):
    db = tmp_path / "w.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as con:
        con.execute(sa.text("create table clean (v text)"))
        con.execute(sa.text("insert into clean values ('Southwark 2019-03-05')"))
        con.execute(sa.text("create table notes (id integer, body blob)"))
        con.execute(
            sa.text("insert into notes values (1, :b)"),
            {"b": zlib.compress(b"patient okafor, arun seen 943-476-5919")},
        )
    engine.dispose()
    url = f"sqlite:///{db}"
    assert scan_database(url, ids) == {"table notes": ["nhs", "name"]}
    assert scan_database(url, ids, label="warehouse") == {"warehouse: table notes": ["nhs", "name"]}
    assert scan_warehouse_tables(url, ids) == {"table notes": ["nhs", "name"]}


def test_dagster_storage_urls_from_the_deploy_instance(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    for var, value in {
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "s3cret/pw",
        "DAGSTER_PG_HOST": "db.internal",
        "DAGSTER_PG_PORT": "5433",
        "DAGSTER_PG_DB": "dagster_prod",
    }.items():
        monkeypatch.setenv(var, value)
    assert dagster_storage_urls(home) == [
        "postgresql+psycopg2://dagster:s3cret%2Fpw@db.internal:5433/dagster_prod"
    ]
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url:\n      env: MY_PG_URL\n"
        "compute_logs:\n  module: dagster.core.storage.local_compute_log_manager\n"
        "  class: LocalComputeLogManager\n  config:\n"
        f"    base_dir: {tmp_path / 'logs'}\n"
    )
    monkeypatch.setenv("MY_PG_URL", "postgresql://u@h:1/d")
    assert dagster_storage_urls(home) == ["postgresql://u@h:1/d"]
    assert dagster_storage_dirs(home) == [tmp_path / "logs"]
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # SQLite storage
    assert dagster_storage_urls(home) == [] and dagster_storage_dirs(home) == []


@pytest.fixture(scope="module")
def pg_form_hits(pg: PostgresServer, ids) -> dict[str, list[str]]:
    """Every form and every clean text in a table of its own (text column; bytea compressed),
    on PostgreSQL, scanned once."""
    url = pg.create_database("planted")
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("create schema audit"))  # a second schema is read too
        rows = [(f, t) for f, t, _, _ in FORMS] + NOT_FOUND
        for i, (_, text) in enumerate(rows):
            con.execute(sa.text(f"create table form_{i}_text (id int, v text, at timestamptz)"))
            con.execute(
                sa.text(f"insert into form_{i}_text values (1, :v, now())"), {"v": f"x {text} y"}
            )
            con.execute(sa.text(f"create table audit.form_{i}_blob (id int, b bytea)"))
            con.execute(
                sa.text(f"insert into audit.form_{i}_blob values (1, :b)"),
                {"b": zlib.compress(text.encode())},
            )
    engine.dispose()
    return scan_database(url, ids)


@pytest.mark.parametrize(("form", "text", "kind", "old_found"), FORMS, ids=FORM_IDS)
def test_form_is_found_in_postgres(pg_form_hits, form, text, kind, old_found):
    i = FORM_IDS.index(form)
    assert pg_form_hits[f"table form_{i}_text"] == [kind]
    assert pg_form_hits[f"table audit.form_{i}_blob"] == [kind]


def test_postgres_clean_tables_are_not_hits(pg_form_hits):
    assert len(pg_form_hits) == 2 * len(FORMS)  # no table of NOT_FOUND is a hit


def test_privacy_scan_command_reads_dagster_postgres_storage(pg, landing, ids, tmp_path, capsys):
    """`sim-pipeline privacy-scan` with a Dagster instance on PostgreSQL and a PostgreSQL
    warehouse: both databases are scanned, table by table, and no value is printed."""
    import dagster as dg

    from sim_pipeline.cli.outputs import cmd_privacy_scan

    home = tmp_path / "home"
    home.mkdir()
    pg.create_database("dagster_storage")
    (home / "dagster.yaml").write_text(pg.dagster_yaml("dagster_storage"))
    with dg.DagsterInstance.from_config(str(home)) as instance:  # creates Dagster's tables
        instance.run_storage.set_cursor_values({"note": "nothing personal"})
    warehouse = pg.create_database("warehouse_scan")
    env = {
        "SIM_LANDING_DIR": str(landing),
        "SIM_WAREHOUSE_URL": warehouse,
        "DAGSTER_HOME": str(home),
        "SIM_PROJECT_DIR": str(tmp_path),
        "SIM_QUALITY_DIR": str(tmp_path / "quality"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert cmd_privacy_scan(argparse.Namespace()) == 0
        out = capsys.readouterr().out
        assert "scanned every table of the dagster storage database" in out
        assert "scanned every table of the warehouse database" in out
        assert "0 places hold a landing identifier" in out

        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.run_storage.set_cursor_values({"note": "okafor,arun 1985/03/12"})
        engine = sa.create_engine(warehouse)
        with engine.begin() as con:
            con.execute(sa.text("create table staged_x (v text)"))
            con.execute(sa.text("insert into staged_x values ('943 476 5919')"))
        engine.dispose()
        assert cmd_privacy_scan(argparse.Namespace()) == 1
        out = capsys.readouterr().out
    assert "IDENTIFIER FOUND in dagster storage: table kvs: dob, name" in out
    assert "IDENTIFIER FOUND in warehouse: table staged_x: nhs" in out
    assert "2 places hold a landing identifier" in out
    for value in ("okafor", "Okafor", "arun", "1985", "943 476", NHS_ARUN):
        assert value not in out


def test_privacy_scan_command_fails_when_dagster_storage_cannot_be_read(
    landing, tmp_path, capsys, monkeypatch
):
    """A PostgreSQL storage the scan cannot reach is a failure (exit 2), not "0 places"; the
    message names the database without its password."""
    from sim_pipeline.cli.outputs import cmd_privacy_scan

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url: postgresql+psycopg2://u:hunter22@127.0.0.1:1/d\n"
    )
    for k, v in {
        "SIM_LANDING_DIR": str(landing),
        "SIM_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "DAGSTER_HOME": str(home),
        "SIM_PROJECT_DIR": str(tmp_path),
        "SIM_QUALITY_DIR": str(tmp_path / "quality"),
    }.items():
        monkeypatch.setenv(k, v)
    assert cmd_privacy_scan(argparse.Namespace()) == 2
    out, err = capsys.readouterr()
    assert (
        "cannot read the dagster storage database postgresql+psycopg2://u:***@127.0.0.1:1/d" in err
    )
    assert "hunter22" not in out + err and "places hold" not in out


def test_landing_identifiers_batched_by_table_equal_file_by_file(
    small_synth, tmp_path, monkeypatch
):
    """`landing_identifiers` joins each table's files into batches; the identifiers are those
    of the files read one by one, also across batch edges, with a file lacking a column, an
    empty file and a header-only file among them."""
    from sim_pipeline.quality import landing_identifiers as ps

    landing = link_landing(small_synth[0], tmp_path / "landing", lambda m: m <= "2016-04")
    mpi = next(landing.glob("*/2016-02/MHS001MPI.csv"))
    text = mpi.read_text().splitlines()
    header = text[0].split(",")
    gone = header.index("PersonFamilyName")  # this file lacks the family-name column
    mpi.unlink()  # a linked file is replaced, never edited
    mpi.write_text(
        "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != gone) for line in text)
        + "\n"
    )
    empty = next(landing.glob("*/2016-03/MHS001MPI.csv"))
    empty.unlink()
    empty.write_text("")
    header_only = next(landing.glob("*/2016-04/MHS001MPI.csv"))
    first_line = header_only.read_text().splitlines()[0]
    header_only.unlink()
    header_only.write_text(first_line + "\n")

    one_by_one = ps.frame_identifiers(
        (
            (table, ps._read_any(path))
            for table in SOURCE_TABLES
            for path in sorted(landing.glob(f"*/*/{table.file_name()}"))
        ),
        own_vocabulary(),
    )
    monkeypatch.setattr(ps, "IDENTIFIER_BATCH_ROWS", 150)  # batch edges inside every table
    batches = list(ps._table_batches(landing))
    assert len(batches) > 2 * len(SOURCE_TABLES)
    assert landing_identifiers(landing, own_vocabulary()) == one_by_one
    assert min(len(v) for v in one_by_one.values()) > 10


def test_rows_identifiers_are_collected_in_every_written_form():
    """The identifiers ingest collects from the rows it stages (`frame_identifiers`): an NHS
    number as ten digits, spaced, hyphenated, dotted or in another script's digits, never a
    number of another length; a postcode in any case, spaced, unspaced or hyphenated (both
    forms kept), never one of another shape."""
    import pandas as pd

    from sim_pipeline.quality.landing_identifiers import frame_identifiers

    mpi = next(t for t in SOURCE_TABLES if t.table == "MHS001MPI")
    nhs = [
        "9434765919",
        "943 476 5920",
        "943-476-5921",
        "943.476.5922",
        "٩٤٣٤٧٦٥٩٢٣",
        "943\t476\t5924",
        "94347659",
        "94347659250",
        "",
        "abc4765926",
    ]
    postcodes = ["SE15 4QT", "se154qu", "SE15-4QV", "SE15  4QW", "SE154QTX", "NOT A CODE"]
    n = max(len(nhs), len(postcodes))
    frame = pd.DataFrame(
        {
            "NHSNumber": (nhs + [None] * n)[:n],
            "Postcode": (postcodes + [None] * n)[:n],
            "PersonGivenName": [None] * n,
            "PersonFamilyName": [None] * n,
            "PersonBirthDate": [None] * n,
        },
        dtype="str",
    )
    found = frame_identifiers([(mpi, frame)], set())
    assert found["nhs"] == {
        "9434765919",
        "9434765920",
        "9434765921",
        "9434765922",
        "9434765923",
        "9434765924",
    }
    assert found["postcode"] == {f"SE15{s}4Q{c}" for c in "TUVW" for s in ("", " ")}
