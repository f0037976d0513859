import pandas as pd
import pytest

from sim_pipeline.warehouse import Warehouse, redact_url


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    yield w
    w.dispose()


def _rows(month, n, tag):
    return pd.DataFrame({"month": [month] * n, "v": [f"{tag}{i}" for i in range(n)]})


def test_replace_partition_is_idempotent_and_leaves_other_partitions(wh):
    for _ in range(2):
        with wh.transaction() as tx:
            tx.replace("t", _rows("2019-01", 3, "a"), {"month": ["2019-01"]})
            tx.replace("t", _rows("2019-02", 2, "b"), {"month": ["2019-02"]})
    assert wh.count("t") == 5
    with wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 1, "c"), {"month": ["2019-01"]})
    got = wh.read("t").sort_values("v")
    assert got["v"].tolist() == ["b0", "b1", "c0"]


def test_failed_transaction_keeps_previous_contents(wh):
    with wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 3, "a"), {"month": ["2019-01"]})
    with pytest.raises(RuntimeError), wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 1, "z"), {"month": ["2019-01"]})
        raise RuntimeError("killed mid-write")
    assert sorted(wh.read("t")["v"]) == ["a0", "a1", "a2"]


def test_schema_drift_is_a_clear_error(wh):
    with wh.transaction() as tx:
        tx.replace("t", _rows("2019-01", 1, "a"), {"month": ["2019-01"]})
    with pytest.raises(RuntimeError, match="lacks column"), wh.transaction() as tx:
        tx.replace("t", _rows("2019-02", 1, "a").assign(extra=1), {"month": ["2019-02"]})


def test_read_missing_table_is_empty(wh):
    assert wh.read("nope").empty and wh.count("nope") == 0


def test_redact_url_hides_password():
    assert "s3cret" not in redact_url("postgresql+psycopg://u:s3cret@127.0.0.1:5432/db")
