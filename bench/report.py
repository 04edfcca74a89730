"""RESULTS.md: the targets, every table of a run, and the analysis drawn from its numbers."""

from __future__ import annotations

from typing import Any

from bench.faults import render_faults
from bench.scale import GUARD_LIMIT, fleet_scale, guard


def _fmt_ops(x: float) -> str:
    return f"{x:,.0f}"


PEERS = (
    ("ractogateway RedisExactCache (client=)", "incumbent get hit (client=)",
     "incumbent put (client=)"),
    ("LiteLLM RedisCache", "litellm RedisCache get hit", "litellm RedisCache put"),
    ("langchain-community RedisCache", "langchain-community RedisCache get hit",
     "langchain-community RedisCache put"),
)  # fmt: skip
CLIENT_US_TARGET = 10.0  # client CPU per get hit at 1 KB, stub client
RAW_RATIO_TARGET = 0.65  # fleetcache get hit / raw GET, 1 KB, paired


def _paired_1kb(res: dict[str, Any], group: str = "paired") -> dict[str, float]:
    one = res.get("throughput", {}).get("1 KB", {})
    return dict(one.get(group) or {k: v["median"] for k, v in one.get("ops", {}).items()})


def targets(res: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target of the issues, from one run's results."""
    out: list[tuple[str, str, bool | None]] = []
    rp = res.get("request_path")
    if rp:
        out.append(
            (
                "get_request hit >= 0.8x five-field get (10 messages, 3 tools)",
                f"{rp['ratio']:.2f}x ({rp['get_request_ops']:,} vs {rp['get_ops']:,} ops/s)",
                rp["ratio"] >= rp["target_ratio"],
            )
        )
    st = res.get("sdk_transport")
    if st:
        hit = st["chat"]["hit"]
        out.append(
            (
                f"SDK chat hit through the transport <= {st['target_ratio']}x the SDK on a "
                "plain mock transport (paired)",
                f"{hit['ratio']:.2f}x wall, {hit['cpu_ratio']:.2f}x client CPU",
                hit["ratio"] <= st["target_ratio"],
            )
        )
    t = _paired_1kb(res)
    if t:
        hit = t["fleetcache get hit"]
        raw = t["raw GET"]
        bare = t.get("bare EVALSHA get-3 (no client work)", float("inf"))
        # a get hit does strictly more than a bare EVALSHA of its script, which does more
        # than a GET of the same value: if either came out faster, the machine's load
        # decided this run's figures, not the code
        sane = hit <= bare * 1.02 and bare <= raw * 1.02
        out.append(
            (
                f"get hit >= {RAW_RATIO_TARGET}x raw GET ops/s (1 KB, paired)",
                f"{hit / raw:.2f}x"
                + ("" if sane else " (unreliable: hit < bare EVALSHA < GET broken by load)"),
                hit / raw >= RAW_RATIO_TARGET if sane else None,
            )
        )
    real = res.get("client_cpu_real_us", {})
    if "raw GET" in real and isinstance(real["raw GET"], dict):
        r = real["raw GET"]["total"] / real["fleetcache get hit"]["total"]
        out.append(
            (
                f"get hit >= {RAW_RATIO_TARGET}x raw GET (1 KB, client + server CPU per hit)",
                f"{r:.2f}x",
                r >= RAW_RATIO_TARGET,
            )
        )
    tp = _paired_1kb(res, "paired_peers")
    if tp:
        hit = tp["fleetcache get hit"]
        inc = tp["incumbent get hit (url=, as shipped)"]
        out.append(
            ("get hit >= 5x incumbent as shipped (1 KB)", f"{hit / inc:.1f}x", hit / inc >= 5)
        )
        for label, get_name, _ in PEERS:
            if get_name in tp:
                r = hit / tp[get_name]
                out.append((f"get hit >= 1.0x {label} (1 KB, paired)", f"{r:.2f}x", r >= 1.0))
        # the same API level: fleetcache's adapters against the library's own Redis cache
        for ours, theirs, label in (
            ("fleetcache FleetLiteLLMBackend get hit", "litellm RedisCache get hit",
             "LiteLLM backend: fleetcache's vs LiteLLM's RedisCache"),
            ("fleetcache FleetLangChainCache get hit", "langchain-community RedisCache get hit",
             "LangChain BaseCache: fleetcache's vs langchain-community's"),
        ):  # fmt: skip
            if ours in tp and theirs in tp:
                r = tp[ours] / tp[theirs]
                out.append((f"{label} (1 KB, paired)", f"{r:.2f}x", r >= 1.0))
    tc = _paired_1kb(res, "paired_completion")
    ours, theirs = (
        "fleetcache as litellm.cache: completion(caching=True) get hit",
        "litellm completion(caching=True) get hit",
    )
    if ours in tc and theirs in tc:
        r = tc[ours] / tc[theirs]
        out.append(
            (
                "litellm.completion(caching=True) hit: fleetcache as litellm.cache vs "
                "LiteLLM's Redis cache (1 KB, paired)",
                f"{r:.2f}x",
                r >= 1.0,
            )
        )
    cw = res.get("client_us", {})
    if cw:
        us = cw["fleetcache get hit (whole call)"]
        out.append(
            (
                f"client CPU per get hit <= {CLIENT_US_TARGET:.0f} us (1 KB, stub client)",
                f"{us:.1f} us",
                us <= CLIENT_US_TARGET,
            )
        )
    s = res.get("size_ms", {}).get("fleetcache len", {})
    big = max((int(k) for k in s), default=0)
    if big:
        ms = s[big] if big in s else s[str(big)]
        out.append((f"len() <= 2 ms at {big:,} entries", f"{ms:.3f} ms", ms <= 2.0))
    m = res.get("bytes_per_entry", {}).get("1 KB")
    if m:
        out.append(
            (
                "bytes/entry <= incumbent's (1 KB)",
                f"{m['fleetcache total']:.0f} vs {m['incumbent entry']:.0f} B",
                m["fleetcache total"] <= m["incumbent entry"],
            )
        )
    for server, by_size in res.get("servers_us", {}).items():
        for lb, cases in by_size.items():
            g = guard(cases)
            out.append(
                (
                    f"no regression: get-3 server us <= {GUARD_LIMIT}x minimal get-and-count "
                    "with the same counters "
                    f"({server}, {lb})",
                    f"{g['get-3']:.2f} vs {g['minimal']:.2f} us = {g['ratio']:.2f}x",
                    g["ok"],
                )
            )
    return out


def _request_and_signing(res: dict[str, Any]) -> list[str]:
    """The request-keyed path and the signing cost, when measured."""
    lines: list[str] = []
    rp = res.get("request_path")
    if rp:
        d = rp["digest_us_per_kb"]
        lines += [
            "",
            "## Request-keyed path (`get_request`) and digest cost",
            "",
            f"A 10-message request with 3 tools ({rp['request_kb']} KB canonical), paired with "
            "the five-field `get` on the same server, one client:",
            "",
            "| | ops/s |",
            "|---|---|",
            f"| five-field `get` hit | {rp['get_ops']:,} |",
            f"| `get_request` hit | {rp['get_request_ops']:,} ({rp['ratio']:.2f}x, target "
            f">= {rp['target_ratio']}x) |",
            "",
            "`request_digest` (canonical JSON + BLAKE2b): "
            + ", ".join(f"{d[k]} us/KB at {d[k + '_size_kb']} KB" for k in ("1KB", "10KB", "100KB"))
            + ".",
        ]
    st = res.get("sdk_transport")
    if st:
        from bench.sdk_transport import render as render_sdk

        lines += [
            "",
            "## The caching HTTP transport under the OpenAI SDK",
            "",
            f"`bench/sdk_transport.py`: {st['rounds']} paired rounds of {st['calls']} calls "
            "(embeddings: calls // 100), one client, medians over the rounds; wall time, and "
            "this process's CPU time (the client's own work, not inflated by the load of other "
            "processes; the Redis server's CPU is not in it), a mock upstream that answers at once "
            "(so the embeddings row compares the cache's work with no upstream latency at "
            "all); the entry rows are `STRLEN` of the stored entries, and the raw SSE is "
            "`bench/stream_bytes.py`.",
            "",
            render_sdk(st),
        ]
    sg = res.get("signing")
    if sg:
        from bench.signing import render as render_signing

        lines += [
            "",
            "## Signed entries (`signing_key=`): cost per hit",
            "",
            "Paired rounds on a private server (`bench/signing.py`); the client decode column "
            "is MAC check + msgpack + validation on the client alone.",
            "",
            render_signing(sg),
        ]
    return lines


def render(res: dict[str, Any]) -> str:
    meta = res.get("meta", {})
    lines = [
        "# fleetcache benchmark results",
        "",
        f"Produced by `{meta.get('command', 'make bench')}` (mode **{meta.get('mode')}**) on "
        f"{meta.get('when', '?')}: {meta.get('machine', '')}.",
        "One private `redis-server` "
        f"{meta.get('redis_version', '')} on a loopback port, started and stopped by the run; "
        "single-connection clients with `hiredis`. Throughput = median of "
        f"{meta.get('reps')} interleaved timed windows of {meta.get('window')} s each. "
        "The machine is a shared 2-core VM, so absolute numbers are noisy; ratios measured "
        "in the same run are the meaningful part.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for name, val, ok in targets(res):
        met = "unreliable" if ok is None else ("yes" if ok else "NO")
        lines.append(f"| {name} | {val} | {met} |")
    lines += _peer_table(res)
    lines += _request_and_signing(res)
    lines += ["", "## Single-client throughput (ops/s, median [min-max])", ""]
    thr = res.get("throughput", {})
    if thr:
        labels = list(thr)
        names = list(thr[labels[0]]["ops"])
        for lb in labels[1:]:
            names += [n for n in thr[lb]["ops"] if n not in names]
        lines.append("| operation | " + " | ".join(labels) + " | x raw GET (1 KB) |")
        lines.append("|---|" + "---|" * (len(labels) + 1))
        raw1 = thr[labels[0]]["ops"]["raw GET"]["median"]
        for n in names:
            cells = []
            for lb in labels:
                v = thr[lb]["ops"].get(n)
                cells.append(
                    f"{_fmt_ops(v['median'])} [{_fmt_ops(v['min'])}-{_fmt_ops(v['max'])}]"
                    if v
                    else "-"
                )
            v1 = thr[labels[0]]["ops"].get(n)
            lines.append(
                f"| {n} | " + " | ".join(cells) + f" | {v1['median'] / raw1:.2f} |"
                if v1
                else f"| {n} | " + " | ".join(cells) + " | - |"
            )
        for group, title in (
            ("paired", "the hit paths"),
            ("paired_peers", "fleetcache, raw GET and the incumbent beside the slower peers"),
            ("paired_completion", "the whole litellm.completion(caching=True) path"),
        ):
            if not all(thr[lb].get(group) for lb in labels):
                continue
            lines += [
                "",
                f"Get hits measured *paired*, {title} (alternating blocks of calls, time "
                "summed per operation; the targets use these, as load from other processes "
                "on the machine hits every contestant alike; ratios only within one table):",
                "",
                "| get hit (paired) | " + " | ".join(labels) + " | x raw GET (1 KB) |",
                "|---|" + "---|" * (len(labels) + 1),
            ]
            p1 = thr[labels[0]][group]
            names = list(p1)
            for lb in labels[1:]:
                names += [n for n in thr[lb][group] if n not in names]
            for n in names:
                row = " | ".join(
                    _fmt_ops(thr[lb][group][n]) if n in thr[lb][group] else "-" for lb in labels
                )
                ratio = f"{p1[n] / p1['raw GET']:.2f}" if n in p1 and "raw GET" in p1 else "-"
                lines.append(f"| {n} | {row} | {ratio} |")
        lines.append("")
        for lb in labels:
            b = thr[lb]["bytes"]
            lines.append(
                f"- {lb} response: fleetcache envelope {b['fleetcache envelope']:,} bytes "
                f"(msgpack, zlib above 4 KiB), incumbent JSON {b['incumbent JSON']:,} bytes."
            )
        lines.append(
            "- The incumbent as shipped (`url=`) builds a new connection pool, and so a new "
            "TCP connection, on every call."
        )
    rb = res.get("redis_benchmark", {})
    if rb and not rb.get("missing"):
        lines += ["", "## Server ceiling: `redis-benchmark` (same server, same value sizes)", ""]
        lines += ["| test | requests/s |", "|---|---|"]
        lines += [f"| {k} | {_fmt_ops(v)} |" for k, v in rb.items()]
    cpu = res.get("server_cpu_us", {})
    if cpu:
        lines += ["", "## Server CPU per operation (`INFO commandstats`, us per call)", ""]
        labels = list(cpu)
        lines.append("| operation | " + " | ".join(labels) + " | x plain GET (16 KB) |")
        lines.append("|---|" + "---|" * (len(labels) + 1))
        g16 = cpu[labels[-1]]["plain GET"]
        for n in cpu[labels[0]]:
            row = " | ".join(f"{cpu[lb][n]:.2f}" for lb in labels)
            lines.append(f"| {n} | {row} | {cpu[labels[-1]][n] / g16:.2f} |")
        lines.append(
            "\nFor a script, the figure is `cmdstat_evalsha` (the whole script, inner commands "
            "included); for MULTI it is multi+exec (EXEC's time includes the queued GET and "
            "EVALSHA, which commandstats also lists on their own)."
        )
    lines += _analysis(res)
    hitpath = _hit_path_summary(res)
    if hitpath:
        lines += ["", "## Serving a hit: payload through the script vs MULTI/GET/count/EXEC", ""]
        lines += hitpath
    size = res.get("size_ms", {})
    if size:
        lines += ["", "## Size / stats query time (ms, median)", ""]
        pts = sorted({int(k) for v in size.values() for k in v})
        lines.append("| query | " + " | ".join(f"{p:,}" for p in pts) + " |")
        lines.append("|---|" + "---|" * len(pts))
        for name, vals in size.items():
            norm = {int(k): v for k, v in vals.items()}
            row = " | ".join(f"{norm[p]:.3f}" if p in norm else "-" for p in pts)
            lines.append(f"| {name} | {row} |")
        lines.append(
            "\nThe incumbent's `len()`/`stats` SCAN its keys 100 at a time (its own database "
            "here, so the curve is the best case for it); fleetcache runs one ZCOUNT on the "
            "index. The incumbent's largest point is measured once (it is slow)."
        )
    mem = res.get("bytes_per_entry", {})
    if mem:
        lines += ["", "## Bytes per entry in Redis (`MEMORY USAGE ... SAMPLES 0`)", ""]
        labels = list(mem)
        lines.append("| | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---|" * len(labels))
        for n in mem[labels[0]]:
            if n == "entries":
                continue
            lines.append(f"| {n} | " + " | ".join(f"{mem[lb][n]:,.1f}" for lb in labels) + " |")
        lines.append(
            f"\n{mem[labels[0]]['entries']:,} entries per cache; index and counters are shared "
            "by all entries of a shard, so their share is their size divided by the entries."
        )
    lines += _fleet(res)
    lines += _servers(res)
    lines += scale_table(res)
    lines += ["", "![benchmark chart](results.png)", ""]
    faults = res.get("faults")
    if faults:
        lines += render_faults(faults)
    return "\n".join(lines) + "\n"


def _analysis(res: dict[str, Any]) -> list[str]:
    """Where the time of a get hit goes (from this run's own numbers)."""
    cpu = res.get("server_cpu_us", {})
    thr = res.get("throughput", {}).get("1 KB", {}).get("ops", {})
    if not cpu or not thr:
        return []
    c1, c16 = cpu.get("1 KB", {}), cpu.get("16 KB", {})
    out = ["", "## Why the get-hit targets are hard (this run's numbers)", ""]
    one = res.get("throughput", {}).get("1 KB", {})
    pt = one.get("paired") or {k: v["median"] for k, v in thr.items()}
    raw_us = 1e6 / pt["raw GET"]
    hit_us = 1e6 / pt["fleetcache get hit"]
    inc_us = 1e6 / pt["incumbent get hit (client=)"]
    out.append(
        f"- One client, 1 KB: raw GET {raw_us:.0f} us per call, incumbent with a reused "
        f"client {inc_us:.0f} us, fleetcache get hit {hit_us:.0f} us."
    )
    bare = pt.get("bare EVALSHA get-3 (no client work)")
    if bare:
        bare_us = 1e6 / bare
        out.append(
            f"- Of fleetcache's {hit_us - raw_us:.0f} us over a raw GET, "
            f"{bare_us - raw_us:.0f} us is the script (a bare EVALSHA of get-3.lua with "
            f"precomputed keys takes {bare_us:.0f} us) and {hit_us - bare_us:.0f} us is "
            "client work: request digest, envelope decode + pydantic validation, the "
            "sans-I/O driver and the error policy." + _cpu_note(res)
        )
    if "floor: no-op script (return 1)" in c1:
        out.append(
            f"- Server side, a script costs before doing anything: "
            f"{c1['floor: no-op script (return 1)']:.1f} us (plain GET "
            f"{c1['plain GET']:.1f} us). Pulling the value into Lua costs about "
            f"{c1['floor: script returning GET, no counting']:.1f} us at 1 KB and "
            f"{c16['floor: script returning GET, no counting']:.1f} us at 16 KB (it grows "
            "with the size: Redis copies the reply into a Lua string). Counting alone "
            "(header read + three HINCRBY) costs "
            f"{c1['floor: counting script only (GETRANGE header)']:.1f} us. So no "
            "design that counts hits atomically on the server can come near 3x a plain GET; "
            "the get-3.lua figure is the sum of the two parts."
        )
    cw = res.get("client_us")
    if cw:
        parts = ", ".join(f"{k.strip()} {v:.1f} us" for k, v in cw.items() if k.startswith(" "))
        whole = cw["fleetcache get hit (whole call)"]
        out.append(
            "- Client CPU per get hit with a stub client that answers at once (no network; "
            f"thread CPU time, best of 7 runs): fleetcache {whole:.1f} us ({parts}; the rest, "
            f"{whole - sum(v for k, v in cw.items() if k.startswith(' ')):.1f} us, is the "
            "sans-I/O driver, the facade and the error policy); the incumbent "
            f"{cw['incumbent get hit (whole call)']:.1f} us (sha256 + one "
            "`model_validate_json`; it counts nothing in Redis). Earlier runs timed this "
            "with the wall clock, which on a loaded machine counts time spent descheduled "
            "(15.5 us in the issue's run)."
        )
    real = res.get("client_cpu_real_us")
    if real and isinstance(next(iter(real.values())), dict):
        raw = real["raw GET"]["total"]
        out += [
            "",
            "CPU per 1 KB get hit against the server, client thread (`time.thread_time`: the "
            "redis-py driver and socket calls included, waiting for the reply not) and server "
            "process (`INFO cpu`), us per call. On a dedicated machine a hit costs about their "
            "sum plus the network's latency, however busy this one is:",
            "",
            "| contestant | client CPU | server CPU | total | raw GET's total / this |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {k} | {v['client']:.1f} | {v['server']:.1f} | {v['total']:.1f} | "
            f"{raw / v['total']:.2f}x |"
            for k, v in real.items()
        ]
    return out


def _cpu_note(res: dict[str, Any]) -> str:
    """The wall-vs-CPU caveat, with this run's client CPU of the work over a bare EVALSHA."""
    real = res.get("client_cpu_real_us", {})
    try:
        us = real["fleetcache get hit"]["client"] - real["bare EVALSHA get-3"]["client"]
    except (KeyError, TypeError):
        return ""
    return (
        f" These are wall-clock figures on a shared machine: that client work is {us:.1f} us "
        "of CPU (table below), and every us of CPU a call spends raises its odds of being "
        "descheduled mid-call, so under load the wall-clock gap grows past the CPU one."
    )


def _hit_path_summary(res: dict[str, Any]) -> list[str]:
    thr = res.get("throughput", {})
    cpu = res.get("server_cpu_us", {})
    out = []
    a, b = "fleetcache get hit", "fleetcache get hit (MULTI/GET/count/EXEC)"
    for lb in thr:
        ops = thr[lb]["ops"]
        if a in ops and b in ops:
            ca = cpu.get(lb, {}).get("fleetcache get hit (get-3.lua)")
            cb = cpu.get(lb, {}).get(b)
            srv = f"; server {ca:.2f} vs {cb:.2f} us" if ca and cb else ""
            out.append(
                f"- {lb}: script {_fmt_ops(ops[a]['median'])} ops/s vs MULTI "
                f"{_fmt_ops(ops[b]['median'])} ops/s "
                f"({ops[a]['median'] / ops[b]['median']:.2f}x){srv}."
            )
    if out:
        out.append(
            "- The product serves hits through `get-3.lua` (one EVALSHA, one reply). The MULTI "
            "variant sends four commands and gets four replies per hit."
        )
    return out


def peer_rows(res: dict[str, Any], label: str) -> list[list[str]]:
    """Rows of the peer table at one response size: cache, get hit ops/s (paired), put ops/s
    (median window), bytes per entry, how many entries, what it counts fleet-wide."""
    thr = res.get("throughput", {}).get(label, {})
    ops = thr.get("ops", {})
    pair = {
        **(thr.get("paired_peers") or thr.get("paired", {})),
        **thr.get("paired_completion", {}),
    }
    mem = res.get("bytes_per_entry", {}).get(label, {})
    size = res.get("size_ms", {})
    info = thr.get("peers", {})

    def at_largest(name: str) -> str:
        vals = {int(k): v for k, v in size.get(name, {}).items()}
        if not vals:
            return "?"
        n = max(vals)
        return f"{vals[n]:,.2f} ms at {n:,}"

    def put(name: str) -> str:
        return _fmt_ops(ops[name]["median"]) if name in ops else "-"

    rows = [
        [
            "**fleetcache** `RedisExactCache`",
            _fmt_ops(pair.get("fleetcache get hit", 0)),
            put("fleetcache put"),
            f"{mem['fleetcache total']:,.0f}" if mem else "?",
            f"`len()`: one ZCOUNT, {at_largest('fleetcache len')}",
            "hits, misses, puts, expired, evicted, corrupt, tokens saved, per model",
        ],
        [
            "ractogateway `RedisExactCache` (client=)",
            _fmt_ops(pair.get("incumbent get hit (client=)", 0)),
            put("incumbent put (client=)"),
            f"{mem['incumbent entry']:,.0f}" if mem else "?",
            f"`len()`: SCAN, {at_largest('incumbent len')}",
            "nothing (hits/misses per process, lost on restart)",
        ],
    ]
    for name in (
        "litellm RedisCache",
        "fleetcache FleetLiteLLMBackend",
        "litellm completion(caching=True)",
        "fleetcache as litellm.cache: completion(caching=True)",
        "langchain-community RedisCache",
        "fleetcache FleetLangChainCache",
    ):
        if f"{name} get hit" not in pair:
            continue
        stored_by = {  # a completion row writes what its backend row writes
            "litellm completion(caching=True)": "litellm RedisCache",
            "fleetcache as litellm.cache: completion(caching=True)": (
                "fleetcache FleetLiteLLMBackend"
            ),
        }.get(name, name)
        b = mem.get(f"{stored_by} total")
        rows.append(
            [
                name,
                _fmt_ops(pair[f"{name} get hit"]),
                put(f"{name} put"),
                f"{b:,.0f}" if b else "?",
                info.get(name, {}).get("how_many", "?"),
                info.get(name, {}).get("counts", "?"),
            ]
        )
    rows.append(["raw redis-py `GET`/`SET` (the limit)", _fmt_ops(pair.get("raw GET", 0)),
                 put("raw SET"), "-", "-", "-"])  # fmt: skip
    return rows


def _peer_table(res: dict[str, Any]) -> list[str]:
    thr = res.get("throughput", {})
    if not any("peers" in v for v in thr.values()):
        return []
    out = ["", "## fleetcache and the caches a team would pick instead", ""]
    for label in thr:
        out += [
            f"**{label} response** (same server, same response: text, usage, a tool call)",
            "",
            "| cache | get hit ops/s (paired) | put ops/s | bytes in Redis per entry | "
            "how many entries | counts fleet-wide |",
            "|---|---|---|---|---|---|",
        ]
        out += ["| " + " | ".join(r) + " |" for r in peer_rows(res, label)]
        out.append("")
    out += [
        "- LiteLLM: `litellm.caching.redis_cache.RedisCache` with the value LiteLLM's `Cache` "
        "writes (a Python `repr` of `{timestamp, response: <JSON>}`; a hit is parsed back with "
        "`ast.literal_eval`), and the whole `litellm.completion(..., caching=True, "
        "mock_response=...)` path; its put is a miss (mocked model answer) plus the write. "
        "Run offline (`LITELLM_LOCAL_MODEL_COST_MAP=True`).",
        "- LangChain: `langchain_community.cache.RedisCache` (one HASH per entry, key = a bare "
        "hash of prompt + llm string, no prefix; `clear()` is FLUSHDB). `langchain-redis`'s "
        "`RedisCache` stores with `JSON.SET`, so it needs the RedisJSON module (Redis Stack or "
        "Redis 8): it cannot run on a plain Redis 7 or Valkey 9 server, this one included. "
        "`fleetcache FleetLangChainCache` is fleetcache's adapter for the same "
        "`ChatGeneration`s; `fleetcache FleetLiteLLMBackend` and `fleetcache as litellm.cache` "
        "are fleetcache's LiteLLM backend (`fleetcache.integrations.litellm`) under the same "
        "LiteLLM keys and values.",
        "- Bytes: `MEMORY USAGE ... SAMPLES 0` of the key each writes (median of every 10th "
        "entry), plus index and counters divided by the entries for fleetcache.",
    ]
    return out


def _fleet(res: dict[str, Any]) -> list[str]:
    fleet = res.get("fleet", {})
    ops, srv = fleet.get("ops", {}), fleet.get("server_us", {})
    if not ops:
        return []
    lines = ["", "## Fleet throughput (client processes against one server, total ops/s)", ""]
    procs = sorted({int(p) for v in ops.values() for p in v})
    lines.append("| 1 KB | " + " | ".join(f"{p} proc" for p in procs) + " |")
    lines.append("|---|" + "---|" * len(procs))
    for name, vals in ops.items():
        norm = {int(k): v for k, v in vals.items()}
        us = {int(k): v for k, v in srv.get(name, {}).items()}
        tot = {int(k): v for k, v in fleet.get("server_cpu_us", {}).get(name, {}).items()}
        lines.append(f"| {name} | " + " | ".join(_fmt_ops(norm[p]) for p in procs) + " |")
        lines.append(
            f"| server us per call in the command ({name}) | "
            + " | ".join(f"{us.get(p, 0):.2f}" for p in procs)
            + " |"
        )
        lines.append(
            f"| server process CPU us per call ({name}) | "
            + " | ".join(f"{tot.get(p, 0):.2f}" for p in procs)
            + " |"
        )
    lines.append(
        "\nIn the command: `usec_per_call` of `cmdstat_evalsha` (fleetcache) or "
        "`cmdstat_get` (raw GET) over the window; process CPU: the server's `used_cpu_user` + "
        "`used_cpu_sys` over the calls (reading, parsing and answering requests included). "
        "On this 2-core VM the server and all client "
        "processes share two cores: past 2 processes they only compete for CPU; on a real "
        "fleet the clients run on other machines, and one server core serves at most "
        '1e6 / (process CPU us per hit) hits/s (docs/operations.md, "Fleet scale").'
    )
    return lines


def _servers(res: dict[str, Any]) -> list[str]:
    sv = res.get("servers_us", {})
    if not sv:
        return []
    names = list(sv)
    labels = list(sv[names[0]])
    cases = list(sv[names[0]][labels[0]])
    lines = ["", "## Server us per call: " + " vs ".join(names) + " (`INFO commandstats`)", ""]
    head = [f"{n} {lb}" for lb in labels for n in names]
    lines.append("| operation | " + " | ".join(head) + " |")
    lines.append("|---|" + "---|" * len(head))
    for c in cases:
        cells = [f"{sv[n][lb].get(c, float('nan')):.2f}" for lb in labels for n in names]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        for lb in labels:
            g = guard(sv[n][lb])
            flag = "ok" if g["ok"] else f"**FLAGGED: above {GUARD_LIMIT}x**"
            two = sv[n][lb].get("minimal get-and-count (GET + 2 HINCRBY)")
            like = f"; vs GET + 2 HINCRBY {g['get-3'] / two:.2f}x" if two else ""
            lines.append(
                f"- guard, {n} {lb}: get-3 {g['get-3']:.2f} us vs minimal get-and-count with "
                f"the same counters {g['minimal']:.2f} us = {g['ratio']:.2f}x ({flag}){like}"
            )
    lines.append(
        "\nThe guard's reference is the cheapest Lua that serves a hit and counts what get-3 "
        "counts (GET + 3 HINCRBY: hits, per model, tokens_saved; the value back); get-3 adds "
        "the header check and the miss-path index repair. GET + 2 HINCRBY is shown beside it. "
        'The earlier target "server us per get <= 3x plain GET" '
        "is retired: a no-op script alone costs several GETs, so no script that counts can "
        "meet it."
    )
    return lines


def scale_table(res: dict[str, Any]) -> list[str]:
    """The "Fleet scale" table (also copied into docs/operations.md)."""
    fs = fleet_scale(res)
    if not fs:
        return []
    out = [
        "",
        "## Fleet scale (derived from this run's figures)",
        "",
        f"Inputs: the server process spends {fs['server_us_per_hit'] + fs['io_us_per_request']:.1f}"
        f" us of CPU per hit under load ({fs['server_us_per_hit']:.1f} us in the script, "
        f"`cmdstat_evalsha`; {fs['io_us_per_request']:.1f} us reading and answering the "
        "request, `INFO cpu` over the calls), so one core serves "
        f"{_fmt_ops(fs['core_hits_per_s'])} hits/s; one client process here does "
        f"{_fmt_ops(fs['client_hits_per_s'])} hits/s. A cluster serves one core's worth "
        "divided by the busiest node's share of the namespace's shards (slot math over 300 "
        "random namespace names).",
        "",
        "| setup | shards (S) | busiest node share (median / p95) | hits/s (median / p95 "
        "namespace) | client processes to saturate | bottleneck |",
        "|---|---|---|---|---|---|",
    ]
    for r in fs["rows"]:
        out.append(
            f"| {r['setup']} | {r['shards']} | {r['busiest_share']:.2f} / "
            f"{r['busiest_share_p95']:.2f} | {_fmt_ops(r['hits_per_s'])} / "
            f"{_fmt_ops(r['hits_per_s_p95'])} | {r['client_processes']:.0f} | "
            f"{r['bottleneck']} |"
        )
    return out
