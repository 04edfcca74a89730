"""The caching transport's key: what is sent and to whom, without credentials."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from fleetcache.core.canonical import request_digest
from fleetcache.core.http_key import (
    HttpKeyRules,
    http_digest,
    is_credential_param,
    key_material,
)
from fleetcache.core.keys import digest_of

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
SECRET = "sk-SECRET-123456"


def material(
    url: str,
    headers: dict[str, str] | None = None,
    body: Any = BODY,
    *,
    method: str = "POST",
    rules: HttpKeyRules | None = None,
    ignore: tuple[str, ...] = ("stream", "user"),
    nested: frozenset[str] = frozenset(),
) -> bytes:
    u = urlsplit(url)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    kwargs: dict[str, Any] = {"ignore_fields": ignore, "nested_ignore": nested}
    if rules is not None:
        kwargs["rules"] = rules
    return key_material(
        method,
        u.scheme,
        u.hostname or "",
        u.port,
        u.path,
        u.query,
        list((headers or {}).items()),
        raw,
        **kwargs,
    )


def digest(url: str, headers: dict[str, str] | None = None, body: Any = BODY, **kw: Any) -> str:
    return http_digest(material(url, headers, body, **kw))


OPENAI = "https://api.openai.com/v1/chat/completions"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # two OpenAI-compatible servers, or OpenAI vs a gateway
        ("http://vllm-a:8000/v1/chat/completions", "http://vllm-b:8000/v1/chat/completions"),
        (OPENAI, "https://gateway.example/v1/chat/completions"),
        ("http://h:8000/v1/chat/completions", "http://h:8001/v1/chat/completions"),
        ("http://h/v1/chat/completions", "https://h/v1/chat/completions"),
        # Azure: deployment, resource, api-version; Azure vs OpenAI
        (
            "https://r.openai.azure.com/openai/deployments/X/chat/completions?api-version=2024-06-01",
            "https://r.openai.azure.com/openai/deployments/Y/chat/completions?api-version=2024-06-01",
        ),
        (
            "https://eastus.openai.azure.com/openai/deployments/X/chat/completions?api-version=1",
            "https://westeurope.openai.azure.com/openai/deployments/X/chat/completions?api-version=1",
        ),
        (
            "https://r.openai.azure.com/openai/deployments/X/chat/completions?api-version=1",
            "https://r.openai.azure.com/openai/deployments/X/chat/completions?api-version=2",
        ),
        (OPENAI, "https://r.openai.azure.com/openai/deployments/X/chat/completions?api-version=1"),
        # Anthropic base_url A vs B
        ("https://api.anthropic.com/v1/messages", "https://proxy.example/v1/messages"),
    ],
)
def test_where_the_request_goes_changes_the_digest(a: str, b: str) -> None:
    assert digest(a) != digest(b)


@pytest.mark.parametrize(
    ("ha", "hb"),
    [
        ({"x-portkey-provider": "openai"}, {"x-portkey-provider": "anthropic"}),
        ({"anthropic-beta": "interleaved-thinking-2025-05-14"}, {}),
        ({"x-some-unknown-routing": "1"}, {}),
        ({"content-type": "application/x-ndjson"}, {}),
        ({"anthropic-version": "2023-06-01"}, {"anthropic-version": "2024-01-01"}),
        ({"openai-organization": "org-a"}, {"openai-organization": "org-b"}),
    ],
)
def test_answer_changing_and_unknown_headers_are_keyed(
    ha: dict[str, str], hb: dict[str, str]
) -> None:
    assert digest(OPENAI, ha) != digest(OPENAI, hb)


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {SECRET}"},
        {"Authorization": f"Bearer {SECRET}"},
        {"x-api-key": SECRET},
        {"api-key": SECRET},
        {"x-goog-api-key": SECRET},
        {"proxy-authorization": SECRET},
        {"cookie": f"session={SECRET}"},
        {"user-agent": "OpenAI/Python 9.9"},
        {"x-stainless-retry-count": "2", "x-stainless-os": "Linux"},
        {"idempotency-key": "stainless-retry-1"},
        {"traceparent": "00-abc-def-01", "tracestate": "x=1", "baggage": "k=v"},
        {"x-request-id": "r1", "request-id": "r2"},
        {"content-length": "999", "accept-encoding": "gzip", "connection": "keep-alive"},
        {"accept": "application/json", "host": "api.openai.com"},
        {"content-type": "application/json"},
        {"content-type": "application/json; charset=utf-8"},
        {"x-fleetcache-control": "no-cache", "x-fleetcache-ttl": "5"},
    ],
)
def test_credentials_and_transport_headers_never_change_the_digest(
    headers: dict[str, str],
) -> None:
    assert digest(OPENAI, headers) == digest(OPENAI)
    assert SECRET.encode() not in material(OPENAI, headers)


def test_credential_query_parameters_are_not_keyed_nor_in_the_material() -> None:
    base = "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent"
    with_key = material(f"{base}?key={SECRET}")
    assert SECRET.encode() not in with_key
    assert http_digest(with_key) == digest(base)
    assert digest(f"{base}?alt=sse&key={SECRET}") == digest(f"{base}?alt=sse&key=other")
    assert digest(f"{base}?alt=sse") != digest(base)
    signed = f"{base}?X-Amz-Signature={SECRET}&X-Amz-Credential=c&access_token=t&sig=s"
    assert digest(signed) == digest(base)


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("key", True),
        ("KEY", True),
        ("api_key", True),
        ("api-key", True),
        ("apikey", True),
        ("access_token", True),
        ("X-Amz-Signature", True),
        ("client_secret", True),
        ("api-version", False),
        ("alt", False),
        ("model", False),
        ("monkey", False),
    ],
)
def test_credential_parameter_names(name: str, credential: bool) -> None:
    assert is_credential_param(name) is credential


def test_body_is_canonical_and_ignores_the_endpoint_fields() -> None:
    reordered = {"messages": BODY["messages"], "model": BODY["model"]}
    assert digest(OPENAI, body=reordered) == digest(OPENAI)
    spaced = json.dumps(BODY, indent=4).encode()
    assert digest(OPENAI, body=spaced) == digest(OPENAI)
    assert digest(OPENAI, body={**BODY, "stream": True, "user": "u1"}) == digest(OPENAI)
    assert digest(OPENAI, body={**BODY, "temperature": 0.5}) != digest(OPENAI)
    # ignore= replaces the list: nothing ignored keys "user"
    assert digest(OPENAI, body={**BODY, "user": "u1"}, ignore=()) != digest(OPENAI, ignore=())


def test_nested_cache_control_markers_are_ignored_when_asked() -> None:
    url = "https://api.anthropic.com/v1/messages"
    marked = {
        "model": "claude",
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    plain = {
        "model": "claude",
        "system": [{"type": "text", "text": "s"}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    nested = frozenset({"cache_control"})
    assert digest(url, body=marked, nested=nested) == digest(url, body=plain, nested=nested)
    assert digest(url, body=marked) != digest(url, body=plain)
    in_content = {
        "model": "claude",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
    }
    plain_content = {
        "model": "claude",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert digest(url, body=in_content, nested=nested) == digest(
        url, body=plain_content, nested=nested
    )
    # a tool schema property that happens to share the name stays keyed
    schema = {"type": "object", "properties": {"cache_control": {"type": "string"}}}
    tool_a = {"model": "claude", "tools": [{"name": "t", "input_schema": schema}]}
    tool_b = {"model": "claude", "tools": [{"name": "t", "input_schema": {"type": "object"}}]}
    assert digest(url, body=tool_a, nested=nested) != digest(url, body=tool_b, nested=nested)


def test_non_json_bodies_are_keyed_by_their_bytes_and_never_meet_json_ones() -> None:
    assert digest(OPENAI, body=b"abc") != digest(OPENAI, body=b"abd")
    assert digest(OPENAI, body=b"[1,2]") != digest(OPENAI, body=b"[1, 2]")
    assert digest(OPENAI, body=b"") != digest(OPENAI, body={})


def test_default_port_host_case_and_method() -> None:
    assert digest("https://API.openai.com:443/v1/chat/completions") == digest(OPENAI)
    assert digest(OPENAI, method="post") == digest(OPENAI)
    assert digest(OPENAI, method="PUT") != digest(OPENAI)
    assert digest("https://api.openai.com/V1/chat/completions") != digest(OPENAI)


def test_ignore_headers_and_key_headers_adjust_the_list() -> None:
    rules = HttpKeyRules(ignore_headers=["X-Portkey-Trace-Id"], key_headers=["User-Agent"])
    a = digest(OPENAI, {"x-portkey-trace-id": "1"}, rules=rules)
    b = digest(OPENAI, {"x-portkey-trace-id": "2"}, rules=rules)
    assert a == b
    assert digest(OPENAI, {"user-agent": "a"}, rules=rules) != digest(
        OPENAI, {"user-agent": "b"}, rules=rules
    )
    with pytest.raises(TypeError):
        HttpKeyRules(ignore_headers="x-a")


def test_header_values_of_one_name_keep_their_order_and_names_are_sorted() -> None:
    u = urlsplit(OPENAI)

    def d(headers: list[tuple[str, str]]) -> str:
        m = key_material("POST", u.scheme, u.hostname or "", u.port, u.path, "", headers, b"{}")
        return http_digest(m)

    assert d([("a", "1"), ("b", "2")]) == d([("b", "2"), ("A", "1")])
    assert d([("a", "1"), ("a", "2")]) != d([("a", "2"), ("a", "1")])
    assert d([("a", "1,2")]) != d([("a", "1"), ("a", "2")])


def test_the_http_key_domain_is_separate_from_the_other_two() -> None:
    m = material(OPENAI)
    assert (
        http_digest(m) != hashlib.blake2b(m, digest_size=16, person=b"fleetcache-jcs1").hexdigest()
    )
    assert (
        http_digest(m) != hashlib.blake2b(m, digest_size=16, person=b"fleetcache-req1").hexdigest()
    )
    assert http_digest(m) != request_digest(BODY)
    assert http_digest(m) != digest_of(("hi", "", "gpt-4o-mini", 0.0, 1))
