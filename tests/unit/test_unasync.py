"""The sync generator (``scripts/unasync.py``): ``--check`` fails on a stale generated file and
on a rule that matched nothing in any source (a dead rule hides a reworded source), and the
real sources leave no rule unused. Runs the generator's own check on tiny synthetic sources
in a temporary directory (ruff formats them, as in the real run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unasync = _load()

SOURCE = '''"""A tiny asyncio source."""

import asyncio


class AsyncThing:
    """Holds a lock."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        await asyncio.sleep(0)
'''
WORDS = (
    ("AsyncThing", "Thing"),
    ("asyncio.Lock", "threading.Lock"),
    ("asyncio.sleep", "time.sleep"),
)


def _pair(tmp_path: Path) -> tuple[tuple[Path, Path, str], ...]:
    src = tmp_path / "athing.py"
    src.write_text(SOURCE, encoding="utf-8")
    return ((src, tmp_path / "thing.py", "import threading\nimport time"),)


def test_generate_then_check_passes_when_every_rule_is_used(tmp_path: Path) -> None:
    pairs = _pair(tmp_path)
    assert unasync.run(pairs, check=True, phrases=(), words=WORDS) == 1  # not generated yet
    assert unasync.run(pairs, check=False, phrases=(), words=WORDS) == 0
    out = pairs[0][1].read_text(encoding="utf-8")
    assert "class Thing:" in out and "threading.Lock()" in out and "time.sleep(0)" in out
    assert "async def" not in out and "await" not in out
    assert unasync.run(pairs, check=True, phrases=(), words=WORDS) == 0


def test_check_fails_on_a_word_rule_that_matches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = _pair(tmp_path)
    dead = (*WORDS, ("AsyncNowhere", "Nowhere"))
    assert unasync.run(pairs, check=False, phrases=(), words=dead) == 0  # writing still works
    capsys.readouterr()
    assert unasync.run(pairs, check=True, phrases=(), words=dead) == 1  # the file is fresh
    err = capsys.readouterr().err
    assert "'AsyncNowhere' -> 'Nowhere'" in err and "matched nothing" in err
    assert unasync.run(pairs, check=True, phrases=(), words=WORDS) == 0


def test_check_fails_on_a_phrase_rule_that_matches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = _pair(tmp_path)
    phrases = (("A whole docstring that was reworded.", "Its sync wording."),)
    unasync.run(pairs, check=False, phrases=phrases, words=WORDS)
    assert unasync.run(pairs, check=True, phrases=phrases, words=WORDS) == 1
    assert "A whole docstring that was reworded." in capsys.readouterr().err


def test_check_fails_when_the_import_rule_of_a_pair_matches_nothing(tmp_path: Path) -> None:
    (src, dst, _imp), *_ = _pair(tmp_path)
    src.write_text(SOURCE.replace("import asyncio\n", ""), encoding="utf-8")
    pairs = ((src, dst, "import threading"),)
    unasync.run(pairs, check=False, phrases=(), words=WORDS[:1])
    assert unasync.run(pairs, check=True, phrases=(), words=WORDS[:1]) == 1
    assert unasync.run(((src, dst, None),), check=True, phrases=(), words=WORDS[:1]) == 0


def test_every_rule_of_the_real_tables_is_used_by_some_source() -> None:
    used: set[tuple[str, str]] = set()
    for src, _dst, import_asyncio in unasync.PAIRS:
        unasync.unasync_text(src.read_text(encoding="utf-8"), src.name, import_asyncio, used=used)
    assert [r for r in (*unasync.PHRASES, *unasync.WORDS) if r not in used] == []
