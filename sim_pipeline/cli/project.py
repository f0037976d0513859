"""`sim-pipeline warehouse`, `dictionary` and `keygen`: the warehouse schema's migrations, the
data dictionary file and new project key files."""

from __future__ import annotations

import argparse
import os
import sys

from sim_pipeline.config import Settings


def cmd_warehouse(args: argparse.Namespace) -> int:
    """Migrations of the warehouse schema: upgrade to the newest, or say where it stands."""
    from sim_pipeline.warehouse import migrate, redact_url

    url = args.warehouse or Settings.from_env().warehouse_url
    if args.action == "upgrade":
        before = migrate.current(url)
        after = migrate.upgrade(url)
        print(f"{redact_url(url)}: {before or 'no revision'} -> {after}")
    else:
        print(
            f"{redact_url(url)}: at {migrate.current(url) or 'no revision'}, head {migrate.head()}"
        )
    drift = migrate.drift(url)
    for table, diff in sorted(drift.items()):
        print(
            f"  {table}: differs from its declaration: missing {diff['missing']}, "
            f"undeclared {diff['undeclared']} (needs a migration)"
        )
    return 1 if drift else 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    from sim_pipeline.warehouse.dictionary import render_markdown

    text = render_markdown()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run `sim-pipeline dictionary`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """A new project key into a new file readable by its owner only; the key is never printed
    (a terminal's scrollback and a CI log are not key stores)."""
    from sim_pipeline.identity.keys import generate_key, parse_key

    key = generate_key()
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"sim-pipeline keygen: {args.out} exists; not overwritten", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sim-pipeline keygen: cannot create {args.out} ({exc.strerror})", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    _, key_id = parse_key(key)
    print(
        f"wrote a new project key to {args.out} (mode 0600), key id {key_id}. Use it with "
        f"SIM_PSEUDONYMISATION_KEY_FILE={args.out}; share it only with the linkage partners "
        "(README: Keys)."
    )
    return 0
