"""Identifier forms: what counts as a landing identifier inside any text, and the matcher.

Forms found, for identifiers taken from the landing files:

- NHS numbers: ten digits as written, or in 3-3-4 groups with spaces or hyphens
  ("943 476 5919", "943-476-5919"), also inside text and glued to letters or underscores
  ("nhs9434765919", "ref_9434765919_x"); never ten digits inside a longer digit run.
- Dates of birth: year first (1985-03-12, 1985/3/12, 1985.03.12), day first and month first
  (12/03/1985, 12-03-1985, 12.03.1985, 12 03 1985, 4/11/1971; 03/12/1985 is read both ways),
  with a month name in any case (12 Mar 1985, 12-MAR-1985, 12th March, 1985, March 12, 1985)
  and as eight digits (19850312, 12031985, 03121985, 19850312T000000). The eight-digit forms
  count only as a number of their own (not glued to a letter or digit, not the fraction or whole
  part of a decimal, not the first group of a UUID): eight-digit runs occur by chance in hex
  tokens, Bloom filters and keys, and with the demo's ~6,000 dates of birth about two in ten
  thousand read as one (test_privacy_scan.py::test_eight_digit_runs_in_hex_tokens_are_not_dates).
  On a real run (10,000-person landing, six months) storage held 29,499 distinct eight-digit
  runs, 27 of them an eight-digit form of some date of birth: all provider record keys
  ("CC-01011981"), which the exclusion of landing values below removes.
- Postcodes: any case, with a space, a hyphen or nothing between the halves, inside text and
  after "_" (not glued to another letter or digit: "SE154QTX" is a different string).
- Names, in any case (lower, upper, title, mixed):
  * a single name as a whole word: a run of letters, digits and "_" that is just the name
    ("Arun", "arun", "ARUN's", "name=arun");
  * one record's given and family name together, in either order, joined directly or by up to
    three characters that are not letters, digits or a line break ("johnsmith", "JohnSmith",
    "john.smith", "john_smith", "smith,john", "SMITH JOHN", "Smith, John"), also inside a
    longer camelCase or snake_case identifier ("reportJohnSmith", "arun_smith_2019").
  A single name glued into a longer identifier-like token ("Arun_start_end", "patientArun",
  "arunsmithson") is deliberately still not a hit, although "_" and camelCase split words for
  the pair rule: the software that writes storage (Dagster, Great Expectations, this project)
  writes many snake_case and camelCase identifiers made of English words, place names and
  surnames that are also words ("Hall", "Ward", "Price", "Long", "Cross"), so a single name
  inside one is far more often our own text than a leak, and a false alarm on our own generated
  text makes the proof useless. A name leaks as a value (a whole word) or with the record's other
  name, and both are found. For the same reason a name that is a lower-case word of that
  software's own text (``software_vocabulary``: "will", "page", "mark", "grace") is not looked
  for in all lower case; "Will", "WILL", "wILL" and "will.sutton" still are. Nor is a name
  made of the letters a-f only ("Abda"): lower-case hex text (UUIDs, hashes, tokens) holds
  such words by chance ("7e3cb780-30f8-401d-abda-29a5ef069d52").

Left out at collection, as before, because they cannot be told apart from legitimate content:
names shorter than four letters, names that are words the project itself writes or values of the
landing files' non-identifying columns (a family name "Sutton" is also a borough), dates of birth
inside the data period (they collide with event dates), and eight-digit date forms that are values
of non-identifying landing columns (record keys, SNOMED CT codes). The pair rule has no vocabulary
exclusion (the two names of one record together are a leak even when each is a word).

Not looked for: two-digit years (12/03/85), postcodes glued to letters ("addrSE154QT"), landing
postcodes that are not postcode-shaped (typos such as "SW179NFX"), names with letters outside
A-Z, and deleted rows still on free pages of a SQLite file (rows are read through SQLite).

Speed: a text is scanned as its distinct values (databases) or distinct lines (files), with a
few regular-expression passes each and set lookups of normalised forms, so the cost does not
grow with the number of identifiers (no search per identifier).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

KINDS = ("nhs", "dob", "postcode", "name")
# Keys of landing_identifiers() besides KINDS: derived forms the scan looks up.
NAME_PAIRS = "name_pair"  # "given family" (lower case, one space) of one record
DOB_COMPACT = "dob_compact"  # eight-digit forms (YYYYMMDD, DDMMYYYY, MMDDYYYY) of the DOBs

# Dates of birth on or after this are inside the data period and collide with event dates.
DATA_PERIOD_START = (2015, 1, 1)
MIN_NAME = 4  # letters of a single name to look for
MIN_PAIR_PART = 2  # letters of each half of a given+family pair
MIN_PAIR = 5  # letters of a given+family pair together

# Ten digits of any script, in any grouping by single spaces, hyphens or full stops, not part
# of a longer digit run ("9434765919", "943 476 5919", "94 34 76 59 19", "٩٤٣٤٧٦٥٩١٩").
NHS_RE = re.compile(r"(?<!\d)(?<!\d[ .-])\d(?:[ .-]?\d){9}(?![ .-]?\d)")
YMD_RE = re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
DMY_RE = re.compile(r"(?<!\d)(\d{1,2})([-/. ])(\d{1,2})\2(\d{4})(?!\d)")
# A number of its own: not glued to a letter or digit (but "19850312T120000", ISO basic date and
# time, is read), not part of a decimal, not a UUID's first group (a hex token's eight-digit runs
# are not dates).
COMPACT_DATE_RE = re.compile(
    r"(?<![0-9A-Za-z])(?<!\d[.,])\d{8}(?![0-9A-SU-Za-z]|T(?!\d))(?![.,]\d)(?!-[0-9A-Fa-f]{4}-)"
)
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
MONTH_ABBR = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i + 1 for i, m in enumerate(MONTH_ABBR)}
# On lower-cased text: "12 mar 1985", "12-mar-1985", "12th march, 1985", "12march1985".
DAY_MONTH_RE = re.compile(
    r"(?<![0-9a-z])(\d{1,2})(?:st|nd|rd|th)?[ ./-]?" + _MONTH + r"\.?,?[ ./-]?(\d{4})(?!\d)"
)
# "march 12, 1985", "mar 12 1985".
MONTH_DAY_RE = re.compile(
    r"(?<![a-z])" + _MONTH + r"\.?[ -]?(\d{1,2})(?:st|nd|rd|th)?,?[ -]?(\d{4})(?!\d)"
)
# On upper-cased text.
POSTCODE_RE = re.compile(r"(?<![A-Z0-9])([A-Z]{1,2}[0-9][A-Z0-9]?)[ -]?([0-9][A-Z]{2})(?![A-Z0-9])")
POSTCODE_SHAPE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
WORD_RE = re.compile(r"[A-Za-z0-9_]+")  # whole tokens: "Arun" must not match "Arun_start"
# camelCase-aware words: "JohnSmith" -> John, Smith; "JOHNSmith" -> JOHN, Smith; "john" -> john.
CAMEL_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
NAME_PART_RE = re.compile(r"[A-Za-z]+")
HEX_WORD_RE = re.compile(r"[a-f]+")
PAIR_SEP = r"[^0-9A-Za-z\n]{0,3}"


def _ascii_digits(text: str) -> str:
    """Digits of any script as ASCII digits ("٩٤٣" -> "943"); other characters unchanged."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)


def _compact_forms(dobs: Iterable[str]) -> set[str]:
    """The eight-digit forms (YYYYMMDD, DDMMYYYY, MMDDYYYY) of ISO dates."""
    out = set()
    for d in dobs:
        y, m, dd = d[:4], d[5:7], d[8:10]
        out |= {y + m + dd, dd + m + y, m + dd + y}
    return out


# ----------------------------------------------------------------------------- matching


def _date_key(y: str, m: str, d: str) -> str:
    return y + m.zfill(2) + d.zfill(2)


# Packages whose own text Dagster and Great Expectations write into storage: Dagster's messages,
# event and snapshot structure, GX's Data Docs templates, and our code's descriptions and log
# messages (Dagster snapshots asset descriptions). Left out of our package: modules whose words
# are data, not text we write (embedded name lists, the synthetic generator, this module's
# examples of identifier forms).
SOFTWARE_PACKAGES = (
    "dagster",
    "dagster_shared",
    "dagster_pipes",
    "dagster_postgres",
    "great_expectations",
    "sim_pipeline",
)
SOFTWARE_LEFT_OUT = {
    ("sim_pipeline", "synthetic"),
    ("sim_pipeline", "quality", "identifiers.py"),
    ("sim_pipeline", "quality", "privacy_scan.py"),
    ("sim_pipeline", "quality", "identifier_forms.py"),
    ("sim_pipeline", "quality", "landing_identifiers.py"),
}
_SOFTWARE_SUFFIXES = {".py", ".j2", ".jinja", ".html", ".css", ".js", ".json", ".yaml", ".yml"}
_LOWER_WORD_RE = re.compile(r"(?<![A-Za-z0-9_])[a-z]{4,}(?![A-Za-z0-9_])")


@functools.lru_cache(maxsize=1)
def software_vocabulary() -> frozenset[str]:
    """Lower-case words (four letters or more) in the source and templates of the software that
    writes storage (SOFTWARE_PACKAGES): "will", "word" (CSS word-break), "page", "mark", "long".

    A landing name that is such a word ("Will", "Page") is not looked for in all lower case (our
    software writes it so everywhere); as written, in capitals or mixed case, and with the
    record's other name, it still is.
    """
    words: set[str] = set()
    for package in SOFTWARE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path in Path(root).rglob("*"):
                rel = (package, *path.relative_to(root).parts)
                if any(rel[: len(p)] == p for p in SOFTWARE_LEFT_OUT):
                    continue
                if path.suffix in _SOFTWARE_SUFFIXES and path.is_file():
                    words |= set(_LOWER_WORD_RE.findall(path.read_text(errors="replace")))
    return frozenset(words)


class IdentifierMatcher:
    """Which kinds of landing identifier a text holds, in any of the forms in the module doc.

    Built once from landing_identifiers() (hand-built dicts may leave out the derived keys),
    then applied to any number of texts. Returns kinds only, never a value. Names that are
    words of ``lower_case_words`` (default: software_vocabulary()) are not looked for in all
    lower case.
    """

    def __init__(
        self,
        identifiers: Mapping[str, Iterable[str]],
        lower_case_words: Iterable[str] | None = None,
    ) -> None:
        self.nhs = frozenset(identifiers.get("nhs", ()))
        dobs = set(identifiers.get("dob", ()))
        self.dob_keys = frozenset(d.replace("-", "") for d in dobs)
        compact = identifiers.get(DOB_COMPACT)
        self.dob_compact = frozenset(_compact_forms(dobs) if compact is None else compact)
        self.postcodes = frozenset(p.replace(" ", "") for p in identifiers.get("postcode", ()))
        names = {n.lower() for n in identifiers.get("name", ())}
        words = software_vocabulary() if lower_case_words is None else set(lower_case_words)
        # a name of hex letters only ("Abda", "Bede") stands by chance in lower-case hex text
        # (UUIDs, hashes, tokens): like a software word, it is not looked for in lower case
        words = set(words) | {n for n in names if HEX_WORD_RE.fullmatch(n)}
        self.names_any_case = frozenset(names - words)
        self.names_not_lower = frozenset(names & words)
        partners: dict[str, set[str]] = {}
        joined: set[str] = set()
        for pair in identifiers.get(NAME_PAIRS, ()):
            g, f = pair.lower().split(" ")
            partners.setdefault(g, set()).add(f)
            partners.setdefault(f, set()).add(g)
            joined |= {g + f, f + g}
        self.partners = partners
        self.joined = frozenset(joined)

    def kinds(self, text: str, skip: Iterable[str] = ()) -> set[str]:
        """The kinds (of KINDS) found in ``text``, leaving out those in ``skip``."""
        skip = set(skip)
        found: set[str] = set()
        if "nhs" not in skip and self.nhs and self._has_nhs(text):
            found.add("nhs")
        if "dob" not in skip and self.dob_keys and self._has_dob(text):
            found.add("dob")
        if "postcode" not in skip and self.postcodes and self._has_postcode(text):
            found.add("postcode")
        has_names = self.names_any_case or self.names_not_lower or self.partners
        if "name" not in skip and has_names and self._has_name(text):
            found.add("name")
        return found

    def _has_nhs(self, text: str) -> bool:
        found = set(NHS_RE.findall(text))
        return not self.nhs.isdisjoint(_ascii_digits(re.sub(r"[ .-]", "", m)) for m in found)

    def _has_dob(self, text: str) -> bool:
        keys = self.dob_keys
        if not keys.isdisjoint(_date_key(y, m, d) for y, _, m, d in set(YMD_RE.findall(text))):
            return True
        for a, _, b, y in set(DMY_RE.findall(text)):
            if _date_key(y, b, a) in keys or _date_key(y, a, b) in keys:  # day or month first
                return True
        if not self.dob_compact.isdisjoint(COMPACT_DATE_RE.findall(text)):
            return True
        lower = text.lower()
        # both month-name forms start their month with one of the twelve abbreviations
        if not any(m in lower for m in MONTH_ABBR):
            return False
        for d, mon, y in set(DAY_MONTH_RE.findall(lower)):
            if _date_key(y, str(MONTHS[mon[:3]]), d) in keys:
                return True
        for mon, d, y in set(MONTH_DAY_RE.findall(lower)):
            if _date_key(y, str(MONTHS[mon[:3]]), d) in keys:
                return True
        return False

    def _has_postcode(self, text: str) -> bool:
        found = set(POSTCODE_RE.findall(text.upper()))
        return not self.postcodes.isdisjoint(a + b for a, b in found)

    def _has_name(self, text: str) -> bool:
        tokens = set(WORD_RE.findall(text))  # distinct whole tokens, as written
        joined = "\n".join(tokens)
        lowered = set(joined.lower().split("\n"))
        if not self.names_any_case.isdisjoint(lowered):
            return True
        if self.names_not_lower and not self.names_not_lower.isdisjoint(
            t.lower()
            for t in tokens - lowered  # tokens not all lower case
        ):
            return True
        if not self.partners:
            return False
        words = set("\n".join(set(CAMEL_WORD_RE.findall(joined))).lower().split("\n"))
        if not self.joined.isdisjoint(words):
            return True
        present = words & self.partners.keys()
        pairs = {(a, b) for a in present for b in self.partners[a] & present}
        return bool(pairs) and _pair_adjacent(text, pairs)


def _pair_adjacent(text: str, pairs: set[tuple[str, str]]) -> bool:
    """Whether some (a, b) of ``pairs`` stands in ``text`` as two words, ``a`` then ``b``, apart
    by at most three characters that are not letters, digits or a line break. Word edges: not a
    letter beside it, or a camelCase boundary (lower case then upper case)."""
    alternatives = "|".join(re.escape(a) + PAIR_SEP + re.escape(b) for a, b in sorted(pairs))
    n = len(text)
    for m in re.finditer(f"(?:{alternatives})", text, re.IGNORECASE):
        s, e = m.span()
        left = s == 0 or not _letter(text[s - 1]) or (text[s].isupper() and text[s - 1].islower())
        right = e == n or not _letter(text[e]) or (text[e].isupper() and text[e - 1].islower())
        if left and right:
            return True
    return False


def _letter(c: str) -> bool:
    return c.isascii() and c.isalpha()
