"""Server us per hit of get-3.lua before and after the savings counting (standalone).

Runs a private ``redis-server`` (never a shared one), loads the old get-3 (from git ref
``--old-ref``, includes expanded) and the current one, stores one 1 KB answer per script
(the old one as a version-1 entry, the new one as a version-2 entry: priced, with an
upstream duration, no prompt-cache tokens: the common case), and measures
``INFO commandstats`` ``usec_per_call`` of ``evalsha`` over ``--calls`` pipelined hits per
round, the scripts interleaved round by round; prints the median of ``--rounds`` and the
ratio. Usage: ``python -m bench.savings [--rounds 15] [--calls 3000] [--old-ref REF]``.
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
from fleetcache.embedded import EmbeddedServer


def old_get3(ref: str) -> str:
    """get-3.lua of git ``ref``, includes expanded."""
    out = subprocess.run(["git", "archive", ref, "lua"], capture_output=True, check=True)
    tmp = Path(tempfile.mkdtemp(prefix="fc-old-lua-"))
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tf:
        tf.extractall(tmp, filter="data")
    base = tmp / "lua"
    return expand_includes((base / "get-3.lua").read_text(), base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--old-ref", default="3b34bd2")
    a = ap.parse_args()
    base = lua_dir()
    new_src = expand_includes((base / "get-3.lua").read_text(), base)
    old_src = old_get3(a.old_ref)
    with EmbeddedServer() as server:
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
        old_keys = ("bench:old:e", keys[1], "bench:old:s")
        sha = {"old": r.script_load(old_src), "new": r.script_load(new_src)}
        argv = {"old": (digest, b"m", b"FC\x01"), "new": (digest, b"m", b"FC")}
        ks = {"old": old_keys, "new": keys}
        res: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(a.rounds):
            for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
                r.config_resetstat()
                p = r.pipeline(transaction=False)
                for _ in range(a.calls):
                    p.evalsha(sha[name], 3, *ks[name], *argv[name])
                replies = p.execute()
                assert replies[-1] is not None
                st = r.info("commandstats")["cmdstat_evalsha"]
                res[name].append(float(st["usec_per_call"]))
        old, new = statistics.median(res["old"]), statistics.median(res["new"])
        print(f"redis {r.info('server')['redis_version']}, 1 KB entry, {a.calls} hits x "
              f"{a.rounds} rounds (interleaved)")  # fmt: skip
        print(f"old get-3 (v1 entry: hits, mh, tokens_saved): median {old:.2f} us, "
              f"min {min(res['old']):.2f}")  # fmt: skip
        print(f"new get-3 (v2 entry: + mi, mo, mc, md):       median {new:.2f} us, "
              f"min {min(res['new']):.2f}")  # fmt: skip
        print(f"ratio new/old: median {new / old:.3f}, min {min(res['new']) / min(res['old']):.3f}")
        cache.close()


if __name__ == "__main__":
    main()
