"""Scan a frame for values that look like direct identifiers (run before anything is written).

Rules: a column named like an identifier; values shaped like a valid NHS number or a full UK
postcode; values that read as a personal name (two to four capitalised words, one a common
forename and another a common surname: `full_name_like`), or a column whose single capitalised
words are mostly common forenames or surnames (`name_word_column`). Only distinct values are
examined. Returns counts per column and rule, never the values themselves.

The name lists below are a modest embedded sample of common forenames and surnames in England
and Wales (ONS-style frequency lists, with the names common in London's communities). They are
independent of the synthetic generator's lists, so the generator can test the detector.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import pandas as pd

from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.quality.identifier_forms import IdentifierMatcher

# Column names that alone show a raw identifier slipped through (e.g. NHSNumber, Postcode,
# PersonBirthDate, AddressPostcode, Person_Birth_Date), but not NHSNumberStatus or our tokens.
IDENTIFIER_NAME = re.compile(
    r"(nhs_?number|given_?name|family_?name|surname|forename|birth_?date|date_?of_?birth|dob"
    r"|post_?code(_usual_address)?|address)$",
    re.IGNORECASE,
)
SAFE_SUFFIXES = ("_token", "_bf")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FORENAMES = _words(
    """
    aaron abdul abdullah abigail adam adrian ahmed aidan aisha alan albert alex alexander
    alexandra alfie ali alice alison amanda amber amelia amina amir amy andrea andrew angela
    ann anna anne annie anthony archie arthur ashley audrey ava ayesha barbara barry beatrice
    ben benjamin bernard beth bethany betty beverley billy blessing brenda brian callum carl
    carol caroline catherine charles charlie charlotte chloe chris christine christopher claire
    colin connor craig daisy daniel danielle darren david dawn dean deborah declan denise dennis
    derek diane donna dorothy douglas dylan edward eileen eleanor elizabeth ella ellie emily emma
    emmanuel eric ethan evelyn evie fatima fiona florence frances francesca frank freddie
    frederick freya gareth gary gemma george georgia gillian glenn gloria grace graham hannah
    harriet harry harvey hassan hayley heather helen henry holly ian ibrahim imran irene isaac
    isabel isabella isla jack jacob jade jake james jamie jane janet jason jayden jean jennifer
    jessica joan joanne joe john jonathan jordan joseph joshua joyce judith julia julie karen
    kate katherine kathleen katie keith kelly kenneth kevin kieran kirsty kwame kofi laura
    lauren leah lee leo leon lewis liam lily linda lisa logan lorraine louis louise lucy luke
    lynne maisie malcolm margaret maria marie mark martin mary maryam matthew maureen megan
    melissa mia michael michelle mohammed mohammad molly muhammad nathan natalie neil nicholas
    nicola noah norman olivia omar oscar owen patricia patrick paul pauline peter philip phoebe
    poppy priya rachel rebecca reece rhys richard rita robert robyn roger ronald rosie ross ruby
    russell ruth ryan sally samantha samuel sandra sara sarah scott sean shannon sharon sheila
    shirley simon sophie stacey stanley stephanie stephen steven stuart susan suzanne tanya
    teresa terence terry thomas timothy toby tom tony tracey tracy trevor tyler valerie vanessa
    victoria vincent wayne wendy william yasmin yusuf zainab zara zoe
    """
)
SURNAMES = _words(
    """
    adams ahmed akhtar ali allen anderson andrews armstrong atkinson bailey baker ball banks
    barker barnes barrett bates begum bell bennett berry bibi bird bishop boateng booth bradley
    brooks brown burgess burton butler campbell carr carter chambers chapman chowdhury clark
    clarke cole coleman collins cook cooke cooper cox cross curtis davies davis dawson day dean
    dixon doyle dunn edwards elliott ellis evans fisher fletcher ford foster fox francis freeman
    gardner george gibson gill graham grant gray green gregory griffin griffiths hall hamilton
    harding harper harris harrison hart harvey hawkins hayes henderson hill hodgson holland
    holmes hopkins howard hudson hughes hunt hunter hussain islam jackson james jenkins johnson
    johnston jones jordan kaur kelly kennedy khan king knight kumar lambert lane lawrence lee
    lewis lloyd lowe marsh marshall martin mason matthews mcdonald mensah miah miller mills
    mitchell moore morgan morris moss murphy murray newman newton nicholson okafor okonkwo oliver
    osei owen owusu palmer parker parry parsons patel payne pearce pearson perry phillips porter
    potter powell price rahman reed rees reid reynolds richards richardson riley roberts
    robertson robinson rogers rose ross russell ryan saunders scott shah sharma sharp shaw
    shepherd simpson singh smith spencer stevens stewart stone sutton taylor thomas thompson
    thomson turner uddin walker wallace walsh ward watson watts webb webster wells west wheeler
    white wilkinson williams williamson wilson wood woods wright yates young
    """
)
# A capitalised word: Title case (McDonald too) or all capitals, with at most one inner hyphen
# or apostrophe (O'Brien, SMITH-JONES). Full-name candidates have two to four of them (comma
# allowed: "SMITH, John").
_CAP = r"[A-Z](?:[a-z]*(?:[A-Z][a-z]+)?|[A-Z]+)"
_WORD = rf"{_CAP}(?:['’-]{_CAP})?"
_ONE_WORD = re.compile(_WORD)
NAME_WORD_SHARE = 0.3  # share of a column's distinct values that are known single names
NAME_WORD_MIN = 5  # and at least this many distinct known names


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


# Encodings: exactly their own hex form, nothing else (checked, not skipped).
TOKEN_FORMAT = re.compile(r"[0-9a-f]{32}")
BLOOM_FORMAT = re.compile(r"[0-9a-f]{256}")
# NHS-number shape inside text: ten digits of any script, together or in 3-3-4 groups (space
# or hyphen), or spaced one by one or in pairs; not part of a longer digit run.
_NHS_IN_TEXT = re.compile(
    r"(?<!\d)(?<!\d[ -])(?:\d{3}([ -]?)\d{3}\1\d{4}|\d(?: ?\d){9})(?![ -]?\d)"
)
_POSTCODE_IN_TEXT = re.compile(r"(?<![A-Z0-9])[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}(?![A-Z0-9])")


def _ascii(text: str) -> str:
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)


def _nhs_in_text(values: pd.Series) -> int:
    """Distinct values holding a valid NHS number anywhere in their text."""
    hits = 0
    for v in values:
        found = [re.sub(r"[ -]", "", _ascii(m.group(0))) for m in _NHS_IN_TEXT.finditer(v)]
        if found and is_valid_nhs_number(pd.Series(found, dtype="string")).fillna(False).any():
            hits += 1
    return hits


def find_identifier_like(
    df: pd.DataFrame,
    known: IdentifierMatcher | None = None,
    record_keys: Iterable[str] = (),
    token_columns: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """{column: {rule: distinct values}} for identifier-shaped content; empty when clean.

    No column is exempt. Token and Bloom-filter columns must hold exactly their hex form
    (``token_format``). Every other text column is searched inside its text: an NHS number in
    any grouping or digit script (``nhs_number_shaped``), a full postcode
    (``full_postcode_shaped``), a forename-surname pair in any case (``full_name_like``), a
    column of single names (``name_word_column``), and, when ``known`` is given (built from the
    raw identifiers of the rows being staged), any form of those very identifiers
    (``landing_<kind>``: NHS number, date of birth, postcode, name). ``record_keys`` (provider
    record keys, free-form codes) are held to ``known`` only, not to the NHS-number shape: a
    ten-digit record key passes modulus 11 one time in eleven. ``token_columns`` (staged record
    keys, tokenised at the door) are held to the token form, as ``*_token`` columns are.
    """
    found: dict[str, dict[str, int]] = {}
    keys = set(record_keys)
    tokens = set(token_columns)
    # (column, its rules, its findings) of the columns scanned so far: a column equal to one of
    # them under the same rules has the same findings (a table's record key is both
    # ``record_ref`` and its own key column: scanned once, reported under both names)
    scanned: list[tuple[pd.Series, tuple[bool, bool, bool], dict[str, int]]] = []
    for col in df.columns:
        if IDENTIFIER_NAME.search(col) and not col.endswith(SAFE_SUFFIXES):
            found.setdefault(col, {})["identifier_column_name"] = int(df[col].notna().sum())
            continue
        s = df[col]
        if not _is_text(s):
            continue
        rules = (col.endswith("_bf"), col.endswith(SAFE_SUFFIXES) or col in tokens, col in keys)
        s = s.astype("string")  # one missing-value marker, so equal columns compare equal
        same = next((r for c, k, r in scanned if k == rules and c.equals(s)), None)
        if same is None:
            same = _column_findings(s, *rules, known)
            scanned.append((s, rules, same))
        if same:
            found[col] = dict(same)
    return found


def _column_findings(
    column: pd.Series,
    bloom: bool,
    token: bool,
    record_key: bool,
    known: IdentifierMatcher | None,
) -> dict[str, int]:
    """`find_identifier_like`'s {rule: distinct values} for one text column: a ``token``
    column (a Bloom filter when ``bloom``) held to its hex form; any other searched inside its
    text, a ``record_key`` column not for the NHS-number shape."""
    found: dict[str, int] = {}
    # distinct values only: codes and dates repeat, so this is far cheaper than every cell
    s = pd.Series(column.dropna().astype("string").unique(), dtype="string")
    if s.empty:
        return found
    if token:
        shape = BLOOM_FORMAT if bloom else TOKEN_FORMAT
        bad = int((~s.str.fullmatch(shape.pattern).fillna(False).astype(bool)).sum())
        if bad:
            found["token_format"] = bad
        return found
    if not record_key:
        nhs = _nhs_in_text(s[s.str.contains(r"\d", regex=True).fillna(False).astype(bool)])
        if nhs:
            found["nhs_number_shaped"] = nhs
    upper = s.str.upper()
    pc = int(upper.str.contains(_POSTCODE_IN_TEXT.pattern).fillna(False).astype(bool).sum())
    if pc:
        found["full_postcode_shaped"] = pc
    found.update(name_like_counts(s))
    if known is not None:
        for kind, n in _known_hits(s, known).items():
            found[f"landing_{kind}"] = n
    return found


def find_identifier_like_by_group(
    df: pd.DataFrame,
    groups: pd.Series,
    keys: Iterable[object],
    known: IdentifierMatcher | None = None,
    record_keys: Iterable[str] = (),
) -> dict[object, dict[str, dict[str, int]]]:
    """{key: `find_identifier_like` of the rows whose ``groups`` value is ``key``} for each of
    ``keys`` (the months of a run), the same result as one call per group, in one call when the
    rows are clean: every rule but one counts values that hit, so a group of clean values is
    clean; the exception, a column of single names (``name_word_column``, a share of the
    column), is ruled out first (fewer than `NAME_WORD_MIN` known names in the whole column).
    Otherwise, group by group. Per group, most of the time was the call (65 months x 10 tables
    a run)."""
    keys = list(keys)
    record_keys = list(record_keys)
    if not find_identifier_like(df, known, record_keys) and not _name_words_possible(df):
        return {k: {} for k in keys}
    return {k: find_identifier_like(df[(groups == k).to_numpy()], known, record_keys) for k in keys}


def _name_words_possible(df: pd.DataFrame) -> bool:
    """Some text column holds at least `NAME_WORD_MIN` distinct known single names, so a part
    of it could pass `name_like_counts`' share rule although the whole does not."""
    for col in df.columns:
        s = df[col]
        if not _is_text(s):
            continue
        if _known_single_names(s.dropna().astype("string")) >= NAME_WORD_MIN:
            return True
    return False


KNOWN_BLOCK = 2000


def _known_hits(values: pd.Series, known: IdentifierMatcher) -> dict[str, int]:
    """{kind: distinct values holding it}. Values are first matched in blocks of
    `KNOWN_BLOCK` joined by line breaks (no form the matcher reads spans a line break, so a
    value that holds an identifier makes its block hold it; the storage scan reads the same
    way) and one by one only in a block that hits: per value, most of the time was the call."""
    texts = [str(v) for v in values]
    hits: dict[str, int] = {}
    for start in range(0, len(texts), KNOWN_BLOCK):
        block = texts[start : start + KNOWN_BLOCK]
        if not known.kinds("\n".join(block)):
            continue
        for v in block:
            for kind in known.kinds(v):
                hits[kind] = hits.get(kind, 0) + 1
    return hits


def _known_single_names(values: pd.Series) -> int:
    """Distinct single capitalised words among string ``values`` that are common forenames or
    surnames (`name_like_counts`' share rule, and the guard of `find_identifier_like_by_group`)."""
    single = values[values.str.fullmatch(_ONE_WORD.pattern).fillna(False).astype(bool)]
    return sum(v.lower() in FORENAMES or v.lower() in SURNAMES for v in single.unique())


def _in(word: str, names: frozenset[str]) -> bool:
    """The word, or a part of a hyphenated word (Mary-Jane, Smith-Jones), is in ``names``."""
    return word in names or any(part in names for part in word.split("-"))


# Words of a text for the pair rule: camelCase and snake_case split ("JohnSmith", "john_smith"),
# hyphenated and apostrophe names kept whole ("Mary-Jane", "O'Brien").
_TEXT_WORD = re.compile(r"[A-Z]+(?![a-z])(?:['’-][A-Za-z]+)*|[A-Z]?[a-z]+(?:['’-][A-Za-z]+)*")


PAIR_WINDOW = 3


def _is_full_name(value: str) -> bool:
    """A common forename and a common surname (either order, at most one word between),
    anywhere in the text and in any case: "John Smith", "SMITH, John", "seen with john smith
    today", "JohnSmith"."""
    words = [w.lower() for w in _TEXT_WORD.findall(value)]
    fore = [_in(w, FORENAMES) for w in words]
    sur = [_in(w, SURNAMES) for w in words]
    # within three consecutive words (a middle name between): "Mary-Jane O'Brien Patel"
    return any(
        (fore[i] and sur[j]) or (sur[i] and fore[j])
        for i in range(len(words))
        for j in range(i + 1, min(i + PAIR_WINDOW, len(words)))
    )


def name_like_counts(values: pd.Series) -> dict[str, int]:
    """{rule: distinct values} for name-like text among distinct string ``values``.

    ``full_name_like``: values holding a common forename next to a common surname, anywhere in
    their text and in any case (`_is_full_name`). ``name_word_column``: the column's single
    capitalised words are common forenames or surnames for at least `NAME_WORD_SHARE` of its
    distinct values (and `NAME_WORD_MIN` of them), as a column of given or family names is.
    """
    out: dict[str, int] = {}
    values = values.dropna().astype("string")
    if values.empty:
        return out
    lettered = values[values.str.contains(r"[A-Za-z].*[^A-Za-z].*[A-Za-z]|[a-z][A-Z]", regex=True)]
    full = sum(_is_full_name(v) for v in lettered.dropna().unique())
    if full:
        out["full_name_like"] = int(full)
    known = _known_single_names(values)
    if known >= NAME_WORD_MIN and known >= NAME_WORD_SHARE * values.nunique():
        out["name_word_column"] = int(known)
    return out
