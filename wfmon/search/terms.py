"""An execution's search path terms, computed where its rows are built (the sync worker).

The definition is the database's (migrations 0401 and 0540, ``wfmon_search_term``,
``wfmon_json_term_value``, ``wfmon_json_leaf_bodies``; 0610's ``wfmon_search_input``), and
this module follows it exactly:

- a term is the first 64 bits of ``md5(kind || ':' || body)``, read as a signed bigint;
- ``kind`` is ``'i'`` for input values and ``'o'`` for output values;
- ``body`` is ``path=value`` for every scalar leaf below the root of a document: ``path``
  joins the object keys by ``.`` with ``*`` for any list position; ``value`` is ``'s'`` +
  the string, ``'n'`` + the number without trailing zeros, ``'b'`` + ``true``/``false``,
  ``'z'`` for null;
- the input documents are the execution's input as search sees it (the builder's own
  workflow definition left out) and every component's input; the output documents are the
  execution's output and every component's output.

Why here as well: the walk and the md5s were ~2.5 ms of PostgreSQL CPU per first sync of a
20-component execution (docs/architecture/execution-sync.md), 0.2-0.3 ms in Python. The sync
gives the terms it computed to the database's refresh (migrations/0620), which uses them
only for the rows that same statement wrote. ``tests/search/test_terms.py`` checks that
both definitions give the same terms on awkward values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from wfmon.model import BUILDER_WORKFLOW_TYPE

try:  # CPython's own MD5: ~0.3 µs for a short body, against ~0.7-0.9 µs through OpenSSL
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import md5 as _md5

#: Integers longer than this (~3,600 digits) are left to the database: Python's ``str`` of
#: an int is limited to 4,300 digits, and slow long before that.
_MAX_INT_BITS: Final = 12_000


class NotPlainJson(ValueError):
    """A value the terms cannot be computed for here (not a JSON value, a non-finite
    float): the database computes them instead."""


def search_input(workflow_type: str, value: object) -> object:
    """The execution input as search sees it (0610's ``wfmon_search_input``): for the
    builder's workflow, the input without its first argument's ``definition``."""
    if workflow_type != BUILDER_WORKFLOW_TYPE or not isinstance(value, list) or not value:
        return value
    first = value[0]
    if not isinstance(first, dict) or "definition" not in first:
        return value
    return [{k: v for k, v in first.items() if k != "definition"}, *value[1:]]


def _number_text(value: int | float) -> str:
    """PostgreSQL's ``trim_scale(numeric)::text`` of the JSON number Python writes."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise NotPlainJson("a non-finite number")
    if value == 0:
        return "0"  # numeric has no negative zero
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _scalar_text(value: object) -> str:
    if value is None:
        return "z"
    if value is True:
        return "btrue"
    if value is False:
        return "bfalse"
    if type(value) is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise NotPlainJson("a number too long to hash here")
        return "n" + str(value)
    if type(value) is float:
        return "n" + _number_text(value)
    raise NotPlainJson(f"a {type(value).__name__}")


def _add_leaves(path: str, value: object, into: set[str]) -> None:
    """Add the ``path=value`` bodies of ``value`` (found at ``path``) and its leaves."""
    if type(value) is str:  # the usual leaf, first
        into.add(f"{path}=s{value}")
    elif type(value) is dict:
        for key, child in value.items():
            if type(key) is not str:
                raise NotPlainJson("an object key that is not a string")
            _add_leaves(f"{path}.{key}", child, into)
    elif type(value) is list:
        path = f"{path}.*"
        for child in value:
            _add_leaves(path, child, into)
    else:
        into.add(f"{path}={_scalar_text(value)}")


def _document_leaves(document: object, into: set[str]) -> None:
    """Add the bodies of a document's scalar leaves (the root is no leaf: no path)."""
    if type(document) is dict:
        for key, child in document.items():
            if type(key) is not str:
                raise NotPlainJson("an object key that is not a string")
            _add_leaves(key, child, into)
    elif type(document) is list:
        for child in document:
            _add_leaves("*", child, into)
    elif document is not None and type(document) not in (str, int, float, bool):
        raise NotPlainJson(f"a {type(document).__name__}")


def term(kind: str, body: str) -> int:
    """``wfmon_search_term(kind, body)``."""
    digest = _md5(f"{kind}:{body}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def execution_terms(
    workflow_type: str,
    execution_input: object,
    execution_output: object,
    components: Iterable[tuple[object, object]],
) -> list[int]:
    """The sorted, distinct path terms of an execution whose input and output are these
    and whose components have these ``(input, output)`` values (``None``: none stored).
    Raises :class:`NotPlainJson` when a value is not plain JSON."""
    inputs: set[str] = set()
    outputs: set[str] = set()
    _document_leaves(search_input(workflow_type, execution_input), inputs)
    _document_leaves(execution_output, outputs)
    for component_input, component_output in components:
        _document_leaves(component_input, inputs)
        _document_leaves(component_output, outputs)
    terms = {term("i", b) for b in inputs}
    terms.update(term("o", b) for b in outputs)
    return sorted(terms)
