"""Unit tests run the pure core with no server: a real sleep here is a bug (the scripted
driver answers ``Sleep`` steps by moving a fake clock), so both sleeps fail the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from fleetcache.core import flight

from ..support.script_driver import FakeClock


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> None:
        raise AssertionError("a unit test slept for real")

    monkeypatch.setattr(time, "sleep", refuse)
    monkeypatch.setattr(asyncio, "sleep", refuse)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """A fake ``time.monotonic`` for the single-flight core (``core.flight``)."""
    c = FakeClock()
    monkeypatch.setattr(flight, "time", SimpleNamespace(monotonic=c.monotonic))
    yield c
