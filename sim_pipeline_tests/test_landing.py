"""The landing folder's layout is owned by one object (`landing.layout.Landing`)."""

from __future__ import annotations

import re
from pathlib import Path

from sim_pipeline.landing.layout import Landing
from sim_pipeline.sources import SOURCE_TABLES

PACKAGE = Path(__file__).resolve().parents[1] / "sim_pipeline"
ECDS = next(t for t in SOURCE_TABLES if t.asset_name == "staged_ecds")


def test_expected_present_unexpected_and_inventory(tmp_path):
    landing = Landing(tmp_path)
    source = ECDS.providers[0]
    good = landing.drop(source, "2019-03", ECDS)
    assert good.label == f"{source}/2019-03/{ECDS.file_name()}"
    good.path.parent.mkdir(parents=True)
    good.path.write_text("header\n")
    dangling = landing.drop(source, "2019-04", ECDS)
    dangling.path.parent.mkdir(parents=True)
    dangling.path.symlink_to(tmp_path / "gone.csv")  # present: staging rejects it by rule
    folder = landing.drop(source, "2019-05", ECDS)
    folder.path.mkdir(parents=True)  # a folder named like the drop is no drop
    (tmp_path / source / "2019-03" / "NOT_A_TABLE.csv").write_text("x\n")

    months = ["2019-03", "2019-04", "2019-05"]
    expected = list(landing.expected(months))
    assert len(expected) == sum(len(t.providers) for t in SOURCE_TABLES) * 3
    assert [d.label for d in landing.present(months)] == [good.label, dangling.label]
    assert [u[2] for u in landing.unexpected(months)] == [f"{source}/2019-03/NOT_A_TABLE.csv"]
    inv = landing.inventory(months)
    assert inv["file"].tolist() == [good.label, dangling.label]
    assert inv["landing_sha256"].iloc[1].startswith("not-read:")  # a link out is never opened
    assert landing.months() == months
    assert Landing.parse(good.label) == (source, "2019-03", ECDS.file_name())


def test_the_layout_is_written_in_one_module():
    """No module but landing/layout.py spells ``<source>/<month>/<table>.csv`` out."""
    spelled = re.compile(r"""/\s*(month|label)\s*/\s*\w+\.file_name\(\)|\{source\}/\{month\}/""")
    found = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "layout.py" and spelled.search(p.read_text())
    ]
    assert found == []
