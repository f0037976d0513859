"""Unit costs: versioned reference data, price-year inflation, person-month costs.

Every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim_pipeline.measures.costs import (
    COST_COLUMNS,
    OUTPUT_COLUMNS,
    CostError,
    UnitCosts,
    load_unit_costs,
    person_month_costs,
)
from sim_pipeline.measures.metrics import METRICS

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
SHIPPED_COSTS = REFERENCE / "unit_costs.csv"
SHIPPED_INDEX = REFERENCE / "price_index.csv"

HEADER = "version,metric,item,unit_cost_gbp,price_year,source,sourced,note"
INDEX_HEADER = "price_year,index_value,source,verified"


def costs_csv(tmp_path: Path, *rows: str, name: str = "unit_costs.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def index_csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "price_index.csv"
    path.write_text("\n".join([INDEX_HEADER, *rows]) + "\n")
    return path


def five_rows(year: str = "2018/19", version: str = "1.0", **costs: str) -> list[str]:
    """One sourced row per metric, cost 10 unless overridden."""
    return [f"{version},{m},item {m},{costs.get(m, '10')},{year},src,true," for m in METRICS]


def test_shipped_costs_at_2018_19() -> None:
    uc = load_unit_costs(SHIPPED_COSTS, "2018/19", SHIPPED_INDEX)
    table = uc.table.set_index("metric")
    assert list(uc.table["metric"]) == list(METRICS)  # one row per metric, in order
    assert uc.version == "2026.1"
    assert uc.price_year == "2018/19"
    assert uc.flags == ("unsourced_assumption:police_deployments", "price_index_unverified")
    assert uc.flag_text == "unsourced_assumption:police_deployments;price_index_unverified"
    assert not uc.index_verified
    assert uc.index_source is not None and "PSSRU" in uc.index_source
    assert list(table["sourced"]) == [True, True, True, False, True]
    # already 2018/19: factor 1
    for metric, gbp in [("ae_attendances", 192.0), ("ambulance_resources", 209.38)]:
        assert table.loc[metric, "inflation_factor"] == 1.0
        assert table.loc[metric, "unit_cost_at_price_year"] == gbp
    assert table.loc["police_deployments", "unit_cost_at_price_year"] == 250.0
    # s136: 1077 at 2014/15. index 2014/15 = 100 / 1.010 = 99.0099; 2018/19 = 100 * 1.021
    # * 1.023 * 1.023 = 106.8506. factor = 106.8506 / 99.0099 = 1.079191...;
    # 1077 * 1.079191 = 1162.2888 -> 1162.29
    s136 = table.loc["s136_detentions"]
    assert s136["unit_cost_gbp"] == 1077.0 and s136["price_year"] == "2014/15"
    assert s136["inflation_factor"] == pytest.approx(1.079191, abs=1e-6)
    assert s136["unit_cost_at_price_year"] == 1162.29
    # bed day: 416.56 at 2017/18 (index 104.4483). factor = 106.8506 / 104.4483 = 1.0230000
    # (to 7 dp); 416.56 * 1.023 = 426.1409 -> 426.14
    beds = table.loc["mh_bed_days"]
    assert beds["inflation_factor"] == pytest.approx(1.023, abs=1e-6)
    assert beds["unit_cost_at_price_year"] == 426.14


def test_shipped_index_is_marked_unverified() -> None:
    index = pd.read_csv(SHIPPED_INDEX, dtype=str)
    assert list(index["price_year"]) == [f"{y}/{(y + 1) % 100:02d}" for y in range(2014, 2022)]
    assert set(index["verified"]) == {"false"}
    assert index.set_index("price_year").loc["2015/16", "index_value"] == "100.0000"


def test_inflation_on_hand_made_tables(tmp_path: Path) -> None:
    costs = costs_csv(tmp_path, *five_rows(year="2017/18", ae_attendances="100"))
    index = index_csv(tmp_path, "2017/18,100,pub,true", "2018/19,102.5,pub,true")
    uc = load_unit_costs(costs, "2018/19", index)
    table = uc.table.set_index("metric")
    # 100 * 102.5 / 100 = 102.50; the others 10 * 1.025 = 10.25
    assert table.loc["ae_attendances", "unit_cost_at_price_year"] == 102.50
    assert table.loc["police_deployments", "unit_cost_at_price_year"] == 10.25
    assert table.loc["ae_attendances", "unit_cost_gbp"] == 100.0  # the original is kept
    assert table.loc["ae_attendances", "price_year"] == "2017/18"
    assert uc.index_verified and uc.index_source == "pub"
    assert uc.flags == ()  # sourced costs, verified index


def test_inflation_rounds_half_up_to_pennies(tmp_path: Path) -> None:
    costs = costs_csv(tmp_path, *five_rows(year="2017/18", ae_attendances="2.5"))
    index = index_csv(tmp_path, "2017/18,100,pub,false", "2018/19,101,pub,false")
    uc = load_unit_costs(costs, "2018/19", index)
    # 2.5 * 1.01 = 2.525 -> 2.53 half up (float round() and half-even would give 2.52);
    # 10 * 1.01 = 10.10
    assert uc.unit_cost["ae_attendances"] == 2.53
    assert uc.unit_cost["mh_bed_days"] == 10.10
    assert uc.flags == ("price_index_unverified",)


def test_refuses_to_mix_price_years_without_an_index(tmp_path: Path) -> None:
    rows = five_rows()
    rows[2] = "1.0,mh_bed_days,bed day,400,2017/18,src,true,"
    rows[4] = "1.0,s136_detentions,s136,1000,2014/15,src,true,"
    costs = costs_csv(tmp_path, *rows)
    for index in (None, tmp_path / "absent.csv"):
        with pytest.raises(CostError) as err:
            load_unit_costs(costs, "2018/19", index)
        message = str(err.value)
        assert "mh_bed_days in 2017/18" in message
        assert "s136_detentions in 2014/15" in message
        assert "index" in message and "refusing to mix" in message
        assert "ae_attendances" not in message  # already in the target year


def test_index_missing_a_needed_year(tmp_path: Path) -> None:
    costs = costs_csv(tmp_path, *five_rows(year="2016/17"))
    index = index_csv(tmp_path, "2017/18,100,pub,true", "2018/19,102.5,pub,true")
    with pytest.raises(CostError, match=r"price_index\.csv.*2016/17.*not in the index"):
        load_unit_costs(costs, "2018/19", index)


def test_no_index_needed_when_all_costs_are_in_the_target_year(tmp_path: Path) -> None:
    costs = costs_csv(tmp_path, *five_rows(year="2019/20", s136_detentions="1234.5"))
    uc = load_unit_costs(costs, "2019/20", None)
    assert list(uc.table["inflation_factor"]) == [1.0] * 5
    assert uc.unit_cost["s136_detentions"] == 1234.50
    assert uc.index_source is None
    assert "price_index_unverified" not in uc.flags


def test_highest_version_is_default(tmp_path: Path) -> None:
    # 2026.10 > 2026.9 as integers (not as text)
    rows = five_rows(version="2026.9") + five_rows(version="2026.10", ae_attendances="20")
    costs = costs_csv(tmp_path, *rows)
    assert load_unit_costs(costs, "2018/19", None).version == "2026.10"
    assert load_unit_costs(costs, "2018/19", None).unit_cost["ae_attendances"] == 20.0
    old = load_unit_costs(costs, "2018/19", None, version="2026.9")
    assert old.unit_cost["ae_attendances"] == 10.0
    with pytest.raises(CostError, match="version '2027.1' not found"):
        load_unit_costs(costs, "2018/19", None, version="2027.1")


def test_unused_rows_do_not_count_as_metric_rows(tmp_path: Path) -> None:
    costs = costs_csv(tmp_path, *five_rows(), "1.0,,999 call,7.33,2018/19,src,true,reference")
    assert len(load_unit_costs(costs, "2018/19", None).table) == 5


@pytest.mark.parametrize(
    ("change", "line", "rule"),
    [
        # rows: header is file line 1, the 5 metric rows are data rows 1-5
        (lambda rows: rows[:3] + rows[4:], None, "'police_deployments' has no row in version 1.0"),
        (lambda rows: [*rows, rows[1]], "data row 6 (file line 7)", "2 rows in version 1.0"),
        (
            lambda rows: [*rows[:2], rows[2].replace(",10,", ",-5,"), *rows[3:]],
            "data row 3 (file line 4)",
            "unit_cost_gbp '-5' must be >= 0",
        ),
        (
            lambda rows: [*rows[:2], rows[2].replace(",10,", ",ten,"), *rows[3:]],
            "data row 3 (file line 4)",
            "unit_cost_gbp 'ten' is not a number",
        ),
        (
            lambda rows: [*rows[:4], rows[4].replace(",src,", ",,")],
            "data row 5 (file line 6)",
            "source is empty",
        ),
        (
            lambda rows: [rows[0].replace(",2018/19,", ",,"), *rows[1:]],
            "data row 1 (file line 2)",
            "price_year is empty",
        ),
        (
            lambda rows: [rows[0].replace(",2018/19,", ",2018,"), *rows[1:]],
            "data row 1 (file line 2)",
            "not a financial year",
        ),
        (
            lambda rows: [rows[0].replace(",true,", ",yes,"), *rows[1:]],
            "data row 1 (file line 2)",
            "sourced 'yes' must be true or false",
        ),
        (
            lambda rows: [*rows, "1.0,bed_nights,x,1,2018/19,src,true,"],
            "data row 6 (file line 7)",
            "metric 'bed_nights' is not one of",
        ),
    ],
    ids=[
        "missing-metric",
        "duplicate-metric",
        "negative-cost",
        "non-numeric-cost",
        "empty-source",
        "empty-price-year",
        "bad-price-year",
        "bad-sourced",
        "unknown-metric",
    ],
)
def test_bad_reference_data(tmp_path: Path, change, line: str | None, rule: str) -> None:
    costs = costs_csv(tmp_path, *change(five_rows()), name="bad_costs.csv")
    with pytest.raises(CostError) as err:
        load_unit_costs(costs, "2018/19", None)
    message = str(err.value)
    assert str(costs) in message  # names the file
    if line is not None:
        assert line in message
    assert rule in message


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "unit_costs.csv"
    path.write_text("version,metric,item,unit_cost_gbp,price_year,sourced\n")
    with pytest.raises(CostError, match=r"unit_costs\.csv: missing column\(s\) source, note"):
        load_unit_costs(path, "2018/19", None)


def test_bad_index_row(tmp_path: Path) -> None:
    costs = costs_csv(tmp_path, *five_rows(year="2017/18"))
    index = index_csv(tmp_path, "2017/18,100,pub,true", "2018/19,0,pub,true")
    with pytest.raises(
        CostError, match=r"price_index\.csv: data row 2 .*index_value '0' must be > 0"
    ):
        load_unit_costs(costs, "2018/19", index)


def hand_costs(tmp_path: Path) -> UnitCosts:
    # unit costs: A&E 192, ambulance 209.38, bed day 416.56, police 250 (unsourced), s136 1077
    rows = [
        "2026.1,ae_attendances,ae,192,2018/19,src,true,",
        "2026.1,ambulance_resources,amb,209.38,2018/19,src,true,",
        "2026.1,mh_bed_days,bed,416.56,2018/19,src,true,",
        "2026.1,police_deployments,police,250,2018/19,ASSUMPTION,false,",
        "2026.1,s136_detentions,s136,1077,2018/19,src,true,",
    ]
    return load_unit_costs(costs_csv(tmp_path, *rows), "2018/19", None)


def test_person_month_costs_exact_pennies(tmp_path: Path) -> None:
    uc = hand_costs(tmp_path)
    metrics = pd.DataFrame(
        {
            "person_key": ["p2", "p1", "p3"],
            "month": ["2024-02", "2024-01", "2024-01"],
            "ae_attendances": [1, 0, 2],
            "ambulance_resources": [3, 0, 1],
            "mh_bed_days": [7, 0, 0],
            "police_deployments": [1, 0, 0],
            "s136_detentions": [0, 0, 1],
        }
    )
    out = person_month_costs(metrics, uc)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert list(out["person_key"]) == ["p2", "p1", "p3"]  # input order
    assert list(out["month"]) == ["2024-02", "2024-01", "2024-01"]
    # p2: 1*192 = 192.00; 3*209.38 = 628.14; 7*416.56 = 2915.92; 1*250 = 250.00; 0
    #     total 192 + 628.14 + 2915.92 + 250 = 3986.06
    # p1: all zero -> 0.00
    # p3: 2*192 = 384.00; 1*209.38; 0; 0; 1*1077 -> total 384 + 209.38 + 1077 = 1670.38
    assert out[list(COST_COLUMNS)].values.tolist() == [
        [192.0, 628.14, 2915.92, 250.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [384.0, 209.38, 0.0, 0.0, 1077.0],
    ]
    assert list(out["total_cost"]) == [3986.06, 0.0, 1670.38]
    assert set(out["price_year"]) == {"2018/19"}
    assert set(out["unit_cost_version"]) == {"2026.1"}
    assert set(out["cost_flags"]) == {"unsourced_assumption:police_deployments"}


def test_person_month_costs_no_float_drift(tmp_path: Path) -> None:
    # 0.10 + 0.20 in floats is 0.30000000000000004; in pence 10 + 20 = 30 -> 0.30 exactly
    rows = [
        f"1.0,{m},x,{c},2018/19,src,true,"
        for m, c in zip(METRICS, [0.1, 0.2, 0, 0, 0], strict=True)
    ]
    uc = load_unit_costs(costs_csv(tmp_path, *rows), "2018/19", None)
    metrics = pd.DataFrame(
        {"person_key": ["a"], "month": ["2024-01"]} | dict.fromkeys(METRICS, [1])
    )
    out = person_month_costs(metrics, uc)
    assert out.loc[0, "total_cost"] == 0.30
    assert out.loc[0, "cost_flags"] == ""


def test_person_month_costs_empty_input(tmp_path: Path) -> None:
    uc = hand_costs(tmp_path)
    empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in ("person_key", "month", *METRICS)})
    out = person_month_costs(empty, uc)
    assert out.empty
    assert list(out.columns) == list(OUTPUT_COLUMNS)


def test_person_month_costs_rejects_bad_counts(tmp_path: Path) -> None:
    uc = hand_costs(tmp_path)
    metrics = pd.DataFrame(
        {"person_key": ["a"], "month": ["2024-01"]} | dict.fromkeys(METRICS, [1])
    )
    with pytest.raises(ValueError, match="negative"):
        person_month_costs(metrics.assign(mh_bed_days=[-1]), uc)
    with pytest.raises(ValueError, match="lacks column"):
        person_month_costs(metrics.drop(columns=["s136_detentions"]), uc)


def test_costing_from_the_stored_table_equals_costing_from_the_reference_file(tmp_path) -> None:
    """person_month_costs reads the `unit_costs` table (not the CSV again): the table gives back
    the costs it was written from, flags included, and so the same costed rows; a table with
    two price years is refused."""
    from sim_pipeline.measures.costs import unit_cost_table, unit_costs_from_table

    costs = load_unit_costs(SHIPPED_COSTS, "2018/19", SHIPPED_INDEX)
    table = unit_cost_table(costs)
    again = unit_costs_from_table(table.sample(frac=1.0, random_state=3))  # any row order
    assert again.unit_cost == costs.unit_cost
    assert (again.price_year, again.version, again.flags) == (
        costs.price_year,
        costs.version,
        costs.flags,
    )
    assert costs.flags  # the shipped costs carry caveats: they must survive the round trip
    counts = pd.DataFrame(
        {"person_key": ["P1", "P2"], "month": ["2019-01", "2019-02"]}
        | {m: [i + 1, 0] for i, m in enumerate(METRICS)}
    )
    pd.testing.assert_frame_equal(
        person_month_costs(counts, again), person_month_costs(counts, costs)
    )
    mixed = table.copy()
    mixed.loc[0, "price_year"] = "2019/20"
    with pytest.raises(CostError, match="price_year"):
        unit_costs_from_table(mixed)
    with pytest.raises(CostError, match="materialise unit_costs"):
        unit_costs_from_table(table.iloc[0:0])
