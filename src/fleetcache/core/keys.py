"""Request fields -> digest, and namespace/shard -> Redis key names. Pure: no I/O.

The digest is BLAKE2b-128 over an unambiguous encoding of the five typed, normalised request
fields: a fixed-width header holding the byte lengths (8 bytes each, big-endian) of the three
strings and of ``max_tokens``'s decimal form, and ``temperature`` as an IEEE-754 double
(``0``, ``0.0`` and ``-0.0`` are one value), followed by those bytes; strings are UTF-8 with
lone surrogates kept (``surrogatepass``). Two different requests therefore never share an
encoding.

Key layout of namespace ``P`` (the key prefix), shard ``s``::

    {P:s}:e:<digest>   entry (envelope bytes, with its TTL)
    {P:s}:i            index (sorted set: digest -> expiry ms, +inf without TTL)
    {P:s}:s            counters (hash)
    {P:s}:l:<digest>   single-flight lease
    {P}:meta           the namespace's recorded layout

Every key of one shard carries the hash tag ``{P:s}``, so each script's keys share a slot.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from typing import Any

KEY_VERSION = 1
_PERSON = b"fleetcache-req1"
_HEAD = struct.Struct(">QQQQd")
_HASHER = hashlib.blake2b(digest_size=16, person=_PERSON)
_MAX_SHARDS = 16384

RequestFields = tuple[str, str, str, float, int]


def _check_str(name: str, value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    raise TypeError(f"{name} must be str, not {type(value).__name__}")


def normalise_request(
    user_message: Any, system_prompt: Any, model: Any, temperature: Any, max_tokens: Any
) -> RequestFields:
    """Check the types of the five request fields and return them normalised.

    Raises ``TypeError`` for a wrong type (e.g. ``max_tokens="512"``, ``temperature=None``,
    a ``bool``) and ``ValueError`` for a NaN or infinite temperature.
    """
    if (
        type(user_message) is str
        and type(system_prompt) is str
        and type(model) is str
        and type(temperature) is float
        and type(max_tokens) is int
        and temperature - temperature == 0.0  # finite: inf - inf and nan - nan are nan
    ):  # the common case, checked in one go
        return user_message, system_prompt, model, temperature + 0.0, max_tokens
    um = _check_str("user_message", user_message)
    sp = _check_str("system_prompt", system_prompt)
    mo = _check_str("model", model)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be int or float, not {type(temperature).__name__}")
    try:
        temp = float(temperature)
    except OverflowError:
        raise ValueError("temperature is too large to be a float") from None
    if not math.isfinite(temp):
        raise ValueError(f"temperature must be finite, not {temp!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(f"max_tokens must be int, not {type(max_tokens).__name__}")
    return um, sp, mo, temp + 0.0, int(max_tokens)  # + 0.0 folds -0.0 into 0.0


def digest_of(fields: RequestFields) -> str:
    """Return the 32-hex-character digest of normalised request fields.

    Encoding: the byte lengths of the three strings and of ``str(max_tokens)`` and the
    temperature's IEEE-754 double, in a fixed-width header, then the bytes themselves.
    """
    um, sp, mo, temp, mt = fields
    a = um.encode("utf-8", "surrogatepass")
    b = sp.encode("utf-8", "surrogatepass")
    c = mo.encode("utf-8", "surrogatepass")
    d = str(mt).encode("ascii")
    h = _HASHER.copy()  # copying a keyed-up hasher is ~0.2 us cheaper than building one
    h.update(_HEAD.pack(len(a), len(b), len(c), len(d), temp) + a + b + c + d)
    return h.hexdigest()


def check_prefix(key_prefix: object) -> str:
    """Validate a namespace prefix: a non-empty ``str`` without ``{`` or ``}``."""
    if not isinstance(key_prefix, str):
        raise TypeError(f"key_prefix must be str, not {type(key_prefix).__name__}")
    if not key_prefix:
        raise ValueError("key_prefix must not be empty")
    if "{" in key_prefix or "}" in key_prefix:
        raise ValueError(
            f"key_prefix {key_prefix!r} must not contain '{{' or '}}': "
            "fleetcache wraps it in a Redis Cluster hash tag"
        )
    try:
        key_prefix.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"key_prefix must be encodable as UTF-8: {exc}") from None
    return key_prefix


def check_shards(shards: object) -> int:
    """Validate a shard count: an ``int`` from 1 to 16384."""
    if isinstance(shards, bool) or not isinstance(shards, int):
        raise TypeError(f"shards must be int, not {type(shards).__name__}")
    if not 1 <= shards <= _MAX_SHARDS:
        raise ValueError(f"shards must be between 1 and {_MAX_SHARDS}, not {shards}")
    return shards


class KeySpace:
    """Key names of one namespace (prefix) spread over ``shards`` hash-tagged shards."""

    __slots__ = ("_bases", "_index", "_stats", "layout", "meta", "prefix", "shards")

    def __init__(self, prefix: str, shards: int = 1) -> None:
        self.prefix = check_prefix(prefix)
        self.shards = check_shards(shards)
        self._bases: Sequence[str] = tuple(f"{{{prefix}:{s}}}:" for s in range(shards))
        self._index = tuple(b + "i" for b in self._bases)
        self._stats = tuple(b + "s" for b in self._bases)
        self.meta = f"{{{prefix}}}:meta"
        self.layout = f"fleetcache-{KEY_VERSION};shards={shards}"

    def shard_of(self, digest: str) -> int:
        """The shard of a digest: its first 8 hex digits modulo the shard count."""
        if self.shards == 1:
            return 0
        return int(digest[:8], 16) % self.shards

    def base(self, shard: int) -> str:
        """``{P:s}:``, the common start of every key of one shard."""
        return self._bases[shard]

    def entry(self, shard: int, digest: str) -> str:
        """Entry key of a digest in its shard."""
        return f"{self._bases[shard]}e:{digest}"

    def index(self, shard: int) -> str:
        """Index (sorted set) key of a shard."""
        return self._index[shard]

    def stats(self, shard: int) -> str:
        """Counters (hash) key of a shard."""
        return self._stats[shard]

    def entry_keys(self, shard: int, digest: str) -> tuple[str, str, str]:
        """``(entry, index, stats)``: the KEYS of every single-entry script."""
        return self._bases[shard] + "e:" + digest, self._index[shard], self._stats[shard]

    def lease(self, shard: int, digest: str) -> str:
        """Single-flight lease key of a digest in its shard."""
        return f"{self._bases[shard]}l:{digest}"


def model_arg(model: str) -> bytes:
    """A model name as a script argument: UTF-8 with lone surrogates kept (any ``str``
    works; redis-py's own strict encoding would raise on a lone surrogate)."""
    return model.encode("utf-8", "surrogatepass")


class RequestKey:
    """Where one request's entry lives: its ``digest``, ``shard`` and ``model`` (the
    per-model counters' name argument, UTF-8 bytes; ``b""``: no per-model counters).

    Every keyed path builds one: the five-field path from ``digest_of`` (``ops.key_of_fields``),
    the request path from its canonical JSON (``request_ops.request_key``), the HTTP
    transport from its own key domain (``http_key``); the ops and ``Flight`` take it."""

    __slots__ = ("digest", "model", "shard")

    def __init__(self, space: KeySpace, digest: str, model: str | None) -> None:
        self.digest = digest
        self.shard = space.shard_of(digest)
        self.model = model_arg(model) if model else b""

    def model_name(self) -> str:
        """The model name as given (``""``: none)."""
        return self.model.decode("utf-8", "surrogatepass")
