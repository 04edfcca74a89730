"""The pure core (``fleetcache.core``) imports no I/O: no Redis client, no event loop, no
sockets or threads, no store, facade or integration. Read from the installed package's
files with ``ast`` (every ``import``, at any depth, ``TYPE_CHECKING`` blocks included)."""

from __future__ import annotations

import ast
from importlib import resources

import pytest

#: Import roots nothing under ``fleetcache/core/`` may import (a name or a submodule of it).
FORBIDDEN = (
    "redis",
    "asyncio",
    "threading",
    "socket",
    "fleetcache.aio",
    "fleetcache.cache",
    "fleetcache.integrations",
)
#: Plus any ``fleetcache._*store*`` module (``_store``, ``_astore``, ``_store_faults``).

#: Known exceptions, each with its reason; an exception no longer needed fails the test.
ALLOWED = {
    ("info.py", "threading"): "a Lock around the cache_info table; it does no I/O",
}


def core_files() -> dict[str, str]:
    pkg = resources.files("fleetcache.core")
    return {f.name: f.read_text(encoding="utf-8") for f in pkg.iterdir() if f.name.endswith(".py")}


def imported_modules(source: str, package: str = "fleetcache.core") -> set[str]:
    """Every module a source imports, relative imports made absolute (``from .. import x``
    counts as ``fleetcache.x``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def forbidden(module: str) -> str | None:
    """The forbidden root ``module`` falls under, else ``None``."""
    for root in FORBIDDEN:
        if module == root or module.startswith(root + "."):
            return root
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "fleetcache" and parts[1].startswith("_"):
        if "store" in parts[1]:
            return f"fleetcache.{parts[1]}"
    return None


def violations() -> set[tuple[str, str]]:
    found = set()
    for name, source in core_files().items():
        for module in imported_modules(source):
            root = forbidden(module)
            if root is not None:
                found.add((name, root))
    return found


def test_the_core_is_a_package_of_modules() -> None:
    names = set(core_files())
    assert {"__init__.py", "instructions.py", "ops.py", "batch.py", "request_ops.py"} <= names


def test_the_core_imports_no_io() -> None:
    assert violations() - set(ALLOWED) == set()


def test_every_allowed_exception_is_still_needed() -> None:
    assert set(ALLOWED) <= violations()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import redis.asyncio", "redis"),
        ("from asyncio import Lock", "asyncio"),
        ("import socket", "socket"),
        ("from .._astore import AsyncStore", "fleetcache._astore"),
        ("from .._store_faults import ClientFault", "fleetcache._store_faults"),
        ("from fleetcache._store import Store", "fleetcache._store"),
        ("from .. import aio", "fleetcache.aio"),
        ("from ..integrations import openai", "fleetcache.integrations"),
        ("if TYPE_CHECKING:\n    from ..cache import RedisExactCache", "fleetcache.cache"),
        ("def f():\n    import threading", "threading"),
    ],
)
def test_the_check_catches_each_kind_of_import(source: str, expected: str) -> None:
    assert expected in {forbidden(m) for m in imported_modules(source)}


@pytest.mark.parametrize(
    "source",
    ["from ..errors import FleetCacheError", "from .._lua import script", "import msgpack"],
)
def test_the_check_lets_pure_imports_through(source: str) -> None:
    assert {forbidden(m) for m in imported_modules(source)} == {None}
