"""Response <-> envelope bytes. Pure: no I/O.

Envelope layout (8-byte fixed header, then the body)::

    offset 0  2 bytes  magic b"FC"
    offset 2  1 byte   format version (1)
    offset 3  1 byte   flags: bit 0 = body is zlib-compressed; bit 1 = a 16-byte MAC
                       follows the body (signed entries, see ``_signing``); other bits 0
    offset 4  4 bytes  token count, unsigned big-endian (read by the Lua get script)
    offset 8  ...      body: msgpack map of the response's fields (non-default ones only)
    (end-16)  16 bytes MAC, only with flag bit 1 (checked by a cache with a signing key
                       before ``decode``; a cache without one skips it)

An unknown version or flag, a body that fails to decompress, unpack or validate is a
``CorruptEntry``; the cache turns that into a miss and drops the entry.
"""

from __future__ import annotations

import logging
import struct
import zlib
from typing import Any

import msgpack
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

MAGIC = b"FC"
VERSION = 1
#: The leading bytes the Lua get script accepts (magic + version).
ACCEPT_PREFIX = MAGIC + bytes([VERSION])
FLAG_ZLIB = 0x01
#: A MAC of ``MAC_SIZE`` bytes follows the body (``_signing``).
FLAG_MAC = 0x02
MAC_SIZE = 16
_KNOWN_FLAGS = FLAG_ZLIB | FLAG_MAC
HEADER = struct.Struct(">2sBBI")
HEADER_SIZE = HEADER.size
MAX_TOKENS_FIELD = 0xFFFFFFFF

log = logging.getLogger("fleetcache")


def _pack(data: dict[str, Any]) -> bytes:
    # surrogatepass: a lone surrogate in a str (legal in Python) round-trips, not raises.
    return msgpack.packb(data, use_bin_type=True, unicode_errors="surrogatepass")  # type: ignore[no-any-return]


class CorruptEntry(Exception):
    """The bytes are not a valid envelope for the response model."""


def tokens_of(response: BaseModel) -> int:
    """Tokens a hit on this response saves: ``usage["total_tokens"]``, else
    ``prompt_tokens + completion_tokens``, else 0 (clamped to 0..2**32-1)."""
    usage = getattr(response, "usage", None)
    if not isinstance(usage, dict):
        return 0
    total = usage.get("total_tokens")
    if not isinstance(total, int) or isinstance(total, bool):
        p = usage.get("prompt_tokens", 0)
        c = usage.get("completion_tokens", 0)
        p = p if isinstance(p, int) and not isinstance(p, bool) else 0
        c = c if isinstance(c, int) and not isinstance(c, bool) else 0
        total = p + c
    return max(0, min(int(total), MAX_TOKENS_FIELD))


class Codec:
    """Encode responses to envelopes and decode them back into ``response_model``.

    ``compress_threshold``: bodies of at least this many bytes are zlib-compressed (level 1)
    when that saves at least 1/8 of their size; ``None`` disables compression. Default
    4096 bytes.
    """

    __slots__ = ("_raw_warned", "_validate", "compress_threshold", "response_model")

    def __init__(
        self, response_model: type[BaseModel], compress_threshold: int | None = 4096
    ) -> None:
        if not (isinstance(response_model, type) and issubclass(response_model, BaseModel)):
            raise TypeError("response_model must be a pydantic v2 BaseModel subclass")
        if compress_threshold is not None and (
            isinstance(compress_threshold, bool)
            or not isinstance(compress_threshold, int)
            or compress_threshold < 0
        ):
            raise ValueError("compress_threshold must be None or an int >= 0 (bytes)")
        self.response_model = response_model
        self._validate = response_model.__pydantic_validator__.validate_python
        self.compress_threshold = compress_threshold
        self._raw_warned = False

    def _drop_raw(self, response: BaseModel) -> None:
        if not self._raw_warned:
            self._raw_warned = True
            log.warning(
                "fleetcache: dropped a 'raw' field that cannot be serialised (%s); "
                "the rest of the response is cached (logged once per cache)",
                type(getattr(response, "raw", None)).__name__,
            )

    def _fields(self, response: BaseModel) -> dict[str, Any]:
        try:
            data: dict[str, Any] = response.model_dump(mode="json", exclude_defaults=True)
        except (PydanticSerializationError, ValueError, TypeError):
            if "raw" not in type(response).model_fields:
                raise
            data = response.model_dump(mode="json", exclude_defaults=True, exclude={"raw"})
            self._drop_raw(response)
        return data

    def _pack(self, response: BaseModel, data: dict[str, Any]) -> bytes:
        """msgpack of the fields; a ``raw`` msgpack cannot hold (an int beyond 64 bits) is
        dropped like an unserialisable one; anything else unpackable is a ``ValueError``."""
        try:
            return bytes(_pack(data))
        except (OverflowError, ValueError, TypeError) as exc:
            if "raw" in data:
                data = {k: v for k, v in data.items() if k != "raw"}
                self._drop_raw(response)
                return self._pack(response, data)
            raise ValueError(f"the response cannot be stored: {exc}") from exc

    def encode(self, response: BaseModel) -> bytes:
        """Envelope bytes for a response. ``TypeError`` if it is not a pydantic model;
        ``ValueError`` if it does not validate as ``response_model``."""
        if not isinstance(response, BaseModel):
            raise TypeError(
                f"response must be a pydantic model instance, not {type(response).__name__}"
            )
        data = self._fields(response)
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
        flags = 0
        threshold = self.compress_threshold
        if threshold is not None and len(body) >= threshold:
            packed = zlib.compress(body, 1)
            if len(packed) <= len(body) - len(body) // 8:
                body = packed
                flags |= FLAG_ZLIB
        return HEADER.pack(MAGIC, VERSION, flags, tokens_of(response)) + body

    def decode(self, data: bytes) -> BaseModel:
        """The response in an envelope; ``CorruptEntry`` if it is not a valid one."""
        if len(data) < HEADER_SIZE or not data.startswith(ACCEPT_PREFIX):
            raise CorruptEntry(f"not a version-{VERSION} envelope: {bytes(data[:4])!r}")
        flags = data[3]
        if flags & ~_KNOWN_FLAGS:
            raise CorruptEntry(f"unknown envelope flags {flags:#x}")
        body = memoryview(data)[HEADER_SIZE:]
        if flags & FLAG_MAC:  # verified (or deliberately not) by the caller
            if len(body) < MAC_SIZE:
                raise CorruptEntry("signed envelope shorter than its MAC")
            body = body[:-MAC_SIZE]
        try:
            if flags & FLAG_ZLIB:
                body = memoryview(zlib.decompress(body))
            # msgpack >= 1.0 defaults: raw=False (str), strict_map_key=True
            fields = msgpack.unpackb(body, unicode_errors="surrogatepass")
            # a body that is not a map fails validation like any other bad body; the
            # model's own validator, called directly, is model_validate without its ~1 us
            # of argument handling
            return self._validate(fields)  # type: ignore[no-any-return]
        except Exception as exc:  # msgpack, zlib and pydantic raise assorted errors
            raise CorruptEntry(f"envelope body does not decode: {exc!r}") from exc


def header_tokens(data: bytes) -> int:
    """The token count in an envelope's header (0 if there is no valid header)."""
    if len(data) < HEADER_SIZE:
        return 0
    return int(HEADER.unpack_from(data)[3])
