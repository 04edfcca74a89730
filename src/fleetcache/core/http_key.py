"""An HTTP request -> the key of the caching transport: *what is sent and to whom*. Pure.

The key material is an unambiguous (length-prefixed) encoding of, in order:

1. the method (upper case);
2. the scheme and host (lower case) and the port (the scheme's default when the URL has
   none: ``https://h`` and ``https://h:443`` are one key);
3. the path exactly as sent (Azure's deployment, Gemini's model, any gateway prefix);
4. the query exactly as sent, in order, minus the credential parameters
   (:func:`is_credential_param`: e.g. Google's ``key=``), so Azure's ``api-version`` is keyed;
5. every request header except :data:`IGNORED_HEADERS` and those starting with one of
   :data:`IGNORED_HEADER_PREFIXES` (credentials, the client's identity and telemetry,
   trace context, request ids, transport framing), sorted by lower-case name, values in the
   order sent. ``content-type`` is left out only when it is ``application/json`` (any
   parameters): another media type changes how the body is read, so it is keyed. **Unknown
   headers are keyed**: a routing header nobody listed (a gateway's ``x-portkey-provider``,
   ``anthropic-beta``) costs a miss, never a wrong answer. ``ignore_headers`` adds names to
   leave out, ``key_headers`` forces names in (it wins over both lists);
6. the body: a JSON object is its RFC 8785 canonical form (:func:`fleetcache.core.canonical.
   canonical_json`) without the endpoint's ignored top-level fields (and, for Anthropic,
   the ``cache_control`` markers of its message, content, system and tool blocks); any
   other body is its raw bytes (tagged, so the
   two can never coincide).

The digest is BLAKE2b-128 of that material with the personalisation ``b"fleetcache-http1"``:
a key domain of its own, independent of the five-field path (``b"fleetcache-req1"``) and
of the whole-request path (``b"fleetcache-jcs1"``). No credential is ever part of it
(DESIGN rule 11): the header and query lists above are applied before anything is encoded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from .canonical import canonical_json

__all__ = [
    "IGNORED_HEADERS",
    "IGNORED_HEADER_PREFIXES",
    "HttpKeyRules",
    "is_credential_param",
    "key_headers",
    "key_body",
    "key_head",
    "key_material",
    "http_digest",
    "strip_nested",
]

_PERSON = b"fleetcache-http1"

#: Request headers never keyed: credentials, the client's identity and telemetry, trace
#: context, per-request ids, transport framing, and the transport's own controls.
IGNORED_HEADERS: frozenset[str] = frozenset(
    {
        # credentials (never keyed, never stored: DESIGN rule 11)
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "anthropic-api-key",
        "cookie",
        "x-amz-security-token",
        "x-amz-date",
        "x-amz-content-sha256",
        # the client's identity and telemetry
        "user-agent",
        "x-goog-api-client",
        # idempotency keys, request ids, trace context
        "idempotency-key",
        "x-request-id",
        "request-id",
        "x-client-request-id",
        "traceparent",
        "tracestate",
        "baggage",
        # transport framing (httpx sets them from the URL and body)
        "content-length",
        "accept-encoding",
        "accept",
        "connection",
        "keep-alive",
        "host",
        "te",
        "transfer-encoding",
        "expect",
    }
)

#: Header-name prefixes never keyed: the Stainless SDKs' telemetry (``x-stainless-os``,
#: ``x-stainless-retry-count``, ``x-stainless-timeout``...) and the transport's controls.
IGNORED_HEADER_PREFIXES: tuple[str, ...] = ("x-stainless-", "x-fleetcache-")

_CREDENTIAL_PARAM = re.compile(
    r"^(?:key|sig|signature|token|access[_-]?token|api[_-]?key|apikey|auth|password|secret|"
    r"code|x-goog-api-key|.*[_-](?:key|token|signature|secret|password|credential))$"
)


def is_credential_param(name: str) -> bool:
    """Whether a query parameter is a credential, left out of the key: ``key`` (Google),
    ``sig``, ``signature``, ``token``, ``access_token``, ``api_key``/``api-key``/``apikey``,
    ``auth``, ``password``, ``secret``, ``code``, and any name ending in ``_key``/``-key``,
    ``_token``, ``_signature``, ``_secret``, ``_password``, ``_credential`` (either
    separator; e.g. ``X-Amz-Signature``, ``X-Amz-Credential``). Case-insensitive."""
    return _CREDENTIAL_PARAM.match(name.lower()) is not None


class HttpKeyRules:
    """The header adjustments of one transport: ``ignore_headers`` (names left out on top of
    the default list) and ``key_headers`` (names always keyed, even if a list says
    otherwise). Names are compared in lower case."""

    __slots__ = ("_memo", "ignore", "keep")

    def __init__(
        self, ignore_headers: Collection[str] = (), key_headers: Collection[str] = ()
    ) -> None:
        for what, names in (("ignore_headers", ignore_headers), ("key_headers", key_headers)):
            if isinstance(names, (str, bytes)) or not all(isinstance(n, str) for n in names):
                raise TypeError(f"{what} must be a collection of header names (str)")
        self.ignore = frozenset(n.lower() for n in ignore_headers)
        self.keep = frozenset(n.lower() for n in key_headers)
        self._memo: dict[str, bool] = {}

    def keyed(self, name: str) -> bool:
        """Whether a (lower-case) header name is part of the key (memoised for the first
        1,000 names seen: a request sends the same few names again and again)."""
        found = self._memo.get(name)
        if found is not None:
            return found
        if name in self.keep:
            found = True
        elif name in IGNORED_HEADERS or name in self.ignore:
            found = False
        else:
            found = not name.startswith(IGNORED_HEADER_PREFIXES)
        if len(self._memo) < 1000:
            self._memo[name] = found  # a racing thread writes the same value: harmless
        return found


DEFAULT_RULES = HttpKeyRules()
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_json_type(value: str) -> bool:
    return value.split(";", 1)[0].strip().lower() == "application/json"


def _name(item: tuple[str, str]) -> str:
    return item[0]


def key_headers(
    headers: Iterable[tuple[str, str]], rules: HttpKeyRules = DEFAULT_RULES
) -> list[tuple[str, str]]:
    """The keyed headers, as ``(lower-case name, value)`` sorted by name (values of one
    name keep the order they were sent in)."""
    out: list[tuple[str, str]] = []
    keyed = rules.keyed
    for raw_name, value in headers:
        name = raw_name.lower()
        if not keyed(name):
            continue
        if name == "content-type" and name not in rules.keep and _is_json_type(value):
            continue
        out.append((name, value))
    out.sort(key=_name)  # stable: one name's values stay in order
    return out


def _query_pieces(query: str) -> list[str]:
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = unquote_plus(piece.split("=", 1)[0])
        if not is_credential_param(name):
            kept.append(piece)
    return kept


def _drop(item: Any, names: frozenset[str]) -> Any:
    if isinstance(item, dict) and not names.isdisjoint(item):
        return {k: v for k, v in item.items() if k not in names}
    return item


def strip_nested(body: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """``body`` without the members ``names`` in its blocks (copied where something is
    removed): the items of ``system`` and ``tools``, each message of ``messages`` and each
    block of a message's ``content`` list; nowhere else (a tool's JSON schema may have a
    property of that name, which must stay keyed)."""
    out = dict(body)
    for field in ("system", "tools"):
        value = out.get(field)
        if isinstance(value, list):
            out[field] = [_drop(item, names) for item in value]
    messages = out.get("messages")
    if isinstance(messages, list):
        kept = []
        for item in messages:
            msg = _drop(item, names)
            if isinstance(msg, dict) and isinstance(msg.get("content"), list):
                msg = {**msg, "content": [_drop(b, names) for b in msg["content"]]}
            kept.append(msg)
        out["messages"] = kept
    return out


def _field(out: bytearray, data: bytes) -> None:
    out += len(data).to_bytes(8, "big")
    out += data


def key_material(
    method: str,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    body_json: Mapping[str, Any] | None = None,
    ignore_fields: Collection[str] = (),
    nested_ignore: frozenset[str] = frozenset(),
    rules: HttpKeyRules = DEFAULT_RULES,
) -> bytes:
    """The bytes the digest is taken of (see the module docstring):
    ``key_head(...) + key_body(...)``.

    ``query``: the raw query string without ``?``; ``body``: the raw body bytes;
    ``body_json``: the body already parsed (when the caller has it: it must be what ``body``
    holds), else ``body`` is parsed here when it is a JSON object; ``ignore_fields``:
    top-level body fields left out; ``nested_ignore``: member names left out at any depth.
    """
    head = key_head(method, scheme, host, port, path, query, headers, rules)
    return head + key_body(body, body_json, ignore_fields, nested_ignore)


def key_head(
    method: str,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    rules: HttpKeyRules = DEFAULT_RULES,
) -> bytes:
    """The part of :func:`key_material` before the body: method, scheme, host, port, path,
    query pieces and keyed headers (computed once for many bodies to the same place)."""
    scheme = scheme.lower()
    out = bytearray(b"http1")
    _field(out, method.upper().encode())
    _field(out, scheme.encode())
    _field(out, host.lower().encode("utf-8", "surrogatepass"))
    _field(out, str(port if port is not None else _DEFAULT_PORTS.get(scheme, 0)).encode())
    _field(out, path.encode("utf-8", "surrogatepass"))
    pieces = _query_pieces(query)
    _field(out, len(pieces).to_bytes(8, "big"))
    for piece in pieces:
        _field(out, piece.encode("utf-8", "surrogatepass"))
    kept = key_headers(headers, rules)
    _field(out, len(kept).to_bytes(8, "big"))
    for name, value in kept:
        _field(out, name.encode("latin-1", "replace"))
        _field(out, value.encode("utf-8", "surrogatepass"))
    return bytes(out)


def key_body(
    body: bytes,
    body_json: Mapping[str, Any] | None = None,
    ignore_fields: Collection[str] = (),
    nested_ignore: frozenset[str] = frozenset(),
) -> bytes:
    """The body part of :func:`key_material` (same arguments)."""
    out = bytearray()
    data = body_json
    if data is None and body[:1] in (b"{", b" ", b"\n", b"\t", b"\r"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        data = parsed if isinstance(parsed, dict) else None
    if data is not None:
        if nested_ignore:
            data = strip_nested(data, nested_ignore)
        out += b"J"
        _field(out, canonical_json(data, ignore=frozenset(ignore_fields)))
    else:
        out += b"R"
        _field(out, body)
    return bytes(out)


def http_digest(material: bytes) -> str:
    """The 32-hex-character digest of :func:`key_material` (BLAKE2b-128, personalisation
    ``b"fleetcache-http1"``)."""
    return hashlib.blake2b(material, digest_size=16, person=_PERSON).hexdigest()
