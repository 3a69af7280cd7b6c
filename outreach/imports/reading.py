"""Reading real-world CSV files as a stream: encoding and delimiter detection, header clean-up,
and one record at a time (memory does not grow with the file).

Encodings: a BOM decides (UTF-8 or UTF-16); UTF-16 without a BOM is recognised by its NUL
pattern; otherwise strict UTF-8 is tried on a sample and Windows-1252 is the fallback. The
import run re-checks UTF-8 on the whole file and switches to Windows-1252 if a later byte is
not UTF-8 (see :func:`confirm_encoding`).
"""
from __future__ import annotations

import codecs
import csv
import io
import os
from dataclasses import dataclass
from typing import IO, Callable, Iterator, Union

Source = Union[str, "os.PathLike[str]", Callable[[], IO[bytes]]]

SAMPLE_BYTES = 256 * 1024
SNIFF_CHARS = 32 * 1024
DELIMITERS = ",;\t"
# The csv module's own limit (128 KB per field). It is process-wide, so it is read, never set.
MAX_FIELD_CHARS = csv.field_size_limit()
HEADER_SCAN_RECORDS = 100  # a header further down than this must be chosen by hand
MAX_FOOTER_RECORDS = 20  # single-cell records after a blank one, at the end: a report footer

_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)


class ImportFileError(ValueError):
    """The file cannot be imported at all (empty, binary, no header). ``str(err)`` is for the user."""


@dataclass(frozen=True)
class FileFormat:
    """How to read a file: Python codec name, one-character delimiter, the cleaned header names
    and where the header is (``header_row``: 1-based record number, as Excel numbers rows;
    ``header_line``: physical line). Records before the header (a preamble) are skipped."""

    encoding: str
    delimiter: str
    headers: list[str]
    header_row: int = 1  # the header's row number as a spreadsheet shows it (blank lines count)
    header_line: int = 1  # the physical line where the header starts


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1 µs more per row
class Record:
    """One data row: ``row`` is 1-based among data rows (header and blank lines not counted),
    ``line`` the physical line where it starts, ``sheet_row`` its row number as a spreadsheet
    shows it (every record counts, blank ones and the header included; a quoted multi-line
    cell is one row); ``cells`` is None when the line could not be parsed, with ``error``
    saying why."""

    row: int
    line: int
    cells: list[str] | None
    error: str = ""
    sheet_row: int = 0


def detect_encoding(head: bytes) -> str:
    """Return a codec name for a file starting with ``head`` (a few hundred KB is plenty).

    Raises ImportFileError for an empty or binary file (with what it looks like, when known).
    """
    if not head.strip(b" \t\r\n"):
        raise ImportFileError("The file is empty.")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ImportFileError(f"This is not a CSV file: it looks like {what}. Export or save it as CSV and upload that.")
    sample = head[:4096]
    if b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.3 * len(odd) and even.count(0) == 0:
            return "utf-16-le"
        if even.count(0) > 0.3 * len(even) and odd.count(0) == 0:
            return "utf-16-be"
        raise ImportFileError("This is not a CSV file: it contains binary data. Upload a CSV (comma, semicolon or tab separated text).")
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _check_text(text: str) -> None:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > max(2, len(text) // 100):
        raise ImportFileError("This is not a CSV file: it contains binary data. Upload a CSV (comma, semicolon or tab separated text).")


def _delimited_line(text: str) -> str:
    """The first line holding any candidate delimiter (a preamble line such as "Notes:" has none)."""
    for line in text.splitlines()[:50]:
        if line.strip() and any(d in line for d in DELIMITERS):
            return line
    return ""


def detect_delimiter(text: str) -> str:
    """Return ``,``, ``;`` or tab for the decoded sample ``text`` (csv.Sniffer restricted to those,
    checked against the first line holding a candidate; the most frequent one in that line
    otherwise; ``,`` for a single-column file)."""
    header = _delimited_line(text)
    # Cut the sample at a line end so the sniffer does not see a half row.
    cut = text.rfind("\n", 0, SNIFF_CHARS)
    sample = text[: cut if cut > 0 else SNIFF_CHARS]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter in DELIMITERS and delimiter and delimiter in header:
        return delimiter
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def clean_headers(cells: list[str]) -> list[str]:
    """Strip header names, name blank ones ``column_N`` and suffix duplicates (``Email``, ``Email_2``)."""
    seen: set[str] = set()
    result = []
    for index, cell in enumerate(cells, start=1):
        name = cell.replace("\ufeff", "").strip() or f"column_{index}"
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def open_binary(source: Source) -> IO[bytes]:
    """Open ``source`` for reading bytes: a file system path, or a callable returning a binary
    file object (e.g. ``lambda: storage.open(name, "rb")`` for Django's storage API)."""
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb")
    return source()


class _Readable(io.RawIOBase):
    """A minimal raw stream over any object with ``read(n)`` (a storage File), for TextIOWrapper."""

    def __init__(self, fh):
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._fh.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_text(source: Source, encoding: str, *, strict: bool = False) -> io.TextIOWrapper:
    """Open ``source`` (see :func:`open_binary`) as text for the csv module (universal newlines
    off, as csv requires). Undecodable bytes become U+FFFD unless ``strict``."""
    raw = open_binary(source)
    if not isinstance(raw, io.BufferedIOBase):
        raw = io.BufferedReader(_Readable(raw), 1024 * 1024)
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict" if strict else "replace", newline="")


def _raw_records(reader) -> Iterator[tuple[int, int, list[str] | None, str]]:
    """(sheet_row, line, cells or None, error) for every record, blank ones included."""
    sheet_row = 0
    previous_line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            sheet_row += 1
            yield sheet_row, previous_line + 1, None, f"the line cannot be read as CSV ({err})"
            previous_line = reader.line_num
            continue
        sheet_row += 1
        line = previous_line + 1
        previous_line = reader.line_num
        yield sheet_row, line, cells, ""


def looks_like_header(cells: list[str]) -> bool:
    """True for a record that looks like a header: at least two non-empty cells, all distinct
    (case-insensitively), none an address or a number, none longer than 100 characters."""
    names = [c.strip() for c in cells if c.strip()]
    if len(names) < 2 or len({n.lower() for n in names}) != len(names):
        return False
    return not any("@" in n or len(n) > 100 or n.replace(".", "").replace("-", "").isdigit() for n in names)


def detect_format(source: Source, *, header_row: int | None = None) -> FileFormat:
    """Detect encoding, delimiter and header of the CSV ``source`` from its first 256 KB.

    The header is record ``header_row`` (1-based, as a spreadsheet numbers rows) when given, else
    the first of the first HEADER_SCAN_RECORDS records that :func:`looks_like_header` (so a
    preamble such as LinkedIn's "Notes:" lines is skipped), else the first non-empty record.
    Raises ImportFileError (empty file, binary file, no header row, ``header_row`` blank or past
    the end).
    """
    with open_binary(source) as fh:
        head = fh.read(SAMPLE_BYTES)
    encoding = detect_encoding(head)
    text = codecs.getincrementaldecoder(encoding)("replace").decode(head, final=False)
    _check_text(text[:SNIFF_CHARS])
    delimiter = detect_delimiter(text)
    first = None
    with open_text(source, encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            for sheet_row, line, cells, error in _raw_records(reader):
                if error:
                    if header_row is None or sheet_row >= header_row:
                        raise ImportFileError(f"The header row cannot be read: {error}.")
                    continue
                non_empty = any(c.strip() for c in cells)
                if header_row is not None:
                    if sheet_row < header_row:
                        continue
                    if not non_empty:
                        raise ImportFileError(f"Row {header_row} is empty: pick the row that holds the column names.")
                    return FileFormat(encoding, delimiter, clean_headers(cells), sheet_row, line)
                if non_empty and looks_like_header(cells):
                    return FileFormat(encoding, delimiter, clean_headers(cells), sheet_row, line)
                if non_empty and first is None:
                    first = FileFormat(encoding, delimiter, clean_headers(cells), sheet_row, line)
                if sheet_row >= HEADER_SCAN_RECORDS:
                    break
        except csv.Error as err:
            raise ImportFileError(f"The header row cannot be read: {err}.") from err
    if header_row is not None:
        raise ImportFileError(f"The file has no row {header_row}.")
    if first is None:
        raise ImportFileError("The file is empty.")
    return first


def iter_records(source: Source, fmt: FileFormat, *, strict: bool = False) -> Iterator[Record]:
    """Yield every data row of the file after its header row (``fmt.header_row``), streaming.

    Blank records (and records of only delimiters/whitespace) are skipped and not counted. A
    report footer is ignored: single-cell records (in a file of several columns) after a blank
    record, up to the end of the file (at most MAX_FOOTER_RECORDS of them; Salesforce reports end
    so). Cells are stripped. A line the csv module cannot parse (e.g. a field over 128 KB) is
    yielded with ``cells=None`` and ``error`` set. With ``strict`` a non-decodable byte raises
    UnicodeDecodeError.
    """
    width = len(fmt.headers)
    with open_text(source, fmt.encoding, strict=strict) as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter)
        row = 0
        after_blank = False
        pending: list[tuple[int, int, list[str]]] = []  # a footer, unless a regular record follows
        for sheet_row, line, cells, error in _raw_records(reader):
            if sheet_row <= fmt.header_row:
                continue
            stripped = None
            if cells is not None:
                stripped = [c.strip() for c in cells]
                if not any(stripped):
                    after_blank = True
                    continue
                if ((after_blank or pending) and width > 1 and len(stripped) == 1
                        and len(pending) < MAX_FOOTER_RECORDS):
                    pending.append((sheet_row, line, stripped))
                    continue
            for footer_row, footer_line, footer_cells in pending:  # data after all
                row += 1
                yield Record(row, footer_line, footer_cells, "", footer_row)
            pending.clear()
            after_blank = False
            row += 1
            yield Record(row, line, stripped, error, sheet_row)


def confirm_encoding(source: Source, encoding: str) -> str:
    """Re-check a sample-based UTF-8 guess on the whole file (strict, in 1 MB chunks; ~10 ms per
    10 MB). Returns ``encoding``, or ``cp1252`` when a later byte is not UTF-8 (files with a BOM
    keep their encoding; stray bytes then read as U+FFFD)."""
    if encoding != "utf-8":
        return encoding
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        with open_binary(source) as fh:
            while chunk := fh.read(1024 * 1024):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return encoding


def count_rows(source: Source, fmt: FileFormat) -> int:
    """The number of data rows :func:`iter_records` yields for this file (streams it once)."""
    return sum(1 for _ in iter_records(source, fmt))
