"""Counters are defined once (``core.models.COUNTERS``) and everything else is derived from it:
the ``FleetStats`` fields, parsing of the stats hash, the CLI table, ``--json``, Prometheus
names and HELP text. Non-integer stored values are reported, not raised (no server)."""

from __future__ import annotations

import pytest

from fleetcache import FleetStats
from fleetcache._admin import stats_dict
from fleetcache.cli import format_stats, shown
from fleetcache.core.models import COUNTERS, RECORD, parse_counters

NAMES = [c.name for c in COUNTERS]


def test_counter_names_are_unique_and_described() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for c in COUNTERS:
        assert c.name.isidentifier() and c.description.endswith(".")
        assert c.kind in ("requests", "entries", "tokens", "nano-USD", "ms")


def test_fleet_stats_fields_come_from_counters() -> None:
    fields = FleetStats.model_fields
    assert set(fields) == {*NAMES, "size", "by_model", "bad_counters"}
    for c in COUNTERS:
        assert fields[c.name].default == 0
        assert fields[c.name].description == c.description
        assert f"``{c.name}``" in (FleetStats.__doc__ or "")
    fs = FleetStats.model_validate({n: i + 1 for i, n in enumerate(NAMES)})
    assert [getattr(fs, n) for n in NAMES] == list(range(1, len(NAMES) + 1))


def test_parse_counters_every_counter_and_per_model() -> None:
    flat: list[bytes] = []
    for i, n in enumerate(NAMES):
        flat += [n.encode(), str(i + 1).encode()]
    flat += [b"mh:m", b"5", b"mm:m", b"-2", b"unknown", b"x", b"mh:\xed\xa0\x80", b"1"]
    fs = FleetStats()
    parse_counters(flat, fs)
    parse_counters(flat, fs)  # a second shard adds up
    assert [getattr(fs, n) for n in NAMES] == [2 * (i + 1) for i in range(len(NAMES))]
    assert (fs.by_model["m"].hits, fs.by_model["m"].misses) == (10, -4)
    assert fs.by_model["\ud800"].hits == 2  # a lone-surrogate model name comes back as it was
    assert fs.bad_counters == []  # unknown fields are ignored, not reported


def test_parse_counters_sums_savings_records_with_the_integer_fields() -> None:
    """A record ``m:<model>`` adds its model's hits and savings, and the fleet totals are the
    sums of the records and of the integer fields (counted before the records)."""
    rec = RECORD.pack(3, 4500, 3000, 1500, 7, 8, 3600, 2, 250_000_000, 1)
    flat = [b"m:m", rec, b"hits", b"2", b"mh:m", b"2", b"tokens_saved", b"10", b"mc:m", b"5"]
    fs = FleetStats()
    parse_counters(flat, fs)
    parse_counters([b"m:other", RECORD.pack(1, 1, 1, 0, 0, 0, 0, 0, 0, 1)], fs)
    assert (fs.hits, fs.tokens_saved, fs.input_tokens_saved, fs.output_tokens_saved) == (
        6,
        4511,
        3001,
        1500,
    )
    assert (fs.cache_read_tokens_saved, fs.cache_write_tokens_saved, fs.ms_saved) == (7, 8, 3600)
    assert fs.cost_saved_nanousd == 2_250_000_005 and fs.unpriced_hits == 2
    m = fs.by_model["m"]
    assert (m.hits, m.input_tokens_saved, m.cost_saved_nanousd, m.unpriced_hits) == (
        5,
        3000,
        2_250_000_005,
        1,
    )
    assert fs.by_model["other"].hits == 1 and fs.bad_counters == []


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"12",
        RECORD.pack(1, 0, 0, 0, 0, 0, 0, 0, 0, 0)[:-1],  # one byte short
        RECORD.pack(1, 0, 0, 0, 0, 0, 0, 0, 0, 0) + b"\x00",  # one byte long
        RECORD.pack(1, 0, 0, 0, 0, 0, 0, 0, 10**9, 0),  # nano-USD part not below 10^9
        RECORD.pack(1, 0, 0, 0, 0, 0, 0, 0, -1, 0),  # nor negative
        RECORD.pack(1, 2**53, 0, 0, 0, 0, 0, 0, 0, 0),  # past what the Lua adds exactly
        RECORD.pack(-(2**53), 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ],
)
def test_parse_counters_reports_a_malformed_savings_record(value: bytes) -> None:
    fs = FleetStats()
    parse_counters([b"m:m", value, b"hits", b"3"], fs)
    assert fs.hits == 3 and fs.tokens_saved == 0 and "m" not in fs.by_model
    assert len(fs.bad_counters) == 1 and fs.bad_counters[0].startswith("m:m=")


@pytest.mark.parametrize(
    "value", [b"abc", b"1.5", b"1e3", b" 12", b"12 ", b"1_000", "١٢".encode(), b"", b"\xff"]
)
def test_parse_counters_reports_values_that_are_not_integers(value: bytes) -> None:
    fs = FleetStats()
    parse_counters([b"hits", value, b"misses", b"3"], fs)
    assert fs.hits == 0 and fs.misses == 3
    assert len(fs.bad_counters) == 1 and fs.bad_counters[0].startswith("hits=")


def test_stats_dict_and_table_list_every_counter() -> None:
    fs = FleetStats.model_validate({n: 1000 + i for i, n in enumerate(NAMES)})
    d = stats_dict(fs, prefix="p", shards=1)
    assert [k for k in d if k in NAMES] == NAMES  # every counter, in COUNTERS order
    assert d["bad_counters"] == []
    table = format_stats(fs, prefix="p", shards=1, url="redis://h:1/0")
    for i, n in enumerate(NAMES):
        assert f"{n.replace('_', ' ')}" in table and f"{1000 + i:,}" in table


def test_prometheus_families_come_from_counters() -> None:
    pytest.importorskip("prometheus_client")
    from fleetcache.metrics import FleetCacheCollector

    class Fixed(FleetCacheCollector):
        def _stats(self, prefix: str) -> FleetStats:
            return FleetStats.model_validate({"hits": 3, "bad_counters": ["misses='x'"]})

    fams = {f.name: f for f in Fixed(url="redis://unused:1/0", prefixes=("p",)).collect()}
    for c in COUNTERS:
        fam = fams[f"fleetcache_{c.name}"]
        assert fam.type == "counter" and fam.documentation == c.description
    assert fams["fleetcache_hits"].samples[0].value == 3
    assert fams["fleetcache_bad_counters"].samples[0].value == 1


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("plain", "plain"),
        ("\x1b[2J", "\\x1b[2J"),
        ("bell\x07", "bell\\x07"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("\x7f", "\\x7f"),
        ("a\\x1b", "a\\\\x1b"),  # a literal backslash is escaped, so the two differ
        ("\ud800", "\\ud800"),
        ("\u202e", "\\u202e"),
        ("\U000e0001", "\\U000e0001"),  # a tag character (format, unprintable)
        ("模型", "模型"),
    ],
)
def test_shown_escapes_what_a_terminal_would_obey(raw: str, want: str) -> None:
    assert shown(raw) == want
    assert shown(raw).isprintable()
