"""Named parameters (``:name``) -> PostgreSQL's positional ``$n``.

A small scanner, not a regex over the whole text: ``:name`` inside string literals,
quoted identifiers, dollar-quoted bodies and comments is left alone, and ``::type`` casts
are not parameters.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_POSITIONAL = re.compile(r"\$(\d+)")


class SqlParamError(ValueError):
    pass


def to_positional(sql: str) -> tuple[str, list[str]]:
    """Rewrite ``:name`` placeholders as ``$1..$n``; return the SQL and the names in order
    (a name used twice maps to the same ``$n``)."""
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = _skip_quoted(sql, i, c)
            out.append(sql[i:j])
            i = j
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise SqlParamError("unterminated /* comment")
            out.append(sql[i : j + 2])
            i = j + 2
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)):
            tag = m.group(0)
            j = sql.find(tag, m.end())
            if j < 0:
                raise SqlParamError(f"unterminated dollar-quoted string {tag}")
            out.append(sql[i : j + len(tag)])
            i = j + len(tag)
        elif c == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == ":" and (m := _IDENT.match(sql, i + 1)):
            name = m.group(0)
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out), names


def positional_count(sql: str) -> int:
    """Highest ``$n`` outside literals and comments (0 when none)."""
    rewritten, _ = _strip(sql)
    return max((int(m.group(1)) for m in _POSITIONAL.finditer(rewritten)), default=0)


def _strip(sql: str) -> tuple[str, None]:
    # Reuse the scanner: blank out literals/comments so $n inside them do not count.
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            i = _skip_quoted(sql, i, c)
            out.append(" ")
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)):
            j = sql.find(m.group(0), m.end())
            i = n if j < 0 else j + len(m.group(0))
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out), None


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    j = i + 1
    while True:
        k = sql.find(quote, j)
        if k < 0:
            raise SqlParamError(f"unterminated {quote} quote")
        if sql.startswith(quote * 2, k):  # doubled quote escapes itself
            j = k + 2
            continue
        return k + 1
