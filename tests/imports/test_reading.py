"""Real-world file shapes: encodings, delimiters, quoting, blank lines, headers, binary and empty files."""
from __future__ import annotations

import codecs

import pytest
from django.core.exceptions import ValidationError

from outreach.imports.reading import FileFormat, clean_headers, confirm_encoding, detect_format, iter_records
from outreach.models import Contact

from .fixtures import HEADER, csv_text, person

ROWS = [person(i) for i in range(5)]


@pytest.mark.parametrize("encoding,bom,expected", [
    ("utf-8", False, "utf-8"),
    ("utf-8", True, "utf-8-sig"),
    ("utf-16", False, "utf-16"),        # Python's utf-16 codec writes a BOM
    ("utf-16-le", False, "utf-16-le"),  # no BOM: recognised by its NUL bytes
    ("cp1252", False, "cp1252"),
])
def test_each_encoding_imports_accents_intact(run_import, tmp_path, encoding, bom, expected):
    text = csv_text(ROWS + [person(9, email="Zoë.Müller@Exämple.com")])
    data = text.encode(encoding)
    if bom:
        data = codecs.BOM_UTF8 + data
    if encoding == "cp1252":
        text = csv_text(ROWS + [person(9, email="zoe@example.com")])
        data = text.encode("cp1252")
    job = run_import(data)
    assert job.encoding == expected
    assert job.created_count == 6
    assert job.headers == HEADER  # no BOM left in the first header
    assert Contact.objects.filter(team=job.team, custom_fields__City="Zürich").count() == 3
    assert Contact.objects.filter(team=job.team, custom_fields__City="Málaga").count() == 3


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_each_delimiter_is_detected(run_import, delimiter):
    job = run_import(csv_text(ROWS, delimiter).encode())
    assert job.delimiter == delimiter
    assert job.created_count == 5
    contact = Contact.objects.get(team=job.team, email="person.1@example1.com")
    assert (contact.first_name, contact.company, contact.title) == ("First1", "Company 1", "Head of Sales")


def test_semicolon_file_with_commas_inside_values(run_import):
    rows = [person(i) for i in range(3)]
    rows[1][3] = "Acme, Inc."
    job = run_import(csv_text(rows, ";").encode("cp1252"))
    assert job.delimiter == ";"
    assert Contact.objects.get(team=job.team, email="person.1@example1.com").company == "Acme, Inc."


def test_embedded_newlines_blank_lines_whitespace_and_mixed_case(run_import):
    text = (
        "\r\n\r\n"
        "  Email , First Name ,Notes\r\n"
        '  MiXeD.Case@Example.COM  ,  Ann  ,"line one\r\nline two, with comma\r\nline ""three"""\r\n'
        "\r\n"
        ",,\r\n"
        "second@example.com,Bob,\r\n"
        "\r\n"
    )
    job = run_import(text.encode())
    assert job.total_rows == 2 and job.created_count == 2
    ann = Contact.objects.get(team=job.team, email="mixed.case@example.com")
    assert ann.first_name == "Ann"
    assert ann.custom_fields["Notes"] == 'line one\r\nline two, with comma\r\nline "three"'


def test_duplicate_header_names_are_suffixed(run_import):
    text = "Email,Phone,Phone,email\r\na@example.com,111,222,b@example.com\r\n"
    job = run_import(text.encode())
    assert job.headers == ["Email", "Phone", "Phone_2", "email_2"]
    contact = Contact.objects.get(team=job.team)
    assert contact.email == "a@example.com" and contact.phone == "111"
    assert contact.custom_fields == {"Phone_2": "222", "email_2": "b@example.com"}


def test_clean_headers_names_blank_columns():
    assert clean_headers(["\ufeffEmail", "", " a ", "A"]) == ["Email", "column_2", "a", "A_2"]


def test_header_only_file_imports_nothing(run_import):
    job = run_import(b"Email,First Name\r\n")
    assert job.total_rows == 0 and job.counts()["created"] == 0


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"\r\n \r\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20, "PNG"),
    (b"PK\x03\x04" + bytes(range(256)) * 20, "Excel"),
    (bytes(range(256)) * 40, "binary"),
])
def test_empty_and_binary_files_are_refused_before_anything_is_written(team, run_import, media_root, data, message):
    from outreach.imports.services import contacts_import
    import io

    with pytest.raises(ValidationError) as err:
        contacts_import(team=team, file=io.BytesIO(data), filename="contacts.csv")
    assert message in " ".join(err.value.messages)
    assert not Contact.objects.exists()
    assert not list(media_root.rglob("*.csv")), "the refused upload is not kept"


def test_late_non_utf8_byte_switches_to_cp1252(tmp_path):
    path = tmp_path / "late.csv"
    body = "Email,Company\r\n" + "".join(f"p{i}@example.com,Plain{i}\r\n" for i in range(20000))
    path.write_bytes(body.encode() + "last@example.com,Café\r\n".encode("cp1252"))
    fmt = detect_format(str(path))
    assert fmt.encoding == "utf-8"  # the first 256 KB are plain ASCII
    assert confirm_encoding(str(path), fmt.encoding) == "cp1252"


def test_late_non_utf8_byte_imports_as_cp1252(run_import):
    body = "Email,Company\r\n" + "".join(f"p{i}@example.com,Plain{i}\r\n" for i in range(20000))
    job = run_import(body.encode() + "last@example.com,Café\r\n".encode("cp1252"), mapping={"Company": "company"})
    assert job.encoding == "cp1252"
    assert Contact.objects.get(team=job.team, email="last@example.com").company == "Café"


def test_unreadable_line_is_a_rejected_row(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text('Email,Notes\r\na@example.com,"' + "x" * (1024 * 1024 + 10) + '"\r\nb@example.com,ok\r\n')
    records = list(iter_records(str(path), FileFormat("utf-8", ",", ["Email", "Notes"])))
    assert records[0].cells is None and "cannot be read as CSV" in records[0].error
    assert records[-1].cells == ["b@example.com", "ok"]
