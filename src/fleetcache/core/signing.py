"""Signed entries: a MAC binds each envelope to its namespace and request digest. Pure: no I/O.

With ``signing_key=`` a cache appends a 16-byte MAC to every envelope it writes and sets the
envelope's ``FLAG_MAC`` header bit; on a read it checks the MAC before anything else looks at
the body (no decompression, no msgpack, no validation of untrusted bytes)::

    envelope = header (8 bytes, flags has FLAG_MAC) | body | mac (16 bytes)
    mac      = HMAC-SHA256(key, DOMAIN | len(namespace) (4 bytes, big-endian) | namespace
                                | digest (32 ASCII hex) | header | body)[:16]

- **Forgery**: without the key nobody can make a MAC that verifies.
- **Replay under another digest**: the digest is inside the MAC, so an entry copied to
  another request's key does not verify there.
- **Across namespaces**: so is the namespace (length-prefixed, so ``a`` + ``bc`` and ``ab`` +
  ``c`` differ).
- The token count in the header (which the Lua get script credits as ``tokens_saved``) is
  covered too; a forged entry's credited hit and tokens are taken back when it is dropped.

Why 16 bytes: a forger must guess a tag online (each guess is a write the readers must then
fetch and check), and a 128-bit tag gives a chance of 2^-128 per guess; truncating HMAC-SHA256
to 128 bits keeps its security for this use (NIST SP 800-107 allows truncation to >= 64 bits
given a limit on verification attempts; 128 needs none in practice) and saves 16 bytes per
entry against the full 32.

Rotation: ``signing_key`` may be a sequence of keys: the first signs, every one verifies. Roll
out ``[new, old]`` everywhere (old entries still verify, new ones are signed with ``new``),
then ``[new]`` once no process signs with ``old`` (entries signed with ``old`` then stop
verifying: they are misses, dropped and counted ``forged``).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence

from .envelope import MAC_SIZE

__all__ = ["DOMAIN", "MAC_SIZE", "MIN_KEY_BYTES", "ForgedEntry", "Signer", "check_signing_key"]

#: Domain separation: the MAC of a fleetcache entry, format 1.
DOMAIN = b"fleetcache-entry-mac-1\x00"
#: Shortest key accepted (bytes): shorter keys are too easy to guess.
MIN_KEY_BYTES = 16


class ForgedEntry(Exception):
    """An entry whose MAC is missing or does not verify for this namespace and digest."""


def check_signing_key(signing_key: object) -> tuple[bytes, ...]:
    """``signing_key`` as a tuple of keys (the first signs); ``()`` for ``None``.

    ``TypeError`` for anything but ``bytes``/``bytearray`` (``str`` included: encode it
    yourself, e.g. from base64) or a non-empty sequence of them; ``ValueError`` for an empty
    sequence or a key shorter than ``MIN_KEY_BYTES`` (16) bytes.
    """
    if signing_key is None:
        return ()
    if isinstance(signing_key, (bytes, bytearray)):
        keys: list[object] = [signing_key]
    elif isinstance(signing_key, str):
        raise TypeError("signing_key must be bytes (or a sequence of bytes), not str")
    elif isinstance(signing_key, Sequence):
        keys = list(signing_key)
        if not keys:
            raise ValueError("signing_key must not be an empty sequence")
    else:
        raise TypeError(
            f"signing_key must be bytes or a sequence of bytes, not {type(signing_key).__name__}"
        )
    out: list[bytes] = []
    for i, k in enumerate(keys):
        if not isinstance(k, (bytes, bytearray)):
            raise TypeError(f"signing_key[{i}] must be bytes, not {type(k).__name__}")
        if len(k) < MIN_KEY_BYTES:
            raise ValueError(
                f"signing_key[{i}] is {len(k)} bytes; use at least {MIN_KEY_BYTES} random bytes "
                "(e.g. secrets.token_bytes(32))"
            )
        out.append(bytes(k))
    return tuple(out)


class Signer:
    """Signs and verifies the envelopes of one namespace with one or more keys.

    ``flag`` is the header bit that marks a signed envelope (byte 3 of the header).
    """

    __slots__ = ("_bases", "flag")

    def __init__(self, keys: Sequence[bytes], namespace: str, flag: int) -> None:
        if not keys:
            raise ValueError("a Signer needs at least one key")
        ns = namespace.encode("utf-8")
        prefix = DOMAIN + struct.pack(">I", len(ns)) + ns
        # the keyed state after the fixed prefix, copied per entry (saves re-keying)
        self._bases = tuple(hmac.new(k, prefix, hashlib.sha256) for k in keys)
        self.flag = flag

    def _mac(self, i: int, digest: str, signed_part: bytes | bytearray | memoryview) -> bytes:
        h = self._bases[i].copy()
        h.update(digest.encode("ascii"))
        h.update(signed_part)
        return h.digest()[:MAC_SIZE]

    def sign(self, digest: str, envelope: bytes) -> bytes:
        """``envelope`` with ``flag`` set in its header and the MAC (first key) appended."""
        data = bytearray(envelope)
        data[3] |= self.flag
        return bytes(data) + self._mac(0, digest, data)

    def verify(self, digest: str, data: bytes) -> None:
        """Return if ``data`` is an envelope signed for ``digest`` by any key, else raise
        ``ForgedEntry`` (unsigned, truncated, or a MAC no key produced). Reads only the flag
        byte and compares MACs: nothing of the body is parsed."""
        if len(data) < 8 + MAC_SIZE or not data[3] & self.flag:
            raise ForgedEntry("entry is not signed")
        view = memoryview(data)
        signed_part, tag = view[:-MAC_SIZE], bytes(view[-MAC_SIZE:])
        for i in range(len(self._bases)):
            if hmac.compare_digest(self._mac(i, digest, signed_part), tag):
                return
        raise ForgedEntry("entry MAC does not verify for this namespace and request")
