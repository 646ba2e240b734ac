"""A structural diff of two JSON documents: which paths changed, with old and new values.

Not a text diff: the result is a list of :class:`Change`, each naming one path (a tuple
of object keys and list indexes from the root) and what happened there:

``added``         the path exists only in ``new`` (``old`` is :data:`MISSING`)
``removed``       the path exists only in ``old`` (``new`` is :data:`MISSING`)
``changed``       same JSON type at both ends, different value (strings, numbers, booleans)
``type_changed``  the JSON type differs (e.g. ``null`` -> number, object -> list)

Rules:

- JSON types are object, array, string, number, boolean and null. ``1`` and ``1.0`` are
  the same number; ``true`` and ``1`` are not equal (Python's ``True == 1`` is not used).
- Objects are compared key by key: keys of ``old`` in their order, then keys only in
  ``new`` in theirs. Inside a changed object only the differing leaves are reported.
- **Lists are compared by index**: item ``i`` of ``old`` against item ``i`` of ``new``;
  extra items at the end are ``added`` / ``removed``. An insertion at the front therefore
  shows as every later index changed - cheap, predictable and exact, where an alignment
  (LCS) would cost quadratic time on long lists.
- Changes come in document order (depth first). The walk is iterative: deep documents
  cannot exhaust Python's recursion limit.

:func:`diff` returns every change; :func:`diff_capped` keeps the first ``limit`` and
counts the rest, which is what a report of thousands of nodes wants. Values are kept as
they are here; :func:`preview` shortens a value for a report (paths are never shortened).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

PathPart = str | int
Path = tuple[PathPart, ...]
ChangeKind = Literal["added", "removed", "changed", "type_changed"]

#: How many changes :func:`diff_capped` keeps per document pair by default.
DEFAULT_LIMIT: Final = 200
#: Longest value (as compact JSON) :func:`preview` leaves as it is.
PREVIEW_CHARS: Final = 200


class _Missing:
    """The value at a path that does not exist (``old`` of an added path, ``new`` of a
    removed one)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class Change:
    path: Path
    kind: ChangeKind
    old: Any = MISSING
    new: Any = MISSING

    def path_text(self) -> str:
        """The path as people read it: ``items[0].price`` (``$`` for the root)."""
        return format_path(self.path)


@dataclass(frozen=True, slots=True)
class CappedDiff:
    """The first ``len(changes)`` changes of ``total``."""

    changes: list[Change]
    total: int

    @property
    def omitted(self) -> int:
        return self.total - len(self.changes)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


_NUMBERS: Final = (int, float)


def iter_changes(old: Any, new: Any) -> Iterator[Change]:
    """Every change from ``old`` to ``new``, in document order (see the module docs).

    Values are decoded JSON (dict, list, str, int, float, bool, None); tuples count as
    lists. Types are compared by ``type(...) is``: ``bool`` is its own type, so
    ``True`` and ``1`` are a type change, while ``int`` and ``float`` are one number type.
    """
    # A stack of (path, old, new) still to compare; pushed in reverse so they pop in order.
    stack: list[tuple[Path, Any, Any]] = [((), old, new)]
    while stack:
        path, a, b = stack.pop()
        if a is MISSING:
            yield Change(path, "added", MISSING, b)
            continue
        if b is MISSING:
            yield Change(path, "removed", a, MISSING)
            continue
        ta, tb = type(a), type(b)
        if ta is tuple:
            ta = list
        if tb is tuple:
            tb = list
        if ta is not tb and not (ta in _NUMBERS and tb in _NUMBERS):
            yield Change(path, "type_changed", a, b)
        elif ta is dict:
            if _equal(a, b):
                continue
            pending: list[tuple[Path, Any, Any]] = [
                ((*path, key), value, b.get(key, MISSING)) for key, value in a.items()
            ]
            pending += [((*path, key), MISSING, value) for key, value in b.items() if key not in a]
            stack.extend(reversed(pending))
        elif ta is list:
            if _equal(a, b):
                continue
            pending = [((*path, i), x, y) for i, (x, y) in enumerate(zip(a, b, strict=False))]
            pending += [((*path, i), a[i], MISSING) for i in range(len(b), len(a))]
            pending += [((*path, i), MISSING, b[i]) for i in range(len(a), len(b))]
            stack.extend(reversed(pending))
        elif a != b:
            yield Change(path, "changed", a, b)


def _equal(a: Any, b: Any) -> bool:
    """Whether two containers are equal as JSON, decided at C speed where possible, so an
    unchanged subtree is skipped without walking it. Python's ``==`` alone says
    ``True == 1``, so when it says equal the texts are compared too (paid on equal
    subtrees only, once each). Too deep for either (RecursionError): "not known equal",
    and the walk descends."""
    try:
        return bool(a == b) and json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except RecursionError:
        return False


def diff(old: Any, new: Any) -> list[Change]:
    """Every change from ``old`` to ``new`` (empty when they are equal as JSON)."""
    return list(iter_changes(old, new))


def diff_capped(old: Any, new: Any, limit: int = DEFAULT_LIMIT) -> CappedDiff:
    """The first ``limit`` changes from ``old`` to ``new`` and how many there are in all."""
    kept: list[Change] = []
    total = 0
    for change in iter_changes(old, new):
        if total < limit:
            kept.append(change)
        total += 1
    return CappedDiff(kept, total)


def preview(value: Any, max_chars: int = PREVIEW_CHARS) -> tuple[Any, bool]:
    """``(value, False)`` when its compact JSON is at most ``max_chars`` long, else
    ``(the first max_chars characters of that JSON + "…", True)``."""
    if value is None or isinstance(value, bool | int | float):
        return value, False
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value, False
        return value[:max_chars] + "…", True
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) <= max_chars:
        return value, False
    return text[:max_chars] + "…", True


def format_path(path: Path) -> str:
    """``("items", 0, "price")`` -> ``items[0].price``; keys that are not plain names are
    quoted (``["a.b"]``); the root is ``$``."""
    if not path:
        return "$"
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)
