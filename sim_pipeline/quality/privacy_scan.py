"""Proof for auditors that no direct identifier is stored past ingest.

Collects every NHS number, name, date of birth and full postcode from the landing files (this
module reads raw landing data, like ingest, and reports only counts and file names), then scans
what the pipeline persisted: files (a SQLite warehouse and Dagster's SQLite storage row by row,
every other file under DAGSTER_HOME as text, the Great Expectations project) with ``scan``, and
every table of a database reachable by SQLAlchemy (a PostgreSQL warehouse, Dagster's PostgreSQL
run, event-log and schedule storage named in the instance's dagster.yaml) with ``scan_database``.
Hits name the place (file or table) and the kind of identifier, never a value: nothing here
prints an identifier.

What counts as an identifier in text is `quality.identifier_forms`; the identifiers of a
landing are collected by `quality.landing_identifiers`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sim_pipeline.quality.identifier_forms import KINDS, IdentifierMatcher

CHUNK_CHARS = 8_000_000  # distinct text scanned at once; files are read in blocks of this size
DB_BATCH_ROWS = 20_000


# ----------------------------------------------------------------------------- reading
# Texts are scanned as their distinct values (database) or distinct lines (files), each on a
# line of its own: storage repeats the same dates, codes and log lines many times over, and an
# identifier form never spans two values or lines (the pair rule does not cross a line break).


def _value_text(v: object) -> str:
    """A database value as text; bytes are inflated when zlib-compressed (Dagster stores
    snapshots so), then decoded."""
    if isinstance(v, memoryview):
        v = v.tobytes()
    if isinstance(v, bytes | bytearray):
        data = bytes(v)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        return data.decode("utf-8", "replace")
    return "" if v is None else str(v)


def _distinct_blocks(items: Iterable[str]) -> Iterator[str]:
    """The items joined by line breaks into blocks of about CHUNK_CHARS of distinct items (an
    item repeated in a later block is scanned again there: memory stays bounded by a block)."""
    seen: set[str] = set()
    block: list[str] = []
    size = 0
    for item in items:
        if item in seen:
            continue
        seen.add(item)
        block.append(item)
        size += len(item) + 1
        if size >= CHUNK_CHARS:
            yield "\n".join(block)
            seen, block, size = set(), [], 0
    if block:
        yield "\n".join(block)


def _row_values(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    for row in rows:
        for v in row:
            yield _value_text(v)


def _sqlite_texts(path: Path) -> Iterator[str]:
    """Every value of every table of a SQLite file as text (zlib-compressed blobs inflated).

    Opening through sqlite3 also reads pages still in the -wal file.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            yield from _distinct_blocks(_row_values(con.execute(f"select * from {quoted}")))
    finally:
        con.close()


def _file_lines(path: Path) -> Iterator[str]:
    """A file's lines (latin-1, so every byte is a character), read in blocks."""
    with path.open("rb") as fh:
        rest = ""
        while block := fh.read(CHUNK_CHARS):
            lines = (rest + block.decode("latin-1")).split("\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def _file_texts(path: Path) -> Iterator[str]:
    """A file's distinct lines in blocks; a SQLite database's distinct values."""
    with path.open("rb") as fh:
        is_sqlite = fh.read(16) == b"SQLite format 3\x00"
    if is_sqlite:
        yield from _sqlite_texts(path)
    else:
        yield from _distinct_blocks(_file_lines(path))


def _sqlite_text(path: Path) -> str:
    """Every value of every table of a SQLite file as text, one per line (blobs inflated)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        parts: list[str] = []
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            parts += _row_values(con.execute(f"select * from {quoted}"))
    finally:
        con.close()
    return "\n".join(parts)


def _text_of(path: Path) -> str:
    """A file's whole text as the scan reads it: a SQLite database's values, else latin-1."""
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return _sqlite_text(path)
    return data.decode("latin-1")


def _kinds_of(texts: Iterable[str], matcher: IdentifierMatcher) -> list[str]:
    found: set[str] = set()
    for text in texts:
        found |= matcher.kinds(text, skip=found)
        if len(found) == len(KINDS):
            break
    return [k for k in KINDS if k in found]


# ----------------------------------------------------------------------------- scanning


def scan(paths: Iterable[Path], identifiers: Mapping[str, set[str]]) -> dict[str, list[str]]:
    """{file: [kind, ...]} for persisted files holding any identifier (never the values).

    SQLite databases are read row by row (their -wal/-shm companions are covered by that and
    skipped); any other file is read as text.
    """
    from sim_pipeline.progress import current

    matcher = IdentifierMatcher(identifiers)
    hits: dict[str, list[str]] = {}
    progress = current()
    for path in paths:
        if progress is not None:
            progress.advance(stage=path.name)
        if path.name.endswith(("-wal", "-shm")) and path.with_name(path.name[:-4]).exists():
            continue
        kinds = _kinds_of(_file_texts(path), matcher)
        if kinds:
            hits[str(path)] = kinds
    return hits


def scan_database(
    url: str, identifiers: Mapping[str, set[str]], *, label: str | None = None
) -> dict[str, list[str]]:
    """{"table <name>": [kind, ...]} for every table of any SQLAlchemy database holding an
    identifier (PostgreSQL: every schema but the system ones, as "table <schema>.<name>" outside
    the default schema). Every column of every row is read as text, bytes inflated when
    zlib-compressed. With ``label`` the keys read "<label>: table <name>". Never the values.
    """
    import sqlalchemy as sa

    matcher = IdentifierMatcher(identifiers)
    hits: dict[str, list[str]] = {}
    engine = sa.create_engine(url, hide_parameters=True)
    try:
        inspector = sa.inspect(engine)
        default = inspector.default_schema_name
        schemas = [
            s
            for s in inspector.get_schema_names()
            if s != "information_schema" and not s.startswith("pg_")
        ]
        quote_id = engine.dialect.identifier_preparer.quote
        for schema in schemas:
            for table in sorted(inspector.get_table_names(schema=schema)):
                name = table if schema == default else f"{schema}.{table}"
                qualified = (
                    quote_id(table)
                    if schema == default
                    else f"{quote_id(schema)}.{quote_id(table)}"
                )
                with engine.connect() as conn:
                    result = conn.execution_options(
                        stream_results=True, yield_per=DB_BATCH_ROWS
                    ).execute(sa.text(f"SELECT * FROM {qualified}"))
                    kinds = _kinds_of(_distinct_blocks(_row_values(result)), matcher)
                    result.close()
                if kinds:
                    hits[f"{label}: table {name}" if label else f"table {name}"] = kinds
    finally:
        engine.dispose()
    return hits


def scan_warehouse_tables(
    url: str, identifiers: Mapping[str, set[str]], workdir: Path | None = None
) -> dict[str, list[str]]:
    """Every warehouse table of a server database, scanned (scan_database; ``workdir`` is no
    longer used and kept for callers)."""
    return scan_database(url, identifiers)


def _instance_config(dagster_home: Path) -> Mapping[str, Any]:
    import yaml

    path = Path(dagster_home) / "dagster.yaml"
    config = yaml.safe_load(path.read_text()) if path.is_file() else None
    return config if isinstance(config, Mapping) else {}


def dagster_storage_urls(dagster_home: Path) -> list[str]:
    """SQLAlchemy URLs of the PostgreSQL databases the instance in ``dagster_home`` stores runs,
    event logs and schedules in (its dagster.yaml: ``storage: postgres:``, a PostgreSQL class
    under ``storage: custom:`` as in deploy/, or the separate ``run_storage`` /
    ``event_log_storage`` / ``schedule_storage`` of dagster-postgres; ``postgres_url`` or
    ``postgres_db``), with ``env:`` values read from the environment. Empty for the default
    SQLite (file) storage."""
    config = _instance_config(dagster_home)
    configs: list[Mapping[str, Any]] = []
    storage = config.get("storage") or {}
    if isinstance(storage, Mapping) and isinstance(storage.get("postgres"), Mapping):
        configs.append(storage["postgres"])
    parts = [config.get(k) for k in ("run_storage", "event_log_storage", "schedule_storage")]
    if isinstance(storage, Mapping):
        parts.append(storage.get("custom"))
    for part in parts:
        if isinstance(part, Mapping) and "postgres" in str(part.get("module", "")):
            configs.append(part.get("config") or {})
    urls: list[str] = []
    for c in configs:
        url = _pg_url(c)
        if url and url not in urls:
            urls.append(url)
    return urls


def dagster_storage_dirs(dagster_home: Path) -> list[Path]:
    """Folders outside ``dagster_home`` that its dagster.yaml points storage at (every
    ``base_dir``: SQLite storage, local artifacts, compute logs), ``env:`` values resolved."""
    home = Path(dagster_home).resolve()
    dirs: list[Path] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k == "base_dir" and _env_value(v):
                    d = Path(str(_env_value(v))).resolve()
                    if d != home and home not in d.parents and d not in dirs:
                        dirs.append(d)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(_instance_config(dagster_home))
    return dirs


def _env_value(v: Any) -> Any:
    import os

    if isinstance(v, Mapping) and set(v) == {"env"}:
        return os.environ.get(str(v["env"]), "")
    return v


def _pg_url(config: Mapping[str, Any]) -> str | None:
    """As dagster_postgres.utils.pg_url_from_config, with ``env:`` values resolved (and "/" in
    a user name or password escaped)."""
    if config.get("postgres_url"):
        return str(_env_value(config["postgres_url"]))
    db = config.get("postgres_db")
    if not isinstance(db, Mapping):
        return None
    v = {k: _env_value(x) for k, x in db.items()}
    userinfo = quote(str(v.get("username", "")), safe="")
    if v.get("password"):
        userinfo += ":" + quote(str(v["password"]), safe="")
    scheme = v.get("scheme") or "postgresql"
    url = f"{scheme}://{userinfo}@{v.get('hostname', '')}:{v.get('port') or 5432}/{v.get('db_name', '')}"
    if v.get("params"):
        url += "?" + urlencode(dict(v["params"]), quote_via=quote)
    return url


def files_under(*roots: Path) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.exists():
            out += [p for p in sorted(root.rglob("*")) if p.is_file()]
    return out


def generated_quality_files(quality_dir: Path) -> list[Path]:
    """The files the Great Expectations project writes from our data (suites, validation
    results, Data Docs pages), without the fonts, scripts and stylesheets GX ships as its own
    static assets (binary font files match short names by chance)."""
    return [
        p
        for p in files_under(Path(quality_dir))
        if "static" not in p.relative_to(quality_dir).parts
    ]
