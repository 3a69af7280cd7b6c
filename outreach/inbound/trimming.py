"""Reply trimming: the new text of a reply, without quoted history and signature.

Uses **mail-parser-reply** (``mailparser_reply``, maintained, MIT; pure Python with no
dependencies, installs on Python 3.11): it recognises the quote headers of Gmail, Outlook and
Apple Mail ("On … wrote:", "-----Original Message-----", "From: … Sent: …") in many languages
and splits signatures. email-reply-parser (last release 2020) and talon (2017, pins old
scikit-learn) are unmaintained; quotequail marks quotes but leaves signatures. The full text
stays on the InboundMessage and is shown on the message page.
"""
from __future__ import annotations

from mailparser_reply import EmailReplyParser

#: Languages whose quote headers are recognised (mail-parser-reply's codes).
LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs"]
MAX_INPUT_CHARS = 50_000

_parser = EmailReplyParser(languages=LANGUAGES)


def trim_reply(text: str) -> str:
    """The latest reply of ``text`` (plain text), signature and quoted history removed; the
    stripped original when the library finds nothing (or fails on odd input)."""
    text = (text or "")[:MAX_INPUT_CHARS]
    if not text.strip():
        return ""
    try:
        mail = _parser.read(text=text)
        latest = mail.replies[0].body if mail.replies else ""
    except Exception:  # the library's regexes on hostile input: fall back to the text itself
        latest = ""
    return (latest or text).strip()[:5000]
