"""A month of England (`synthetic.national`, `bench month`): a tiny national month's drops pass
the ingest contracts, in the stated proportions, with every row in the truth; the benchmark's
JSON has its figures."""

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.landing.layout import Landing
from sim_pipeline.landing.manifest import not_synthetic_reason
from sim_pipeline.sources.reader import read_drop
from sim_pipeline.sources.validation import DEFECTS_COLUMN, validate_drop
from sim_pipeline.synthetic.national import MONTH_TARGETS, generate_national
from sim_pipeline.synthetic.national_people import nhs_numbers

SCALE = 0.0005  # about 1,700 rows


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    root = tmp_path_factory.mktemp("national")
    summary = generate_national(
        root / "landing", root / "truth", month="2021-05", scale=SCALE, previous_scale=SCALE
    )
    return root, summary


def test_every_row_passes_the_contracts_and_is_in_the_truth(national):
    root, summary = national
    landing = Landing(root / "landing")
    records = pd.read_csv(root / "truth" / "records.csv", dtype=str)
    seen = []
    for drop in landing.present(["2021-04", "2021-05"]):
        raw = read_drop(drop.path, drop.table, drop.label)
        good, quarantine = validate_drop(raw.frame, drop.table, drop.label)
        assert raw.bad_shape.empty and quarantine.empty, drop.label
        assert len(good) == raw.rows_read, drop.label
        assert good[DEFECTS_COLUMN].fillna("").eq("").all(), drop.label  # no identifier degraded
        seen.append(
            pd.DataFrame(
                {
                    "source": drop.source,
                    "table": drop.table.table,
                    "month": drop.month,
                    "record_ref": raw.frame[drop.table.record_ref].to_numpy(),
                }
            )
        )
    rows = pd.concat(seen, ignore_index=True)
    key = ["source", "table", "month", "record_ref"]
    assert len(rows) == len(records) == sum(summary["rows_by_month"].values())
    both = rows.merge(records, on=key, how="left", validate="one_to_one")
    assert both["true_person_id"].notna().all()
    # earlier months are header-only drops; the whole landing is the generator's (demo mode)
    assert landing.present(["2021-03"]) and not_synthetic_reason(root / "landing") is None


def test_proportions_and_people_across_sources_and_months(national):
    _, summary = national
    month = summary["rows_by_month_and_table"]["2021-05"]
    total = sum(month.values())
    assert 0.8 * 3.35e6 * SCALE < total < 1.2 * 3.35e6 * SCALE
    expected = sum(MONTH_TARGETS[t] for t in ("ecds", "ambulance_incidents")) / 3.35e6
    share = summary["share_of_rows_by_source"]
    assert abs(share["A&E"] + share["ambulance"] - expected) < 0.04
    assert abs(share["A&E"] / share["ambulance"] - 2170 / 750) < 0.5
    assert 0.003 < share["police"] < 0.03 and 0.06 < share["mental health"] < 0.2
    assert summary["rows_by_month"]["2021-04"] > 0.8 * total  # previous month, same scale
    assert summary["people_in_both_months"] > 100  # frequent users recur: linkage has work
    people = summary["people_by_month_and_source"]["2021-05"]
    assert people["A&E"] < month["ecds"]  # some people attend more than once


def test_nhs_numbers_are_valid_and_distinct():
    nhs = pd.Series(nhs_numbers(np.random.default_rng(1), 50_000))
    assert nhs.is_unique and is_valid_nhs_number(nhs).all()
    assert nhs.str.slice(0, 2).eq("99").all()
