"""The README's SDK quick starts (the caching transport section) run as written, against a
real server, with the SDK clients they construct swapped for the same classes on a fake
upstream (no network: ``tests/support/http_fakes.py``) and the server URL / key prefix
pointed at the test's own. Each block's upstream is called less often than the block asks
(its repeated calls are hits)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from ..support.http_fakes import Upstream

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")

pytestmark = pytest.mark.backends("redis")

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_starts() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## LLM SDKs: a caching HTTP transport", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _with_http(cls: type, up: Upstream, is_async: bool) -> type:
    """``cls`` whose constructor gets an http client on the fake upstream."""

    def init(self: Any, *args: Any, **kw: Any) -> None:
        kw.setdefault("api_key", "sk-readme")
        if kw.get("http_client") is None:  # copies (with_options) keep theirs
            kw["http_client"] = (
                httpx2.AsyncClient(transport=up.mock(httpx2, is_async=True))
                if is_async
                else httpx2.Client(transport=up.mock(httpx2))
            )
        cls.__init__(self, *args, **kw)  # type: ignore[misc]

    return type(cls.__name__, (cls,), {"__init__": init})


def _genai_client(up: Upstream) -> type:
    base = genai.Client

    def init(self: Any, *args: Any, **kw: Any) -> None:
        kw["http_options"] = genai.types.HttpOptions(
            httpx_client=httpx2.Client(transport=up.mock(httpx2))
        )
        base.__init__(self, *args, **kw)

    return type("Client", (base,), {"__init__": init})


KINDS = ["openai", "azure", "anthropic", "google", "httpx", "instructor"]


def test_readme_has_a_quick_start_per_sdk() -> None:
    blocks = quick_starts()
    assert len(blocks) == len(KINDS)
    for block, marker in zip(
        blocks,
        [
            "integrations.openai",
            "AzureOpenAI",
            "integrations.anthropic",
            "integrations.google",
            "integrations.http",
            "instructor",
        ],
        strict=True,
    ):
        assert marker in block


@pytest.mark.parametrize("index", range(len(KINDS)))
def test_readme_quick_start_runs(
    index: int, backend: Any, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    kind = KINDS[index]
    if kind == "instructor":
        pytest.importorskip("instructor")  # instructor 1.17 pins openai < 3.4: see pyproject
    code = quick_starts()[index]
    up = Upstream()
    monkeypatch.setattr(openai, "OpenAI", _with_http(openai.OpenAI, up, False))
    monkeypatch.setattr(openai, "AzureOpenAI", _with_http(openai.AzureOpenAI, up, False))
    monkeypatch.setattr(anthropic, "AsyncAnthropic", _with_http(anthropic.AsyncAnthropic, up, True))
    monkeypatch.setattr(genai, "Client", _genai_client(up))
    monkeypatch.setattr(httpx, "HTTPTransport", lambda: up.mock(httpx))
    code = code.replace("redis://localhost:6379/0", backend.url)
    code = code.replace('key_prefix="llm"', f'key_prefix="{prefix}"')
    exec(compile(code, f"README quick start {kind}", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    expected_calls = {
        "openai": 2,  # the first call, then the no-cache refresh; the rest are hits
        "azure": 2,  # two upstreams, two entries
        "anthropic": 1,
        "google": 1,
        "httpx": 1,
    }
    if kind in expected_calls:
        assert up.calls == expected_calls[kind], out
    if kind == "openai":
        assert out.splitlines()[:2] == ["miss req_1 18", "hit req_1 18"]
    if kind == "azure":
        assert "eastus" in out and "localhost:8000" in out
    if kind == "anthropic":
        assert out.startswith("True req_1")
    if kind == "instructor":
        assert out.strip() == "Paris" and up.calls == 1
    if kind == "httpx":
        assert out.splitlines()[0].startswith("miss") and out.splitlines()[1].startswith("hit")


def whole_request_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Any LLM call: the whole-request path", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks[0]


def test_readme_whole_request_example_has_one_type_on_hits_and_misses(
    backend: Any, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    up = Upstream()
    monkeypatch.setattr(openai, "OpenAI", _with_http(openai.OpenAI, up, False))
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
    assert up.calls == 1  # the second call was a hit
    assert type(scope["hit"]).__name__ == "ChatCompletion"
