"""The Data Docs site: where the GX project and its site lie under the quality folder, and its
pages rewritten self-contained (no external resource or address), so that reading them tells
no outside host anything and works with no network."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path


def gx_root(quality_dir: Path) -> Path:
    return Path(quality_dir) / "gx"


def docs_index(quality_dir: Path) -> Path:
    """The Data Docs site's front page."""
    return gx_root(quality_dir) / "uncommitted" / "data_docs" / "local_site" / "index.html"


# Data Docs as GX writes them load scripts, styles and a logo from public CDNs and a cloud
# bucket (whose address carries the data context's id): opening a page would tell those hosts
# that someone reads this project's quality results, and a page must read the same on a machine
# with no network. Every page is rewritten without them: external <script>, <link> and <img>
# elements are removed, external links lose their address, and a small inline stylesheet keeps
# the tables readable. The content (suites, results, counts) is plain HTML and unchanged.
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']https?://[^>]*>\s*</script>", re.I | re.S
)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']https?://[^>]*>", re.I | re.S)
_EXTERNAL_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']https?://[^>]*>", re.I | re.S)
_EXTERNAL_ATTR = re.compile(r"""\b(href|action|src)\s*=\s*(["'])https?://[^"']*\2""", re.I)
_ANY_URL = re.compile(r"https?://[^\s\"'<>)]+", re.I)
SELF_CONTAINED_MARK = "<!-- sim_pipeline: self-contained page, no external resources -->"
_PAGE_STYLE = (
    "<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;"
    "vertical-align:top}.hide,.d-none,.modal{display:none}</style>"
)


def self_contained_html(html: str) -> str:
    """A Data Docs page without any external resource or address (idempotent)."""
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    html = _EXTERNAL_IMG.sub("", html)
    html = _EXTERNAL_ATTR.sub(lambda m: f'{m.group(1)}="#"', html)
    html = _ANY_URL.sub("(external address removed)", html)
    if SELF_CONTAINED_MARK not in html:
        html = html.replace("<head>", "<head>" + SELF_CONTAINED_MARK + _PAGE_STYLE, 1)
    return html


def make_docs_self_contained(quality_dir: Path) -> int:
    """Rewrite the Data Docs pages written since the last call (`self_contained_html`); the
    number of pages rewritten. Callers hold `_locked`."""
    site = docs_index(quality_dir).parent
    if not site.is_dir():
        return 0
    stamp = site / ".sim_self_contained"
    since = stamp.stat().st_mtime_ns if stamp.exists() else -1
    started = time.time_ns()
    rewritten = 0
    for page in site.rglob("*.html"):
        if page.stat().st_mtime_ns < since:
            continue
        html = page.read_text(encoding="utf-8")
        clean = self_contained_html(html)
        if clean != html:
            page.write_text(clean, encoding="utf-8")
            rewritten += 1
    stamp.touch()
    os.utime(stamp, ns=(started, started))  # pages written during this call are seen next time
    return rewritten
