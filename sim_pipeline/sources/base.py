"""What every provider table declares: where it lands, its contract and which columns identify people.

A `SourceTable` is the single description of one provider table. The synthetic generator writes
files in this shape, ingest reads and validates them with `contract`, and the identity package uses
`identifiers` to know which columns to tokenise and drop at the privacy boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.pandas as pa

DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIME_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
DATETIME_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
POSTCODE_RE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$"

# Six programme boroughs (seed review) plus neighbours people move to or are found in.
PROGRAMME_BOROUGHS = ("Greenwich", "Southwark", "Kingston", "Richmond", "Wandsworth", "Merton")
OTHER_BOROUGHS = ("Lambeth", "Lewisham", "Croydon", "Sutton", "Bexley", "Bromley")
BOROUGHS = PROGRAMME_BOROUGHS + OTHER_BOROUGHS


@dataclass(frozen=True)
class IdentifierColumns:
    """Names of the raw identifier columns of a table (None where the table has no such field).

    Every column named here is removed at the privacy boundary; only tokens and the
    non-identifying derived fields (age band, sex, postcode district) survive.
    """

    nhs_number: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    birth_date: str | None = None
    postcode: str | None = None
    sex: str | None = None
    # Fields that are identifying but not used for linkage (dropped, never tokenised).
    drop_only: tuple[str, ...] = ()
    # Column holding the event date, used for the age band at the event.
    event_date: str | None = None
    # Column holding a provider age (used for the age band when there is no birth date).
    age: str | None = None

    def raw_columns(self) -> list[str]:
        """Columns removed at the boundary: the identifiers and the provider's exact age (only
        the age band at the event is kept: exact ages and event dates gave birth year-months
        back)."""
        cols = [
            self.nhs_number,
            self.given_name,
            self.family_name,
            self.birth_date,
            self.postcode,
            self.age,
        ]
        return [c for c in cols if c] + list(self.drop_only)


@dataclass(frozen=True)
class SourceTable:
    """One provider table: landing location, contract, record key, identifier columns."""

    asset_name: str  # Dagster asset / warehouse table name, e.g. "staged_mhs001mpi"
    table: str  # file stem in the landing folder, e.g. "MHS001MPI"
    providers: tuple[str, ...]  # provider folders under the landing dir that send this table
    contract: type[pa.DataFrameModel]
    record_ref: str  # provider's own non-identifying record key column
    identifiers: IdentifierColumns = field(default_factory=IdentifierColumns)
    description: str = ""
    # Deterministic person links: (column, namespace). Within one provider, rows with the same
    # value in a namespace are the same person (a trust's LocalPatientId; the police incident a
    # s136 detention was raised from). Linkage joins them outright.
    person_links: tuple[tuple[str, str], ...] = ()
    # Columns read and contract-checked but never staged: no metric needs them and they narrow
    # down a person (a care contact's time of day).
    not_kept: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return list(self.contract.to_schema().columns)

    # The typed columns follow from the contract's checks (declared once, in the contract):
    # converted after validation; identifier dates (birth dates) stay text, as tokenised.
    def _checked(self, rule: str) -> tuple[str, ...]:
        schema = self.contract.to_schema()
        return tuple(n for n, c in schema.columns.items() if any(k.name == rule for k in c.checks))

    @property
    def date_columns(self) -> tuple[str, ...]:
        """Columns the contract checks as dates (``date_format``), but identifier dates."""
        raw = set(self.identifiers.raw_columns())
        return tuple(c for c in self._checked("date_format") if c not in raw)

    @property
    def datetime_columns(self) -> tuple[str, ...]:
        """Columns the contract checks as date-times (``datetime_format``)."""
        raw = set(self.identifiers.raw_columns())
        return tuple(c for c in self._checked("datetime_format") if c not in raw)

    @property
    def int_columns(self) -> tuple[str, ...]:
        """Columns the contract checks as whole numbers (``whole_number``; a provider's age
        too: the age band at the event is computed from it)."""
        return self._checked("whole_number")

    @property
    def staged_columns(self) -> list[str]:
        """Contract columns a staged table keeps (as values, or as tokens for `key_columns`):
        not the raw identifiers (tokenised or dropped at the door), not `not_kept`."""
        gone = {*self.identifiers.raw_columns(), *self.not_kept}
        return [c for c in self.columns if c not in gone]

    @property
    def key_columns(self) -> list[str]:
        """Provider record keys and references (``...Id``, ``...ID``, ``...Ref``,
        ``IncidentNumber``): codes, not identifiers of a person's identity."""
        raw = set(self.identifiers.raw_columns())
        return [
            c
            for c in self.columns
            if c not in raw and (c.endswith(("Id", "ID", "Ref")) or c == "IncidentNumber")
        ]

    def file_name(self) -> str:
        return f"{self.table}.csv"
