"""Deliberate provider errors, small and countable, that the input contracts must catch.

Per landing row, independently:

* ``nhs_number_check_digit``: 0.1% of rows that carry an NHS number get a wrong check digit;
* ``date_format``: 0.05% of rows get an impossible date (e.g. 2019-02-30) in one date column;
* ``postcode_format``: 0.05% of rows with a postcode get a malformed one;
* exact duplicates: 0.2% of rows are sent twice in the same file (same record_ref; not a
  contract failure, but something ingest must de-duplicate).

Corrupted rows still describe true events: truth counts are unaffected, and ``records.csv``
lists every row written, duplicates included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources.base import SourceTable
from sim_pipeline.synthetic import noise

P_NHS = 0.001
P_DATE = 0.0005
P_POSTCODE = 0.0005
P_DUPLICATE = 0.002

# The column that receives an impossible date, per table.
DATE_COLUMN = {
    "MHS001MPI": "PersonBirthDate",
    "MHS201CareContact": "CareContDate",
    "MHS401MHActPeriod": "StartDateMHActLegalStatusClass",
    "MHS501HospProvSpell": "StartDateHospProvSpell",
    "MHS502WardStay": "StartDateWardStay",
    "programme_register": "PersonBirthDate",
    "cad_incidents": "CallReceivedDateTime",
    "s136_return": "DetentionDateTime",
    "ambulance_incidents": "CallDateTime",
    "ecds": "Arrival_Date",
}


def inject_errors(
    rng: np.random.Generator,
    table: SourceTable,
    df: pd.DataFrame,
    keep: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the rows with errors applied, and how many of each kind were made.

    With ``keep``, errors are drawn for every row but only the ``keep`` rows (and their
    duplicates) are returned and counted, so which rows are left out changes no other row.
    """
    df = df.copy()
    n = len(df)
    kept = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if keep is not None:
        df = df.reset_index(drop=True)
    u = rng.random((4, n))
    made = {"nhs_check_digit": 0, "impossible_date": 0, "malformed_postcode": 0, "duplicate": 0}
    nhs_col = table.identifiers.nhs_number
    if nhs_col:
        sel = (u[0] < P_NHS) & (df[nhs_col] != "").to_numpy()
        if sel.any():
            df.loc[sel, nhs_col] = noise.corrupt_nhs_check_digit(rng, df.loc[sel, nhs_col].values)
        made["nhs_check_digit"] = int((sel & kept).sum())
    col = DATE_COLUMN[table.table]
    sel = (u[1] < P_DATE) & (df[col] != "").to_numpy()
    if sel.any():
        df.loc[sel, col] = noise.impossible_dates(rng, df.loc[sel, col].values)
    made["impossible_date"] = int((sel & kept).sum())
    pc_col = table.identifiers.postcode
    if pc_col:
        sel = (u[2] < P_POSTCODE) & (df[pc_col] != "").to_numpy()
        if sel.any():
            df.loc[sel, pc_col] = noise.malformed_postcodes(rng, df.loc[sel, pc_col].values)
        made["malformed_postcode"] = int((sel & kept).sum())
    dup = u[3] < P_DUPLICATE
    made["duplicate"] = int((dup & kept).sum())
    if dup.any():
        df = pd.concat([df, df[dup]], ignore_index=False).sort_index(kind="stable")
        if keep is None:
            df = df.reset_index(drop=True)
    if keep is not None:
        df = df[kept[df.index.to_numpy()]].reset_index(drop=True)
    return df, made
