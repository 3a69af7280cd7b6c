"""The import's fast path for plain ASCII addresses agrees with email-validator on every address
of a large generated corpus of valid and invalid shapes."""
from __future__ import annotations

import random

from django.core.exceptions import ValidationError

from outreach.imports.emails import EmailChecker
from outreach.validation import normalize_email

ATOM = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
LOCAL_SHAPES = [
    "john", "John.Doe", "j", "a.b.c", "first+tag", "o'neil", "x_y-z", "{weird}", "a/b", "user=1", "#hash", "~tilde",
    ".lead", "trail.", "dou..ble", "sp ace", '"quoted"', '"q u"', "a@b", "back\\slash", "comma,", "semi;", "colon:",
    "paren(", "br[ack]", "<angle>", "ünï", "日本", "", "a" * 64, "a" * 65, "a." * 32, "é", "tab\t", "ctl\x01",
]
DOMAIN_SHAPES = [
    "example.com", "Example.COM", "sub.example.org", "a-b.example.net", "x.io", "example.co.uk", "xn--bcher-kva.example",
    "-lead.example.com", "trail-.example.com", "exa_mple.com", "example..com", ".example.com", "example.com.",
    "example", "localhost", "example.test", "example.local", "example.invalid", "123.example.com", "example.123",
    "[127.0.0.1]", "[IPv6:::1]", "ex ample.com", "exämple.com", "bücher.example", "a" * 63 + ".com", "a" * 64 + ".com",
    ".".join(["a" * 60] * 4) + ".com", "e.x.a.m.p.l.e.com", "example.c", "example.museum", "xn--.com", "EXAMPLE.ORG",
    "1.2.3.4", "example.com:25", "例え.テスト", "x--y.example.com", "xn--ls8h.la", "example.verylongtldthatdoesnotexist",
]


def _corpus(n: int, seed: int = 7):
    rng = random.Random(seed)
    for local in LOCAL_SHAPES:
        for domain in DOMAIN_SHAPES:
            yield f"{local}@{domain}"
    yield from ["", "@", "a@", "@example.com", "plain", "a@@example.com", " padded@example.com ", "A@B@C.com",
                "x@example.com\n", "x\r@example.com", "x@exa\x00mple.com"]
    for _ in range(n):
        local = "".join(rng.choice(ATOM + "." * 4 + "\"() ,:;<>@[\\]é") for _ in range(rng.randint(0, 70)))
        labels = ["".join(rng.choice("abcxyz019-_ÄéA") for _ in range(rng.randint(0, 20))) for _ in range(rng.randint(1, 4))]
        tld = rng.choice(["com", "org", "io", "test", "local", "c", "123", "museum", "ÄÖ", ""])
        yield f"{local}@{'.'.join(labels + [tld])}"
        yield f"{rng.choice(LOCAL_SHAPES)}@{rng.choice(DOMAIN_SHAPES)}".swapcase()


def _verdict(check, value):
    try:
        return "ok", check(value)
    except ValidationError:
        return "error", None


def test_fast_path_agrees_with_email_validator_on_a_large_corpus():
    checker = EmailChecker()
    checked = disagreements = 0
    examples = []
    valid = 0
    for value in _corpus(25_000):
        expected = _verdict(normalize_email, value)
        got = _verdict(checker, value)
        checked += 1
        valid += expected[0] == "ok"
        if got != expected:
            disagreements += 1
            if len(examples) < 10:
                examples.append((value, expected, got))
    assert checked > 50_000 and valid > 2_000, (checked, valid)  # both shapes are well represented
    assert disagreements == 0, examples


def test_fast_path_error_messages_are_email_validators():
    checker = EmailChecker()
    for value in ["a..b@example.com", "a@example.test", "x" * 65 + "@example.com", "a@-x.com"]:
        try:
            checker(value)
        except ValidationError as err:
            fast = err.messages
        try:
            normalize_email(value)
        except ValidationError as err:
            assert fast == err.messages
