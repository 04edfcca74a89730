"""Write the sync facade and store from their asyncio sources (the hishel/httpcore way).

    python scripts/unasync.py           # regenerate src/fleetcache/cache.py and _store.py
    python scripts/unasync.py --check   # exit 1 (and show a diff) if either is stale

The async files are the source. Their text is rewritten token by token (``async def`` ->
``def``, ``await x`` -> ``x``, ``asyncio.Lock`` -> ``threading.Lock``, the class names...),
then formatted with ``ruff format``. Where sync must differ, the source says so with a
line pragma, so the difference is named in one place instead of drifting:

    # sync-only: <code>     the line appears (uncommented, same indentation) in sync only
    <code>  # async-only    the line is dropped from sync
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "fleetcache"

#: (async source, generated sync file, what ``import asyncio`` becomes there)
PAIRS = (
    (PKG / "aio.py", PKG / "cache.py", "import threading"),
    (PKG / "_astore.py", PKG / "_store.py", "import threading\nimport time"),
)

#: Whole-word replacements, applied in order.
WORDS = (
    ("AsyncRedisExactCache", "RedisExactCache"),
    ("AsyncStore", "Store"),
    ("AsyncCacheBase", "CacheBase"),
    ("async_client_from_url", "sync_client_from_url"),
    ("_astore", "_store"),
    ("asyncio.Lock", "threading.Lock"),
    ("asyncio.Event", "threading.Event"),
    ("asyncio.sleep", "time.sleep"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("aclose", "close"),
    ("Awaitable[Any]", "Any"),
    ("Awaitable[None]", "None"),
    ("AsyncReplayStream", "ReplayStream"),
    ("AsyncRecordingStream", "RecordingStream"),
    ("AsyncCachedCreate", "CachedCreate"),
    ("AsyncStreamBase", "StreamBase"),
    ("AsyncStream", "Stream"),
    ("AsyncIterator", "Iterator"),
    ("__anext__", "__next__"),
    ("__aiter__", "__iter__"),
)
#: Plain-text replacements (docstrings, comments), applied to the whole source first, in
#: order. ``WORDS`` then apply to their result, except inside « »: a name written
#: ``«Async»RedisExactCache`` stays ``AsyncRedisExactCache`` (the guillemets are removed).
PHRASES = (
    (
        """``AsyncRedisExactCache``: the fleet-wide exact-match cache for asyncio.

This file is the source of the sync facade too: ``cache.py`` (``RedisExactCache``) is
generated from it by ``scripts/unasync.py`` (edit here, then run it).""",
        """``RedisExactCache``: the fleet-wide exact-match cache (sync).

Generated from ``aio.py`` (``«Async»RedisExactCache``, the source) by ``scripts/unasync.py``.""",
    ),
    (
        """This file is the source: ``_store.py`` (the sync ``Store``) is generated from it by
``scripts/unasync.py``; edit here, then run ``python scripts/unasync.py``.""",
        """Generated from ``«_a»store.py`` (``«Async»Store``, the source) by
``scripts/unasync.py``.""",
    ),
    (", for asyncio.\n", ".\n"),
    (
        "an async callable (``async def compute() -> response``)",
        "a callable (``compute() -> response``)",
    ),
    ("``redis.asyncio.Redis`` (or async ``RedisCluster``", "``redis.Redis`` (or ``RedisCluster``"),
    ("import Awaitable, ", "import "),
    ("(awaited in asyncio)", ""),
    (
        "``stats()`` and ``size()`` are coroutines here (``len()`` cannot await); use\n"
        "    ``async with`` or ``await aclose()``. The sync twin is ``RedisExactCache``.",
        "``stats`` is a property and ``len(cache)`` the live size; use ``with`` or\n"
        "    ``close()``. The asyncio twin is ``«Async»RedisExactCache``.",
    ),
    (
        """One cached SDK endpoint for asyncio: the ``create`` wrapper and its two stream objects.

This file is the source: ``_endpoint.py`` (the sync ``CachedCreate``, ``ReplayStream``,
``RecordingStream``) is generated from it by ``scripts/unasync.py``; edit here, then run
``python scripts/unasync.py``.""",
        """One cached SDK endpoint (sync): the ``create`` wrapper and its two stream objects.

Generated from ``«_a»endpoint.py`` (the asyncio source) by ``scripts/unasync.py``.""",
    ),
    ("``__anext__``, ", "``next()``, "),
    ("through an ``AsyncRedisExactCache``", "through a ``RedisExactCache``"),
)
_SYNC_ONLY = re.compile(r"^(?P<indent>[ \t]*)# sync-only: ?(?P<code>.*)$")
_ASYNC_ONLY = re.compile(r"[ \t]*# async-only[ \t]*$")


def _word(old: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(old)}(?!\w)")


def _unasync_line(line: str, words: tuple[tuple[str, str], ...]) -> str:
    line = re.sub(r"\basync (def|with|for) ", r"\1 ", line)
    line = re.sub(r"\bawait ", "", line)
    for old, new in words:
        line = _word(old).sub(new, line)
    return line


def unasync_text(source: str, name: str, import_asyncio: str = "import threading") -> str:
    """The sync version of one async source file (before formatting); ``import asyncio``
    becomes ``import_asyncio``."""
    for old, new in PHRASES:
        source = source.replace(old, new)
    words = (*WORDS, ("import asyncio", import_asyncio))
    out: list[str] = []
    for line in source.splitlines():
        m = _SYNC_ONLY.match(line)
        if m:
            out.append(m["indent"] + m["code"] if m["code"] else "")
        elif not _ASYNC_ONLY.search(line):
            out.append(_unasync_line(line, words))
    text = "\n".join(out).replace("«", "").replace("»", "")
    banner = f"# Generated from {name} by scripts/unasync.py: do not edit, edit {name}.\n"
    return banner + text + "\n"


def _ruff(args: list[str], text: str, path: Path) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    cmd = [str(ruff) if ruff.exists() else "ruff", *args, "--stdin-filename", str(path), "-"]
    done = subprocess.run(cmd, input=text, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"ruff {args[0]} failed on generated {path.name}:\n{done.stderr}")
    return done.stdout


def _ruff_format(text: str, path: Path) -> str:
    """Imports sorted (renamed modules move) and formatted, as ``make lint`` wants them."""
    text = _ruff(["check", "--select", "I", "--fix", "--quiet"], text, path)
    return _ruff(["format", "--quiet"], text, path)


def generate(src: Path, dst: Path, import_asyncio: str) -> str:
    """The formatted sync file generated from ``src``."""
    text = unasync_text(src.read_text(encoding="utf-8"), src.name, import_asyncio)
    return _ruff_format(text, dst)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = p.parse_args(argv)
    stale = 0
    for src, dst, import_asyncio in PAIRS:
        want = generate(src, dst, import_asyncio)
        have = dst.read_text(encoding="utf-8") if dst.exists() else ""
        if want == have:
            continue
        if args.check:
            stale += 1
            rel = dst.relative_to(ROOT)
            sys.stdout.writelines(
                difflib.unified_diff(
                    have.splitlines(True),
                    want.splitlines(True),
                    f"{rel} (on disk)",
                    f"{rel} (generated)",
                )
            )
        else:
            dst.write_text(want, encoding="utf-8")
            print(f"wrote {dst.relative_to(ROOT)}")
    if stale:
        print(f"\n{stale} generated file(s) stale: run python scripts/unasync.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
