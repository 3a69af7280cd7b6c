"""The error report: one CSV line per rejected row, safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import os

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula (starts with = + - @, tab or CR)
    with an apostrophe (OWASP "CSV injection")."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


class ErrorReport:
    """Appends rejected rows to a UTF-8 (with BOM, for Excel) CSV at ``path``; the header line is
    ``row, line, reason`` followed by the file's own column names. Created on the first write."""

    def __init__(self, path: str, headers: list[str]):
        self.path = path
        self.headers = headers

    def append(self, entries: list[tuple[int, int, str, list[str] | None]]) -> None:
        """Write (row, line, reason, cells-or-None) entries; cells are escaped like every other cell."""
        if not entries:
            return
        new = not os.path.exists(self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8-sig" if new else "utf-8", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow([escape_cell(c) for c in ["row", "line", "reason", *self.headers]])
            for row, line, reason, cells in entries:
                writer.writerow([row, line, escape_cell(reason), *(escape_cell(c) for c in (cells or []))])
