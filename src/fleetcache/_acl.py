"""Least-privilege Redis ACL rules for one fleetcache namespace (``fleetcache acl``).

``acl_rules(prefix, user, shards=S)`` returns the arguments of one ``ACL SETUSER`` command that
lets ``user`` do everything fleetcache does on namespace ``prefix`` (data calls, batches,
single-flight, stats, size, clear, reconcile, reset-stats, the ``fleetcache`` command, and
loading the scripts again after a ``NOSCRIPT``) and nothing else:

- **keys**: exactly the namespace's keys, ``{P:s}:e:*``, ``{P:s}:i``, ``{P:s}:s``,
  ``{P:s}:l:*`` for the shard numbers ``s = 0..S-1`` and ``{P}:meta``, with the prefix
  glob-escaped (``*``, ``?``, ``[``, ``]``, ``\\``). The shard numbers are written as digit
  classes that match those decimal numbers and no other string (``S=64``: ``[0-9]``,
  ``[1-5][0-9]``, ``6[0-3]``), so neighbours do not match: for ``acme``, not ``acme2``'s keys,
  nor ``acme:x``'s (``{acme:x:0}:...``), nor ``acme:0``'s meta key ``{acme:0}:meta``. A hash
  tag ``{P:s}`` names one (namespace, shard) pair: a prefix has no braces, so the tag ends at
  the first ``}``, and the shard is the decimal part after its last ``:``.
  A prefix holding whitespace is refused (``ValueError``; ``fleetcache acl`` exits 2):
  Redis rejects whitespace anywhere in an ACL rule, quoted or not. Quotes, backslashes,
  glob characters and non-ASCII text work (``redis-cli`` double quotes, ``\\xHH`` escapes).
- **commands**: ``EVALSHA`` and ``SCRIPT LOAD`` (the NOSCRIPT recovery), ``PING`` (the
  operator tools check a server with it) and the commands the Lua scripts call: on Redis 7
  every command a script runs is checked against the user's ACL, keys included (``ACL failure
  in script``), so the user needs them and a script cannot reach another namespace either.
  No ``EVAL``, ``KEYS``, ``SCAN``, ``FLUSHALL``/``FLUSHDB``, ``CONFIG``, ``SCRIPT FLUSH``,
  ``DEBUG``, ``SHUTDOWN``, ``SELECT``, no pub/sub channels.
- ``cluster=True`` adds what redis-py's cluster client needs on every node: ``CLUSTER
  SLOTS``/``CLUSTER SHARDS`` (the slot map), ``COMMAND`` (its command table) and ``ASKING``
  (following a slot that is being migrated). ACL users are per node on a cluster.

With ``password`` the rule starts with ``reset on >password`` (the user is rebuilt from
nothing); without it, with ``on resetkeys resetchannels -@all`` (the user's existing
passwords are kept, everything else it may do is replaced).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, TextIO

from ._admin import shown
from .core.keys import check_prefix, check_shards

#: Commands the Lua scripts call (a test checks this against every ``redis.call`` in lua/).
SCRIPT_COMMANDS = (
    "get",
    "set",
    "del",
    "exists",
    "pexpire",
    "pttl",
    "time",
    "hincrby",
    "hget",
    "hset",
    "hgetall",
    "zadd",
    "zcard",
    "zcount",
    "zrange",
    "zrangebyscore",
    "zrem",
    "zscore",
)
#: Commands fleetcache sends itself, outside the scripts.
CLIENT_COMMANDS = ("evalsha", "script|load", "ping")
#: What redis-py's cluster client needs on each node.
CLUSTER_COMMANDS = ("cluster|slots", "cluster|shards", "command", "asking")

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def glob_escape(text: str) -> str:
    """``text`` as a Redis glob pattern that matches only ``text`` itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _cls(lo: str, hi: str) -> str:
    return lo if lo == hi else f"[{lo}-{hi}]"


def _same_length(lo: str, hi: str) -> list[str]:
    """Globs matching exactly the digit strings of ``len(lo)`` between ``lo`` and ``hi``."""
    if lo == hi:
        return [lo]
    if len(lo) == 1:
        return [_cls(lo, hi)]
    rest = len(lo) - 1
    if lo[0] == hi[0]:
        return [lo[0] + g for g in _same_length(lo[1:], hi[1:])]
    out: list[str] = []
    first, last = int(lo[0]), int(hi[0])
    if lo[1:] != "0" * rest:  # partial first block
        out += [lo[0] + g for g in _same_length(lo[1:], "9" * rest)]
        first += 1
    full_last = last if hi[1:] == "9" * rest else last - 1
    if first <= full_last:
        out.append(_cls(str(first), str(full_last)) + "[0-9]" * rest)
    if full_last < last:  # partial last block
        out += [hi[0] + g for g in _same_length("0" * rest, hi[1:])]
    return out


def number_globs(count: int) -> list[str]:
    """Glob patterns that together match exactly the decimal numbers ``0..count-1`` (no
    leading zeros) and no other string."""
    if count < 1:
        raise ValueError("count must be >= 1")
    out: list[str] = []
    hi = count - 1
    for digits in range(1, len(str(hi)) + 1):
        lo_d = 0 if digits == 1 else 10 ** (digits - 1)
        hi_d = min(hi, 10**digits - 1)
        if lo_d <= hi_d:
            out += _same_length(str(lo_d), str(hi_d))
    return out


#: What Redis refuses anywhere in an ACL rule (``ACL SETUSER`` answers "Syntax error" however
#: the argument is quoted): the C ``isspace`` characters.
ACL_WHITESPACE = frozenset(" \t\n\r\v\f")


def key_patterns(prefix: str, shards: int = 1) -> list[str]:
    """The ACL key patterns (without the ``~``) of namespace ``prefix`` with ``shards``.

    ``ValueError`` for a prefix holding whitespace (space, tab, newline, CR, VT, FF): Redis
    refuses it in a key pattern, and a ``?`` in its place would also grant the keys of
    neighbours (``my?app`` matches ``myXapp``), so no least-privilege rule exists for it.
    """
    prefix = check_prefix(prefix)
    if any(c in ACL_WHITESPACE for c in prefix):
        raise ValueError(
            f"prefix {prefix!r} holds whitespace (space, tab, newline, CR, VT or FF), which "
            "Redis refuses in an ACL key pattern: no rule can grant exactly this namespace's "
            "keys; use a prefix without whitespace (e.g. '_' instead of ' ')"
        )
    p = glob_escape(prefix)
    out: list[str] = []
    for g in number_globs(check_shards(shards)):
        tag = f"{{{p}:{g}}}"
        out += [f"{tag}:e:*", f"{tag}:i", f"{tag}:s", f"{tag}:l:*"]
    out.append(f"{{{p}}}:meta")
    return out


def check_user(user: object) -> str:
    """An ACL user name: a non-empty ``str`` without whitespace or control characters."""
    if not isinstance(user, str):
        raise TypeError(f"user must be str, not {type(user).__name__}")
    if not user or any(c.isspace() or not c.isprintable() for c in user):
        raise ValueError(f"user {user!r} must be non-empty, without spaces or control characters")
    return user


def acl_rules(
    prefix: str,
    user: str,
    *,
    shards: int = 1,
    password: str | None = None,
    cluster: bool = False,
) -> list[str]:
    """The arguments of ``ACL SETUSER`` (user name first) for a tenant of ``prefix``.

    ``TypeError``/``ValueError`` for a bad prefix, shard count, user name or an empty
    password.
    """
    check_user(user)
    if password is not None:
        if not isinstance(password, str):
            raise TypeError("password must be str or None")
        if not password:
            raise ValueError("password must not be empty (omit it to keep the user's own)")
        # reset: no passwords, keys, commands or selectors; resetchannels in case the
        # server's acl-pubsub-default is allchannels
        head = [user, "reset", "on", f">{password}", "resetchannels"]
    else:
        head = [user, "on", "resetkeys", "resetchannels", "-@all"]
    keys = [f"~{k}" for k in key_patterns(prefix, shards)]
    commands = [*CLIENT_COMMANDS, *SCRIPT_COMMANDS, *(CLUSTER_COMMANDS if cluster else ())]
    return [*head, *keys, *(f"+{c}" for c in commands)]


def quote_arg(arg: str) -> str:
    """One argument as ``redis-cli`` reads it: bare when safe, else in double quotes with
    ``\\\\``, ``\\"`` and ``\\xHH`` escapes."""
    if arg and all(c.isascii() and c.isprintable() and c not in " \"'\\" for c in arg):
        return arg
    out = []
    for b in arg.encode("utf-8", "surrogatepass"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def command_line(args: Sequence[str]) -> str:
    """``ACL SETUSER <args...>`` as one ``redis-cli`` line."""
    return " ".join(["ACL", "SETUSER", *(quote_arg(a) for a in args)])


# -- the ``fleetcache acl`` subcommand ------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``fleetcache acl`` on the CLI's subparsers."""
    p = sub.add_parser(
        "acl",
        help="print the ACL SETUSER rule for a least-privilege user of one namespace",
        description="Print one ACL SETUSER command (redis-cli syntax) that lets USER do "
        "everything fleetcache does on namespace PREFIX and nothing else. Nothing is sent: "
        "pipe it into redis-cli (on every node of a cluster).",
    )
    p.add_argument("--prefix", required=True, help="the namespace (key_prefix)")
    p.add_argument("--user", required=True, help="the Redis ACL user name")
    p.add_argument("--shards", type=int, default=1, help="the namespace's shards= (default: 1)")
    p.add_argument(
        "--password",
        default=None,
        help="set this password (the user is reset first); without it the user's existing "
        "passwords are kept",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="also allow what redis-py's cluster client needs (CLUSTER SLOTS/SHARDS, "
        "COMMAND, ASKING)",
    )
    p.set_defaults(func=cmd_acl)


def cmd_acl(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the rule; bad input is exit code 2 with a one-line reason."""
    try:
        rules = acl_rules(
            args.prefix,
            args.user,
            shards=args.shards,
            password=args.password,
            cluster=args.cluster,
        )
    except (TypeError, ValueError) as exc:
        err.write(f"fleetcache: error: {shown(str(exc), backslash=False)}\n")
        return 2
    out.write(command_line(rules) + "\n")
    return 0
