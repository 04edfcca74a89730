"""Where a get hit's client CPU goes: a cache on a stub client that answers at once (no
network, no server), timed per component (best of repeated ``timeit`` runs, us per call) and
profiled with cProfile (or pyinstrument, if installed and ``--pyinstrument`` is given).

    python -m bench.profile_hit [--size 1024] [--pyinstrument]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
import timeit
from collections.abc import Callable
from typing import Any

from bench.payloads import request, response_fields
from fleetcache import LLMResponse, RedisExactCache


class StubClient:
    """Answers every EVALSHA/GET with one fixed value (the stored envelope)."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    def evalsha(self, *_: Any) -> bytes:
        return self.value

    def get(self, *_: Any) -> bytes:
        return self.value


def stub_cache(size: int) -> tuple[RedisExactCache, tuple[Any, ...], bytes]:
    """A cache whose store talks to a ``StubClient`` holding the envelope of the bench
    response of ``size`` bytes; the request that hits it; the envelope."""
    resp = LLMResponse.model_validate(response_fields(size))
    probe = RedisExactCache(client=StubClient(b""), key_prefix="prof")
    env = probe._core.codec.encode(resp)
    fc = RedisExactCache(client=StubClient(env), key_prefix="prof")
    fc._core.layout_checked = True  # no layout call against the stub
    req = request()
    assert fc.get(*req) == resp
    return fc, req, env


def best_us(fn: Callable[[], Any], number: int = 2000, repeat: int = 7) -> float:
    """Best of ``repeat`` timeit runs of ``number`` calls, in us of this thread's CPU time
    per call (``time.thread_time``: time spent descheduled on a busy machine not counted)."""
    t = timeit.repeat(fn, number=number, repeat=repeat, timer=time.thread_time)
    return min(t) / number * 1e6


def components(size: int = 1024) -> dict[str, float]:
    """us per call of the whole get hit and of its parts."""
    from fleetcache.core.keys import digest_of, normalise_request

    fc, req, env = stub_cache(size)
    core = fc._core
    norm = normalise_request(*req)
    dg = digest_of(norm)
    store = fc._bound().store
    return {
        "whole get hit (facade, policy, driver, decode)": best_us(lambda: fc.get(*req)),
        "normalise_request": best_us(lambda: normalise_request(*req)),
        "digest_of": best_us(lambda: digest_of(norm)),
        "get_call (keys + args)": best_us(lambda: core.get_call(norm, dg, 0)),
        "codec.decode (msgpack + validate)": best_us(lambda: core.codec.decode(env)),
        "store.call on the stub": best_us(lambda: store.call(core.get_call(norm, dg, 0))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--pyinstrument", action="store_true")
    ns = ap.parse_args()
    for k, v in components(ns.size).items():
        print(f"{v:7.2f} us  {k}")
    fc, req, _ = stub_cache(ns.size)
    if ns.pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0001)
        prof.start()
        for _ in range(50_000):
            fc.get(*req)
        prof.stop()
        print(prof.output_text(unicode=False, color=False))
        return 0
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(50_000):
        fc.get(*req)
    pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(18)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
