"""A whole JSON request -> canonical bytes -> digest. Pure: no I/O.

The canonical form follows RFC 8785 (JSON Canonicalization Scheme):

- object members sorted by their keys' UTF-16 code units (the same order as code points
  unless a key holds characters above U+FFFF and others in U+E000..U+FFFF), no whitespace,
  UTF-8;
- strings with only the escapes JSON requires (``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``,
  other controls as ``\\u00xx``), everything else literal;
- numbers as ECMAScript prints the double of their value: ``1`` and ``1.0`` are both ``1``,
  ``-0.0`` is ``0``, ``1e21`` is ``1e+21``, ``1e-7`` is ``1e-7``; NaN and infinities are a
  ``ValueError``;
- lists keep their order.

Every I-JSON value encodes exactly as RFC 8785 says. Two extensions accept what RFC 8785
rejects, without ever encoding two different values the same: an integer that no double
holds exactly (``|n| > 2**53``, e.g. a large ``seed``) is written as its decimal digits
followed by ``n`` (JavaScript's BigInt literal; no JSON number looks like that), while one
a double does hold is written as that double (so ``2**60`` and ``float(2**60)`` agree); a
lone surrogate in a ``str`` (legal in Python, not in I-JSON) is encoded with
``surrogatepass`` instead of raising, as the five-field path does.

Accepted values: ``None``, ``bool``, ``int``, ``float``, ``str`` (and their subclasses, e.g.
``str`` enums), ``list``/``tuple``, any ``Mapping`` with ``str`` keys, and pydantic models
(dumped with ``model_dump(mode="json")`` first). Anything else is a ``TypeError`` naming its
path, e.g. ``messages[2].content[0].image_url``.

The digest is BLAKE2b-128 of the canonical bytes with the personalisation
``b"fleetcache-jcs1"``; the five-field path (``keys.digest_of``) uses ``b"fleetcache-req1"``.
A personalisation is part of BLAKE2's parameter block, so the two are independent hash
functions: a digest of one domain equals one of the other only by a 128-bit collision.

Implementation: a fast pass checks and normalises the request (integral floats become
ints, so a JSON encoder writes them as ECMAScript does) and hands it to ``orjson`` (when
installed: extra ``speedups``) or to ``json.dumps(sort_keys=True)``, which write the same
bytes; anything the fast pass is not sure about (non-ASCII keys above U+D7FF, floats below
1e-4, integers beyond 2**53, subclasses, errors) goes through the exact reference encoder
below, which also names the path of a bad value. All three agree on every input the fast
pass accepts (property tests check it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from .envelope import MAX_TOKENS_FIELD, UnstorableResponse
from .usage import usage_of

__all__ = [
    "DEFAULT_IGNORE",
    "canonical_json",
    "json_data",
    "request_digest",
    "tokens_of_json",
]

#: Request fields left out of the key by default: they do not change the answer.
DEFAULT_IGNORE: frozenset[str] = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "timeout",
        "extra_headers",
        "extra_query",
    }
)

_PERSON = b"fleetcache-jcs1"
# Integers up to this magnitude are exactly doubles whose ECMAScript form is their digits.
_EXACT = 2**53
_encode_str = json.encoder.encode_basestring  # the C escaper json.dumps uses, no ASCII escaping
_json_dumps = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=False,
).encode


def _dumps_json(value: Any) -> bytes:
    return _json_dumps(value).encode("utf-8", "surrogatepass")


try:  # optional (extra "speedups"): the same bytes, about 10x faster than json's encoder
    import orjson

    _HAVE_ORJSON = True
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_ORJSON = False


if _HAVE_ORJSON:
    _ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER

    def _dumps_orjson(value: Any) -> bytes:
        """orjson writes what json does for what ``_fast`` lets through (sorted keys, the
        same escapes, the same float layout from 1e-4 up); it raises (``TypeError``) where
        json would differ or fail: a non-``str`` key, an int beyond 53 bits, a lone
        surrogate, an unknown type."""
        try:
            out: bytes = orjson.dumps(value, option=_ORJSON_OPTIONS)
        except TypeError:
            raise _Slow from None
        return out

    _dumps = _dumps_orjson
else:  # pragma: no cover - depends on the environment
    _dumps = _dumps_json


class _Slow(Exception):
    """The fast pass declines; use the reference encoder."""


# ---------------------------------------------------------------------------------------
# the reference encoder (exact RFC 8785 form, names the path of a bad value)


def _key_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _es_number(f: float) -> str:
    """ECMAScript Number::toString of a finite double (RFC 8785 section 3.2.2.3)."""
    if f == 0.0:
        return "0"
    sign = "-" if f < 0 else ""
    # repr gives the shortest digits that round-trip, as ECMAScript requires; only the
    # layout differs. Split it into digits d1..dk and the exponent n with value 0.d1..dk*10^n.
    mantissa, _, exp = repr(abs(f)).partition("e")
    whole, _, frac = mantissa.partition(".")
    joined = whole + frac
    digits = joined.lstrip("0")
    n = len(whole) + (int(exp) if exp else 0) - (len(joined) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        head = digits[0] + ("." + digits[1:] if k > 1 else "")
        out = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out


#: Digits per piece when ``_decimal`` converts an int too long for ``str()``: below the
#: smallest ``sys.set_int_max_str_digits`` limit Python accepts (640).
_PIECE = 600


def _decimal(n: int) -> str:
    """``str(n)`` for any int, whatever ``sys.set_int_max_str_digits`` allows: beyond the
    limit, the digits are built piecewise (divide and conquer by powers of ten, each piece
    under the smallest limit), so a key never depends on the process's setting."""
    try:
        return str(n)
    except ValueError:
        pass
    sign, n = ("-", -n) if n < 0 else ("", n)
    pows = [10**_PIECE]  # pows[i] = 10 ** (_PIECE * 2**i)
    while pows[-1] * pows[-1] <= n:
        pows.append(pows[-1] * pows[-1])

    def digits(m: int, i: int, pad: bool) -> str:
        # m < pows[i] ** 2 (m < pows[0] when i < 0); pad: exactly _PIECE * 2**(i+1) digits
        if i < 0:
            s = str(m)
            return s.zfill(_PIECE) if pad else s
        hi, lo = divmod(m, pows[i])
        if hi == 0 and not pad:
            return digits(lo, i - 1, False)
        return digits(hi, i - 1, pad) + digits(lo, i - 1, True)

    return sign + digits(n, len(pows) - 1, False)


def _emit(value: Any, path: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        n = int(value)
        if -_EXACT <= n <= _EXACT:
            out.append(str(n))
        else:
            try:
                f = float(n)
            except OverflowError:
                f = math.nan
            out.append(_es_number(f) if f == n else f"{_decimal(n)}n")
    elif isinstance(value, float):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"{path or 'request'}: {f!r} is not a JSON number")
        out.append(_es_number(f))
    elif isinstance(value, str):
        out.append(_encode_str(str.__str__(value)))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, f"{path}[{i}]", out)
        out.append("]")
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(
                    f"{path or 'request'}: object keys must be str, not "
                    f"{type(key).__name__} ({key!r})"
                )
        keys = sorted(value, key=lambda k: str.__str__(k).encode("utf-16-be", "surrogatepass"))
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_encode_str(str.__str__(key)))
            out.append(":")
            _emit(value[key], _key_path(path, key), out)
        out.append("}")
    elif isinstance(value, BaseModel):
        _emit(value.model_dump(mode="json"), path, out)
    else:
        raise TypeError(
            f"{path or 'request'}: {type(value).__name__} is not a JSON value "
            "(expected None, bool, int, float, str, list, tuple, a str-keyed mapping or "
            "a pydantic model)"
        )


# ---------------------------------------------------------------------------------------
# the fast pass


_LEAVES = frozenset({str, bool, type(None)})


def _fast(value: Any) -> Any:
    """``value`` with integral floats as ints (copied only where something changed), ready
    for the JSON encoder; ``_Slow`` for anything the reference encoder must decide.

    Written for speed (it runs on every request): ``str``/``bool``/``None`` leaves are
    skipped inline, without a call.
    """
    t = type(value)
    if t is dict:
        changed: dict[str, Any] | None = None
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or max(k) < "\ud800"):
                raise _Slow  # not a str; or UTF-16 order may differ from code point order
            if type(v) in _LEAVES:
                continue
            w = _fast(v)
            if w is not v:
                if changed is None:
                    changed = dict(value)
                changed[k] = w
        return value if changed is None else changed
    if t is list or t is tuple:
        copied: list[Any] | None = None
        i = 0
        for v in value:
            if type(v) not in _LEAVES:
                w = _fast(v)
                if w is not v:
                    if copied is None:
                        copied = list(value)
                    copied[i] = w
            i += 1  # noqa: SIM113  (enumerate costs more on this hot path)
        return value if copied is None else copied
    if t in _LEAVES:
        return value
    if t is int:
        if -_EXACT <= value <= _EXACT:
            return value
        raise _Slow
    if t is float:
        if value.is_integer():
            if -_EXACT <= value <= _EXACT:
                return int(value)  # same digits as ECMAScript; also folds -0.0 into 0
        elif 1e-4 <= abs(value) < math.inf:  # the encoders' layout == ECMAScript's here
            return value
        raise _Slow
    if isinstance(value, BaseModel):
        return _fast(value.model_dump(mode="json"))
    raise _Slow


def _top(request: Any, ignore: Collection[str] | None) -> Mapping[str, Any]:
    if isinstance(request, BaseModel):
        request = request.model_dump(mode="json")
    if not isinstance(request, Mapping):
        raise TypeError(f"request must be a mapping, not {type(request).__name__}")
    drop = DEFAULT_IGNORE if ignore is None else ignore
    if not drop:
        return request
    return {k: v for k, v in request.items() if k not in drop}


def canonical_json(request: Mapping[str, Any], *, ignore: Collection[str] | None = None) -> bytes:
    """The canonical UTF-8 bytes of a request (see the module docstring), without its
    top-level fields named in ``ignore`` (default :data:`DEFAULT_IGNORE`; pass ``()`` to
    keep every field).

    ``TypeError`` for a value that is not JSON-like (naming its path), ``ValueError`` for
    NaN or an infinity, or a request nested deeper than Python's recursion limit.
    """
    body = _top(request, ignore)
    try:
        try:
            return _dumps(_fast(body))
        except _Slow:
            parts: list[str] = []
            _emit(body, "", parts)
            return "".join(parts).encode("utf-8", "surrogatepass")
    except RecursionError:
        raise ValueError("request is nested too deeply to canonicalise") from None


def json_module_json(request: Mapping[str, Any], *, ignore: Collection[str] | None = None) -> bytes:
    """:func:`canonical_json` with the standard library's encoder (for tests: the bytes
    are the same with and without orjson)."""
    body = _top(request, ignore)
    try:
        return _dumps_json(_fast(body))
    except _Slow:
        return reference_json(request, ignore=ignore)


def reference_json(request: Mapping[str, Any], *, ignore: Collection[str] | None = None) -> bytes:
    """:func:`canonical_json` through the reference encoder only (for tests)."""
    parts: list[str] = []
    _emit(_top(request, ignore), "", parts)
    return "".join(parts).encode("utf-8", "surrogatepass")


def digest_of_canonical(data: bytes) -> str:
    """The 32-hex-character digest of canonical request bytes."""
    return hashlib.blake2b(data, digest_size=16, person=_PERSON).hexdigest()


def request_digest(request: Mapping[str, Any], *, ignore: Collection[str] | None = None) -> str:
    """The 32-hex-character key of a whole request: BLAKE2b-128 (personalisation
    ``b"fleetcache-jcs1"``) of :func:`canonical_json`. ``ignore``: top-level fields left
    out of the key, default :data:`DEFAULT_IGNORE`. Same errors as :func:`canonical_json`.
    """
    return digest_of_canonical(canonical_json(request, ignore=ignore))


def _data(value: Any, path: str) -> Any:
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        if value - value == 0.0:  # finite
            return value
        raise UnstorableResponse(f"{path or 'response'}: {value!r} is not a JSON number")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{path or 'response'}: object keys must be str, not {type(k).__name__}"
                )
            name = str.__str__(k)
            out[name] = _data(v, _key_path(path, name))
        return out
    if isinstance(value, (list, tuple)):
        return [_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, BaseModel):
        return _data(_dump(value), path)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _data(float(value), path)
    raise TypeError(
        f"{path or 'response'}: {type(value).__name__} is not a JSON value (expected None, "
        "bool, int, float, str, list, tuple, a str-keyed mapping or a pydantic model)"
    )


def _dump(model: BaseModel) -> Any:
    """A pydantic model as its wire JSON: the fields it was built with, by alias (what the
    OpenAI and Anthropic SDKs' ``to_dict()`` give)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def json_data(response: Any) -> dict[str, Any]:
    """A response (a ``Mapping`` or a pydantic model) as plain JSON-compatible data: dicts
    with ``str`` keys, lists, ``str``, ``int``, finite ``float``, ``bool``, ``None``. A model
    is dumped in JSON mode, by alias, with only the fields it was built with.

    ``TypeError`` for anything else (naming its path, e.g. ``choices[0].message.audio``);
    ``UnstorableResponse`` (a ``ValueError``) for NaN or an infinity, or data nested
    deeper than Python's recursion limit.
    """
    if isinstance(response, BaseModel):
        response = _dump(response)
    if not isinstance(response, Mapping):
        raise TypeError(
            f"response must be a mapping or a pydantic model, not {type(response).__name__}"
        )
    try:
        data: dict[str, Any] = _data(response, "")
    except RecursionError:
        raise UnstorableResponse("the response is nested too deeply to be stored") from None
    return data


def tokens_of_json(response: Mapping[str, Any]) -> int:
    """Total tokens a hit on this JSON response saves, by the one usage parser
    (:func:`fleetcache.core.usage.usage_of`: every provider's field names, prompt-cache
    reads and writes included); 0 without usage; clamped to 0..2**32-1."""
    got = usage_of(response) if isinstance(response, Mapping) else None
    return 0 if got is None else max(0, min(got.total, MAX_TOKENS_FIELD))
