"""Messages without data: what an error may say when it reaches a log, the event log or a page.

Database drivers and validators quote the value they could not handle (``invalid input syntax
for type integer: "943 476 5919"``). `masked` keeps a message's shape and drops its data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_QUOTED = re.compile(r"""(['"])(.*?)\1""")
_PARENS = re.compile(r"=\((.*?)\)")  # PostgreSQL's DETAIL: Key (col)=(value)
_DIGITS = re.compile(r"\d{5,}")


def masked(message: str, names: Iterable[str] = ()) -> str:
    """``message`` with quoted text other than a known name (a column, a table), ``=(...)``
    values and runs of five or more digits replaced by placeholders."""
    keep = set(names)
    text = _QUOTED.sub(lambda m: m.group(0) if m.group(2) in keep else "<value>", message)
    text = _PARENS.sub("=(<value>)", text)
    return _DIGITS.sub("<number>", text)
