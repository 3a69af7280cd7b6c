"""The error report: one CSV line per rejected row (or row imported without an invalid cell),
safe to open in a spreadsheet, kept through Django's storage API."""
from __future__ import annotations

import codecs
import csv
import io
import tempfile

from django.core.files import File
from django.core.files.storage import Storage

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["spreadsheet row", "line", "outcome", "problem"]
REJECTED = "rejected"
BLANKED = "imported without the cell"


def escape_cell(value: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula (starts with = + - @, tab or CR)
    with an apostrophe (OWASP "CSV injection")."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def unescape_cell(value: str) -> str:
    """The inverse of :func:`escape_cell`: a non-empty ``value`` that is an apostrophe followed by
    one of = + - @, tab or CR loses the apostrophe ("'+33 1 23" → "+33 1 23"), so an export or an
    error report re-imports as it was; any other value is returned as it is."""
    return value[1:] if value[0] == "'" and value[1:2] in _ESCAPED_AFTER else value


_ESCAPED_AFTER = frozenset(FORMULA_PREFIXES)


class ErrorReport:
    """The report of one import: UTF-8 with BOM (for Excel), the header line is
    ``spreadsheet row, line, outcome, problem`` followed by the file's own column names.

    Lines are collected in a local temporary file and stored under ``name`` in ``storage`` by
    :meth:`save` (a storage cannot append); a resumed run starts from the stored report."""

    def __init__(self, storage: Storage, name: str, headers: list[str]):
        self.storage = storage
        self.name = name
        self.headers = headers
        self._tmp = None
        self._dirty = False

    def _file(self):
        if self._tmp is None:
            self._tmp = tempfile.TemporaryFile("w+b")
            if self.storage.exists(self.name):
                with self.storage.open(self.name, "rb") as stored:
                    while chunk := stored.read(1024 * 1024):
                        self._tmp.write(chunk)
            else:
                self._tmp.write(codecs.BOM_UTF8)
                self._write([COLUMNS + list(self.headers)])
        return self._tmp

    def _write(self, rows) -> None:
        buffer = io.StringIO()
        csv.writer(buffer).writerows([[escape_cell(c) for c in row] for row in rows])
        self._tmp.write(buffer.getvalue().encode("utf-8"))

    def append(self, entries: list[tuple[int, int, str, str, list[str] | None]]) -> None:
        """Write (spreadsheet row, line, outcome, problem, cells-or-None) entries; every cell is
        formula-escaped."""
        if not entries:
            return
        self._file()
        self._write([[str(sheet_row), str(line), outcome, problem, *(cells or [])]
                     for sheet_row, line, outcome, problem, cells in entries])
        self._dirty = True

    @property
    def pending(self) -> bool:
        """True when lines were added since the last :meth:`save`."""
        return self._dirty

    def save(self) -> None:
        """Store the report (replacing the stored one) if lines were added since the last save."""
        if not self._dirty:
            return
        self._tmp.flush()
        self._tmp.seek(0)
        if self.storage.exists(self.name):
            self.storage.delete(self.name)
        saved = self.storage.save(self.name, File(self._tmp, name=self.name))
        assert saved == self.name, (saved, self.name)
        self._tmp.seek(0, io.SEEK_END)
        self._dirty = False

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None
