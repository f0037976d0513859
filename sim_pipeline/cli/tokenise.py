"""`sim-pipeline tokenise`: a provider's raw extract in, a tokenised drop and its manifest out
(`ingest.tokenised`). Run by the provider, on their own machine, with the key shared among the
linkage partners; only the drop and its manifest travel."""

from __future__ import annotations

import argparse
import re
import sys

from sim_pipeline.config import (
    KEY_ENV,
    KEY_FILE_ENV,
    ConfigError,
    demo_mode_allowed,
    project_key_text,
)


def partners_tokeniser(demo: bool | None = None):
    """The partners' key from the environment or a key file (never an argument); without one,
    the public demo key when ``demo`` (default: in demo mode; synthetic data only)."""
    from sim_pipeline.identity import Tokeniser
    from sim_pipeline.identity.keys import KeyRejected, parse_key
    from sim_pipeline.identity.tokens import DEMO_KEY

    key = project_key_text()
    if key:
        try:
            secret, key_id = parse_key(key)
        except KeyRejected as exc:
            raise ConfigError(f"{KEY_ENV}: {exc}. Make a key with `sim-pipeline keygen`.") from None
        return Tokeniser(secret, demo=False, fingerprint=key_id)
    if demo_mode_allowed() if demo is None else demo:
        print(
            "sim-pipeline tokenise: the public demo key: for synthetic data only",
            file=sys.stderr,
        )
        return Tokeniser(DEMO_KEY, demo=True)
    raise ConfigError(
        f"{KEY_ENV} (or {KEY_FILE_ENV}) is not set: set it to the key the linkage partners "
        "share (made with `sim-pipeline keygen`). It is never taken as an argument."
    )


def cmd_tokenise(args: argparse.Namespace) -> int:
    from sim_pipeline.ingest.tokenised import TokeniseRefused, tokenise_file
    from sim_pipeline.progress import Progress
    from sim_pipeline.sources import SOURCE_TABLES

    tables = {t.table: t for t in SOURCE_TABLES}
    table = tables.get(args.table)
    if table is None:
        print(
            f"sim-pipeline tokenise: unknown table {args.table!r} (one of {', '.join(tables)})",
            file=sys.stderr,
        )
        return 2
    month = args.month
    if month is None:  # the landing layout: <landing>/<source>/<YYYY-MM>/<table>.csv
        folder = args.out.resolve().parent.name
        month = folder if re.fullmatch(r"[0-9]{4}-[0-9]{2}", folder) else None
    if month is None:
        print(
            "sim-pipeline tokenise: give --month YYYY-MM (the drop's month: dates are checked "
            "against its end), or write --out into the landing layout <source>/<YYYY-MM>/",
            file=sys.stderr,
        )
        return 2
    if args.out.resolve() == args.raw.resolve():
        print("sim-pipeline tokenise: --out must not be the raw extract", file=sys.stderr)
        return 2
    try:
        tokeniser = partners_tokeniser()
        with Progress(f"tokenise {args.source}/{month}/{table.table}", unit="lines") as p:
            done = [0]

            def step(read: int) -> None:
                p.advance(read - done[0], rows=read)
                done[0] = read

            result = tokenise_file(
                args.raw, args.out, table, args.source, month, tokeniser, on_chunk=step
            )
    except (ConfigError, TokeniseRefused) as exc:
        print(f"sim-pipeline tokenise: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError:
        print(f"sim-pipeline tokenise: {args.raw} not found", file=sys.stderr)
        return 2
    print(
        f"{result.drop}: {result.rows_read} lines read, {result.rows_loaded} tokenised, "
        f"{result.rows_quarantined} quarantined (rules only, no values), "
        f"{result.identifiers_nulled} identifier value(s) nulled; contract version "
        f"{result.contract_version}, key fingerprint {result.key_fingerprint}, sha256 "
        f"{result.sha256}\n{result.manifest}: the manifest (send it with the drop)"
    )
    return 0
