"""Numbers for docs/operations.md, measured on private servers that this script starts on free
loopback ports and stops by PID (never port 6379):

1. shards: spread of a namespace over a 3-primary Redis Cluster and the cost of the per-shard
   calls (``fleet_stats``, ``len``) for S = 1, 3, 16, 64;
2. memory per entry, index included (``MEMORY USAGE``), for a few response sizes;
3. eviction: a namespace overfilled to ~3x ``maxmemory`` under volatile-lru, allkeys-lru and
   allkeys-random: what survives (counters, index) and what the numbers say afterwards.

    python -m bench.operations [--part shards|memory|eviction] [--json out.json]

Every loop is bounded in count; timings are medians of repeated calls on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from redis.crc import key_slot

from fleetcache import LLMResponse, RedisExactCache
from fleetcache.embedded import EmbeddedCluster, EmbeddedServer, redis_cli_bin, redis_server_bin


def req(i: int) -> tuple[str, str, str, float, int]:
    return (f"question number {i}: what is the capital of country {i}?", "be brief", "m", 0.0, 256)


def resp(i: int, size: int) -> LLMResponse:
    # incompressible text of about `size` bytes (hex of random bytes)
    return LLMResponse(content=os.urandom(size // 2).hex(), usage={"total_tokens": 50 + i % 7})


def median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


# -- 1. shards on a cluster -------------------------------------------------------------------


def part_shards(entries: int = 6000) -> dict[str, Any]:
    binary, cli = redis_server_bin(), redis_cli_bin()
    assert binary and cli, "redis-server and redis-cli are needed"
    cluster = EmbeddedCluster(binary, cli).start()
    out: dict[str, Any] = {"entries": entries, "rows": []}
    try:
        # slot -> node map of this cluster (3 equal ranges from redis-cli --cluster create)
        ranges = cluster.slot_view(cluster.ports[0])

        def node_of(slot: int) -> int:
            return next(p for lo, hi, p in ranges if lo <= slot <= hi)

        for shards in (1, 3, 16, 64):
            # expected busiest node share over 500 random namespaces (slot math only)
            worst = []
            for _ in range(500):
                p = uuid.uuid4().hex
                counts = dict.fromkeys(cluster.ports, 0)
                for s in range(shards):
                    counts[node_of(key_slot(f"{{{p}:{s}}}:i".encode()))] += 1
                worst.append(max(counts.values()) / shards)
            worst.sort()
            # one real namespace: entries and memory per node
            prefix = f"b:{uuid.uuid4().hex[:8]}"
            before = {}
            for port in cluster.ports:
                with cluster.node_client(port) as c:
                    before[port] = (int(c.dbsize()), int(c.info("memory")["used_memory"]))
            cache = RedisExactCache(url=cluster.url, key_prefix=prefix, shards=shards)
            items = [(*req(i), resp(i, 400)) for i in range(entries)]
            for k in range(0, entries, 500):
                cache.put_many(items[k : k + 500])
            keys, mem = [], []
            for port in cluster.ports:
                with cluster.node_client(port) as c:
                    keys.append(int(c.dbsize()) - before[port][0])
                    mem.append(int(c.info("memory")["used_memory"]) - before[port][1])
            cache.get(*req(1))
            row = {
                "shards": shards,
                "busiest_node_share_median": round(statistics.median(worst), 3),
                "busiest_node_share_p95": round(worst[int(0.95 * len(worst))], 3),
                "keys_per_node": keys,
                "mem_mb_per_node": [round(m / 1e6, 2) for m in mem],
                "fleet_stats_ms": round(median_ms(cache.fleet_stats, 200), 3),
                "len_ms": round(median_ms(lambda c=cache: len(c), 200), 3),
                "get_ms": round(median_ms(lambda c=cache: c.get(*req(7)), 500), 3),
            }
            out["rows"].append(row)
            print(row, flush=True)
            cache.clear()
            cache.close()
    finally:
        cluster.close()
    return out


# -- 2. memory per entry ----------------------------------------------------------------------


def part_memory(n: int = 2000) -> dict[str, Any]:
    binary = redis_server_bin()
    assert binary
    srv = EmbeddedServer(binary).start()
    out: dict[str, Any] = {"entries": n, "rows": []}
    try:
        r: Any = srv.client()
        for size in (200, 1000, 4000, 16000):
            prefix = f"m:{size}"
            cache = RedisExactCache(url=srv.url, key_prefix=prefix, compress_threshold=None)
            cache.put(*req(0), resp(0, size))
            idx, st = cache._core.keys.index(0), cache._core.keys.stats(0)
            used0 = int(r.info("memory")["used_memory"])
            items = [(*req(i), resp(i, size)) for i in range(1, n + 1)]
            for k in range(0, n, 500):
                cache.put_many(items[k : k + 500])
            used1 = int(r.info("memory")["used_memory"])
            digest = cache._core.request(req(5))[1]
            entry_key = cache._core.keys.entry(0, digest)
            payload = len(r.get(entry_key) or b"")
            entry_usage = int(r.memory_usage(entry_key, samples=0) or 0)
            index_per_entry = int(r.memory_usage(idx, samples=0) or 0) / (n + 1)
            row = {
                "content_bytes": size,
                "envelope_bytes": payload,
                "entry_key_memory_usage": entry_usage,
                "index_bytes_per_entry": round(index_per_entry, 1),
                "used_memory_per_entry": round((used1 - used0) / n, 1),
                "stats_hash_bytes": int(r.memory_usage(st, samples=0) or 0),
            }
            out["rows"].append(row)
            print(row, flush=True)
            cache.clear()
            cache.close()
    finally:
        srv.stop()
    return out


# -- 3. eviction policies ---------------------------------------------------------------------


def part_eviction(
    maxmemory_mb: int = 16,
    size: int = 4000,
    policies: tuple[tuple[str, float | None, bool], ...] = (
        ("volatile-lru", 3600.0, False),
        ("volatile-lru", None, False),
        ("allkeys-lru", 3600.0, False),
        ("allkeys-lru", 3600.0, True),
        ("allkeys-random", 3600.0, False),
        ("allkeys-random", 3600.0, True),
    ),
) -> dict[str, Any]:
    """(policy, ttl_seconds, paced). ``paced`` fills in 8 steps and, between them, waits
    until the last entry written is idle >= 1 s on the server's LRU clock (1 s resolution),
    as in a cache filled over minutes; unpaced fills at full speed (~3 s), where every key's
    idle time is 0-2 s and LRU can hardly tell the hot index/counters from entries."""
    binary = redis_server_bin()
    assert binary
    out: dict[str, Any] = {"maxmemory_mb": maxmemory_mb, "content_bytes": size, "rows": []}
    n = 3 * maxmemory_mb * 1_000_000 // (size + 300)  # ~3x maxmemory of entries
    for policy, ttl, paced in policies:
        srv = EmbeddedServer(
            binary,
            extra=("--maxmemory", f"{maxmemory_mb}mb", "--maxmemory-policy", policy),
        ).start()
        try:
            r: Any = srv.client()
            cache = RedisExactCache(
                url=srv.url,
                key_prefix="ev",
                ttl_seconds=ttl,
                compress_threshold=None,
                breaker_seconds=0,
            )
            puts = gets = found = 0
            for i in range(n):
                cache.put(*req(i), resp(i, size))
                puts += 1
                if paced and i % (n // 8) == n // 8 - 1:
                    last = cache._core.keys.entry(0, cache._core.request(req(i))[1])
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline and (r.object("idletime", last) or 0) < 1:
                        time.sleep(0.05)  # bounded poll of the server's LRU clock
                if i % 5 == 0:  # read back a recent one and an old one
                    for j in (i, i // 2):
                        gets += 1
                        found += int(cache.get(*req(j)) is not None)
            keys = cache._core.keys
            r.config_set("maxmemory", 0)  # quiesce before counting
            meta_alive = bool(r.exists(keys.meta))
            # private server: the namespace's index, counters, meta key and entries only
            on_server = int(r.dbsize()) - 2 - int(meta_alive)
            fs = cache.fleet_stats()
            size_before = len(cache)
            removed = cache.reconcile()
            size_after = len(cache)
            live = 0
            for m in r.zrange(keys.index(0), 0, -1):
                live += int(r.exists(keys.entry(0, m.decode())))
            row = {
                "policy": policy,
                "ttl_seconds": ttl,
                "paced": paced,
                "puts_issued": puts,
                "gets_issued": gets,
                "gets_found": found,
                "evicted_keys": int(r.info("stats")["evicted_keys"]),
                "counted_puts": fs.puts,
                "counted_hits": fs.hits,
                "counted_misses": fs.misses,
                "counted_gets": fs.hits + fs.misses,
                "puts_lost_from_counters": puts - fs.puts,
                "len_before_reconcile": size_before,
                "reconcile_removed": removed,
                "len_after_reconcile": size_after,
                "live_entries_in_index": live,
                "entries_on_server": on_server,
                "entries_unknown_to_index": on_server - live,
                "meta_key_survived": meta_alive,
                "errors_seen": cache.error_count,
            }
            out["rows"].append(row)
            print(row, flush=True)
            cache.close()
        finally:
            srv.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["shards", "memory", "eviction"], action="append")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    parts = a.part or ["shards", "memory", "eviction"]
    results = {}
    for p in parts:
        results[p] = {"shards": part_shards, "memory": part_memory, "eviction": part_eviction}[p]()
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
