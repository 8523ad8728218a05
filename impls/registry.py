"""Finding implementations: the modules in this package, a user's module or file, entry points.

A module registers what it provides by calling :func:`register` at import time. A module that
fails to import does not stop the session: it is kept as a :class:`BrokenModule`, and the
suite fails exactly one test for it, naming the error.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from impls.base import AREAS, Implementation

ENTRY_POINT_GROUP = "tokenspec.implementations"
OWN_PACKAGES = ("reference", "impls", "suite", "reports")
ROOT = Path(__file__).resolve().parents[1]

_registry: dict[str, Implementation] = {}
_broken: list[BrokenModule] = []
_loading_origin: list[str] = []


@dataclass(frozen=True)
class BrokenModule:
    """A module that raised while being imported for discovery."""

    origin: str
    error: str


def register(impl: Implementation) -> Implementation:
    """Add ``impl`` to the registry; its name must be unique across all areas."""
    if impl.area not in AREAS:
        raise ValueError(f"implementation {impl.name!r} has area {impl.area!r}; expected one of {AREAS}")
    if not impl.name:
        raise ValueError(f"{type(impl).__name__} has no name")
    origin = _loading_origin[-1] if _loading_origin else type(impl).__module__
    if impl.name in _registry and _registry[impl.name] is not impl:
        raise ValueError(
            f"implementation name {impl.name!r} is registered twice: "
            f"by {_registry[impl.name].origin} and by {origin}"
        )
    impl.origin = origin
    _registry[impl.name] = impl
    return impl


def all_implementations(area: str | None = None) -> list[Implementation]:
    return [i for i in _registry.values() if area is None or i.area == area]


def is_registered(impl: Implementation) -> bool:
    """Whether ``impl`` is one of the registered implementations (a planted bug built by a self-test is not)."""
    return _registry.get(impl.name) is impl


def broken_modules() -> list[BrokenModule]:
    return list(_broken)


def select(patterns: list[str]) -> set[str]:
    """Names matching the fnmatch ``patterns``; a pattern matching nothing is an error."""
    names = set()
    for pattern in patterns:
        hits = {n for n in _registry if fnmatch.fnmatchcase(n, pattern)}
        if not hits:
            known = ", ".join(sorted(_registry))
            raise LookupError(f"--impl {pattern!r} matches no implementation; known: {known}")
        names |= hits
    return names


def discover(user_modules: list[str] = (), entry_points: bool = True) -> None:  # type: ignore[assignment]
    """Import the built-in implementation modules, then the user's, then entry points."""
    import impls

    for info in pkgutil.walk_packages(impls.__path__, prefix="impls."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_") or leaf in {"base", "registry", "api"} or info.ispkg:
            continue
        _guarded(info.name, lambda name=info.name: importlib.import_module(name))
    for spec in user_modules:
        _guarded(spec, lambda spec=spec: load_user_module(spec))
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            _guarded(f"entry point {ep.name} ({ep.value})", lambda ep=ep: _load_entry_point(ep))


def load_user_module(spec: str) -> object:
    """Import a module by dotted name, or a ``.py`` file by path, outside this repository.

    The module either calls :func:`register` itself or defines ``implementations()`` returning
    the implementations to register (so that importing it elsewhere has no side effect).
    """
    module = _import_user_module(spec)
    provide = getattr(module, "implementations", None)
    if callable(provide):
        for impl in provide():
            register(impl)
    return module


class ModuleClash(ImportError):
    """A plug-in's folder holds a module named like one of tokenspec's top-level packages."""


def check_no_clash(folder: Path, plugin: str) -> None:
    """Refuse a plug-in whose folder holds ``reference``, ``impls``, ``suite`` or ``reports`` of its own.

    Those names are tokenspec's top-level packages: ``import reference`` inside the plug-in would silently
    import tokenspec's, not the plug-in's sibling.
    """
    if folder.resolve() == ROOT:
        return
    for name in OWN_PACKAGES:
        for clash in (folder / f"{name}.py", folder / name):
            if clash.exists():
                raise ModuleClash(
                    f"--impl-module {plugin!r}: {clash} has the name of tokenspec's top-level package {name!r}, so "
                    f"`import {name}` in the plug-in would import tokenspec's {ROOT / name}, not yours; rename "
                    f"{clash.name} (tokenspec owns the names {', '.join(OWN_PACKAGES)})")


def _import_user_module(spec: str) -> object:
    path = Path(spec)
    if spec.endswith(".py") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"--impl-module {spec!r}: no such file")
        check_no_clash(path.parent, spec)
        name = f"tokenspec_user_{path.stem}_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    found = importlib.util.find_spec(spec.split(".")[0])
    if found is not None and found.origin:
        top = Path(found.origin).parent
        check_no_clash(top.parent if found.submodule_search_locations else top, spec)
    return importlib.import_module(spec)


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    loaded = ep.load()
    if callable(loaded) and not isinstance(loaded, type):
        for impl in loaded() or ():
            register(impl)


def _guarded(origin: str, load: object) -> None:
    _loading_origin.append(origin)
    try:
        load()  # type: ignore[operator]
    except Exception:  # any import error is reported as a failing test
        _broken.append(BrokenModule(origin, traceback.format_exc(limit=5)))
    finally:
        _loading_origin.pop()
