"""Fixture generators: real-world-shaped CSV files written by the tests themselves."""
from __future__ import annotations

import codecs
import csv
import io
import random
from pathlib import Path

HEADER = ["Email", "First Name", "Last Name", "Company", "Job Title", "Phone", "LinkedIn URL", "City", "Industry", "Notes"]


def csv_text(rows: list[list[str]], delimiter: str = ",", header: list[str] | None = HEADER, lineterminator: str = "\r\n") -> str:
    """Rows (and a header) as CSV text with the given delimiter; quotes only where needed."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def person(i: int, *, email: str | None = None, notes: str = "") -> list[str]:
    """One data row matching HEADER."""
    return [email if email is not None else f"Person.{i}@Example{i % 7}.com", f"First{i}", f"Last{i}",
            f"Company {i % 13}", "Head of Sales", f"+33 1 23 45 {i % 100:02d}", f"https://www.linkedin.com/in/p{i}",
            "Zürich" if i % 2 else "Málaga", "Software", notes]


def write(path: Path, text: str, encoding: str = "utf-8", bom: bool = False) -> Path:
    """Write ``text`` encoded (utf-8, utf-8 + BOM, utf-16 with BOM, cp1252...) to ``path``."""
    data = text.encode(encoding)
    if bom and encoding == "utf-8":
        data = codecs.BOM_UTF8 + data
    path.write_bytes(data)
    return path


def generate_bench_file(path: Path, rows: int = 100_000, dup_rate: float = 0.05, seed: int = 1) -> dict:
    """A ``rows``-row, 10-column CSV where ``dup_rate`` of the rows repeat an earlier address
    (in another letter case). Returns {"rows", "duplicates", "unique"}."""
    rng = random.Random(seed)
    duplicates = int(rows * dup_rate)
    unique = rows - duplicates
    dup_positions = set(rng.sample(range(1, rows), duplicates))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        made = 0
        for n in range(rows):
            if n in dup_positions and made:
                i = rng.randrange(made)
                row = person(i)
                row[0] = row[0].upper()
            else:
                row = person(made)
                made += 1
            writer.writerow(row)
    return {"rows": rows, "duplicates": duplicates, "unique": unique}


EXPORT_HEADER = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number", "Company Name",
                 "Job Title", "Contact owner", "Lifecycle Stage", "Lead Status", "Create Date", "Last Activity Date",
                 "City", "State/Region", "Country/Region", "Industry", "Website URL", "LinkedIn URL", "Notes",
                 "Associated Company", "Number of Employees", "Annual Revenue", "Time Zone"]
_FIRST = ["Zoë", "Jürgen", "François", "José", "Łukasz", "Håkon", "Ólafur", "Dmitrïy", "Ägnes", "Çelik", "Søren", "Inès",
          "Anna", "John", "Mary"]
_LAST = ["Müller", "Gonçalves", "Ødegård", "Sánchez", "Wiśniewski", "Dvořák", "Åström", "Lefèvre", "Núñez", "Öztürk",
         "Smith", "Brown", "Jones"]


def generate_export_file(path: Path, rows: int = 100_000, dup_rate: float = 0.05, seed: int = 2) -> dict:
    """A HubSpot-shaped export: 24 columns, every cell quoted, about 70 % of the names non-ASCII,
    a free-text notes column; ``dup_rate`` of the rows repeat an earlier address in another case.
    Returns {"rows", "duplicates", "unique"}."""
    rng = random.Random(seed)
    duplicates = int(rows * dup_rate)
    dup_positions = set(rng.sample(range(1, rows), duplicates))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        made = 0
        for n in range(rows):
            if n in dup_positions and made:
                earlier = rng.randrange(made)  # its address as written when it was made, upper-cased
                email = f"contact.{earlier}@company{earlier % 97}.example.com".upper()
            else:
                email = f"contact.{made}@company{made % 97}.example.com"
                made += 1
            ascii_name = rng.random() >= 0.7
            first = rng.choice(_FIRST[12:] if ascii_name else _FIRST[:12])
            last = rng.choice(_LAST[10:] if ascii_name else _LAST[:10])
            writer.writerow([
                str(10_000_000 + n), first, last, email, f"+49 30 {rng.randrange(10**7):07d}", f"+49 170 {n:07d}",
                f"Société {n % 500} GmbH & Co. KG", rng.choice(["Head of Sales", "Directeur commercial", "CTO"]),
                "Alice Martin", "Lead", "New", "2026-11-30 09:41", "2026-12-01 10:00", rng.choice(["Zürich", "Málaga", "Köln"]),
                "Bayern", "Deutschland", "Computer Software", f"https://www.company{n % 97}.example.com",
                f"https://www.linkedin.com/in/{first.lower()}-{n}", f"Met at the fair, “{first}” asked for a demo; follow up.",
                f"Société {n % 500}", "51-200", "1000000", "Europe/Berlin"])
    return {"rows": rows, "duplicates": duplicates, "unique": rows - duplicates}
