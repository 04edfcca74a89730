"""Every Lua script, includes expanded, loads on each backend under the SHA1 it is called by."""

from __future__ import annotations

from typing import Any

from fleetcache import _lua


def test_every_script_loads_on_the_server(r: Any) -> None:
    for s in _lua.load_scripts().values():
        sha = r.script_load(s.source)
        if isinstance(sha, bytes):
            sha = sha.decode()
        if isinstance(sha, str):
            assert sha == s.sha, s.name
