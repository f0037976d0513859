"""Provider-side tokenisation (`ingest.tokenised`, `sim-pipeline tokenise`): a tokenised drop
stages exactly the rows of its raw extract, streaming reads what a whole read reads, and the
landing holds the line against tampered drops (every attack here is kept as a test)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sim_pipeline.identity import Tokeniser
from sim_pipeline.identity.keys import parse_key
from sim_pipeline.ingest.staging import stage_run
from sim_pipeline.ingest.tokenised import (
    TOKENISED_RULES,
    TokeniseRefused,
    contract_version,
    drop_inconsistencies,
    manifest_path,
    providers_named,
    tokenise_file,
    tokenise_landing,
)
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES
from sim_pipeline.sources.reader import DropFileError, iter_drop, read_drop
from sim_pipeline.warehouse.dictionary import RUN_SPECIFIC_COLUMNS
from sim_pipeline_tests.conftest import (
    OTHER_KEY,
    PROJECT_KEY,
    cli,
    link_landing,
    project_env,
    snapshot,
)
from sim_pipeline_tests.samples import GOOD, IDENTIFYING_VALUES, NHS_A, NHS_B, csv_text

SECRET, KEY_ID = parse_key(PROJECT_KEY)
TOK = Tokeniser(SECRET, fingerprint=KEY_ID)
AMB = BY_ASSET["staged_ambulance_incidents"]
MONTH = "2019-03"


def _stage(landing: Path, table=AMB, months=(MONTH,)):
    return stage_run(landing, table, list(months), TOK)


def _same_staging(raw: Path, tokenised: Path, table, months) -> None:
    """Staged rows equal, column types too, and the quarantine rows; the ledger equal but for
    the file's hash, form and contract version."""
    a, b = _stage(raw, table, months), _stage(tokenised, table, months)
    pd.testing.assert_frame_equal(a.staged, b.staged, obj=f"{table.asset_name} staged")
    # (ingest's own quarantine holds a text column with blanks as object or str, by content)
    a_q, b_q = (q.astype(object).where(q.notna(), None) for q in (a.quarantine, b.quarantine))
    pd.testing.assert_frame_equal(a_q, b_q, obj=f"{table.asset_name} quarantine")
    differ = ["file_sha256", "drop_form", "contract_version"]
    pd.testing.assert_frame_equal(a.ledger.drop(columns=differ), b.ledger.drop(columns=differ))
    assert set(b.ledger["drop_form"]) <= {"tokenised"} and len(b.ledger) == len(a.ledger)
    assert (b.ledger["rows_read"] == b.ledger["rows_loaded"] + b.ledger["rows_quarantined"]).all()


# ----------------------------------------------------------------------- reading in chunks


def test_iter_drop_reads_what_read_drop_reads_in_any_chunk(tmp_path):
    """Random files (line breaks of every kind, a BOM, blank lines, stray quotes, wrong field
    counts, no final line break, bad UTF-8) read in chunks of 1, 2, 7 and 100 lines: the same
    records, line numbers, line quarantine and file errors as one whole read."""
    cols = AMB.columns
    rng = random.Random(7)

    def line() -> str:
        if rng.random() < 0.7:
            return ",".join(f"v{rng.randint(0, 9)}" for _ in cols)
        return ",".join(
            "".join(rng.choice('ab,"x 1') for _ in range(rng.randint(0, 4))) for _ in cols
        )

    f = tmp_path / "d.csv"
    compared = 0
    for _ in range(120):
        nl = rng.choice(["\n", "\r\n", "\r"])
        lines = [",".join(cols)] + [line() if rng.random() > 0.1 else "" for _ in range(30)]
        body = nl.join(lines[: rng.randint(1, 31)]) + (nl if rng.random() < 0.7 else "")
        if rng.random() < 0.05:
            body = rng.choice(["", "  \n\n", "\n" + body])
        data = (("\ufeff" if rng.random() < 0.2 else "") + body).encode()
        data += b"\xff" if rng.random() < 0.03 else b""
        f.write_bytes(data)
        try:
            whole, error = read_drop(f, AMB, "d.csv"), None
        except DropFileError as e:
            whole, error = None, e.rule
        for k in (1, 2, 7, 100):
            try:
                chunks, chunk_error = list(iter_drop(f, AMB, "d.csv", k)), None
            except DropFileError as e:
                chunks, chunk_error = None, e.rule
            assert chunk_error == error, (body, k)
            if whole is not None:
                frame = pd.concat([c.frame for c in chunks]) if chunks else whole.frame
                bad = pd.concat([c.bad_shape for c in chunks]) if chunks else whole.bad_shape
                assert frame.equals(whole.frame) or (frame.empty and whole.frame.empty)
                assert (
                    bad.astype(str)
                    .reset_index(drop=True)
                    .equals(whole.bad_shape.astype(str).reset_index(drop=True))
                )
                assert sum(c.rows_read for c in chunks) == whole.rows_read
                compared += 1
    assert compared > 250


# ----------------------------------------------------------------------- the same rows


def test_a_tokenised_landing_stages_the_rows_of_the_raw_landing(small_synth, tmp_path):
    """The session's synthetic drops of one month, every provider tokenised (in chunks of 97
    lines, so repeats and line numbers cross chunks in the larger files; and each table's files
    together, to the same bytes): every table stages the same rows and quarantine, and a
    balanced ledger naming the form."""
    raw = link_landing(small_synth[0], tmp_path / "raw", lambda m: m == MONTH)
    tok = link_landing(small_synth[0], tmp_path / "tok", lambda m: m == MONTH, copy=True)
    everyone = sorted({s for t in SOURCE_TABLES for s in t.providers})
    for drop in sorted(tok.glob("*/*/*.csv")):
        table = next(t for t in SOURCE_TABLES if t.file_name() == drop.name)
        staged_raw = drop.with_name("raw.csv")
        drop.rename(staged_raw)
        tokenise_file(staged_raw, drop, table, drop.parts[-3], MONTH, TOK, chunk_lines=97)
        staged_raw.unlink()
    assert len(list(tok.glob("*/*/*.manifest.json"))) == len(list(raw.glob("*/*/*.csv")))
    # a table's small files tokenised together (the demo's mode): the same bytes, file by file
    batch = link_landing(small_synth[0], tmp_path / "batch", lambda m: m == MONTH)
    assert len(tokenise_landing(batch, everyone, TOK)) == len(list(raw.glob("*/*/*.csv")))
    for f in sorted(tok.glob("*/*/*")):
        assert f.read_bytes() == (batch / f.relative_to(tok)).read_bytes(), f
    for table in SOURCE_TABLES:
        _same_staging(raw, tok, table, [MONTH])
    # nothing identifying in any tokenised drop (the generator's own names are in the raw)
    text = "\n".join(p.read_text() for p in tok.glob("*/*/*"))
    assert providers_named("all") == everyone
    assert not [v for v in IDENTIFYING_VALUES if v in text]


def _raw_rows() -> list[dict[str, str]]:
    """Ambulance rows exercising every row rule ingest applies, some across chunk borders."""
    good = GOOD["staged_ambulance_incidents"]
    rows = [dict(good, IncidentId=f"LAS-2019-{i:07d}") for i in range(1, 9)]
    rows[1] = dict(rows[1], NHSNumber="9990000019")  # bad check digit: nulled, row kept
    rows[2] = dict(rows[2], CallDateTime="2019-05-20 10:00:00")  # after the month's end
    rows[3] = dict(rows[3], NHSNumber=NHS_B, Category="C9")  # not in the code list
    rows.append(dict(rows[0]))  # exact repeat, chunks later
    rows.append(dict(rows[4], Borough="Lambeth"))  # record key repeated, chunks later
    return rows


def test_repeats_bad_lines_and_defects_across_chunks_are_staged_as_ingest_stages_them(tmp_path):
    text = csv_text(AMB, _raw_rows())
    head, *body = text.splitlines()
    body.insert(3, "")  # a blank line
    body.insert(5, 'LAS-2019-9999999,"2019-03-05 03:12:00,C2')  # a stray quote
    body.insert(6, "a,b,c")  # too few fields
    raw = tmp_path / "raw" / "las" / MONTH / AMB.file_name()
    raw.parent.mkdir(parents=True)
    raw.write_text("\n".join([head, *body]) + "\n")
    out = tmp_path / "tok" / "las" / MONTH / AMB.file_name()
    r = tokenise_file(raw, out, AMB, "las", MONTH, TOK, chunk_lines=2)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined, r.identifiers_nulled) == (12, 6, 6, 1)
    _same_staging(raw.parents[2], out.parents[2], AMB, [MONTH])
    q = _stage(out.parents[2]).quarantine
    assert set(q["rule"]) == {
        "date_out_of_range",
        "code_list",
        "duplicate_row",
        "duplicate_record_ref",
        "unbalanced_quote",
        "field_count",
    }
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["rows"] == {"read": 12, "loaded": 6, "quarantined": 6, "identifiers_nulled": 1}
    assert manifest["key_fingerprint"] == KEY_ID and "key" not in manifest
    assert manifest["drop"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["contract_version"] == contract_version(AMB)
    dropped = out.read_text() + manifest_path(out).read_text()
    assert not [v for v in [*IDENTIFYING_VALUES, "LAS-2019-0000001", "9990000019"] if v in dropped]


# ----------------------------------------------------------------------- attacks at the landing


@pytest.fixture
def drop(tmp_path) -> Path:
    """A landing with one ambulance drop tokenised by its provider (three good rows)."""
    good = GOOD["staged_ambulance_incidents"]
    raw = tmp_path / "extract.csv"
    raw.write_text(csv_text(AMB, [dict(good, IncidentId=f"LAS-2019-{i:07d}") for i in (1, 2, 3)]))
    out = tmp_path / "landing" / "las" / MONTH / AMB.file_name()
    tokenise_file(raw, out, AMB, "las", MONTH, TOK)
    return out


def _rewrite(drop: Path, edit, resign: bool = True) -> None:
    """Change the drop's lines (``edit(header, rows) -> (header, rows)``) as someone who can
    write the drop and, with ``resign``, its manifest too."""
    header, *rows = drop.read_text().splitlines()
    header, rows = edit(header, rows)
    drop.write_text("\n".join([header, *rows]) + "\n")
    if resign:
        m = json.loads(manifest_path(drop).read_text())
        m["drop"]["sha256"] = hashlib.sha256(drop.read_bytes()).hexdigest()
        manifest_path(drop).write_text(json.dumps(m))


def _nowhere(run, *values: str) -> None:
    stored = "\n".join(
        f.astype(str).to_csv() for f in (run.staged, run.quarantine, run.ledger)
    ) + "".join(str(e) for e in run.errors)
    assert not [v for v in values if v in stored]


def _field(header: str, row: str, column: str, value: str) -> str:
    fields = row.split(",")
    fields[header.split(",").index(column)] = value
    return ",".join(fields)


def test_a_raw_value_in_a_token_column_is_quarantined_never_stored(drop):
    _rewrite(drop, lambda h, rows: (h, [_field(h, rows[0], "nhs_number_token", NHS_A), *rows[1:]]))
    run = _stage(drop.parents[2])
    assert len(run.staged) == 2 and run.quarantine["rule"].tolist() == ["token_format"]
    _nowhere(run, NHS_A)


def test_an_identifier_column_added_to_a_tokenised_drop_is_dropped(drop):
    _rewrite(drop, lambda h, rows: (h + ",NHSNumber", [r + f",{NHS_A}" for r in rows]))
    run = _stage(drop.parents[2])
    assert len(run.staged) == 3 and "NHSNumber" not in run.staged
    _nowhere(run, NHS_A)


def test_a_raw_extract_passed_off_as_tokenised_is_rejected_unread(tmp_path):
    good = GOOD["staged_ambulance_incidents"]
    path = tmp_path / "landing" / "las" / MONTH / AMB.file_name()
    path.parent.mkdir(parents=True)
    path.write_text(csv_text(AMB, [good]))
    manifest_path(path).write_text(
        json.dumps(
            {
                "format": "sim-pipeline tokenised drop",
                "scheme": 1,
                "source": "las",
                "table": AMB.table,
                "month": MONTH,
                "contract_version": contract_version(AMB),
                "key_fingerprint": KEY_ID,
                "drop": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
            }
        )
    )
    run = _stage(tmp_path / "landing")
    assert run.staged.empty and run.ledger["rejection_rule"].tolist() == ["missing_column"]
    _nowhere(run, *IDENTIFYING_VALUES)


@pytest.mark.parametrize(
    "tamper, rule",
    [
        ("edit", "manifest_mismatch"),  # a row changed after tokenising, manifest not
        ("month", "manifest_mismatch"),  # another month's drop put in this month's place
        ("version", "contract_version"),
        ("garbage", "manifest_invalid"),
    ],
)
def test_a_drop_that_does_not_match_its_manifest_is_rejected_whole(drop, tamper, rule):
    m = manifest_path(drop)
    if tamper == "edit":
        _rewrite(drop, lambda h, rows: (h, rows[:2]), resign=False)
    elif tamper == "garbage":
        m.write_text("{not json")
    else:
        body = json.loads(m.read_text())
        body["month" if tamper == "month" else "contract_version"] = (
            "2019-04" if tamper == "month" else "0" * 12
        )
        m.write_text(json.dumps(body))
    run = _stage(drop.parents[2])
    assert run.staged.empty and run.ledger["rejection_rule"].tolist() == [rule]
    assert run.ledger["rows_quarantined"].tolist() == run.ledger["rows_read"].tolist()
    assert [e.rule for e in run.errors] == [rule]


def test_a_quarantine_entry_cannot_carry_values(drop):
    """An entry whose reason is a value, an entry on a line that still carries its values,
    an unknown rule and a line number that is not after the line before: each line is
    quarantined under the landing's
    own rule with its fixed text, and the values are stored nowhere."""

    def edit(h, rows):
        q = h.split(",").index("quarantine")
        first = rows[0].split(",")
        entry = json.dumps([["PatientGivenName", "name_format", "Aisha Okafor"]]).replace('"', '""')
        held = ",".join([first[0], f'"{entry}"'] + [""] * (len(first) - 2))
        carried = rows[1].split(",")
        carried[q] = '"[[null,""field_count"",""line has 3 fields, header has 13""]]"'
        unknown = ",".join(["9", '"[[null,""secret_rule"",""x""]]"'] + [""] * (len(first) - 2))
        repeated = _field(h, rows[2], "line_number", first[0])
        return h, [held, ",".join(carried), unknown, repeated]

    _rewrite(drop, edit)
    run = _stage(drop.parents[2])
    assert run.staged.empty
    assert sorted(run.quarantine["rule"]) == [
        "line_number_invalid",
        "quarantine_entry",
        "quarantine_entry",
        "quarantine_entry",
    ]
    assert set(run.quarantine["reason"]) <= set(TOKENISED_RULES.values())
    _nowhere(run, "Aisha", "Okafor")
    ledger = run.ledger.iloc[0]
    assert ledger["rows_read"] == ledger["rows_quarantined"] + ledger["rows_loaded"]


@pytest.mark.parametrize(
    "case",
    ["defects_text", "defects_rule", "line_nhs", "line_inf", "field_count", "manifest_text"],
)
def test_no_free_text_passes_in_defects_line_numbers_entries_or_the_manifest(drop, case):
    """Every field of a tokenised drop that ingest stores is held to its form: identifier
    defects to the table's column:rule labels, line numbers to at most nine digits in order,
    a field-count entry to small counts, the manifest's version and key fingerprint to hex.
    A value put there is quarantined or rejected, never stored, and the ledger balances."""
    secret = "Aisha Okafor 1988-04-09"
    value = {"line_nhs": NHS_A, "field_count": NHS_A}.get(case, secret)

    def edit(h, rows):
        if case == "defects_text":
            return h, [_field(h, rows[0], "identifier_defects", secret), *rows[1:]]
        if case == "defects_rule":
            return h, [
                _field(h, rows[0], "identifier_defects", "PatientBirthDate:19880409"),
                *rows[1:],
            ]
        if case in ("line_nhs", "line_inf"):
            return h, [
                _field(h, rows[0], "line_number", NHS_A if case == "line_nhs" else "inf"),
                *rows[1:],
            ]
        entry = f'"[[null,""field_count"",""line has {NHS_A} fields, header has 13""]]"'
        n = len(rows[0].split(","))
        return h, [",".join([rows[0].split(",")[0], entry] + [""] * (n - 2)), *rows[1:]]

    if case == "manifest_text":
        m = json.loads(manifest_path(drop).read_text())
        m["contract_version"] = secret
        manifest_path(drop).write_text(json.dumps(m))
    else:
        _rewrite(drop, edit)
    run = _stage(drop.parents[2])
    ledger = run.ledger.iloc[0]
    assert ledger["rows_read"] == ledger["rows_quarantined"] + ledger["rows_loaded"] == 3
    if case == "manifest_text":
        assert ledger["rejection_rule"] == "manifest_invalid" and pd.isna(
            ledger["contract_version"]
        )
    else:
        assert len(run.staged) == 2 and len(run.quarantine) == 1
        rule = {"defects_text": "identifier_defects_invalid", "defects_rule": "identifier_defects_invalid",
                "field_count": "quarantine_entry"}.get(case, "line_number_invalid")  # fmt: skip
        assert run.quarantine["rule"].tolist() == [rule]
    _nowhere(run, value, "19880409")


def test_repeats_across_chunks_are_judged_over_the_whole_file(tmp_path):
    """A key repeated in a later chunk, then that row repeated, then an earlier row repeated:
    duplicate_record_ref, duplicate_row, duplicate_row, as ingest judges the whole file."""
    good = GOOD["staged_ambulance_incidents"]
    a = dict(good, IncidentId="LAS-2019-0000001")
    b = dict(good, IncidentId="LAS-2019-0000002")
    c = dict(a, Borough="Lambeth")
    raw = tmp_path / "raw" / "las" / MONTH / AMB.file_name()
    raw.parent.mkdir(parents=True)
    raw.write_text(csv_text(AMB, [a, b, c, c, a]))
    out = tmp_path / "tok" / "las" / MONTH / AMB.file_name()
    tokenise_file(raw, out, AMB, "las", MONTH, TOK, chunk_lines=2)
    _same_staging(raw.parents[2], out.parents[2], AMB, [MONTH])
    q = _stage(out.parents[2]).quarantine
    assert list(zip(q["line_number"], q["rule"], strict=True)) == [
        (4, "duplicate_record_ref"),
        (5, "duplicate_row"),
        (6, "duplicate_row"),
    ]


def test_drops_under_another_key_or_contract_version_are_named():
    _, other = parse_key(OTHER_KEY)
    ledger = pd.DataFrame(
        {
            "source": ["las", "las", "met_police", "met_police", "slam"],
            "file": ["las/a", "las/b", "met_police/a", "met_police/b", "slam/a"],
            "drop_form": ["tokenised", "tokenised", "tokenised", "tokenised", "raw"],
            "key_id": [KEY_ID, other, KEY_ID, KEY_ID, KEY_ID],
            "contract_version": ["v1", "v1", "v1", "v2", "r1"],
        }
    )
    assert drop_inconsistencies(ledger, KEY_ID) == [
        f"las/b: tokenised under key {other}, the pipeline's is {KEY_ID}",
        f"las: tokenised drops under 2 keys ({', '.join(sorted([KEY_ID, other]))})",
        "met_police: tokenised drops under 2 contract versions (v1, v2)",
    ]
    assert drop_inconsistencies(ledger.iloc[[0, 2, 4]], KEY_ID) == []


# ----------------------------------------------------------------------- the command


def test_tokenise_command_reads_the_key_from_the_environment_only(tmp_path):
    """`sim-pipeline tokenise` as a provider runs it: no key argument exists; without the key
    in the environment it refuses; with it, the drop and manifest are written and what it
    prints holds no identifier; an extract keyed by NHS number is refused, nothing written."""
    good = GOOD["staged_ambulance_incidents"]
    raw = tmp_path / "extract.csv"
    raw.write_text(csv_text(AMB, [dict(good, IncidentId=f"LAS-2019-{i:07d}") for i in range(5)]))
    out = tmp_path / "send" / "las" / MONTH / AMB.file_name()
    env = {k: v for k, v in project_env(tmp_path, tmp_path).items() if k != "SIM_DEMO_MODE"}
    args = ["tokenise", "--source", "las", "--table", AMB.table, "--in", str(raw)]
    r = cli(*args, "--out", str(out), "--key", PROJECT_KEY, env=env, cwd=tmp_path)
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr and not out.exists()
    r = cli(*args, "--out", str(out), env=env, cwd=tmp_path)
    assert r.returncode == 2 and "SIM_PSEUDONYMISATION_KEY" in r.stderr and not out.exists()
    env["SIM_PSEUDONYMISATION_KEY"] = PROJECT_KEY
    r = cli(*args, "--out", str(out), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "5 lines read, 5 tokenised, 0 quarantined" in r.stdout and KEY_ID in r.stdout
    assert manifest_path(out).exists()
    assert not [v for v in IDENTIFYING_VALUES if v in r.stdout + r.stderr + out.read_text()]
    # the month comes from the landing layout, or --month
    r = cli(*args, "--out", str(tmp_path / "x.csv"), env=env, cwd=tmp_path)
    assert r.returncode == 2 and "--month" in r.stderr
    # a provider keying a row by a patient's NHS number (ten digits fit ECDS's record id):
    # refused, the file and column named, no value, nothing written
    ecds = BY_ASSET["staged_ecds"]
    rows = [
        GOOD["staged_ecds"],
        dict(GOOD["staged_ecds"], Generated_Record_ID=NHS_B, NHS_Number=NHS_B),
    ]
    raw.write_text(csv_text(ecds, rows))
    bad = tmp_path / "bad" / "ae_rjz" / MONTH / ecds.file_name()
    ecds_args = ["tokenise", "--source", "ae_rjz", "--table", ecds.table, "--in", str(raw)]
    r = cli(*ecds_args, "--out", str(bad), env=env, cwd=tmp_path)
    assert r.returncode == 2 and "identifier-like" in r.stderr, r.stderr
    assert "Generated_Record_ID" in r.stderr and "landing_nhs" in r.stderr
    assert NHS_B not in r.stderr + r.stdout and not bad.exists() and not manifest_path(bad).exists()
    assert not list(bad.parent.iterdir())


def test_a_whole_column_failure_refuses_the_extract(tmp_path):
    raw = tmp_path / "extract.csv"
    raw.write_text(csv_text(AMB, [GOOD["staged_ambulance_incidents"]]).replace("Category", "Categ"))
    with pytest.raises(TokeniseRefused, match="missing required column"):
        tokenise_file(raw, tmp_path / "out.csv", AMB, "las", MONTH, TOK)
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".*tmp"))


def test_tokenise_landing_keeps_arrival_times_and_refuses_unknown_providers(small_synth, tmp_path):
    land = link_landing(small_synth[0], tmp_path / "landing", lambda m: m == MONTH, copy=True)
    before = {p.name: p.stat().st_mtime_ns for p in (land / "las" / MONTH).glob("*.csv")}
    results = tokenise_landing(land, providers_named("ambulance"), TOK)
    assert [r.drop.parts[-3] for r in results] == ["las"]
    assert {p.name: p.stat().st_mtime_ns for p in (land / "las" / MONTH).glob("*.csv")} == before
    with pytest.raises(ValueError, match="unknown provider 'pol1ce'"):
        providers_named("pol1ce")
    shutil.rmtree(land)


# ----------------------------------------------------------------------- end to end, SQLite

# tables that say which files were read (their hashes, forms and arrival clock), not what the
# data hold; and the run log
FILE_TABLES = {"ingest_ledger", "landing_file_versions", "audit_trail"}


def test_police_and_ambulance_tokenised_give_the_raw_landing_s_tables_on_sqlite(
    keyed_backfill, small_synth, tmp_path
):
    """The session's keyed project (`sim-pipeline backfill` of 2019-01..02 on raw drops, a
    project key) against the same backfill on a fresh project whose police and ambulance drops
    of those months were tokenised by their providers under the same key (health raw): the
    same person index (keys and match probabilities), metrics, costs, headline and every other
    table; the ledger differs only in each file's hash, form and contract version."""
    root = tmp_path / "project"
    landing = link_landing(small_synth[0], root / "landing")
    months = ["2019-01", "2019-02"]
    done = tokenise_landing(landing, providers_named("police,ambulance"), TOK, months)
    assert {r.drop.parts[-3] for r in done} == {"met_police", "las"} and len(done) == 6
    env = project_env(landing, root, SIM_PSEUDONYMISATION_KEY=PROJECT_KEY)
    r = cli("backfill", "--from", months[0], "--to", months[-1], env=env, cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    raw, tok = (
        snapshot(keyed_backfill["env"]["SIM_WAREHOUSE_URL"]),
        snapshot(env["SIM_WAREHOUSE_URL"]),
    )
    assert sorted(raw) == sorted(tok)
    assert len(raw["person_index"]) > 1000 and len(raw["programme_headline"]) > 0
    for name in sorted(set(raw) - FILE_TABLES):
        a, b = (
            t[name].drop(columns=list(RUN_SPECIFIC_COLUMNS), errors="ignore") for t in (raw, tok)
        )
        pd.testing.assert_frame_equal(a, b, obj=name)
    differ = ["file_sha256", "drop_form", "contract_version"]
    a, b = (t["ingest_ledger"] for t in (raw, tok))
    pd.testing.assert_frame_equal(a.drop(columns=differ), b.drop(columns=differ))
    forms = b.groupby("source")["drop_form"].agg(set).to_dict()
    assert forms["met_police"] == forms["las"] == {"tokenised"} and forms["slam"] == {"raw"}


def test_bench_tokenise_prints_and_writes_its_figures(tmp_path):
    """The throughput benchmark runs the command's own code on a generated extract and
    reports records per second, CPU time and peak memory per size (figures, not a goal)."""
    out = tmp_path / "bench.json"
    r = cli(
        "bench",
        "tokenise",
        "--records",
        "3000",
        "--out",
        str(out),
        env=project_env(tmp_path, tmp_path),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert result["records"] == result["rows_loaded"] == 3000 and result["rows_quarantined"] == 0
    assert result["records_per_second"] > 0 and result["peak_rss_mib"] > 50
    assert f"{result['records_per_second']:,} records/s" in r.stdout
