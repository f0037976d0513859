"""Code versions of the assets, from the source they run.

Each asset's ``code_version`` is a hash of the source of the module that defines it and of
every `sim_pipeline` module that module imports, directly or through others (read from the
import statements, not by importing), and of the files a module declares it reads as code
(``__data_files__ = ("templates",)``: files or folders beside it, such as the report's Jinja2
templates). An edit to the domain code an asset runs changes its
code version and only its: Dagster then marks that asset (and what reads it) stale in the UI
and records the version on every materialisation. A deployment without the source files
(none here) would fall back to the package's version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import dagster as dg

PACKAGE = "sim_pipeline"
ROOT = Path(__file__).resolve().parents[1]  # the sim_pipeline package folder
# `from sim_pipeline.x.y import a, b` / `import sim_pipeline.x.y` / `from sim_pipeline.x import (y`
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(sim_pipeline(?:\.\w+)*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([\w \t,]+))"
    r"|import[ \t]+(sim_pipeline(?:\.\w+)*))",
    re.MULTILINE,
)
# `__data_files__ = ("templates", "x.css")` at the start of a line: the names, quoted
_DATA_FILES = re.compile(r"^__data_files__[ \t]*=[ \t]*\(([^)]*)\)", re.MULTILINE)
VERSION_CHARS = 16


def module_path(module: str, root: Path = ROOT) -> Path | None:
    """The source file of a `sim_pipeline` module (a package's ``__init__.py``), if any."""
    parts = module.split(".")[1:]
    if not parts:  # the package itself
        return root / "__init__.py" if (root / "__init__.py").is_file() else None
    rel = Path(*parts)
    for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(source: str, root: Path = ROOT) -> set[str]:
    """The `sim_pipeline` modules a module's source imports (a ``from package import name``
    counts the submodule ``package.name`` when it is one)."""
    out: set[str] = set()
    for frm, grouped, names, plain in _IMPORT.findall(source):
        names = grouped or names
        if plain:
            out.add(plain)
            continue
        out.add(frm)
        for name in re.split(r"[\s,]+", names.strip()):
            if name and module_path(f"{frm}.{name}", root) is not None:
                out.add(f"{frm}.{name}")
    return out


@cache
def _imports(module: str, root: Path = ROOT) -> frozenset[str]:
    path = module_path(module, root)
    if path is None:
        return frozenset()
    return frozenset(imported_modules(path.read_text(encoding="utf-8"), root))


def data_files(path: Path) -> list[Path]:
    """The files a module's source declares in ``__data_files__`` (each a file or a folder
    beside it, folders read whole but for ``__pycache__``), sorted."""
    match = _DATA_FILES.search(path.read_text(encoding="utf-8"))
    if match is None:
        return []
    out: list[Path] = []
    for name in re.findall(r"[\"']([^\"']+)[\"']", match.group(1)):
        target = path.parent / name
        if target.is_dir():
            out += [f for f in target.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
        elif target.is_file():
            out.append(target)
    return sorted(out)


@cache
def _file_hash(module: str, root: Path = ROOT) -> bytes:
    """A hash of a module's source and of the data files it declares (names and contents)."""
    path = module_path(module, root)
    if path is None:
        return b""
    h = hashlib.sha256(path.read_bytes())
    for f in data_files(path):
        h.update(f.relative_to(path.parent).as_posix().encode() + b"\0" + f.read_bytes())
    return h.digest()


def module_closure(
    module: str, root: Path = ROOT, stop: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """``module`` and every `sim_pipeline` module it reaches through imports, sorted, not
    entering the modules in ``stop`` (other assets' modules: an asset module imports its
    upstream assets to name them as dependencies, and their code has versions of its own,
    whose changes Dagster already passes downstream)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or module_path(name, root) is None or (name != module and name in stop):
            continue
        seen.add(name)
        todo.extend(_imports(name, root) - seen)
    return tuple(sorted(seen))


def source_version(modules: Iterable[str], root: Path = ROOT) -> str:
    """A hash of the named modules' source files (names and contents), VERSION_CHARS hex."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        h.update(name.encode() + b"\0" + _file_hash(name, root))
    return h.hexdigest()[:VERSION_CHARS]


def defining_module(asset: dg.AssetsDefinition) -> str:
    """The module of the function an asset runs."""
    fn = asset.op.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    return fn.__module__


def asset_modules(assets: Iterable[dg.AssetsDefinition]) -> frozenset[str]:
    """The modules that define ``assets`` (those that run a function)."""
    return frozenset(defining_module(a) for a in assets if a.is_executable)


def with_code_versions(assets: list) -> list:
    """Each asset with the code version of its module's import closure (`source_version`).
    Specs without a function (tables another asset's step writes) are left as they are."""
    executable = [a for a in assets if isinstance(a, dg.AssetsDefinition) and a.is_executable]
    stop = asset_modules(executable)
    out = []
    for asset in assets:
        if not any(asset is a for a in executable) or not defining_module(asset).startswith(
            PACKAGE
        ):
            out.append(asset)
            continue
        version = source_version(module_closure(defining_module(asset), stop=stop))
        out.append(asset.map_asset_specs(lambda s, v=version: s.replace_attributes(code_version=v)))
    return out
