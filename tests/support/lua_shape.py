"""What a Lua script says it takes (its header) and what its body uses, read from the text.

Used twice: the header test checks every ``lua/<name>-<N>.lua`` header against its file name
and against the body (includes expanded), and the scripted driver (``script_driver.py``)
checks every ``Call`` the core yields against the script it names (key count, argument
count, variadic shape). Nothing here talks to Redis.

Header rules (DESIGN.md rule 4), for a script file::

    --[[
      <name>-<N>: what it does.

      KEYS[1]  entry key   ...          one line per fixed key, 1..N, no gaps
      KEYS[3..n+2] entry keys ...       variadic keys: a symbolic index, and the word "variadic"
      ARGV[1]  digest      ...          one line per argument (with units for times)
      ARGV[2i] digest      ...          per-item arguments of a variadic script

      Returns
        ...                             every return shape
    ]]

An include (``lua/includes/<name>.lua``) has a header too, and uses no ``KEYS``/``ARGV`` of
its own: its callers pass keys and arguments in as parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FILE_NAME = re.compile(r"^(?P<name>[a-z_]+)-(?P<nkeys>\d+)\.lua$")
_HEADER = re.compile(r"\A\s*--\[\[(?P<head>.*?)\]\]", re.S)
_DOC = re.compile(r"^\s*(?P<arr>KEYS|ARGV)\[(?P<idx>[^\]]+)\]\s+(?P<desc>\S.*)$")
_USE = re.compile(r"\b(?P<arr>KEYS|ARGV)\s*\[(?P<idx>[^\]]+)\]")
_COUNT = re.compile(r"#(?P<arr>KEYS|ARGV)\b")
_RETURNS = re.compile(r"^\s*Returns\b", re.M)


@dataclass
class Header:
    """A script's header block: what it documents."""

    text: str
    #: ``"KEYS"``/``"ARGV"`` -> index as written (``"1"``, ``"2i+1"``...) -> description
    docs: dict[str, dict[str, str]] = field(default_factory=lambda: {"KEYS": {}, "ARGV": {}})
    #: problems found while parsing (an index documented twice)
    problems: list[str] = field(default_factory=list)

    def fixed(self, arr: str) -> set[int]:
        """The literal indices documented for ``arr`` (``KEYS[1]`` -> 1)."""
        return {int(i) for i in self.docs[arr] if i.isdigit()}

    def symbolic(self, arr: str) -> set[str]:
        """The non-literal indices documented for ``arr`` (``ARGV[2i]`` -> ``"2i"``)."""
        return {i for i in self.docs[arr] if not i.isdigit()}

    @property
    def has_returns(self) -> bool:
        return bool(_RETURNS.search(self.text))


@dataclass(frozen=True)
class Uses:
    """What a Lua body (comments stripped) reads from ``KEYS``/``ARGV``."""

    keys: frozenset[int]
    argv: frozenset[int]
    keys_variable: bool  # KEYS[i + 2], #KEYS
    argv_variable: bool

    def literal(self, arr: str) -> frozenset[int]:
        return self.keys if arr == "KEYS" else self.argv

    def variable(self, arr: str) -> bool:
        return self.keys_variable if arr == "KEYS" else self.argv_variable


def split_header(text: str) -> tuple[Header | None, str]:
    """The leading ``--[[ ... ]]`` header (or ``None``) and the rest of the file."""
    m = _HEADER.match(text)
    if not m:
        return None, text
    h = Header(m["head"])
    for line in m["head"].splitlines():
        d = _DOC.match(line)
        if d:
            idx = d["idx"].replace(" ", "")
            if idx in h.docs[d["arr"]]:
                h.problems.append(f"{d['arr']}[{idx}] documented twice")
            h.docs[d["arr"]][idx] = d["desc"]
    return h, text[m.end() :]


def strip_comments(lua: str) -> str:
    """Lua without block (``--[[ ]]``) and line (``--``) comments."""
    lua = re.sub(r"--\[\[.*?\]\]", "", lua, flags=re.S)
    return re.sub(r"--[^\n]*", "", lua)


def uses(lua: str) -> Uses:
    """The ``KEYS[n]``/``ARGV[n]`` a body reads (``lua`` may still contain comments)."""
    found: dict[str, set[int]] = {"KEYS": set(), "ARGV": set()}
    variable = {"KEYS": False, "ARGV": False}
    code = strip_comments(lua)
    for u in _USE.finditer(code):
        idx = u["idx"].replace(" ", "")
        if idx.isdigit():
            found[u["arr"]].add(int(idx))
        else:
            variable[u["arr"]] = True
    for c in _COUNT.finditer(code):
        variable[c["arr"]] = True
    return Uses(
        frozenset(found["KEYS"]), frozenset(found["ARGV"]), variable["KEYS"], variable["ARGV"]
    )


def script_problems(file_name: str, text: str, expanded: str) -> list[str]:
    """Everything wrong with one script's header, as readable sentences (``[]``: none).

    ``text`` is the file as written, ``expanded`` the same with its includes expanded (what
    the server runs). Checked: the file name is ``<name>-<N>.lua`` and the header starts
    with ``<name>-<N>``; there is a Returns section; the documented fixed KEYS and ARGV are
    1..max with no gaps, each described; the highest ``KEYS[n]`` the expanded body reads is
    the highest documented, and that is N; likewise for ``ARGV``; every documented index is
    read; a variable index (``KEYS[i + 2]``, ``#KEYS``) is documented by a symbolic entry,
    and variadic keys are called so.
    """
    m = FILE_NAME.match(file_name)
    if not m:
        return [f"{file_name}: not named <name>-<numkeys>.lua"]
    name, nkeys = m["name"], int(m["nkeys"])
    header, _ = split_header(text)
    if header is None:
        return [f"{file_name}: does not start with a --[[ ... ]] header"]
    problems = [f"{file_name}: {p}" for p in header.problems]
    if not header.text.strip().startswith(f"{name}-{nkeys}"):
        problems.append(f"{file_name}: header does not start with '{name}-{nkeys}'")
    if not header.has_returns:
        problems.append(f"{file_name}: no Returns section")
    _, body = split_header(expanded)
    used = uses(body)
    for arr in ("KEYS", "ARGV"):
        fixed = header.fixed(arr)
        top = max(fixed, default=0)
        if fixed != set(range(1, top + 1)):
            problems.append(f"{file_name}: documented {arr} have gaps: {sorted(fixed)}")
        lit = used.literal(arr)
        if max(lit, default=0) != top:
            problems.append(
                f"{file_name}: the body reads up to {arr}[{max(lit, default=0)}], "
                f"the header documents up to {arr}[{top}]"
            )
        if fixed - lit:
            problems.append(f"{file_name}: {arr}{sorted(fixed - lit)} documented, never read")
        if used.variable(arr) and not header.symbolic(arr):
            problems.append(f"{file_name}: a variable {arr} index is read, none is documented")
        if header.symbolic(arr) and not used.variable(arr):
            problems.append(f"{file_name}: a variable {arr} index is documented, none is read")
        for idx, desc in header.docs[arr].items():
            if len(desc.split()) < 2:
                problems.append(f"{file_name}: {arr}[{idx}] has no description")
    if len(header.fixed("KEYS")) != nkeys:
        problems.append(
            f"{file_name}: the name says {nkeys} keys, the header documents "
            f"{len(header.fixed('KEYS'))} fixed KEYS"
        )
    if header.symbolic("KEYS") and "variadic" not in header.text.lower():
        problems.append(f"{file_name}: say that the key count is variadic")
    return problems


def include_problems(file_name: str, text: str) -> list[str]:
    """An include has a header and reads no ``KEYS``/``ARGV`` of its own."""
    header, body = split_header(text)
    if header is None:
        return [f"{file_name}: does not start with a --[[ ... ]] header"]
    u = uses(body)
    if u.keys or u.argv or u.keys_variable or u.argv_variable:
        return [f"{file_name}: an include reads KEYS/ARGV (take them as parameters)"]
    return []


@dataclass(frozen=True)
class CallShape:
    """The KEYS/ARGV counts a call of one script must have, from its header and body.

    A fixed script takes exactly ``keys`` keys and ``argv`` arguments. A variadic one takes
    ``keys + n`` keys (``n`` items) and ``argv + per_item * n`` arguments, ``per_item`` being
    the number of symbolic ``ARGV`` entries its header documents (``ARGV[2i]``,
    ``ARGV[2i+1]`` -> 2).
    """

    keys: int
    argv: int
    variadic: bool
    per_item: int

    def problems(self, nkeys: int, nargs: int) -> list[str]:
        if not self.variadic:
            out = []
            if nkeys != self.keys:
                out.append(f"{nkeys} keys, the script takes {self.keys}")
            if nargs != self.argv:
                out.append(f"{nargs} arguments, the script takes {self.argv}")
            return out
        n = nkeys - self.keys
        if n < 0:
            return [f"{nkeys} keys, the script takes at least {self.keys}"]
        want = self.argv + self.per_item * n
        if nargs != want:
            return [f"{nargs} arguments for {n} items, the script takes {want}"]
        return []


def call_shape(source: str) -> CallShape:
    """The ``CallShape`` of a script from its source (includes expanded or not: the header
    comes first either way)."""
    header, body = split_header(source)
    if header is None:
        raise ValueError("a script without a header has no known shape")
    used = uses(body)
    return CallShape(
        keys=max(used.keys, default=0),
        argv=max(used.argv, default=0),
        variadic=used.keys_variable,
        per_item=len(header.symbolic("ARGV")),
    )
