"""Response <-> envelope bytes. Pure: no I/O.

Envelope layout, version 2 (34-byte fixed header, then the body; every number unsigned
big-endian)::

    offset 0  2 bytes  magic b"FC"
    offset 2  1 byte   format version (2; version 1 is still read, see below)
    offset 3  1 byte   flags: bit 0 = body is zlib-compressed; bit 1 = a 16-byte MAC
                       follows the body (signed entries, see ``signing``); other bits 0
    offset 4  4 bytes  total tokens (tokens_saved)          -- the Lua get scripts read
    offset 8  4 bytes  input tokens (uncached)                 bytes 4..33 and add them
    offset 12 4 bytes  output tokens (reasoning included)      on every hit, fleet-wide
    offset 16 4 bytes  cache-read input tokens                 and per model
    offset 20 4 bytes  cache-write input tokens
    offset 24 4 bytes  upstream duration, ms (0 = not measured)
    offset 28 6 bytes  cost, integer nano-USD; 0xFFFFFFFFFFFF = unknown (no price or no
                       usage: its hits count unpriced_hits)
    offset 34 ...      body: msgpack map of the response's fields (non-default ones only)
    (end-16)  16 bytes MAC, only with flag bit 1 (checked by a cache with a signing key
                       before ``decode``; a cache without one skips it)

Version 1 (written before the money counters) has an 8-byte header: magic, version 1,
flags, total tokens, then the body. It is still served; a hit on it counts its tokens and
one ``unpriced_hits`` (its cost is unknown). Token counts are clamped to 0..2**32-1, the
duration to 2**32-1 ms, the cost to 2**48-2 nano-USD (about $281,000 an answer).

An unknown version or flag, a body that fails to decompress (or inflates beyond the
cache's ``max_entry_bytes``) or to unpack is a ``CorruptEntry``: the cache turns that into
a miss and drops the entry. A body that unpacks but does not validate as this process's
``response_model`` is a ``RejectedEntry`` (a subclass): a miss too, but the entry is kept,
since another process (another model class, mid-rollout) may read it.

Integers beyond 64 bits (msgpack's range) are stored as msgpack extension type 1: the
integer's two's-complement big-endian bytes, decoded back exactly.

The request path (``get_request``..., the HTTP transport) stores the same header with flag
bit 2 (``FLAG_JSON``) set, whose body is the msgpack array ``[put_time_ms, response]``
(``encode_entry``/``decode_entry``/``hit_of``, at the end of this module):

- ``put_time_ms``: the writer's wall clock (``time.time()``, integer ms) when it stored the
  entry; only :class:`~fleetcache.CacheInfo`'s ``age_seconds`` uses it. Expiry never
  depends on it: TTLs are the server's clock, set inside the put script.
- ``response``: the JSON-compatible response data (a map).

The five-field decoder refuses the ``FLAG_JSON`` bit as an unknown flag, and the
request-path decoder refuses envelopes without it: neither path ever reads the other's body
as its own.
"""

from __future__ import annotations

import logging
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import msgpack
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from ..errors import EntryTooLargeError
from .info import CachedDict, CacheInfo
from .prices import Prices
from .usage import Usage, usage_of
from .validate import optional_byte_count

if TYPE_CHECKING:  # signing imports this module (MAC_SIZE)
    from .signing import Signer

MAGIC = b"FC"
#: The version this code writes.
VERSION = 2
#: The versions it reads.
VERSIONS = (1, 2)
#: The leading bytes of a version-1 envelope (kept for code and tests that write one).
ACCEPT_PREFIX = MAGIC + b"\x01"
FLAG_ZLIB = 0x01
#: A MAC of ``MAC_SIZE`` bytes follows the body (``signing``).
FLAG_MAC = 0x02
MAC_SIZE = 16
_KNOWN_FLAGS = FLAG_ZLIB | FLAG_MAC
#: The version-1 header: magic, version, flags, total tokens (8 bytes).
HEADER = struct.Struct(">2sBBI")
HEADER_V1 = HEADER
#: The version-2 header up to the cost: magic, version, flags, total, input, output,
#: cache read, cache write, upstream ms; the 6-byte cost follows (34 bytes in all).
HEADER_V2 = struct.Struct(">2sBBIIIIII")
HEADER_V2_SIZE = HEADER_V2.size + 6
HEADER_SIZE = HEADER.size
HEADER_SIZES = {1: HEADER.size, 2: HEADER_V2_SIZE}
MAX_TOKENS_FIELD = 0xFFFFFFFF
MAX_MS_FIELD = 0xFFFFFFFF
#: The cost field's "unknown" value; known costs are clamped below it.
COST_UNKNOWN = 0xFFFFFFFFFFFF

log = logging.getLogger("fleetcache")


#: msgpack extension type of an integer beyond 64 bits (signed big-endian bytes).
EXT_BIGINT = 1


def _big_int(obj: object) -> msgpack.ExtType:
    """msgpack's ``default`` hook: an int msgpack cannot hold natively -> extension type."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        size = (obj.bit_length() + 8) // 8  # room for the sign bit
        return msgpack.ExtType(EXT_BIGINT, obj.to_bytes(size, "big", signed=True))
    raise TypeError(f"cannot store a {type(obj).__name__} in an entry")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    raise ValueError(f"unknown msgpack extension type {code}")


def _pack(data: dict[str, Any]) -> bytes:
    # surrogatepass: a lone surrogate in a str (legal in Python) round-trips, not raises.
    return msgpack.packb(  # type: ignore[no-any-return]
        data, use_bin_type=True, unicode_errors="surrogatepass", default=_big_int
    )


class CorruptEntry(Exception):
    """The bytes are not a valid envelope for the response model."""


class RejectedEntry(CorruptEntry):
    """A well-formed envelope whose body does not validate as this ``response_model``
    (another process's model class may read it: the entry is kept)."""


class UnstorableResponse(ValueError):
    """A response whose fields cannot be serialised into an entry (a ``put`` skips it with
    ``on_error="miss"``, raises it with ``"raise"``)."""


def _u32(n: int) -> int:
    return max(0, min(int(n), MAX_TOKENS_FIELD))


class EntryMeta:
    """What a hit on an entry saves, written in its version-2 header: the answer's token
    ``usage`` (``None``: not reported), its ``cost_nanousd`` (integer nano-USD; ``None``:
    unknown) and the upstream's ``upstream_ms`` (integer ms; 0: not measured).

    The one object every writer (five-field, request path, HTTP transport) hands to the
    encoders; build it with :func:`entry_meta`.
    """

    __slots__ = ("cost_nanousd", "upstream_ms", "usage")

    def __init__(
        self, usage: Usage | None = None, cost_nanousd: int | None = None, upstream_ms: int = 0
    ) -> None:
        self.usage = usage
        self.cost_nanousd = cost_nanousd
        self.upstream_ms = upstream_ms

    def __repr__(self) -> str:
        return (
            f"EntryMeta(usage={self.usage!r}, cost_nanousd={self.cost_nanousd!r}, "
            f"upstream_ms={self.upstream_ms!r})"
        )

    def header(self, flags: int) -> bytes:
        """The version-2 header with ``flags``."""
        u = self.usage or Usage()
        cost = self.cost_nanousd
        cost_field = COST_UNKNOWN if cost is None else max(0, min(cost, COST_UNKNOWN - 1))
        ms = max(0, min(int(self.upstream_ms), MAX_MS_FIELD))
        return HEADER_V2.pack(
            MAGIC,
            VERSION,
            flags,
            _u32(u.total),
            _u32(u.input),
            _u32(u.output),
            _u32(u.cache_read),
            _u32(u.cache_write),
            ms,
        ) + cost_field.to_bytes(6, "big")


def entry_meta(
    data: Mapping[str, Any] | None,
    models: tuple[str, ...],
    prices: Prices | None,
    upstream_ms: int | None,
) -> EntryMeta:
    """The ``EntryMeta`` of an answer: its usage parsed from ``data`` (the response's JSON
    data, see :func:`~fleetcache.core.usage.usage_of`), priced for the first of ``models``
    that has a price, and ``upstream_ms`` (None: not measured)."""
    usage = usage_of(data) if data is not None else None
    cost = prices.cost_of(models, usage) if prices is not None else None
    return EntryMeta(usage, cost, upstream_ms or 0)


def tokens_of(response: BaseModel) -> int:
    """Total tokens a hit on this response saves (``usage`` parsed by ``usage_of``; 0
    without one), clamped to 0..2**32-1."""
    usage = getattr(response, "usage", None)
    if not isinstance(usage, Mapping):
        return 0
    got = usage_of({"usage": usage})
    return 0 if got is None else _u32(got.total)


def usage_data(response: BaseModel) -> dict[str, Any] | None:
    """The part of a five-field response that ``usage_of`` reads: ``{"usage": ...}``."""
    usage = getattr(response, "usage", None)
    return {"usage": usage} if isinstance(usage, Mapping) else None


class Codec:
    """Encode responses to envelopes and decode them back into ``response_model``.

    ``compress_threshold``: bodies of at least this many bytes are zlib-compressed (level 1)
    when that saves at least 1/8 of their size; ``None`` disables compression. Default
    4096 bytes. ``max_body_bytes`` [None: unbounded]: the largest body (uncompressed) that
    ``encode`` produces and ``decode`` inflates; a compressed body that would inflate beyond
    it is corrupt (decompression stops there: a zlib bomb costs at most this much memory).
    """

    __slots__ = (
        "_raw_warned",
        "_validate",
        "compress_threshold",
        "max_body_bytes",
        "response_model",
    )

    def __init__(
        self,
        response_model: type[BaseModel],
        compress_threshold: int | None = 4096,
        max_body_bytes: int | None = None,
    ) -> None:
        if not (isinstance(response_model, type) and issubclass(response_model, BaseModel)):
            raise TypeError("response_model must be a pydantic v2 BaseModel subclass")
        self.response_model = response_model
        self._validate = response_model.__pydantic_validator__.validate_python
        self.compress_threshold = optional_byte_count(compress_threshold, "compress_threshold")
        self.max_body_bytes = optional_byte_count(max_body_bytes, "max_body_bytes", minimum=1)
        self._raw_warned = False

    def _drop_raw(self, response: BaseModel, why: str = "cannot be serialised") -> None:
        if not self._raw_warned:
            self._raw_warned = True
            log.warning(
                "fleetcache: dropped a 'raw' field that %s (%s); the rest of the response "
                "is cached (logged once per cache)",
                why,
                type(getattr(response, "raw", None)).__name__,
            )

    def _fields(self, response: BaseModel, without_raw: bool) -> dict[str, Any]:
        """The response's non-default fields as JSON types (``raw`` left out if asked, or
        if it alone cannot be serialised); ``UnstorableResponse`` if the rest cannot be."""
        try:
            if without_raw:
                return self._dump(response, exclude={"raw"})
            try:
                return self._dump(response, exclude=None)
            except (PydanticSerializationError, ValueError, TypeError):
                if "raw" not in type(response).model_fields:
                    raise
                data = self._dump(response, exclude={"raw"})
                self._drop_raw(response)
                return data
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise UnstorableResponse(f"the response cannot be stored: {exc}") from exc

    @staticmethod
    def _dump(response: BaseModel, exclude: set[str] | None) -> dict[str, Any]:
        return response.model_dump(mode="json", exclude_defaults=True, exclude=exclude)

    def _pack(self, response: BaseModel, data: dict[str, Any]) -> bytes:
        """msgpack of the fields (big ints as an extension type); a ``raw`` that still
        cannot be packed is dropped like an unserialisable one; anything else is an
        ``UnstorableResponse``."""
        try:
            return bytes(_pack(data))
        except (OverflowError, ValueError, TypeError) as exc:
            if "raw" in data:
                data = {k: v for k, v in data.items() if k != "raw"}
                self._drop_raw(response)
                return self._pack(response, data)
            raise UnstorableResponse(f"the response cannot be stored: {exc}") from exc

    def has_raw(self, response: BaseModel) -> bool:
        """True if ``response`` carries a ``raw`` value that ``encode`` would store."""
        return getattr(response, "raw", None) is not None

    def encode(
        self, response: BaseModel, *, without_raw: bool = False, meta: EntryMeta | None = None
    ) -> bytes:
        """Envelope bytes for a response (``without_raw``: leave its ``raw`` field out);
        ``meta`` [None: the response's usage, unpriced, duration unknown] goes in the header.

        ``TypeError`` if it is not a pydantic model; ``ValueError`` if it does not validate
        as ``response_model``; ``UnstorableResponse`` (a ``ValueError``) if its fields
        cannot be serialised; ``EntryTooLargeError`` if its body exceeds
        ``max_body_bytes``."""
        if not isinstance(response, BaseModel):
            raise TypeError(
                f"response must be a pydantic model instance, not {type(response).__name__}"
            )
        data = self._fields(response, without_raw)
        if without_raw:
            self._drop_raw(response, "would make the entry larger than max_entry_bytes")
        if not isinstance(response, self.response_model):
            # Another model of the same shape: make sure it reads back as ours, and that no
            # field is lost on the way (pydantic ignores unknown fields when validating).
            unknown = sorted(set(data) - set(self.response_model.model_fields))
            if unknown and self.response_model.model_config.get("extra") != "allow":
                raise ValueError(
                    f"{type(response).__name__} has fields {unknown} that "
                    f"{self.response_model.__name__} does not; it was not stored"
                )
            self.response_model.model_validate(data)
        body = self._pack(response, data)
        if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
            raise EntryTooLargeError(
                f"response body is {len(body)} bytes, over max_entry_bytes="
                f"{self.max_body_bytes}; it was not stored"
            )
        flags = 0
        threshold = self.compress_threshold
        if threshold is not None and len(body) >= threshold:
            packed = zlib.compress(body, 1)
            if len(packed) <= len(body) - len(body) // 8:
                body = packed
                flags |= FLAG_ZLIB
        if meta is None:
            meta = EntryMeta(usage_of(usage_data(response) or {}))
        return meta.header(flags) + body

    def decode(self, data: bytes) -> BaseModel:
        """The response in an envelope; ``CorruptEntry`` if it is not a valid one."""
        size = header_size(data)
        flags = data[3]
        if flags & ~_KNOWN_FLAGS:
            raise CorruptEntry(f"unknown envelope flags {flags:#x}")
        body = memoryview(data)[size:]
        if flags & FLAG_MAC:  # verified (or deliberately not) by the caller
            if len(body) < MAC_SIZE:
                raise CorruptEntry("signed envelope shorter than its MAC")
            body = body[:-MAC_SIZE]
        try:
            if flags & FLAG_ZLIB:
                body = memoryview(self._inflate(body))
            # msgpack >= 1.0 defaults: raw=False (str), strict_map_key=True
            fields = msgpack.unpackb(body, unicode_errors="surrogatepass", ext_hook=_ext_hook)
        except CorruptEntry:
            raise
        except Exception as exc:  # msgpack and zlib raise assorted errors
            raise CorruptEntry(f"envelope body does not decode: {exc!r}") from exc
        if not isinstance(fields, dict):
            raise CorruptEntry(f"envelope body is a {type(fields).__name__}, not a map")
        try:
            # the model's own validator, called directly, is model_validate without its
            # ~1 us of argument handling
            return self._validate(fields)  # type: ignore[no-any-return]
        except Exception as exc:  # pydantic's ValidationError, or a validator's own error
            raise RejectedEntry(
                f"entry does not validate as {self.response_model.__name__}: {exc!r}"
            ) from exc

    def _inflate(self, body: memoryview) -> bytes:
        """zlib-decompress a body, at most ``max_body_bytes`` of output (a bomb stops
        there and is a ``CorruptEntry``); a truncated stream is corrupt too."""
        limit = self.max_body_bytes
        d = zlib.decompressobj()
        out = d.decompress(body, limit) if limit is not None else d.decompress(body)
        if d.unconsumed_tail:
            raise CorruptEntry(f"compressed body inflates beyond max_entry_bytes={limit}")
        if not d.eof or d.unused_data:
            raise CorruptEntry("compressed body is truncated or has trailing bytes")
        return out


def header_size(data: bytes) -> int:
    """The header size of an envelope of a version this code reads; ``CorruptEntry`` for
    anything else (wrong magic, unknown version, too short)."""
    size = HEADER_SIZES.get(data[2]) if len(data) >= 3 and data[:2] == MAGIC else None
    if size is None or len(data) < size:
        raise CorruptEntry(f"not a fleetcache envelope of versions 1-2: {bytes(data[:4])!r}")
    return size


def header_tokens(data: bytes) -> int:
    """The total token count in an envelope's header (0 if there is no valid header)."""
    if len(data) < HEADER_SIZE:
        return 0
    return int(HEADER.unpack_from(data)[3])


def header_meta(data: bytes) -> EntryMeta | None:
    """The ``EntryMeta`` in a version-2 header (``None`` for version 1 or no header)."""
    if len(data) < HEADER_V2_SIZE or data[:3] != MAGIC + bytes([2]):
        return None
    _m, _v, _f, _total, inp, out, read, write, ms = HEADER_V2.unpack_from(data)
    cost = int.from_bytes(data[HEADER_V2.size : HEADER_V2_SIZE], "big")
    usage = Usage(inp, out, read, write, _total if _total != inp + out + read + write else 0)
    return EntryMeta(usage, None if cost == COST_UNKNOWN else cost, ms)


# -- the request path's entries ---------------------------------------------------------------

#: Envelope flag bit: the body is a request-path record ``[put_time_ms, response]``.
FLAG_JSON = 0x04
_KNOWN_JSON = FLAG_JSON | FLAG_ZLIB | FLAG_MAC


class EntryWriter(Protocol):
    """What writing a request-path entry needs of a cache (``ops.Core`` is one)."""

    codec: Codec
    signer: Signer | None
    #: called with (digest, entry bytes) on every hit decoded (tracing); None: nothing
    on_hit: Callable[[str, bytes], None] | None

    def meta(self, data: Any, models: tuple[str, ...], upstream_ms_: object = None) -> EntryMeta:
        """What a hit on this answer saves (``Core.meta``)."""
        ...

    def seal(self, digest: str, payload: bytes) -> bytes:
        """``payload`` signed for ``digest`` (``Core.seal``)."""
        ...


def encode_entry(
    core: EntryWriter,
    data: dict[str, Any],
    put_ms: int,
    digest: str,
    meta: EntryMeta | None = None,
) -> bytes:
    """Envelope bytes of a request-path entry (signed for ``digest`` when the cache has a
    signing key); ``meta`` (``Core.meta``) is what its header records [None: the usage in
    ``data``, unpriced, duration unknown]. ``EntryTooLargeError`` over
    ``max_entry_bytes``, ``ValueError`` if msgpack cannot hold a value (an int beyond 64
    bits)."""
    try:
        body: bytes = msgpack.packb(
            [put_ms, data], use_bin_type=True, unicode_errors="surrogatepass", default=_big_int
        )
    except (OverflowError, ValueError, TypeError) as exc:
        raise UnstorableResponse(f"the response cannot be stored: {exc}") from exc
    flags = FLAG_JSON
    threshold = core.codec.compress_threshold
    if threshold is not None and len(body) >= threshold:
        packed = zlib.compress(body, 1)
        if len(packed) <= len(body) - len(body) // 8:
            body = packed
            flags |= FLAG_ZLIB
    if meta is None:
        meta = core.meta(data, ())
    payload = meta.header(flags) + body
    return core.seal(digest, payload)


def decode_entry(raw: bytes) -> tuple[dict[str, Any], int]:
    """``(response data, put_time_ms)`` of a request-path envelope; ``CorruptEntry`` if it
    is not one. A MAC (``FLAG_MAC``) is skipped here: ``hit_of`` checks it first when the
    cache has a signing key."""
    size = header_size(raw)
    flags = raw[3]
    if not flags & FLAG_JSON or flags & ~_KNOWN_JSON:
        raise CorruptEntry(f"not a request-path envelope (flags {flags:#x})")
    body: Any = memoryview(raw)[size:]
    if flags & FLAG_MAC:
        if len(body) < MAC_SIZE:
            raise CorruptEntry("envelope too short for its MAC")
        body = body[:-MAC_SIZE]
    try:
        if flags & FLAG_ZLIB:
            body = zlib.decompress(body)
        record = msgpack.unpackb(body, unicode_errors="surrogatepass", ext_hook=_ext_hook)
    except Exception as exc:  # msgpack and zlib raise assorted errors
        raise CorruptEntry(f"envelope body does not decode: {exc!r}") from exc
    if (
        type(record) is not list
        or len(record) != 2
        or type(record[0]) is not int
        or type(record[1]) is not dict
    ):
        raise CorruptEntry("envelope body is not [put_time_ms, response]")
    return record[1], record[0]


def now_ms() -> int:
    """This process's wall clock in integer ms (for ``age_seconds`` only)."""
    return int(time.time() * 1000)


def hit_of(core: EntryWriter, raw: bytes, digest: str) -> CachedDict:
    """The response of a hit, carrying its ``CacheInfo(hit=True, age_seconds, digest)``.
    With a signing key the MAC is checked first (``ForgedEntry``), before the body is
    parsed; then ``CorruptEntry`` if the body does not decode."""
    if core.signer is not None:
        core.signer.verify(digest, raw)
    data, put_ms = decode_entry(raw)
    out = CachedDict(data)
    out._fleetcache_info = CacheInfo(True, max(0, now_ms() - put_ms) / 1000, digest)
    if core.on_hit is not None:
        core.on_hit(digest, raw)
    return out
