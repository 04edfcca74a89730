"""The Lua scripts, loaded as package data (``fleetcache/lua``, read with
``importlib.resources``). Each file is ``<name>-<numkeys>.lua``; shared Lua functions
live in ``lua/includes/<name>.lua`` and are pulled in by a ``--- @include "<name>"`` line
(the BullMQ convention), expanded before the script is hashed and loaded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

_NAME = re.compile(r"^(?P<name>[a-z_]+)-(?P<nkeys>\d+)\.lua$")
_INCLUDE = re.compile(r'^--- @include "(?P<name>[a-z_]+)"[ \t]*$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its name, declared key count, source and SHA1."""

    name: str
    numkeys: int
    source: str
    sha: str


def lua_dir() -> Path:
    """The package's ``lua`` directory, the one place the scripts are read from."""
    packaged = resources.files("fleetcache").joinpath("lua")
    if not packaged.is_dir():
        raise FileNotFoundError(
            f"fleetcache's Lua scripts are missing: {packaged} is not a directory "
            "(reinstall the package)"
        )
    return Path(str(packaged))


def expand_includes(source: str, base: Path, seen: set[str] | None = None) -> str:
    """Replace each ``--- @include "name"`` line by ``<base>/includes/<name>.lua`` (itself
    expanded first, so an include's own includes come before it); each include is inserted
    once per script. The result is what is sent to the server and hashed."""
    seen = set() if seen is None else seen

    def insert(m: re.Match[str]) -> str:
        name = m["name"]
        if name in seen:
            return ""
        seen.add(name)
        path = base / "includes" / f"{name}.lua"
        return expand_includes(path.read_text(encoding="utf-8"), base, seen)

    return _INCLUDE.sub(insert, source)


@cache
def load_scripts() -> dict[str, Script]:
    """Every script by name, includes expanded (read once per process)."""
    scripts: dict[str, Script] = {}
    base = lua_dir()
    for path in sorted(base.iterdir()):
        m = _NAME.match(path.name)
        if not m:
            continue
        source = expand_includes(path.read_text(encoding="utf-8"), base)
        sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        scripts[m["name"]] = Script(m["name"], int(m["nkeys"]), source, sha)
    return scripts


def script(name: str) -> Script:
    """The script called ``name`` (``KeyError`` if there is none)."""
    return load_scripts()[name]
