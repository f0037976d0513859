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

import pandas as pd

from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.sources.base import POSTCODE_RE

# Column names that alone show a raw identifier slipped through (e.g. NHSNumber, Postcode,
# PersonBirthDate, AddressPostcode, Person_Birth_Date), but not NHSNumberStatus or our tokens.
IDENTIFIER_NAME = re.compile(
    r"(nhs_?number|given_?name|family_?name|surname|forename|birth_?date|date_?of_?birth|dob"
    r"|post_?code(_usual_address)?|address)$",
    re.IGNORECASE,
)
SAFE_SUFFIXES = ("_token", "_bf")
SAFE_COLUMNS = {"postcode_district", "record_ref", "Generated_Record_ID", "source_file"}


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
_FULL_NAME = re.compile(rf"{_WORD}(?:,?\s+{_WORD}){{1,3}}")
_ONE_WORD = re.compile(_WORD)
NAME_WORD_SHARE = 0.3  # share of a column's distinct values that are known single names
NAME_WORD_MIN = 5  # and at least this many distinct known names


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def find_identifier_like(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{column: {rule: distinct values}} for identifier-shaped content; empty when clean."""
    found: dict[str, dict[str, int]] = {}
    for col in df.columns:
        if col.endswith(SAFE_SUFFIXES) or col in SAFE_COLUMNS or col.endswith("_SNOMED_CT"):
            continue
        if IDENTIFIER_NAME.search(col):
            found.setdefault(col, {})["identifier_column_name"] = int(df[col].notna().sum())
            continue
        s = df[col]
        if not _is_text(s):
            continue
        # distinct values only: codes and dates repeat, so this is far cheaper than every cell
        s = pd.Series(s.dropna().astype("string").unique(), dtype="string")
        if s.empty:
            continue
        compact = s.str.replace(r"[\s-]", "", regex=True)
        nhs = int(
            is_valid_nhs_number(compact.where(compact.str.fullmatch(r"\d{10}"))).fillna(False).sum()
        )
        if nhs:
            found.setdefault(col, {})["nhs_number_shaped"] = nhs
        pc = int(s.str.upper().str.fullmatch(POSTCODE_RE).fillna(False).sum())
        if pc:
            found.setdefault(col, {})["full_postcode_shaped"] = pc
        found_names = name_like_counts(s)
        if found_names:
            found.setdefault(col, {}).update(found_names)
    return found


def _in(word: str, names: frozenset[str]) -> bool:
    """The word, or a part of a hyphenated word (Mary-Jane, Smith-Jones), is in ``names``."""
    return word in names or any(part in names for part in word.split("-"))


def _is_full_name(value: str) -> bool:
    words = [w.lower() for w in re.split(r"[,\s]+", value) if w]
    forenames = [i for i, w in enumerate(words) if _in(w, FORENAMES)]
    surnames = [i for i, w in enumerate(words) if _in(w, SURNAMES)]
    return any(i != j for i in forenames for j in surnames)


def name_like_counts(values: pd.Series) -> dict[str, int]:
    """{rule: distinct values} for name-like text among distinct string ``values``.

    ``full_name_like``: values of two to four capitalised words where one word is a common
    forename and another a common surname. ``name_word_column``: the column's single
    capitalised words are common forenames or surnames for at least `NAME_WORD_SHARE` of its
    distinct values (and `NAME_WORD_MIN` of them), as a column of given or family names is.
    """
    out: dict[str, int] = {}
    values = values.dropna().astype("string")
    if values.empty:
        return out
    shaped = values[values.str.fullmatch(_FULL_NAME.pattern).fillna(False).astype(bool)]
    full = sum(_is_full_name(v) for v in shaped.unique())
    if full:
        out["full_name_like"] = int(full)
    single = values[values.str.fullmatch(_ONE_WORD.pattern).fillna(False).astype(bool)]
    known = sum(v.lower() in FORENAMES or v.lower() in SURNAMES for v in single.unique())
    if known >= NAME_WORD_MIN and known >= NAME_WORD_SHARE * values.nunique():
        out["name_word_column"] = int(known)
    return out
