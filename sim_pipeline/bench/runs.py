"""Running the real CLI (or any command) in a child process for the benchmarks, and the scratch
landings they run on: `bench.incremental` and `bench.month` measure with the same pieces.

`measure` reports a command's own wall time, CPU and peak RSS: a wrapper process reads its
children's usage, so each command is measured alone (a parent's ``RUSAGE_CHILDREN`` peak is the
largest of every child it ever waited for).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sim_pipeline.config import OUTPUT_FOLDERS, output_folder_env
from sim_pipeline.progress import current


def landing_without(src: Path, dest: Path, month: str) -> None:
    """``dest``: every file of ``src`` except the drops of ``month``, hard-linked where the
    file system allows (staging never follows a symbolic link out of the landing folder)."""
    for path in src.rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(src)
        if month in rel.parts:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest / rel)
        except OSError:
            shutil.copy2(path, dest / rel)


def project_folders(project: Path) -> dict[str, str]:
    """Environment that keeps a benchmark project's outputs (the GX project and Data Docs,
    reports, published tables) inside ``project``: by default they lie beside the landing
    folder, which a benchmark's projects may share with each other and with the user's runs
    (a GX project that already holds other runs' results makes each validation slower)."""
    return {output_folder_env(name): str(project / name) for name in OUTPUT_FOLDERS}


# runs the command and reports its own children's peak RSS and CPU (see the module docstring)
_WRAP = (
    "import json,resource,subprocess,sys;p=subprocess.run(sys.argv[1:]);"
    "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
    "sys.stderr.write('\\nRUSAGE '+json.dumps([r.ru_maxrss,r.ru_utime+r.ru_stime])+'\\n');"
    "sys.exit(p.returncode)"
)


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[dict, str, str]:
    """Run ``argv``; its figures (exit code, wall and CPU seconds, peak RSS), stdout, stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAP, *argv], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if (progress := current()) is not None:  # the benchmark's stages, one per command
        cli = "sim_pipeline.cli" in argv
        progress.advance(stage=" ".join(["sim-pipeline", *argv[3:6]]) if cli else "the generator")
    found = re.findall(r"RUSAGE (\[.*\])", proc.stderr)
    maxrss, cpu = json.loads(found[-1]) if found else (0, 0.0)
    figures = {
        "exit_code": proc.returncode,
        "wall_seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(maxrss / 1024, 1),
    }
    return figures, proc.stdout, proc.stderr


def run_cli(args: list[str], env: dict[str, str]) -> dict:
    """``sim-pipeline ARGS`` measured: the figures, the command, its Dagster run ids and, when
    it failed, the tail of its output."""
    figures, stdout, stderr = measure([sys.executable, "-m", "sim_pipeline.cli", *args], env)
    found = re.search(r"\(run ([0-9a-f-]{36}(?:, [0-9a-f-]{36})*)", stdout)
    return {
        "command": "sim-pipeline " + " ".join(args),
        **figures,
        "run_id": found.group(1) if found else None,
        "tail": (stdout[-3000:] + stderr[-3000:]) if figures["exit_code"] else "",
    }
