"""The ``fleetcache`` command: look after a namespace from a shell.

    fleetcache stats [--url URL] [--prefix P] [--json] [--watch SECONDS] [--count N]
    fleetcache namespaces [--url URL] [--json]   every namespace on the server, and a total
    fleetcache clear [--yes]          delete every entry and reset the counters
    fleetcache reconcile              drop index members whose entry vanished
    fleetcache reset-stats            zero the counters, keep the entries
    fleetcache demo [...]             the fleet demo (see ``fleetcache demo --help``)
    fleetcache metrics [--port 9108]  serve the fleet-wide counters to Prometheus
    fleetcache acl --prefix P --user U [--shards S] [--password PW] [--cluster]
                                      print the least-privilege ACL SETUSER rule of P

``--url`` defaults to ``$REDIS_URL``, then ``redis://localhost:6379/0``; ``--prefix`` to
``ractogateway:exact``. Exit codes: 0 ok, 1 failed or declined, 2 bad arguments, 3 server
unreachable or refused the password, 4 namespace does not exist (``stats`` then lists the
namespaces it found).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, NoReturn, TextIO

from ._admin import (
    EXIT_FAILED,
    EXIT_NO_NAMESPACE,
    EXIT_OK,
    EXIT_USAGE,
    AdminError,
    connect,
    default_url,
    find_namespaces,
    namespace_stats,
    open_namespace,
    redact,
    run_command,
    shown,
    stats_dict,
)
from ._base import DEFAULT_PREFIX
from .core.models import COUNTERS, FleetStats
from .core.ops import ChunkProgress

__all__ = ["build_parser", "main", "shown"]


# -- output helpers ---------------------------------------------------------------------------


class _Progress:
    """One status line: rewritten in place on a terminal, else at most one line a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last = 0.0
        self.shown = False

    def update(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.out.write("\r" + text + "\x1b[K")
            self.out.flush()
            self.shown = True
        elif force or not self.shown or now - self.last >= 1.0:
            self.out.write(text + "\n")
            self.out.flush()
            self.last = now
            self.shown = True

    def done(self) -> None:
        if self.tty and self.shown:
            self.out.write("\n")
            self.out.flush()


def _n(v: int) -> str:
    return f"{v:,}"


def usd(v: float) -> str:
    """Dollars for a table: ``$1,234.57`` from $1 up, else up to six decimals with trailing
    zeros dropped (``$0.0225``, ``$0.000001``, ``$0.00``), so a few cheap hits do not show as
    zero."""
    if abs(v) >= 1:
        return f"${v:,.2f}"
    text = f"{v:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac:0<2}"


def duration(seconds: float) -> str:
    """Seconds for a table: ``850 ms``, ``3.6 s``, ``12.5 min``, ``3.2 h``, ``2.1 d``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    for unit, size in (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s"


def by_money_saved(fs: FleetStats) -> list[str]:
    """The model names of ``fs`` sorted by money saved, then hits (both most first), then
    name."""
    return sorted(
        fs.by_model,
        key=lambda n: (-fs.by_model[n].cost_saved_nanousd, -fs.by_model[n].hits, n),
    )


def format_stats(fs: FleetStats, *, prefix: str, shards: int, url: str) -> str:
    """The readable table ``fleetcache stats`` prints: hits, misses, hit rate, saved rate
    (hits + coalesced, over gets: the gets that did not reach the upstream), what the hits
    saved (``$ saved`` priced when each entry was written, with the hits of unknown cost
    beside it; tokens in / out; upstream time), live entries, then every other counter of
    ``COUNTERS`` in order, then a per-model table sorted by money saved. Names read from
    Redis are escaped (``shown``)."""
    unpriced = f"  (+{_n(fs.unpriced_hits)} hits of unknown cost)" if fs.unpriced_hits else ""
    rows = [
        ("hits", _n(fs.hits), ""),
        ("misses", _n(fs.misses), ""),
        ("hit rate", f"{fs.hit_rate:.1%}", ""),
        ("saved rate", f"{fs.saved_rate:.1%}", ""),
        ("$ saved", usd(fs.cost_saved_usd), unpriced),
        ("tokens saved in", _n(fs.input_tokens_saved), ""),
        ("tokens saved out", _n(fs.output_tokens_saved), ""),
        ("time saved", duration(fs.seconds_saved), ""),
        ("entries (live)", _n(fs.size), ""),
    ]
    rows += [
        (c.name.replace("_", " "), _n(getattr(fs, c.name)), "")
        for c in COUNTERS
        if c.name not in ("hits", "misses")
    ]
    kw = max(len(k) for k, _, _ in rows) + 2
    width = max(len(v) for _, v, _ in rows)
    lines = [f"namespace {prefix!r} on {shown(redact(url))} (shards={shards})"]
    lines += [f"  {k:<{kw}}{v:>{width}}{note}" for k, v, note in rows]
    if fs.bad_counters:
        lines.append(
            f"  {'bad counters':<{kw}}{len(fs.bad_counters):>{width}}  (not integers, skipped: "
            + ", ".join(shown(b) for b in fs.bad_counters[:10])
            + (", ..." if len(fs.bad_counters) > 10 else "")
            + ")"
        )
    if fs.by_model:
        lines.append("")
        lines += model_table(fs)
    return "\n".join(lines)


def model_table(fs: FleetStats) -> list[str]:
    """The per-model rows of ``format_stats``, sorted by money saved (``by_money_saved``):
    hits, misses, hit rate, $ saved (``?`` for a model whose hits all had an unknown cost:
    never a silent $0), input / output tokens saved, time saved, unpriced hits. Model
    names are escaped (``shown``)."""
    names = by_money_saved(fs)
    labels = {name: shown(name) for name in names}
    w = max(12, *(len(v) for v in labels.values()))
    head = ("hits", "misses", "hit rate", "$ saved", "in tokens", "out tokens", "time", "unpriced")
    body = []
    for name in names:
        m = fs.by_model[name]
        body.append(
            (
                _n(m.hits),
                _n(m.misses),
                f"{m.hit_rate:.1%}",
                "?" if m.unpriced_hits and not m.cost_saved_nanousd else usd(m.cost_saved_usd),
                _n(m.input_tokens_saved),
                _n(m.output_tokens_saved),
                duration(m.seconds_saved),
                _n(m.unpriced_hits),
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    lines = ["  " + f"{'model':<{w}}" + "".join(f"  {h:>{widths[i]}}" for i, h in enumerate(head))]
    for name, row in zip(names, body, strict=True):
        lines.append(
            "  "
            + f"{labels[name]:<{w}}"
            + "".join(f"  {v:>{widths[i]}}" for i, v in enumerate(row))
        )
    return lines


# -- commands ---------------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        cache = open_namespace(args.url, args.prefix, shards=args.shards)
    except AdminError as exc:
        if exc.code != EXIT_NO_NAMESPACE:
            raise
        err.write(f"fleetcache: error: {shown(str(exc), backslash=False)}\n")
        _list_namespaces(args.url, err)
        return EXIT_NO_NAMESPACE
    with cache:
        n = 0
        tty = out.isatty()
        while True:
            fs = cache.fleet_stats()
            n += 1
            if args.json:
                body = stats_dict(fs, prefix=cache.key_prefix, shards=cache.shards)
                # one JSON object per line, so `--watch --json` is a JSON Lines stream
                out.write(json.dumps(body, sort_keys=False) + "\n")
            else:
                table = format_stats(fs, prefix=cache.key_prefix, shards=cache.shards, url=args.url)
                if args.watch is not None:
                    stamp = time.strftime("%H:%M:%S")
                    table = f"{table}\n\n  refreshed {stamp}, every {args.watch:g} s (Ctrl-C quits)"
                    if tty:
                        out.write("\x1b[H\x1b[J")  # cursor home, clear screen: refresh in place
                    elif n > 1:
                        out.write("\n")
                out.write(table + "\n")
            out.flush()
            if args.watch is None or (args.count is not None and n >= args.count):
                return EXIT_OK
            time.sleep(args.watch)


def _list_namespaces(url: str, err: TextIO) -> None:
    """After ``stats`` found no namespace: the namespaces that do exist on ``url`` and how
    to pick one (a bounded ``SCAN``; see ``find_namespaces``)."""
    client = connect(url)
    try:
        found = find_namespaces(client)
    finally:
        client.close()
    if not found.prefixes:
        err.write(f"no fleetcache namespace on {shown(redact(url))}\n")
        return
    more = "" if found.complete else " (the scan stopped at its cap: there may be more)"
    err.write(f"namespaces on {shown(redact(url))}{more}:\n")
    for prefix in found.prefixes:
        err.write(f"  {shown(prefix)}\n")
    err.write(
        f"pick one with --prefix, e.g. fleetcache stats --prefix {shown(found.prefixes[0])}\n"
    )


def namespaces_dict(rows: list[NamespaceRow], *, url: str, complete: bool) -> dict[str, Any]:
    """The JSON form of ``fleetcache namespaces``: the server (credentials redacted),
    ``complete`` (``False`` when the scan stopped at a cap), one object per namespace
    (``namespace``, ``shards``, ``max_entries`` or null, ``stats``: ``stats_dict`` without
    ``by_model``; or ``error`` for a layout this fleetcache cannot read) and ``total``
    (the counters summed, with the rates and USD / s of the sums)."""
    total = FleetStats()
    items: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {"namespace": row.prefix}
        if row.error is not None:
            item["error"] = row.error
            items.append(item)
            continue
        fs = row.stats
        item["shards"] = row.shards
        item["max_entries"] = row.max_entries
        body = stats_dict(fs, prefix=row.prefix, shards=row.shards)
        for k in ("namespace", "shards", "by_model"):
            body.pop(k)
        item["stats"] = body
        items.append(item)
        _add(total, fs)
    body = stats_dict(total, prefix="", shards=0)
    for k in ("namespace", "shards", "by_model", "bad_counters"):
        body.pop(k)
    return {"server": redact(url), "complete": complete, "namespaces": items, "total": body}


class NamespaceRow(NamedTuple):
    """One namespace of ``fleetcache namespaces``."""

    prefix: str
    shards: int
    max_entries: int | None
    stats: FleetStats
    #: why its numbers could not be read (an unknown layout), else ``None``
    error: str | None = None


def _add(total: FleetStats, fs: FleetStats) -> None:
    for c in COUNTERS:
        setattr(total, c.name, getattr(total, c.name) + getattr(fs, c.name))
    total.size += fs.size


def format_namespaces(rows: list[NamespaceRow], *, url: str, complete: bool) -> str:
    """The table of ``fleetcache namespaces``: per namespace its shards, cap (``-``: none),
    live entries, hit rate, saved rate, $ saved and time saved; a total row (rates of the
    sums). Names are escaped (``shown``)."""
    head = ("shards", "cap", "entries", "hit rate", "saved rate", "$ saved", "time saved")
    total = FleetStats()
    body: list[tuple[str, tuple[str, ...]]] = []
    for row in rows:
        if row.error is not None:
            body.append((shown(row.prefix), ("?",) * 6 + (shown(row.error),)))
            continue
        fs = row.stats
        _add(total, fs)
        body.append(
            (
                shown(row.prefix),
                _ns_cells(
                    fs, str(row.shards), "-" if row.max_entries is None else _n(row.max_entries)
                ),
            )
        )
    body.append(("total", _ns_cells(total, str(sum(r.shards for r in rows)), "")))
    w = max(9, *(len(name) for name, _ in body))
    widths = [max(len(h), *(len(cells[i]) for _, cells in body)) for i, h in enumerate(head)]
    more = "" if complete else " (the scan stopped at its cap: there may be more)"
    lines = [f"{len(rows)} fleetcache namespace(s) on {shown(redact(url))}{more}"]
    lines.append(
        "  " + f"{'namespace':<{w}}" + "".join(f"  {h:>{widths[i]}}" for i, h in enumerate(head))
    )
    for name, cells in body:
        lines.append(
            "  " + f"{name:<{w}}" + "".join(f"  {v:>{widths[i]}}" for i, v in enumerate(cells))
        )
    return "\n".join(lines)


def _ns_cells(fs: FleetStats, shards: str, cap: str) -> tuple[str, ...]:
    return (
        shards,
        cap,
        _n(fs.size),
        f"{fs.hit_rate:.1%}",
        f"{fs.saved_rate:.1%}",
        usd(fs.cost_saved_usd),
        duration(fs.seconds_saved),
    )


def cmd_namespaces(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = connect(args.url)
    try:
        found = find_namespaces(client)
        rows = []
        for prefix in found.prefixes:
            try:
                shards, cap, fs = namespace_stats(client, prefix)
            except AdminError as exc:  # a layout this fleetcache does not know
                rows.append(NamespaceRow(prefix, 0, None, FleetStats(), str(exc)))
                continue
            rows.append(NamespaceRow(prefix, shards, cap, fs))
    finally:
        client.close()
    if args.json:
        body = namespaces_dict(rows, url=args.url, complete=found.complete)
        out.write(json.dumps(body) + "\n")
    else:
        out.write(format_namespaces(rows, url=args.url, complete=found.complete) + "\n")
    return EXIT_OK


def cmd_clear(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_namespace(args.url, args.prefix, shards=args.shards) as cache:
        before = cache.fleet_stats().size
        where = f"namespace {cache.key_prefix!r} on {redact(args.url)}"
        if not args.yes:
            out.write(f"Delete all {_n(before)} entries of {where} and reset its counters? [y/N] ")
            out.flush()
            try:
                answer = sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                out.write("\naborted: nothing deleted (answer y, or pass --yes)\n")
                return EXIT_FAILED
        bar = _Progress(err)
        show = before > 500

        def progress(p: ChunkProgress) -> None:
            if show:
                bar.update(f"clearing shard {p.shard + 1}/{p.shards}: {_n(p.left)} entries left")

        cache.clear(progress=progress)
        bar.done()
        out.write(f"cleared {where}: {_n(before)} live entries deleted, counters reset\n")
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_namespace(args.url, args.prefix, shards=args.shards) as cache:
        before = cache.fleet_stats()
        bar = _Progress(err)
        last: list[ChunkProgress] = []

        def progress(p: ChunkProgress) -> None:
            last[:] = [p]
            bar.update(
                f"reconciling shard {p.shard + 1}/{p.shards}: {_n(p.checked)} index members "
                f"checked, {_n(p.removed)} removed"
            )

        removed = cache.reconcile(progress=progress)
        bar.done()
        after = cache.fleet_stats()
        checked = last[0].checked if last else 0
        expired = max(0, after.expired - before.expired)
        evicted = max(0, after.evicted - before.evicted)
        out.write(
            f"reconciled namespace {cache.key_prefix!r}: checked {_n(checked)} index members, "
            f"removed {_n(removed)} whose entry was gone ({_n(expired)} expired, "
            f"{_n(evicted)} evicted); {_n(after.size)} live entries\n"
        )
    return EXIT_OK


def cmd_reset_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_namespace(args.url, args.prefix, shards=args.shards) as cache:
        cache.reset_stats()
        size = len(cache)
        out.write(f"counters of namespace {cache.key_prefix!r} reset; {_n(size)} entries kept\n")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        from .metrics import serve
    except ImportError as exc:  # prometheus_client is an optional extra
        raise AdminError(
            f"fleetcache metrics needs prometheus_client ({exc}): "
            "pip install 'fleetcache[metrics]'",
            EXIT_FAILED,
        ) from exc
    return serve(url=args.url, prefix=args.prefix, host=args.host, port=args.port, out=out)


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .demo.run import run_demo

    return run_demo(args, out=out, err=err)


# -- parser -----------------------------------------------------------------------------------

#: Longest ``--watch`` interval (seconds): a day. ``time.sleep`` overflows near 1e10 s.
MAX_WATCH_SECONDS = 86_400.0


def _watch_seconds(text: str) -> float:
    """``--watch``: a finite number of seconds, > 0 and <= ``MAX_WATCH_SECONDS``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < v <= MAX_WATCH_SECONDS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"needs seconds > 0 and <= {MAX_WATCH_SECONDS:g} (a day), not {text!r}"
        )
    return v


def _count(text: str) -> int:
    """``--count``: a whole number >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"needs a number >= 1, not {text!r}")
    return v


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {shown(message)} (see {self.prog} --help)\n",
        )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=None,
        help="Redis/Valkey URL (default: $REDIS_URL, else redis://localhost:6379/0); "
        "a password goes in it: redis://:PASSWORD@host:6379/0",
    )
    p.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help=f"the namespace (key_prefix) to work on (default: {DEFAULT_PREFIX})",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="N",
        help="the namespace's shard count, only needed when its layout record is missing "
        "(read from the namespace otherwise; nothing is ever written)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fleetcache`` command."""
    parser = _Parser(
        prog="fleetcache",
        description="Look after a fleetcache namespace on Redis/Valkey: fleet-wide stats, "
        "clear, reconcile, reset counters; run the fleet demo; serve Prometheus metrics.",
        epilog="Exit codes: 0 ok, 1 failed or declined, 2 bad arguments, 3 server unreachable "
        "or refused the password, 4 namespace does not exist.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("stats", help="fleet-wide hits, misses, hit rate, size, tokens saved")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON (one object per refresh)")
    p.add_argument(
        "--watch",
        type=_watch_seconds,
        metavar="SECONDS",
        help="refresh every SECONDS (> 0, at most a day) until Ctrl-C",
    )
    p.add_argument(
        "--count", type=_count, metavar="N", help="with --watch: stop after N (>= 1) refreshes"
    )
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "namespaces",
        help="every fleetcache namespace on the server, with size, hit rate and $ saved",
        description="List every fleetcache namespace on the server (each primary of a "
        "cluster), found by its layout record with a bounded SCAN (read-only), with shards, "
        "cap, live entries, hit rate, saved rate, $ saved and time saved, and a total row.",
    )
    p.add_argument(
        "--url",
        default=None,
        help="Redis/Valkey URL (default: $REDIS_URL, else redis://localhost:6379/0)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_namespaces)

    p = sub.add_parser("clear", help="delete every entry of the namespace, reset its counters")
    _common(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_clear)

    p = sub.add_parser("reconcile", help="drop index members whose entry vanished")
    _common(p)
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("reset-stats", help="zero the fleet counters (entries stay)")
    _common(p)
    p.set_defaults(func=cmd_reset_stats)

    p = sub.add_parser(
        "metrics", help="serve the namespace's fleet-wide counters to Prometheus over HTTP"
    )
    _common(p)
    p.add_argument("--port", type=int, default=9108, help="TCP port (default: 9108)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.set_defaults(func=cmd_metrics)

    from . import _acl

    _acl.add_parser(sub)

    from .demo.args import add_demo_arguments  # the options only: no workers, no charting

    p = sub.add_parser(
        "demo",
        help="a fleet of worker processes sharing one cache in front of a simulated LLM",
        description="W worker processes send Zipf-distributed prompts to a simulated LLM "
        "through one shared fleetcache, with live fleet-wide numbers, a summary and a chart.",
    )
    add_demo_arguments(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad arguments (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "url", "unset") is None:
        args.url = default_url()
    out, err = sys.stdout, sys.stderr
    for stream in (out, err):  # a terminal that cannot show a character gets an escape
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")

    return run_command(lambda: int(args.func(args, out, err)), err)
