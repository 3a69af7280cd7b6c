"""An import row and its COPY text, with no Django model behind them (the child process that
parses big files imports this without setting up the apps; see ``outreach.imports.parsing``)."""
from __future__ import annotations

from json.encoder import encode_basestring as _json_str
from typing import NamedTuple


class Row(NamedTuple):
    """A valid row: lower-cased ``email``; non-blank ``values`` (contact columns), ``custom`` and
    ``lead`` (lead columns) cells. A named tuple: rows parsed in a child process are pickled, and
    a tuple unpickles several times faster than a dataclass."""

    row: int
    line: int
    email: str
    values: dict[str, str]
    custom: dict[str, str]
    lead: dict[str, str]
    # PostgreSQL: COPY text of the row as a new contact (values_tail), prepared by the parser.
    contact_tail: str = ""


def copy_text(value: str) -> str:
    """A value escaped for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def json_object(custom: dict[str, str]) -> str:
    """JSON text of a flat ``{str: str}`` dict (what ``json.dumps(custom, ensure_ascii=False)``
    returns, with the C string encoder called directly: several times faster per row)."""
    return "{" + ", ".join([f"{_json_str(k)}: {_json_str(v)}" for k, v in custom.items()]) + "}"


def values_tail(email: str, values: dict[str, str], custom: dict, columns: tuple[str, ...]) -> str:
    """COPY text of ``email``, the ``columns`` values ("" when missing) and the custom fields' JSON.

    The row is joined and checked once; only a row holding a backslash, tab or line break is
    escaped field by field (about a third of the CPU of escaping every field)."""
    get = values.get
    fields = [email, *[get(c, "") for c in columns]]
    line = "\t".join(fields)
    if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != len(columns):
        line = "\t".join([copy_text(f) for f in fields])
    if not custom:
        return line + "\t{}"
    data = json_object(custom)
    return line + "\t" + (data.replace("\\", "\\\\") if "\\" in data else data)
