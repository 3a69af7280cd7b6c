"""Parsing and validating import rows: CSV records → :class:`~outreach.imports.writing.Row` batches.

:class:`RowParser` turns records (``outreach.imports.reading.iter_records``) into batches of valid
rows (with their COPY text prepared) and error-report entries. It runs either in a thread of the
importing process or — for big files, so both cores work while PostgreSQL writes — in a child
Python process (:class:`ChildParser`): the parent streams the file's bytes to the child's stdin
(read through Django's storage API, so the child needs no file access) and reads pickled batches
back from its stdout. Each batch says how many bytes of the file the child has read, which
gives the progress bar its percentage (the rows are not counted beforehand, which would cost a
second pass over the file).

The child is a plain ``subprocess`` (``python -m outreach.imports.child``), not
``multiprocessing``: a Celery prefork pool process is daemonic and may not start
``multiprocessing`` children. It never touches the database. Frames on its stdout are an 8-byte
big-endian length and a pickle: ``("batch", rows, entries, rejected, blanked, bytes_read)``,
``("end",)`` or ``("error", kind, message)``.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Callable, Iterable, Iterator

from django.core.exceptions import ValidationError

from .emails import EmailChecker
from .reading import FileFormat, ImportFileError, Record, iter_records
from .report import BLANKED, REJECTED, unescape_cell
from .rows import Row, values_tail
from ..validation import normalize_http_url, validate_zone

FEED_CHUNK = 1 << 20  # bytes per write to a child's stdin

#: A batch: (valid rows, report entries (sheet row, line, outcome, problem, cells), rejected, blanked).
Batch = tuple[list[Row], list[tuple[int, int, str, str, "list[str] | None"]], int, int]


def _time_zone(value: str) -> str:
    """An IANA time zone name as given (e.g. "Europe/Paris"); ValidationError otherwise."""
    validate_zone(value.strip())
    return value.strip()


#: Cells checked like the forms check them; a failing cell is left out and listed in the report.
CELL_CHECKS = {"linkedin_url": normalize_http_url, "time_zone": _time_zone}


def parser_spec(*, headers: list[str], mapping: list[str], postgres: bool) -> dict:
    """What :class:`RowParser` needs, as plain data (it is pickled to a child process, which then
    needs no model): the width, the email column, (index, target, max length, label) of the
    contact columns and vendor ids (VALUE_COLUMNS) and of the lead columns, (index, name) of the custom ones, the contact columns' COPY order,
    and whether to prepare the COPY text (``postgres``). Raises ValidationError for a bad mapping."""
    from .mapping import CUSTOM, TARGETS, validate_mapping
    from .writing import CONTACT_COLUMNS, MAX_LENGTH, VALUE_COLUMNS

    mapping = validate_mapping(headers, mapping)
    return {
        "width": len(headers), "email_index": mapping.index("email"),
        # Row.values: the contact columns and the contact's vendor ids; COPY writes only the former.
        "contact_cols": [(i, t, MAX_LENGTH[t], TARGETS[t]) for i, t in enumerate(mapping) if t in VALUE_COLUMNS],
        "lead_cols": [(i, t[5:], MAX_LENGTH[t], TARGETS[t]) for i, t in enumerate(mapping) if t.startswith("lead.")],
        "custom_cols": [(i, headers[i]) for i, t in enumerate(mapping) if t == CUSTOM],
        "columns": tuple(CONTACT_COLUMNS), "postgres": postgres,
    }


class RowParser:
    """Validates records against a mapping; ``spec`` from :func:`parser_spec`. With
    ``spec["postgres"]`` each row's COPY text (``Row.contact_tail``) is prepared here, off the writer."""

    def __init__(self, spec: dict):
        self.width = spec["width"]
        self.email_index = spec["email_index"]
        self.contact_cols = spec["contact_cols"]
        self.lead_cols = spec["lead_cols"]
        self.custom_cols = spec["custom_cols"]
        self.columns = spec["columns"]
        self.postgres = spec["postgres"]
        self.check_email = EmailChecker()

    def parse(self, record: Record) -> tuple[Row | None, str]:
        """(Row, "") for a valid record, (Row, problem) for a row imported without an invalid
        cell (the cell is left out, like a form would refuse it), (None, problem) for a
        rejected one. Problems are plain sentences for the error report. A value that
        :func:`~outreach.imports.report.escape_cell` escaped (an apostrophe before = + - @, tab or
        CR) is taken without it (:func:`~outreach.imports.report.unescape_cell`), so the CSV
        exports and error reports round-trip."""
        cells = record.cells
        if cells is None:
            return None, record.error
        if len(cells) > self.width and any(cells[self.width:]):
            return None, f"The row has {len(cells)} values but the header has {self.width} columns."
        if len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        raw_email = cells[self.email_index]
        if not raw_email:
            return None, "The email address is missing."
        try:
            email = self.check_email(raw_email)
        except ValidationError as err:
            return None, " ".join(err.messages)
        values, lead, custom = {}, {}, {}
        left_out = []
        for index, target, limit, label in self.contact_cols:
            value = cells[index]
            if value:
                value = unescape_cell(value)
                if len(value) > limit:
                    return None, f"{label} is longer than {limit} characters."
                if target in CELL_CHECKS:
                    try:
                        value = CELL_CHECKS[target](value)
                    except ValidationError as err:
                        left_out.append(f"{label} left out: {' '.join(err.messages)}")
                        continue
                values[target] = value
        for index, name, limit, label in self.lead_cols:
            value = cells[index]
            if value:
                value = unescape_cell(value)
                if len(value) > limit:
                    return None, f"{label} is longer than {limit} characters."
                lead[name] = value
        for index, key in self.custom_cols:
            value = cells[index]
            if value:
                value = unescape_cell(value)
                custom[key] = value
        tail = values_tail(email, values, custom, self.columns) if self.postgres else ""
        return Row(record.sheet_row, record.line, email, values, custom, lead, tail), " ".join(left_out)

    def batches(self, records: Iterable[Record], *, skip: int = 0, rows: int = 5000, chars: int = 2_000_000) -> Iterator[Batch]:
        """Yield batches of up to ``rows`` records (fewer for wide rows: about ``chars`` characters
        of COPY text, so memory stays flat) after data row ``skip`` (a resumed import)."""
        limit_rows, limit_chars = rows, chars
        rows: list[Row] = []
        entries: list = []
        rejected = blanked = size = 0
        for record in records:
            if record.row <= skip:
                continue
            row, problem = self.parse(record)
            if row is None:
                rejected += 1
                entries.append((record.sheet_row, record.line, REJECTED, problem, record.cells))
            else:
                rows.append(row)
                size += len(row.contact_tail)
                if problem:
                    blanked += 1
                    entries.append((record.sheet_row, record.line, BLANKED, problem, record.cells))
            size += 100  # the row's objects
            if len(rows) + rejected >= limit_rows or size >= limit_chars:
                yield rows, entries, rejected, blanked
                rows, entries, rejected, blanked, size = [], [], 0, 0, 0
        if rows or rejected:
            yield rows, entries, rejected, blanked


# --- the child process -------------------------------------------------------------------------------


class ChildParserError(RuntimeError):
    """The parsing process failed for a reason other than the file (it died, or a bug)."""


def _write_frame(out: IO[bytes], message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(struct.pack(">Q", len(data)))
    out.write(data)
    out.flush()


def _read_frame(stream: IO[bytes]) -> tuple | None:
    """The next message, or None at the end of the stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack(">Q", head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class _CountingReader(io.RawIOBase):
    """A raw stream over ``fh`` that counts the bytes read (``.count``)."""

    def __init__(self, fh):
        self._fh, self.count = fh, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._fh.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class ChildParser:
    """One child process that parses the file ``open_source()`` returns (a thread of this process
    feeds it) and yields its batches.

    ``spec``: {"format": FileFormat fields, "parser": :func:`parser_spec`, "skip", "rows", "chars",
    "settings": {name: value} for ``settings.configure`` (USE_I18N, LANGUAGE_CODE)}. Iterate
    :meth:`messages` for its frames; :meth:`close` (always call it) stops the child and its feeder.
    Raises ChildParserError when the child dies without saying why, ImportFileError for a file
    it cannot read."""

    def __init__(self, *, open_source: Callable[[], IO[bytes]], spec: dict):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen([sys.executable, "-m", "outreach.imports.child"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, close_fds=True)
        self._errors: list[bytes] = []
        self._stderr = threading.Thread(target=lambda: self._errors.append(self.proc.stderr.read()),
                                        name="import-parser-stderr", daemon=True)
        self._stderr.start()
        _write_frame(self.proc.stdin, (spec,))
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, args=(open_source,), name="import-parser-feed", daemon=True)
        self._feeder.start()

    def _feed(self, open_source) -> None:
        try:
            with open_source() as fh:
                while not self._stop.is_set() and (chunk := fh.read(FEED_CHUNK)):
                    self.proc.stdin.write(chunk)
        except (BrokenPipeError, ValueError, OSError):  # the child stopped reading (it ended or was closed)
            pass
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def messages(self) -> Iterator[tuple]:
        """The child's messages up to and including ``("end",)``; raises for ``("error", ...)``."""
        while True:
            message = _read_frame(self.proc.stdout)
            if message is None:
                code = self.proc.wait()
                self._stderr.join(timeout=5)
                detail = b"".join(self._errors).decode("utf-8", "replace").strip().splitlines()[-3:]
                raise ChildParserError(f"The parsing process stopped (exit code {code}). " + " ".join(detail))
            if message[0] == "error":
                kind, text = message[1], message[2]
                raise ImportFileError(text) if kind == "file" else ChildParserError(text)
            yield message
            if message[0] == "end":
                return

    def close(self) -> None:
        """Stop the child (if still running) and the feeding thread; wait for both."""
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._feeder.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.join(timeout=5)


def child_main() -> None:
    """The child (``outreach.imports.child``): read the spec frame, then parse or count the CSV
    bytes on stdin, writing frames to the original stdout (fd 1 is pointed at stderr, so a stray
    print cannot corrupt them). Django is set up with the parent's language settings and no
    app (the messages are translated like the parent's; nothing else is needed: ~0.1 s instead of
    ~2 s of CPU for the project's whole ``django.setup()``)."""
    import django
    from django.conf import settings

    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    (spec,) = _read_frame(sys.stdin.buffer)
    settings.configure(**spec["settings"])
    django.setup()
    stdin = _CountingReader(sys.stdin.buffer)
    try:
        fmt = FileFormat(**spec["format"])
        records = iter_records(lambda: stdin, fmt)
        parser = RowParser(spec["parser"])
        for batch in parser.batches(records, skip=spec["skip"], rows=spec["rows"], chars=spec["chars"]):
            _write_frame(stdout, ("batch", *batch, stdin.count))
        _write_frame(stdout, ("end",))
    except BrokenPipeError:  # the parent closed us
        return
    except (ImportFileError, ValidationError, UnicodeDecodeError) as err:
        _write_frame(stdout, ("error", "file", " ".join(getattr(err, "messages", [str(err)]))))
    except Exception as err:  # a bug: the parent reports it
        _write_frame(stdout, ("error", "bug", f"{err.__class__.__name__}: {err}"))
