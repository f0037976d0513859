"""The person dimension (`identity.person_dimension`): each person's sex, age band by month and
death month, derived once from their records; the evaluation reads it instead of the records."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt

from sim_pipeline.evaluation.comparison import EvaluationSettings, evaluate
from sim_pipeline.identity.person_dimension import DIMENSION_COLUMNS, person_dimension
from sim_pipeline.measures.metrics import METRICS

COLUMNS = ["source", "table_name", "record_ref", "month", "person_sex", "age_band"]


def _index(records: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"source": "t", "table_name": "x", "record_ref": ref, "person_key": key}
            for ref, key in records.items()
        ]
    )


def _rows(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([("t", "x", *r) for r in rows], columns=COLUMNS)


def test_one_row_per_person_month_with_the_most_frequent_values_and_the_first_death():
    index = _index({"r1": "P1", "r2": "P1", "r3": "P1", "r4": "P2"})
    rows = _rows(
        [
            ("r1", "2018-01", "F", "25-34"),
            ("r1", "2018-02", "F", "25-34"),  # resent: counts again
            ("r2", "2018-02", "M", "35-44"),  # a tie with 25-34 this month: first in order
            ("r3", "2018-03", None, None),  # a table without demographics
            ("r3", "2018-03", "U", None),
            ("r4", "2018-01", "U", "18-24"),  # sex only unknown: none recorded
            ("r9", "2018-01", "M", "65+"),  # not in the index: no person
        ]
    )
    deaths = pd.DataFrame(
        {
            "source": "t",
            "table_name": "x",
            "record_ref": ["r1", "r2", "r4"],
            "death_date": ["2018-05-03", "2018-04-20", None],
        }
    )
    got = person_dimension(rows, index, deaths)
    assert list(got.columns) == DIMENSION_COLUMNS
    want = pd.DataFrame(
        [
            ("P1", "2018-01", "F", "25-34", "2018-04"),
            ("P1", "2018-02", "F", "25-34", "2018-04"),
            ("P1", "2018-03", "F", None, "2018-04"),
            ("P2", "2018-01", None, "18-24", None),
        ],
        columns=DIMENSION_COLUMNS,
    ).astype("string")
    pdt.assert_frame_equal(got, want)
    # without a death table every death month is empty
    assert person_dimension(rows, index)["death_month"].isna().all()


MONTHS = [str(p) for p in pd.period_range("2016-01", "2019-12", freq="M")]
ALLOC = "2018-06"


def _panel(people: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Cost ``base`` before the allocation's run-up (3x base), ``follow`` after; s136 every
    third month (the eligibility rule)."""
    i, out = MONTHS.index(ALLOC), []
    for key, (base, follow) in people.items():
        for k, m in enumerate(MONTHS):
            cost = follow if k >= i else 3 * base if k >= i - 3 else base
            row = {"person_key": key, "month": m, **dict.fromkeys(METRICS, 0)}
            out.append({**row, "total_cost": cost, "s136_detentions": int(k % 3 == 0)})
    return pd.DataFrame(out)


def test_the_evaluation_matches_alike_from_the_dimension_as_from_the_records():
    """Matching is exact on sex and age band: from the record rows (several a month, unknowns,
    a tie) and from the dimension made of them, the same comparisons and the same estimates."""
    from sim_pipeline.measures.cohort import cohort_windows

    index = _index({"t1": "T", "a1": "A", "a2": "A", "b1": "B", "c1": "C"})
    rows = _rows(
        [
            *[("t1", m, "F", "25-34") for m in MONTHS[::6]],
            # A: mostly F, one M record; a tie of bands in one month
            *[("a1", m, "F", "25-34") for m in MONTHS[::6]],
            ("a2", MONTHS[6], "M", "35-44"),
            ("a2", MONTHS[7], "U", None),
            # B: recorded as M; C: 45-54 -- neither alike T
            *[("b1", m, "M", "25-34") for m in MONTHS[::6]],
            *[("c1", m, "F", "45-54") for m in MONTHS[::6]],
        ]
    )
    deaths = pd.DataFrame(
        {"source": "t", "table_name": "x", "record_ref": ["c1"], "death_date": ["2019-03-02"]}
    )
    dimension = person_dimension(rows, index, deaths)
    keyed = rows.merge(index, on=["source", "table_name", "record_ref"])
    records = pd.concat(
        [
            keyed[["person_key", "month", "person_sex", "age_band"]].rename(
                columns={"person_sex": "sex"}
            ),
            pd.DataFrame({"person_key": ["C"], "death_month": ["2019-03"]}),
        ],
        ignore_index=True,
    )
    panel = _panel({"T": (100, 60), "A": (100, 80), "B": (100, 40), "C": (100, 20)})
    alloc = pd.to_datetime(pd.Series([f"{ALLOC}-10"]))
    none = pd.Series([pd.NaT])
    cohort = pd.DataFrame(
        {"person_key": ["T"], "allocation_date": alloc.dt.date, "itt": True, "per_protocol": True}
    ).join(cohort_windows(alloc, alloc, none, MONTHS[0], MONTHS[-1]))
    settings = EvaluationSettings(bootstrap=50, controls_per_person=1, seed=7, design=None)
    from_records = evaluate(panel, cohort, records, MONTHS, settings)
    from_dimension = evaluate(panel, cohort, dimension, MONTHS, settings)
    assert from_dimension.matches["comparison_person_key"].tolist() == ["A"]  # the one alike
    pdt.assert_frame_equal(from_records.matches, from_dimension.matches)
    pdt.assert_frame_equal(from_records.estimates, from_dimension.estimates)
