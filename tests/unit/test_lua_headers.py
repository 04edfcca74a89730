"""Every ``lua/<name>-<N>.lua`` header is checked against its file name and against its
body with the includes expanded (``tests/support/lua_shape.py``): the KEYS[i] and ARGV[i]
lines, the Returns section, the highest ``KEYS[n]``/``ARGV[n]`` the script really reads, and
the ``-N`` of the file name. Deliberately wrong headers show that the check fails. Also: the
scripts load from the installed package data and never send KEYS/SCAN/FLUSH*."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fleetcache
from fleetcache import _lua

from ..support.lua_shape import FILE_NAME, include_problems, script_problems, split_header

REPO = Path(__file__).resolve().parents[2]
REPO_LUA = REPO / "src" / "fleetcache" / "lua"


def lua_files() -> list[Path]:
    return sorted(_lua.lua_dir().glob("*.lua"))


def include_files() -> list[Path]:
    return sorted(_lua.lua_dir().glob("includes/*.lua"))


def problems_of(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return script_problems(path.name, text, _lua.expand_includes(text, path.parent))


def test_there_are_scripts() -> None:
    names = {m["name"] for p in lua_files() if (m := FILE_NAME.match(p.name))}
    core = {"get", "put", "invalidate", "drop_corrupt", "clear", "reconcile", "size", "stats"}
    assert core <= names


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_header_matches_name_and_body(path: Path) -> None:
    assert problems_of(path) == []


@pytest.mark.parametrize("path", include_files(), ids=lambda p: p.name)
def test_includes_have_a_header_and_take_keys_and_args_as_parameters(path: Path) -> None:
    """Rule 1 holds through includes: they only touch the keys their caller passes in."""
    assert include_problems(path.name, path.read_text(encoding="utf-8")) == []


# -- the check itself fails on wrong headers -------------------------------------------------


def _real(name: str) -> str:
    return (_lua.lua_dir() / name).read_text(encoding="utf-8")


def _check(
    tmp_path: Path, file_name: str, text: str, includes: dict[str, str] | None = None
) -> str:
    """The problems of a made-up script (and includes) in a scratch lua/ directory."""
    (tmp_path / "includes").mkdir(exist_ok=True)
    for inc in include_files():
        (tmp_path / "includes" / inc.name).write_text(inc.read_text(encoding="utf-8"))
    for name, body in (includes or {}).items():
        (tmp_path / "includes" / f"{name}.lua").write_text(body)
    (tmp_path / file_name).write_text(text)
    return "\n".join(problems_of(tmp_path / file_name))


def _drop_line(text: str, pattern: str) -> str:
    out, n = re.subn(rf"^[^\n]*{pattern}[^\n]*\n", "", text, count=1, flags=re.M)
    assert n == 1, pattern
    return out


def test_a_true_header_passes_in_the_scratch_directory(tmp_path: Path) -> None:
    assert _check(tmp_path, "get-3.lua", _real("get-3.lua")) == ""


def test_an_undocumented_key_fails(tmp_path: Path) -> None:
    got = _check(tmp_path, "get-3.lua", _drop_line(_real("get-3.lua"), r"KEYS\[3\]"))
    assert "reads up to KEYS[3], the header documents up to KEYS[2]" in got
    assert "the name says 3 keys, the header documents 2" in got


def test_a_documented_argument_the_body_never_reads_fails(tmp_path: Path) -> None:
    text = _real("get-3.lua").replace(
        "  ARGV[3]  magic", "  ARGV[4]  spare          an argument nobody reads\n  ARGV[3]  magic"
    )
    got = _check(tmp_path, "get-3.lua", text)
    assert "ARGV[4] documented, never read" in got
    assert "reads up to ARGV[3], the header documents up to ARGV[4]" in got


def test_a_file_name_with_the_wrong_key_count_fails(tmp_path: Path) -> None:
    got = _check(tmp_path, "get-2.lua", _real("get-3.lua"))
    assert "header does not start with 'get-2'" in got
    assert "the name says 2 keys, the header documents 3" in got


def test_a_missing_returns_section_fails(tmp_path: Path) -> None:
    got = _check(tmp_path, "get-3.lua", _real("get-3.lua").replace("  Returns\n", "  Gives\n"))
    assert "no Returns section" in got


def test_a_gap_in_the_documented_keys_fails(tmp_path: Path) -> None:
    text = _real("put-3.lua").replace("  KEYS[2]  index key", "  KEYS[4]  index key")
    got = _check(tmp_path, "put-3.lua", text)
    assert "documented KEYS have gaps: [1, 3, 4]" in got


def test_a_key_read_only_inside_an_include_counts(tmp_path: Path) -> None:
    """The body is checked with its includes expanded: a key an include reads is a key the
    script reads (and the include itself is refused)."""
    sneaky = "--[[\n  include sneaky: reads a key of its own.\n]]\nlocal function sneaky()\n"
    sneaky += "  return redis.call('GET', KEYS[4])\nend\n"
    text = _real("get-3.lua").replace(
        '--- @include "lookup"', '--- @include "lookup"\n--- @include "sneaky"'
    )
    got = _check(tmp_path, "get-3.lua", text, {"sneaky": sneaky})
    assert "reads up to KEYS[4], the header documents up to KEYS[3]" in got
    assert include_problems("sneaky.lua", sneaky) != []


def test_variadic_keys_must_be_documented(tmp_path: Path) -> None:
    got = _check(
        tmp_path, "get_many-2.lua", _drop_line(_real("get_many-2.lua"), r"KEYS\[3\.\.n\+2\]")
    )
    assert "a variable KEYS index is read, none is documented" in got


def test_a_key_documented_twice_or_without_description_fails(tmp_path: Path) -> None:
    text = _real("invalidate-3.lua").replace(
        "  ARGV[1]  digest", "  ARGV[1]  digest  twice\n  ARGV[1]  digest"
    )
    assert "ARGV[1] documented twice" in _check(tmp_path, "invalidate-3.lua", text)
    text = re.sub(r"(?m)^  KEYS\[2\]  index key.*$", "  KEYS[2]  index", _real("invalidate-3.lua"))
    assert "KEYS[2] has no description" in _check(tmp_path, "invalidate-3.lua", text)


def test_a_file_without_a_header_fails(tmp_path: Path) -> None:
    _, body = split_header(_real("get-3.lua"))
    assert "does not start with a --[[ ... ]] header" in _check(tmp_path, "get-3.lua", body)


TIME_ARG = re.compile(r"ttl|(^|_)ms$|timeout|seconds|deadline|(^|_)at$", re.I)


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_time_arguments_state_units(path: Path) -> None:
    header, _ = split_header(path.read_text(encoding="utf-8"))
    assert header is not None
    for idx, desc in header.docs["ARGV"].items():
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


@pytest.mark.parametrize("path", lua_files() + include_files(), ids=lambda p: p.name)
def test_no_keyspace_walks_in_lua(path: Path) -> None:
    assert not FORBIDDEN_LUA.search(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", include_files(), ids=lambda p: p.name)
def test_one_function_per_include_named_like_its_file(path: Path) -> None:
    """lua/includes/<name>.lua defines exactly one function, <name>, and its header names it
    and documents its call shape."""
    text = path.read_text(encoding="utf-8")
    assert re.findall(r"^local function (\w+)", text, re.M) == [path.stem]
    header = text[: text.index("]]")]
    assert f"include {path.stem}" in header and f"{path.stem}(" in header


def test_includes_are_expanded_once_and_resolved() -> None:
    scripts = _lua.load_scripts()
    for s in scripts.values():
        assert "--- @include" not in s.source, f"{s.name}: unexpanded include"
        for fn in re.findall(r"^local function (\w+)", s.source, re.M):
            assert len(re.findall(rf"^local function {fn}\b", s.source, re.M)) == 1, (
                f"{s.name}: {fn} defined twice"
            )
    # the body uses what it includes, and an include's own include comes first
    get = scripts["get"].source
    assert get.index("local function now_ms") < get.index("local function lookup")


#: The one keyspace walk allowed: ``fleetcache namespaces`` finding the layout records
#: (an operator tool, read-only, bounded: MATCH, COUNT and a cap on calls).
ALLOWED_SCAN = "cursor, keys = node.scan(cursor, match=META_PATTERN, count=count)"


def test_no_keyspace_walks_in_python() -> None:
    pkg = Path(fleetcache.__file__).resolve().parent
    for py in sorted(pkg.rglob("*.py")):
        text = py.read_text(encoding="utf-8")
        if py.name == "_admin.py":
            assert text.count(ALLOWED_SCAN) == 1
            text = text.replace(ALLOWED_SCAN, "")
        hit = FORBIDDEN_PY.search(text)
        assert hit is None, f"{py.name}: {hit and hit.group(0)!r}"


def test_loaded_from_installed_package_data() -> None:
    """The scripts come from the installed package's own ``fleetcache/lua`` (package data,
    as a wheel installs it), and are the files of the source tree."""
    pkg = Path(fleetcache.__file__).resolve().parent
    d = _lua.lua_dir().resolve()
    assert (pkg / "lua").is_dir(), "the package lacks fleetcache/lua (package data)"
    assert d == (pkg / "lua").resolve()
    if REPO_LUA.is_dir():
        ours = {p.relative_to(REPO_LUA): p.read_bytes() for p in REPO_LUA.rglob("*.lua")}
        theirs = {p.relative_to(d): p.read_bytes() for p in d.rglob("*.lua")}
        assert theirs == ours, "installed scripts differ from the source tree (reinstall)"
    scripts = _lua.load_scripts()
    on_disk = {
        m["name"]: int(m["nkeys"]) for p in d.glob("*.lua") if (m := FILE_NAME.match(p.name))
    }
    assert {s.name: s.numkeys for s in scripts.values()} == on_disk
