"""The counters the Lua scripts write are the counters Python reads: every stats-hash field a
script ``HINCRBY``s (or ``HINCRBYFLOAT``s, ``HSET``s) is a counter of ``COUNTERS`` or a
per-model field (``<prefix>:<model>``, the prefixes of ``PER_MODEL_PREFIXES``), and every
counter and prefix is written by some script. A misspelt field in a script would read 0
forever; this catches it with no server."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from fleetcache import FleetStats
from fleetcache.core.models import (
    COUNTER_NAMES,
    COUNTERS,
    PER_MODEL_PREFIXES,
    RECORD_PREFIX,
    ModelStats,
)

#: ``redis.call('HINCRBY', <key>, <field>, ...`` (call or pcall); the field expression is
#: everything up to the next top-level comma.
_WRITE = re.compile(
    r"redis\.p?call\(\s*'(HINCRBY|HINCRBYFLOAT|HSET)'\s*,\s*([^,]+?)\s*,\s*([^,]+?)\s*,"
)
_LITERAL = re.compile(r"'([A-Za-z_]+)'")
_PREFIXED = re.compile(r"'([a-z]+):'\s*\.\.\s*\S+")


def lua_sources() -> dict[str, str]:
    """Every Lua file shipped in the package (scripts and includes), by relative path."""
    root = resources.files("fleetcache") / "lua"
    out: dict[str, str] = {}

    def walk(node: object, prefix: str) -> None:
        for child in node.iterdir():  # type: ignore[attr-defined]
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".lua"):
                out[prefix + child.name] = child.read_text(encoding="utf-8")

    walk(root, "")
    return out


def hash_writes() -> list[tuple[str, str, str]]:
    """``(file, command, field expression)`` of every hash write in the scripts, comment
    lines (headers) left out."""
    found = []
    for path, text in sorted(lua_sources().items()):
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        code = re.sub(r"--\[\[.*?\]\]", "", code, flags=re.S)  # block comments (headers)
        for m in _WRITE.finditer(code):
            found.append((path, m.group(1), m.group(3)))
    return found


def written_fields() -> tuple[set[str], set[str], list[str]]:
    """Counter names written as literals, per-model prefixes written, and the field
    expressions that are neither (each ``file: expression``)."""
    names: set[str] = set()
    prefixes: set[str] = set()
    unknown: list[str] = []
    for path, _cmd, field in hash_writes():
        if m := _LITERAL.fullmatch(field):
            names.add(m.group(1))
        elif m := _PREFIXED.fullmatch(field):
            prefixes.add(m.group(1))
        else:
            unknown.append(f"{path}: {field}")
    return names, prefixes, unknown


def test_the_scripts_write_their_counters_at_all() -> None:
    """The parser sees the scripts' writes (a regex that matched nothing would pass below)."""
    writes = hash_writes()
    assert len(writes) >= 20
    assert {cmd for _p, cmd, _f in writes} == {"HINCRBY", "HSET"}


def test_every_field_a_script_increments_is_a_counter_or_a_per_model_prefix() -> None:
    names, prefixes, unknown = written_fields()
    assert unknown == [], "hash fields neither a literal counter nor '<prefix>:' .. model"
    assert names - COUNTER_NAMES == set(), "scripts write counters COUNTERS does not have"
    assert prefixes - set(PER_MODEL_PREFIXES) - {RECORD_PREFIX} == set(), (
        "undocumented per-model prefixes"
    )


def test_every_counter_and_per_model_prefix_is_incremented_by_some_script() -> None:
    names, prefixes, _unknown = written_fields()
    by_prefix = {c.name for c in COUNTERS if c.per_model}  # summed from the per-model fields
    assert COUNTER_NAMES - by_prefix - names == set(), "counters no script increments"
    assert (set(PER_MODEL_PREFIXES) | {RECORD_PREFIX}) - prefixes == set(), (
        "per-model prefixes no script writes"
    )


def test_per_model_prefixes_name_model_stats_fields_and_their_counters() -> None:
    assert set(PER_MODEL_PREFIXES.values()) <= set(ModelStats.model_fields)
    for c in COUNTERS:
        if c.per_model:
            assert PER_MODEL_PREFIXES[c.per_model] == c.name


def test_fleet_stats_declares_one_int_field_per_counter_in_order() -> None:
    counters = [n for n in FleetStats.model_fields if n in COUNTER_NAMES]
    assert counters == [c.name for c in COUNTERS]
    assert set(FleetStats.model_fields) - COUNTER_NAMES == {"size", "by_model", "bad_counters"}
    for c in COUNTERS:
        assert FleetStats.model_fields[c.name].annotation is int


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("redis.pcall('HINCRBY', KEYS[3], 'hitz', 1)", False),
        ("redis.pcall('HINCRBY', stats_key, 'mq:' .. model, 1)", False),
        ("redis.call('HINCRBY', stats_key, field, 1)", False),
        ("redis.pcall('HINCRBY', stats_key, 'hits', 1)", True),
        ("redis.pcall('HINCRBY', stats_key, 'mh:' .. model, 1)", True),
    ],
)
def test_the_check_catches_a_misspelt_or_computed_field(line: str, ok: bool) -> None:
    m = _WRITE.search(line)
    assert m is not None
    field = m.group(3)
    lit, pre = _LITERAL.fullmatch(field), _PREFIXED.fullmatch(field)
    good = (lit is not None and lit.group(1) in COUNTER_NAMES) or (
        pre is not None and pre.group(1) in PER_MODEL_PREFIXES
    )
    assert good is ok
