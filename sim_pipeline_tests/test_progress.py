"""Progress for the long commands (issue 20 item 4): a live bar on a terminal, plain lines
otherwise, with stage, count, rows and time left."""

from __future__ import annotations

import io
import time

from sim_pipeline.progress import Progress, current


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal_at_most_one_per_interval():
    out = io.StringIO()
    with Progress("scan", total=4, unit="files", stream=out, min_interval=3600) as p:
        assert current() is p
        p.advance(stage="a.csv", rows=10)  # the first is always shown
        p.advance(stage="b.csv", rows=5)  # within the interval: not shown
        p.advance(stage="c.csv")
    assert current() is None
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("[scan] 1/4 files, a.csv, 10 rows, 0 s elapsed, about ")
    assert lines[0].endswith(" left")
    assert lines[1].startswith("[scan] 3/4 files, c.csv, 15 rows,") and lines[1].endswith("done")


def test_time_left_follows_the_pace():
    p = Progress("x", total=10, stream=io.StringIO(), live=False)
    assert p.left() is None
    p.started -= 20  # 20 s for the first 2
    p.done = 2
    assert 79 <= p.left() <= 81


def test_a_live_bar_on_a_terminal():
    out = _Terminal()
    with Progress("run 2019-01", total=3, unit="steps", stream=out) as p:
        for name in ("staged_ecds", "person_index", "events"):
            p.advance(stage=name, rows=1000)
            time.sleep(0.01)
    text = out.getvalue()
    assert "run 2019-01" in text and "3/3" in text and "events" in text and "3,000 rows" in text


def test_synth_reports_each_table_written(small_synth):
    """The session's synthetic landing is made by `sim-pipeline synth` (conftest
    `small_synth`), which reports each table it wrote on stderr, never on stdout."""
    stderr = (small_synth[0].parent / "synth.stderr").read_text()
    assert "[synth] 1/10 tables" in stderr and "[synth] 10/10 tables" in stderr, stderr
    assert stderr.strip().splitlines()[-1].endswith("done")
    assert "rows" in stderr and "elapsed" in stderr
