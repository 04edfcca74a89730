"""Every ``lua/<name>-<nkeys>.lua`` header is checked against its file name and its body:
the fixed key count N equals the KEYS documented, every ``KEYS[i]``/``ARGV[i]`` the body uses
is documented and every documented one is used, a Returns section exists. Also: the scripts
load from the installed package data, run on the server, and never send KEYS/SCAN/FLUSH*."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fleetcache
from fleetcache import _scripts

REPO = Path(__file__).resolve().parents[2]
REPO_LUA = REPO / "lua"
NAME = re.compile(r"^(?P<name>[a-z_]+)-(?P<nkeys>\d+)\.lua$")
DOC = re.compile(r"^\s*(?P<arr>KEYS|ARGV)\[(?P<idx>[^\]]+)\]\s+(?P<desc>\S.*)$")
USE = re.compile(r"\b(?P<arr>KEYS|ARGV)\[(?P<idx>[^\]]+)\]")
COUNT = re.compile(r"#(?P<arr>KEYS|ARGV)\b")


def lua_files() -> list[Path]:
    return sorted(_scripts.lua_dir().glob("*.lua"))


@dataclass
class Header:
    text: str
    body: str
    docs: dict[str, dict[str, str]] = field(default_factory=dict)  # arr -> idx -> desc


def parse(path: Path) -> Header:
    src = path.read_text(encoding="utf-8")
    m = re.match(r"\A--\[\[(?P<head>.*?)\]\]", src, re.S)
    assert m, f"{path.name}: must start with a --[[ ... ]] header block"
    head = m["head"]
    body = src[m.end() :]
    body = re.sub(r"--\[\[.*?\]\]", "", body, flags=re.S)  # block comments
    body = re.sub(r"--[^\n]*", "", body)  # line comments
    h = Header(head, body, {"KEYS": {}, "ARGV": {}})
    for line in head.splitlines():
        d = DOC.match(line)
        if d:
            idx = d["idx"].replace(" ", "")
            assert idx not in h.docs[d["arr"]], f"{path.name}: {d['arr']}[{idx}] twice"
            h.docs[d["arr"]][idx] = d["desc"]
    return h


def literal(docs: dict[str, str]) -> set[int]:
    return {int(i) for i in docs if i.isdigit()}


def symbolic(docs: dict[str, str]) -> set[str]:
    return {i for i in docs if not i.isdigit()}


def test_there_are_scripts() -> None:
    names = {NAME.match(p.name)["name"] for p in lua_files()}  # type: ignore[index]
    core = {"get", "put", "invalidate", "drop_corrupt", "clear", "reconcile", "size", "stats"}
    assert core <= names


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_header_matches_name_and_body(path: Path) -> None:
    m = NAME.match(path.name)
    assert m, f"{path.name}: must be named <name>-<nkeys>.lua"
    nkeys = int(m["nkeys"])
    h = parse(path)
    assert h.text.strip().startswith(f"{m['name']}-{nkeys}"), "header names the script"
    assert re.search(r"^\s*Returns\b", h.text, re.M), f"{path.name}: no Returns section"

    for arr in ("KEYS", "ARGV"):
        docs = h.docs[arr]
        lit = literal(docs)
        # Documented fixed positions are 1..max, with no gaps.
        assert lit == set(range(1, len(lit) + 1)), f"{path.name}: {arr} gaps {sorted(lit)}"
        used_lit: set[int] = set()
        used_sym = False
        for u in USE.finditer(h.body):
            if u["arr"] != arr:
                continue
            idx = u["idx"].replace(" ", "")
            if idx.isdigit():
                used_lit.add(int(idx))
            else:
                used_sym = True
        used_sym = used_sym or any(c["arr"] == arr for c in COUNT.finditer(h.body))
        assert used_lit <= lit, f"{path.name}: {arr}{sorted(used_lit - lit)} used, undocumented"
        assert lit <= used_lit, f"{path.name}: {arr}{sorted(lit - used_lit)} documented, unused"
        if used_sym:  # variadic use (KEYS[i + 2], #KEYS): a symbolic entry must document it
            assert symbolic(docs), f"{path.name}: variable {arr} index used, not documented"
        for idx, desc in docs.items():
            assert len(desc.split()) >= 2, f"{path.name}: {arr}[{idx}] needs a description"

    # The file name's N is the number of fixed KEYS the header documents.
    assert len(literal(h.docs["KEYS"])) == nkeys, (
        f"{path.name}: name says {nkeys} keys, header documents {sorted(literal(h.docs['KEYS']))}"
    )
    if symbolic(h.docs["KEYS"]):
        assert "variadic" in h.text.lower(), f"{path.name}: say that the key count is variadic"


TIME_ARG = re.compile(r"ttl|(^|_)ms$|timeout|seconds|deadline|(^|_)at$", re.I)


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_time_arguments_state_units(path: Path) -> None:
    for idx, desc in parse(path).docs["ARGV"].items():
        name, _, rest = desc.partition(" ")
        if TIME_ARG.search(name):
            assert re.search(r"\b(ms|milliseconds?|seconds?)\b", rest, re.I), (
                f"{path.name}: ARGV[{idx}] {name} is a time without a unit: {desc!r}"
            )


FORBIDDEN_LUA = re.compile(
    r"redis\.p?call\(\s*['\"](KEYS|SCAN|FLUSHDB|FLUSHALL|RANDOMKEY)['\"]", re.I
)
FORBIDDEN_PY = re.compile(
    r"\.scan_iter\(|\.scan\(|\.keys\(\s*(pattern\s*=\s*)?['\"]|\.flushdb\(|\.flushall\("
    r"|['\"](KEYS|SCAN|FLUSHDB|FLUSHALL|flushdb|flushall)['\"]"
)


def include_files() -> list[Path]:
    return sorted(_scripts.lua_dir().glob("includes/*.lua"))


@pytest.mark.parametrize("path", lua_files() + include_files(), ids=lambda p: p.name)
def test_no_keyspace_walks_in_lua(path: Path) -> None:
    assert not FORBIDDEN_LUA.search(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", include_files(), ids=lambda p: p.name)
def test_includes_take_keys_and_args_as_parameters(path: Path) -> None:
    """Rule 1 holds through includes: they only touch the keys their caller passes in."""
    text = path.read_text(encoding="utf-8")
    end = text.index("]]")
    assert text.lstrip().startswith("--[["), f"{path.name}: starts with a header comment"
    assert not re.search(r"\b(KEYS|ARGV)\s*\[", text[end:]), f"{path.name} uses KEYS/ARGV"


def test_includes_are_expanded_once_and_resolved() -> None:
    scripts = _scripts.load_scripts()
    for s in scripts.values():
        assert "--- @include" not in s.source, f"{s.name}: unexpanded include"
        for fn in re.findall(r"^local function (\w+)", s.source, re.M):
            assert len(re.findall(rf"^local function {fn}\b", s.source, re.M)) == 1, (
                f"{s.name}: {fn} defined twice"
            )
    # the body uses what it includes, and an include's own include comes first
    get = scripts["get"].source
    assert get.index("local function now_ms") < get.index("local function lookup")


def test_no_keyspace_walks_in_python() -> None:
    pkg = Path(fleetcache.__file__).resolve().parent
    for py in sorted(pkg.rglob("*.py")):
        text = py.read_text(encoding="utf-8")
        hit = FORBIDDEN_PY.search(text)
        assert not hit, f"{py.name}: {hit.group(0)!r}"


def test_loaded_from_installed_package_data() -> None:
    """Installed (a wheel, as ``make test`` does): the scripts come from the package's own
    ``fleetcache/lua``. Editable/checkout: from ``<repo>/lua``. Same files either way."""
    pkg = Path(fleetcache.__file__).resolve().parent
    d = _scripts.lua_dir().resolve()
    installed = not pkg.is_relative_to(REPO / "src")
    if installed:
        assert (pkg / "lua").is_dir(), "the wheel lacks fleetcache/lua (package data)"
        assert d == (pkg / "lua").resolve()
    else:
        assert d == REPO_LUA.resolve()
    if REPO_LUA.is_dir():
        ours = {p.relative_to(REPO_LUA): p.read_bytes() for p in REPO_LUA.rglob("*.lua")}
        theirs = {p.relative_to(d): p.read_bytes() for p in d.rglob("*.lua")}
        assert theirs == ours, "installed scripts differ from the checkout (reinstall)"
    scripts = _scripts.load_scripts()
    assert {s.name for s in scripts.values()} == {
        NAME.match(p.name)["name"] for p in d.glob("*.lua")
    }  # type: ignore[index]
    for s in scripts.values():
        assert s.numkeys == int(NAME.match(f"{s.name}-{s.numkeys}.lua")["nkeys"])  # type: ignore[index]


def test_every_script_loads_on_the_server(r: Any) -> None:
    for s in _scripts.load_scripts().values():
        sha = r.script_load(s.source)
        if isinstance(sha, bytes):
            sha = sha.decode()
        if isinstance(sha, str):
            assert sha == s.sha, s.name
