"""The canonical request key (pure, no server): RFC 8785 form, equal numbers and
permuted dicts give one digest, any keyed change gives another, clear errors naming the path,
separate key domain from the five-field path; and ``cache_info`` attached per object."""

from __future__ import annotations

import copy
import gc
import json
import math
import pickle
import random
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

import fleetcache
from fleetcache import CacheInfo, cache_info, request_digest
from fleetcache.core.canonical import (
    DEFAULT_IGNORE,
    _es_number,
    canonical_json,
    json_module_json,
    reference_json,
    tokens_of_json,
)
from fleetcache.core.info import CachedDict, attach
from fleetcache.core.keys import digest_of, normalise_request

# -- strategies ------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
requests = st.dictionaries(st.text(), json_like, max_size=6)


def shuffled(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every dict's insertion order permuted."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rnd) for v in value]
    return value


def floated(value: Any) -> Any:
    """Every int that a double holds exactly, as that float (1 -> 1.0)."""
    if isinstance(value, dict):
        return {k: floated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floated(v) for v in value]
    if type(value) is int and abs(value) <= 2**53:
        return float(value)
    return value


# -- one digest for equal requests -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(requests, st.randoms(use_true_random=False))
def test_permuted_dict_orders_give_one_digest(request: dict[str, Any], rnd: random.Random) -> None:
    assert request_digest(shuffled(request, rnd)) == request_digest(request)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_ints_and_equal_floats_give_one_digest(request: dict[str, Any]) -> None:
    assert request_digest(floated(request)) == request_digest(request)


@settings(max_examples=500, deadline=None)
@given(requests)
def test_fast_pass_agrees_with_reference_encoder(request: dict[str, Any]) -> None:
    # orjson (when installed), the standard library's encoder, and the reference encoder
    expected = reference_json(request)
    assert canonical_json(request) == expected
    assert json_module_json(request) == expected


@settings(max_examples=1000, deadline=None)
@given(st.lists(finite | st.floats(1e-4, 2.0**53) | st.integers(-(2**60), 2**60), max_size=8))
def test_encoders_agree_on_numbers(numbers: list[float]) -> None:
    request = {"n": numbers, "m": {"x": numbers[:1]}}
    expected = reference_json(request)
    assert canonical_json(request) == expected and json_module_json(request) == expected


def test_orjson_is_used_when_installed() -> None:
    from fleetcache.core import canonical

    pytest.importorskip("orjson")
    assert canonical._dumps is canonical._dumps_orjson


@settings(max_examples=300, deadline=None)
@given(requests)
def test_canonical_form_is_json_that_reads_back(request: dict[str, Any]) -> None:
    # without lone surrogates and BigInts the canonical bytes are JSON of the same value
    text = canonical_json(request, ignore=()).decode("utf-8", "surrogatepass")
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in text))
    try:
        # numbers read back as doubles, as RFC 8785 (and ECMAScript) reads them
        back = json.loads(text, parse_int=float)
    except json.JSONDecodeError:
        assume(False)  # a BigInt literal (an int no double holds)
        raise
    assert canonical_json(back, ignore=()) == canonical_json(request, ignore=())


i_json_text = st.text(st.characters(exclude_categories=["Cs"]))  # no lone surrogates
i_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | finite | i_json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(i_json_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(i_json_text, i_json, max_size=6))
def test_same_bytes_as_an_independent_rfc8785_implementation(request: dict[str, Any]) -> None:
    """Trail of Bits' ``rfc8785`` is the oracle: on I-JSON values (what RFC 8785 accepts)
    the canonical bytes are identical, key order (UTF-16) and number forms included."""
    rfc8785 = pytest.importorskip("rfc8785")
    assert canonical_json(request, ignore=()) == rfc8785.dumps(request)


def test_numbers_equal_in_value_encode_equally() -> None:
    assert request_digest({"t": 1}) == request_digest({"t": 1.0})
    assert request_digest({"t": 0}) == request_digest({"t": -0.0}) == request_digest({"t": 0.0})
    assert request_digest({"t": 2**60}) == request_digest({"t": float(2**60)})
    assert request_digest({"t": 0.1}) != request_digest({"t": 0.10000000000000002})
    assert request_digest({"t": 2**60 + 1}) != request_digest({"t": float(2**60)})
    assert request_digest({"t": True}) != request_digest({"t": 1})
    assert request_digest({"t": None}) != request_digest({})
    assert request_digest({"t": "1"}) != request_digest({"t": 1})


def test_unicode_and_nested_lists() -> None:
    a = {"messages": [{"role": "user", "content": [{"type": "text", "text": "héllo 🌍 ✓"}]}]}
    b = json.loads(json.dumps(a))  # ensure_ascii escapes on the way: same value
    assert request_digest(a) == request_digest(b)
    assert (
        canonical_json(a)
        == (
            '{"messages":[{"content":[{"text":"héllo 🌍 ✓","type":"text"}],"role":"user"}]}'
        ).encode()
    )
    assert request_digest({"x": [[1, 2], [3]]}) != request_digest({"x": [[1], [2, 3]]})
    assert request_digest({"x": [1, 2]}) != request_digest({"x": [2, 1]})


def test_rfc8785_examples() -> None:
    # RFC 8785 section 3.2.2.3 number forms and 3.2.3 sorting (UTF-16 code units)
    assert [_es_number(f) for f in (1e21, 1e-7, 333333333.3333333, 1e-6, 4.5, 2e-3, 1e23)] == [
        "1e+21",
        "1e-7",
        "333333333.3333333",
        "0.000001",
        "4.5",
        "0.002",
        "1e+23",
    ]
    assert _es_number(5e-324) == "5e-324"
    assert _es_number(-1.7976931348623157e308) == "-1.7976931348623157e+308"
    # U+1F600 (surrogates D83D DE00) sorts before U+FB33 in UTF-16, after it by code point
    data = {"\ufb33": 1, "\U0001f600": 2, "\r": 3, "1": 4, "\u00e9": 5}
    assert canonical_json(data, ignore=()) == (
        '{"\\r":3,"1":4,"é":5,"\U0001f600":2,"\ufb33":1}'.encode()
    )
    rfc8785 = pytest.importorskip("rfc8785")
    assert canonical_json(data, ignore=()) == rfc8785.dumps(data)
    assert canonical_json({"s": '\u2028\x7f\x1f"\\'}, ignore=()) == (
        '{"s":"\u2028\x7f\\u001f\\"\\\\"}'.encode()
    )


def test_same_digest_in_another_interpreter_and_hash_seed() -> None:
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "é"}],
        "temperature": 0.7,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": 2}}}],
    }
    code = (
        "import json,sys; from fleetcache import request_digest; "
        "print(request_digest(json.loads(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(request, sort_keys=True)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout.strip()
    assert out == request_digest(request)


# -- any keyed change gives another digest ---------------------------------------------------

BASE: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "seed": 7,
    "top_p": 0.9,
    "stop": ["\n"],
    "n": 1,
    "temperature": 0.2,
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@pytest.mark.parametrize("path", _paths(BASE), ids=lambda p: ".".join(map(str, p)))
def test_changing_any_keyed_value_changes_the_digest(path: tuple[Any, ...]) -> None:
    changed = copy.deepcopy(BASE)
    node = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = ["something else"]
    assert request_digest(changed) != request_digest(BASE)


@settings(max_examples=300, deadline=None)
@given(requests, st.text(), json_like)
def test_adding_a_keyed_field_changes_the_digest(
    request: dict[str, Any], key: str, value: Any
) -> None:
    assume(key not in request and key not in DEFAULT_IGNORE)
    assert request_digest({**request, key: value}) != request_digest(request)


def test_ignored_fields_and_override() -> None:
    noisy = {
        **BASE,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u1",
        "metadata": {"a": "b"},
        "store": True,
        "timeout": 30,
        "extra_headers": {"x": "y"},
        "extra_query": {"q": 1},
    }
    assert request_digest(noisy) == request_digest(BASE)
    assert set(DEFAULT_IGNORE) == {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "timeout",
        "extra_headers",
        "extra_query",
    }
    assert request_digest(noisy, ignore=()) != request_digest(BASE, ignore=())
    assert request_digest({**BASE, "seed": 8}, ignore={"seed"}) == request_digest(
        BASE, ignore={"seed"}
    )
    # only top-level fields are ignored: a nested "user" is part of the request
    nested = {"messages": [{"role": "user", "content": "x", "user": "a"}]}
    assert request_digest(nested) != request_digest(
        {"messages": [{"role": "user", "content": "x"}]}
    )


def test_no_clash_with_the_five_field_domain() -> None:
    fields = normalise_request("hi", "sys", "gpt-4o", 0.0, 10)
    five = digest_of(fields)
    assert len(five) == len(request_digest({})) == 32
    same_shape = {
        "user_message": "hi",
        "system_prompt": "sys",
        "model": "gpt-4o",
        "temperature": 0.0,
        "max_tokens": 10,
    }
    assert request_digest(same_shape) != five
    # the same bytes hashed in both domains differ: the personalisation separates them
    import hashlib

    data = canonical_json(same_shape)
    assert hashlib.blake2b(data, digest_size=16, person=b"fleetcache-req1").hexdigest() != (
        request_digest(same_shape)
    )


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(), st.text(), finite, st.integers(0, 10**6))
def test_five_field_and_request_digests_never_meet(
    um: str, sp: str, mo: str, temp: float, mt: int
) -> None:
    five = digest_of(normalise_request(um, sp, mo, temp, mt))
    as_request = {
        "messages": [{"role": "system", "content": sp}, {"role": "user", "content": um}],
        "model": mo,
        "temperature": temp,
        "max_tokens": mt,
    }
    assert request_digest(as_request) != five


# -- pydantic inside, mappings, errors -------------------------------------------------------


class Part(BaseModel):
    type: str
    text: str


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str


def test_pydantic_models_are_dumped_in_json_mode() -> None:
    plain = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    with_model = {"messages": [{"role": "user", "content": [Part(type="text", text="hi")]}]}
    assert request_digest(with_model) == request_digest(plain)
    loose = Loose(role="a", extra_field=1.0)  # type: ignore[call-arg]
    assert request_digest({"m": loose}) == request_digest({"m": {"role": "a", "extra_field": 1}})


def test_any_mapping_and_tuples() -> None:
    assert request_digest(OrderedDict(b=1, a=(1, 2))) == request_digest({"a": [1, 2], "b": 1})
    assert request_digest({"x": MappingProxyType({"k": "v"})}) == request_digest({"x": {"k": "v"}})


@pytest.mark.parametrize(
    ("request_", "path"),
    [
        (
            {"messages": [{}, {}, {"content": [{"image_url": b"\x89PNG"}]}]},
            "messages[2].content[0].image_url",
        ),
        ({"stop": {"a", "b"}}, "stop"),
        ({"tools": [{"function": object()}]}, "tools[0].function"),
        ({"x": {"we ird": [1, 2, bytearray()]}}, 'x["we ird"][2]'),
    ],
)
def test_non_json_values_are_type_errors_naming_the_path(request_: Any, path: str) -> None:
    with pytest.raises(TypeError) as info:
        request_digest(request_)
    assert str(info.value).startswith(path + ":")


def test_non_str_keys_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"^logit_bias: object keys must be str, not int"):
        request_digest({"logit_bias": {50256: -100}})
    with pytest.raises(TypeError, match="mapping"):
        request_digest([("model", "x")])  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_value_errors(bad: float) -> None:
    with pytest.raises(ValueError, match=r"^messages\[0\]\.weight:"):
        request_digest({"messages": [{"weight": bad}]})


def test_deep_nesting_is_a_value_error() -> None:
    deep: Any = "x"
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        request_digest({"d": deep})


# -- tokens ----------------------------------------------------------------------------------


def test_tokens_of_json() -> None:
    assert tokens_of_json({"usage": {"total_tokens": 30, "prompt_tokens": 1}}) == 30
    assert tokens_of_json({"usage": {"prompt_tokens": 10, "completion_tokens": 5}}) == 15
    assert tokens_of_json({"usage": {"input_tokens": 7, "output_tokens": 3}}) == 10
    assert tokens_of_json({"usage": {"total_tokens": 2**40}}) == 2**32 - 1
    assert tokens_of_json({"usage": {"total_tokens": -5}}) == 0
    assert tokens_of_json({"usage": {"total_tokens": True, "prompt_tokens": 2}}) == 2
    assert tokens_of_json({"usage": None}) == 0
    assert tokens_of_json({}) == 0


# -- cache_info ------------------------------------------------------------------------------


class Completion(BaseModel):
    """Shaped like the SDKs' models: pydantic v2, extra fields allowed, no __weakref__ slot
    declared by hand."""

    model_config = ConfigDict(extra="allow")
    id: str


def test_cache_info_on_dicts() -> None:
    info = CacheInfo(hit=True, age_seconds=1.5, digest="ab" * 16)
    plain: dict[str, Any] = {"choices": []}
    d = attach(plain, info)
    assert isinstance(d, dict) and isinstance(d, CachedDict) and d == plain
    assert cache_info(d) is info
    assert cache_info(plain) is None
    assert cache_info(dict(d)) is None
    assert json.loads(json.dumps(d)) == plain
    back = pickle.loads(pickle.dumps(d))
    assert back == plain and cache_info(back) == info


def test_cache_info_on_pydantic_models() -> None:
    m = Completion(id="x", extra=1)  # type: ignore[call-arg]
    before = m.model_dump()
    info = CacheInfo(hit=False, age_seconds=None, digest="cd" * 16)
    assert attach(m, info) is m
    assert cache_info(m) is info
    assert m.model_dump() == before and m == Completion(id="x", extra=1)  # type: ignore[call-arg]
    assert cache_info(Completion(id="x", extra=1)) is None  # type: ignore[call-arg]
    info2 = CacheInfo(hit=True, age_seconds=0.0, digest="cd" * 16)
    attach(m, info2)
    assert cache_info(m) is info2


def test_cache_info_entry_goes_with_the_object() -> None:
    from fleetcache.core import info

    before = len(info._table)
    for _ in range(100):
        attach(Completion(id="y"), CacheInfo(hit=True, age_seconds=0.0, digest="0" * 32))
    gc.collect()
    assert len(info._table) == before


def test_cache_info_is_per_object_across_threads() -> None:
    results: dict[int, bool] = {}

    def work(i: int) -> None:
        objs = []
        for j in range(200):
            m = Completion(id=f"{i}-{j}")
            attach(m, CacheInfo(hit=(i % 2 == 0), age_seconds=None, digest=f"{i:032x}"))
            objs.append(m)
        results[i] = all(
            (info := cache_info(o)) is not None
            and info.hit == (i % 2 == 0)
            and info.digest == f"{i:032x}"
            for o in objs
        )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results.values()) and len(results) == 8


def test_attach_rejects_what_it_cannot_carry() -> None:
    with pytest.raises(TypeError, match="list"):
        attach([1], CacheInfo(hit=True, age_seconds=None, digest="0" * 32))
    with pytest.raises(TypeError, match="CacheInfo"):
        attach({}, "hit")  # type: ignore[arg-type]


def test_public_names() -> None:
    assert fleetcache.CacheInfo is CacheInfo and fleetcache.cache_info is cache_info
    assert fleetcache.request_digest is request_digest
    assert fleetcache.DEFAULT_IGNORE is DEFAULT_IGNORE
    assert fleetcache.default_should_store({"choices": []}) is False
    assert isinstance(CacheInfo(hit=True, age_seconds=None, digest=""), CacheInfo)
    with pytest.raises(AttributeError):
        CacheInfo(hit=True, age_seconds=None, digest="").hit = False  # type: ignore[misc]
    assert isinstance(attach({}, CacheInfo(True, None, "")), Mapping)


# -- integers beyond Python's int -> str limit ------------------------------------------------


@pytest.mark.parametrize(
    "n",
    [10**5000, -(10**5000) - 7, 3**20000, 10**4300, 10**1200 + 1],
    ids=["1e5000", "-1e5000-7", "3^20000", "1e4300", "1e1200+1"],
)
def test_integers_beyond_the_str_digit_limit_are_keyed_as_digits_plus_n(n: int) -> None:
    """An integer longer than ``sys.get_int_max_str_digits()`` is keyed by its exact digits
    plus ``n``, like every integer no double holds, whatever the process's limit is."""
    get_limit = getattr(sys, "get_int_max_str_digits", lambda: 0)
    set_limit = getattr(sys, "set_int_max_str_digits", lambda limit: None)  # Python < 3.10.7
    old = get_limit()
    try:
        set_limit(0)
        digits = str(n)
        for limit in (640, 4300):
            set_limit(limit)
            assert canonical_json({"seed": n}) == f'{{"seed":{digits}n}}'.encode()
            assert reference_json({"seed": n}) == f'{{"seed":{digits}n}}'.encode()
            assert (
                canonical_json({"a": [{"seed": n}]}) == f'{{"a":[{{"seed":{digits}n}}]}}'.encode()
            )
        assert request_digest({"seed": n}) != request_digest({"seed": n + 1})
        assert request_digest({"seed": n}) != request_digest({"seed": digits})
    finally:
        set_limit(old)
