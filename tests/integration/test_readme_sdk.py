"""The README's OpenAI and Anthropic quick starts run as written, against a real server, with
the SDK clients they construct swapped for the same classes on a fake transport (no network)
and the server URL / key prefix pointed at the test's own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ..support.sdk_fakes import Upstream

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

pytestmark = pytest.mark.backends("redis")

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_starts() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## OpenAI and Anthropic SDKs", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_a_quick_start_per_sdk() -> None:
    blocks = quick_starts()
    assert any("fleetcache.integrations.openai" in b for b in blocks)
    assert any("fleetcache.integrations.anthropic" in b for b in blocks)


@pytest.mark.parametrize("index", [0, 1])
def test_readme_quick_start_runs(
    index: int, backend: Any, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code = quick_starts()[index]
    kind = "openai" if "integrations.openai" in code else "anthropic"
    upstream = Upstream(kind)

    sync_client, async_client = upstream.client, upstream.async_client
    if kind == "openai":
        monkeypatch.setattr(openai, "OpenAI", _subclass(openai.OpenAI, sync_client))
        monkeypatch.setattr(openai, "AsyncOpenAI", _subclass(openai.AsyncOpenAI, async_client))
    else:
        monkeypatch.setattr(anthropic, "Anthropic", _subclass(anthropic.Anthropic, sync_client))
        monkeypatch.setattr(
            anthropic, "AsyncAnthropic", _subclass(anthropic.AsyncAnthropic, async_client)
        )
    code = code.replace("redis://localhost:6379/0", backend.url)
    code = code.replace('key_prefix="llm"', f'key_prefix="{prefix}"')
    exec(compile(code, f"README quick start {index}", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "Paris" in out or "Bonjour" in out
    assert upstream.calls >= 1
    if kind == "openai":
        assert "hit=False" in out
        # the streamed call was a hit (same request), and the no-cache call went upstream
        assert upstream.calls == 2
    else:
        assert "hit=False" in out and upstream.calls == 1  # the streamed call was a hit


def _subclass(base: type[Any], make: Any) -> type[Any]:
    """``base`` whose constructor builds its client on the fake transport."""
    template = make()

    class Fake(base):  # type: ignore[misc]
        def __init__(self, **kw: Any) -> None:
            kw.setdefault("api_key", "sk-fake")
            kw.setdefault("http_client", template._client)
            kw.setdefault("max_retries", 0)
            super().__init__(**kw)

    Fake.__name__ = base.__name__
    return Fake


def whole_request_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Any LLM call: the whole-request path", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks[0]


def test_readme_whole_request_example_has_one_type_on_hits_and_misses(
    backend: Any, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    upstream = Upstream("openai")
    monkeypatch.setattr(openai, "OpenAI", _subclass(openai.OpenAI, upstream.client))
    code = whole_request_example()
    assert "get_or_compute_request" in code
    code = code.replace("redis://localhost:6379/0", backend.url)
    code = code.replace('key_prefix="myapp:llm"', f'key_prefix="{prefix}"')
    scope: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, "README whole-request example", "exec"), scope)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ChatCompletion", "False"],
        ["ChatCompletion", "True"],
    ]
    assert upstream.calls == 1  # the second call was a hit
    assert type(scope["hit"]).__name__ == "ChatCompletion"
