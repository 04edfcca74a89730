"""Write the sync facade and store from their asyncio sources (the hishel/httpcore way).

    python scripts/unasync.py           # regenerate src/fleetcache/cache.py and _store.py
    python scripts/unasync.py --check   # exit 1 (and show a diff) if one is stale, or
                                        # if a rule matched nothing in any source

The async files are the source. Their text is rewritten token by token (``async def`` ->
``def``, ``await x`` -> ``x``, ``asyncio.Lock`` -> ``threading.Lock``, the class names...),
then formatted with ``ruff format``. Docstrings and comments are written to hold for both
flavours: the rules rewrite tokens, never prose. Where sync must differ, the source says so
with a line pragma, so the difference is named in one place instead of drifting:

    # sync-only: <code>     the line appears (uncommented, same indentation) in sync only
    <code>  # async-only    the line is dropped from sync
"""

from __future__ import annotations

import argparse
import difflib
import functools
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "fleetcache"

#: (async source, generated sync file, what ``import asyncio`` becomes there: None when the
#: source has no such line)
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
)
#: Plain-text replacements applied to the whole source first, in order; ``WORDS`` then apply
#: to their result. Only code tokens belong here: prose is written to hold for both flavours.
PHRASES = (("import Awaitable, ", "import "),)
_SYNC_ONLY = re.compile(r"^(?P<indent>[ \t]*)# sync-only: ?(?P<code>.*)$")
_ASYNC_ONLY = re.compile(r"[ \t]*# async-only[ \t]*$")


Rule = tuple[str, str]


@functools.cache
def _word(old: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(old)}(?!\w)")


def _unasync_line(line: str, words: tuple[Rule, ...], used: set[Rule]) -> str:
    line = re.sub(r"\basync (def|with|for) ", r"\1 ", line)
    line = re.sub(r"\bawait ", "", line)
    for rule in words:
        line, n = _word(rule[0]).subn(rule[1], line)
        if n:
            used.add(rule)
    return line


def unasync_text(
    source: str,
    name: str,
    import_asyncio: str | None = "import threading",
    *,
    phrases: tuple[Rule, ...] = PHRASES,
    words: tuple[Rule, ...] = WORDS,
    used: set[Rule] | None = None,
) -> str:
    """The sync version of one async source file (before formatting).

    ``import asyncio`` becomes ``import_asyncio`` (``None``: the source has no such line).
    Every rule of ``phrases``/``words`` (and that import rule) that changed something is
    added to ``used``.
    """
    used = set() if used is None else used
    for rule in phrases:
        if rule[0] in source:
            used.add(rule)
            source = source.replace(*rule)
    if import_asyncio is not None:
        words = (*words, ("import asyncio", import_asyncio))
    out: list[str] = []
    for line in source.splitlines():
        m = _SYNC_ONLY.match(line)
        if m:
            out.append(m["indent"] + m["code"] if m["code"] else "")
        elif not _ASYNC_ONLY.search(line):
            out.append(_unasync_line(line, words, used))
    banner = f"# Generated from {name} by scripts/unasync.py: do not edit, edit {name}.\n"
    return banner + "\n".join(out) + "\n"


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


def generate(
    src: Path,
    dst: Path,
    import_asyncio: str | None,
    *,
    phrases: tuple[Rule, ...] = PHRASES,
    words: tuple[Rule, ...] = WORDS,
    used: set[Rule] | None = None,
) -> str:
    """The formatted sync file generated from ``src`` (rules that changed something go to
    ``used``)."""
    text = unasync_text(
        src.read_text(encoding="utf-8"),
        src.name,
        import_asyncio,
        phrases=phrases,
        words=words,
        used=used,
    )
    return _ruff_format(text, dst)


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def run(
    pairs: tuple[tuple[Path, Path, str | None], ...] = PAIRS,
    *,
    check: bool,
    phrases: tuple[Rule, ...] = PHRASES,
    words: tuple[Rule, ...] = WORDS,
) -> int:
    """Write each pair's generated file, or with ``check`` only compare: 1 if one is stale or
    a rule matched nothing in any source (a dead rule hides a change of wording), else 0."""
    stale = 0
    used: set[Rule] = set()
    unused: list[str] = []
    for src, dst, import_asyncio in pairs:
        pair_used: set[Rule] = set()
        want = generate(src, dst, import_asyncio, phrases=phrases, words=words, used=pair_used)
        used |= pair_used
        if import_asyncio is not None and ("import asyncio", import_asyncio) not in pair_used:
            unused.append(f"import asyncio -> {import_asyncio!r} (in {src.name})")
        have = dst.read_text(encoding="utf-8") if dst.exists() else ""
        if want == have:
            continue
        if check:
            stale += 1
            rel = _shown(dst)
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
            print(f"wrote {_shown(dst)}")
    unused += [f"{old!r} -> {new!r}" for old, new in (*phrases, *words) if (old, new) not in used]
    if unused:
        print("rules that matched nothing (remove them):", *unused, sep="\n  ", file=sys.stderr)
    if stale:
        print(f"\n{stale} generated file(s) stale: run python scripts/unasync.py", file=sys.stderr)
    return 1 if stale or (check and unused) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--check",
        action="store_true",
        help="fail if a generated file is stale or a rule matched nothing",
    )
    args = p.parse_args(argv)
    return run(check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
