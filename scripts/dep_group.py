"""Print the requirements of a PEP 735 dependency group of ``pyproject.toml``, one a line.

    python scripts/dep_group.py dev

The fallback of ``make install`` for a pip older than 25.1 (which has no
``pip install --group``): ``pip install $(python scripts/dep_group.py dev)``. Follows
``{include-group = "..."}`` entries; needs Python >= 3.11 (``tomllib``) or ``tomli``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(groups: dict[str, list[Any]], name: str, seen: tuple[str, ...] = ()) -> list[str]:
    """The requirement strings of group ``name``, included groups expanded in place."""
    if name in seen:
        raise SystemExit(f"dependency group {name!r} includes itself")
    if name not in groups:
        raise SystemExit(f"no dependency group {name!r} in {PYPROJECT.name}")
    out: list[str] = []
    for item in groups[name]:
        if isinstance(item, str):
            out.append(item)
        else:
            out += requirements(groups, item["include-group"], (*seen, name))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    print("\n".join(requirements(data.get("dependency-groups", {}), argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
