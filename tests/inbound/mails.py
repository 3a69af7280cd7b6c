"""Raw inbound mails for the tests, in the shapes real servers produce.

Bounce layouts follow RFC 3464 (multipart/report; Gmail and Office 365 send this) and the
plain-text layouts of Postfix, Exim, legacy Exchange, Gmail's "Address not found" text and
Yahoo's "Sorry, we were unable to deliver". Each function returns bytes for IMAP APPEND.
"""
from __future__ import annotations

import itertools

_n = itertools.count(1)
DATE = "Tue, 01 Dec 2026 10:00:00 +0000"


def _mid(domain="mail.example.org"):
    return f"<in-{next(_n)}@{domain}>"


def _crlf(text: str) -> bytes:
    return text.strip("\n").replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n"


def _returned(recipient: str, original_message_id: str, *, body: bool = True) -> str:
    """The returned original message (or only its headers) as MTAs attach or quote it."""
    head = f"From: Ann Lee <ann@example.com>\nTo: {recipient}\nSubject: Intro\nMessage-ID: {original_message_id}\n"
    return head + (f"Date: {DATE}\n\nHi, would you like a demo?\n" if body else "")


def reply(*, to="ann@example.com", sender="Bob Stone <bob@example.org>", subject="Re: Intro", in_reply_to="",
          references="", body="Yes, let's talk on Tuesday.", quoted="Hi Bob, would you like a demo?", message_id=None,
          extra="") -> bytes:
    headers = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {DATE}",
               f"Message-ID: {message_id or _mid()}"]
    if in_reply_to:
        headers.append(f"In-Reply-To: {in_reply_to}")
    if references:
        headers.append(f"References: {references}")
    if extra:
        headers.append(extra.strip())
    text = (f"{body}\n\nBest,\nBob\n\nOn Mon, Nov 30, 2026 at 10:00 AM Ann Lee <{to}> wrote:\n"
            + "\n".join(f"> {line}" for line in quoted.splitlines()))
    return _crlf("\n".join(headers) + "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + text)


def html_reply(*, in_reply_to, to="ann@example.com", sender="bob@example.org") -> bytes:
    return _crlf(f"""From: {sender}
To: {to}
Subject: Re: Intro
Date: {DATE}
Message-ID: {_mid()}
In-Reply-To: {in_reply_to}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Sounds good.
--b1
Content-Type: text/html; charset=utf-8

<p onclick="steal()">Sounds <b>good</b>.<script>alert(1)</script><img src="https://tracker.example.net/p.gif"></p>
--b1--
""")


def dsn_rfc3464(*, original_message_id, recipient="bob@example.org", status="5.1.1", action="failed",
                diagnostic="smtp; 550 5.1.1 The email account that you tried to reach does not exist.",
                reporter="mx.google.com", sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                subject="Delivery Status Notification (Failure)", headers_only=False) -> bytes:
    kind = "text/rfc822-headers" if headers_only else "message/rfc822"
    returned = f"--rep\nContent-Type: {kind}\n\n" + _returned(recipient, original_message_id, body=not headers_only)
    return _crlf(f"""From: {sender}
To: ann@example.com
Subject: {subject}
Date: {DATE}
Message-ID: {_mid(reporter)}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="rep"

--rep
Content-Type: text/plain; charset=utf-8

Your message wasn't delivered to {recipient}.

--rep
Content-Type: message/delivery-status

Reporting-MTA: dns; {reporter}
Arrival-Date: {DATE}

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.org
Diagnostic-Code: {diagnostic}

{returned}--rep--
""")


def office365_dsn(*, original_message_id, recipient="bob@example.org") -> bytes:
    return dsn_rfc3464(original_message_id=original_message_id, recipient=recipient, status="5.1.10",
                       diagnostic="smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
                       reporter="AM0PR01MB1234.eurprd01.prod.exchangelabs.com",
                       sender="Microsoft Outlook <postmaster@outlook.com>", subject="Undeliverable: Intro",
                       headers_only=True)


def postfix_text(*, original_message_id, recipient="bob@example.org") -> bytes:
    return _crlf(f"""From: MAILER-DAEMON@mail.example.com (Mail Delivery System)
To: ann@example.com
Subject: Undelivered Mail Returned to Sender
Date: {DATE}
Message-ID: {_mid("mail.example.com")}
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{recipient}>: host mx.example.org[203.0.113.5] said: 550 5.1.1
    <{recipient}>: Recipient address rejected: User unknown in virtual mailbox
    table (in reply to RCPT TO command)

--- Returned message follows ---

From: Ann Lee <ann@example.com>
To: {recipient}
Subject: Intro
Message-ID: {original_message_id}

Hi, would you like a demo?
""")


def exim_text(*, original_message_id, recipient="bob@example.org", temporary=False) -> bytes:
    if temporary:
        body = f"""This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mail.example.com.

The message identifier is:     1abcDE-000123-4F

The address to which the message has not yet been delivered is:

  {recipient}
    host mx.example.org [203.0.113.5]
    Delay reason: SMTP error from remote mail server after RCPT TO:<{recipient}>:
    451 4.2.2 Mailbox full, try again later

No action is required on your part. Delivery attempts will continue for
some time, and this warning may be repeated at intervals if the message
remains undelivered. Eventually the mail delivery software will give up,
and when that happens, the message will be returned to you.
"""
        subject = "Warning: message 1abcDE-000123-4F delayed 24 hours"
        failed = ""
    else:
        body = f"""This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    host mx.example.org [203.0.113.5]
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 <{recipient}>: Recipient address rejected: User unknown
"""
        subject = "Mail delivery failed: returning message to sender"
        failed = f"X-Failed-Recipients: {recipient}\n"
    return _crlf(f"""From: Mail Delivery System <Mailer-Daemon@mail.example.com>
To: ann@example.com
Subject: {subject}
Date: {DATE}
Message-ID: {_mid("mail.example.com")}
{failed}Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

{body}
------ This is a copy of the message, including all the headers. ------

From: Ann Lee <ann@example.com>
To: {recipient}
Subject: Intro
Message-ID: {original_message_id}

Hi, would you like a demo?
""")


def exchange_legacy(*, original_message_id, recipient="bob@example.org") -> bytes:
    return _crlf(f"""From: postmaster@corp.example.org
To: ann@example.com
Subject: Undeliverable: Intro
Date: {DATE}
Message-ID: {_mid("corp.example.org")}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="ex"

--ex
Content-Type: text/plain; charset=us-ascii

Delivery has failed to these recipients or groups:

{recipient}
The e-mail address you entered couldn't be found. Please check the recipient's e-mail address and try to resend the message.

Diagnostic information for administrators:

Generating server: EXCH01.corp.example.org

{recipient}
#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##

--ex
Content-Type: message/rfc822

{_returned(recipient, original_message_id)}--ex--
""")


def gmail_text(*, original_message_id, recipient="bob@example.org") -> bytes:
    return _crlf(f"""From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: ann@example.com
Subject: Delivery Status Notification (Failure)
Date: {DATE}
Message-ID: {_mid("mx.google.com")}
X-Failed-Recipients: {recipient}
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8

** Address not found **

Your message wasn't delivered to {recipient} because the address couldn't be found, or is unable to receive mail.

The response from the remote server was:
550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.

----- Original message -----

From: Ann Lee <ann@example.com>
To: {recipient}
Subject: Intro
Message-ID: {original_message_id}
""")


def yahoo_text(*, original_message_id, recipient="bob@example.org") -> bytes:
    return _crlf(f"""From: MAILER-DAEMON@yahoo.com
To: ann@example.com
Subject: Failure Notice
Date: {DATE}
Message-ID: {_mid("yahoo.com")}
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Sorry, we were unable to deliver your message to the following address.

<{recipient}>:
Remote host said: 554 delivery error: dd This user doesn't have a yahoo.com account ({recipient}) [0] - mta1234.mail.ne1.yahoo.com [RCPT_TO]

--- Below this line is a copy of the message.

From: Ann Lee <ann@example.com>
To: {recipient}
Subject: Intro
Message-ID: {original_message_id}

Hi, would you like a demo?
""")


def auto_reply(*, in_reply_to="", style="auto-submitted", sender="bob@example.org") -> bytes:
    extra = {"auto-submitted": "Auto-Submitted: auto-replied", "x-autoreply": "X-Autoreply: yes",
             "x-autorespond": "X-Autorespond: Out of office", "precedence": "Precedence: auto_reply",
             "subject": ""}[style]
    subject = "Out of Office: Intro" if style == "subject" else "Automatic reply: Intro"
    return reply(sender=sender, subject=subject, in_reply_to=in_reply_to, extra=extra,
                 body="I am out of the office until Monday with limited access to email.", quoted="")


def unsubscribe_mail(*, to, subject, sender="bob@example.org") -> bytes:
    return _crlf(f"""From: {sender}
To: {to}
Subject: {subject}
Date: {DATE}
Message-ID: {_mid()}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

This message was sent by the recipient's mail client (RFC 2369 mailto: unsubscribe).
""")


def stranger_spam(*, to="ann@example.com") -> bytes:
    return _crlf(f"""From: "Prize Department" <winner@lottery.example.net>
To: {to}
Subject: You have won!!! Claim now
Date: {DATE}
Message-ID: {_mid("lottery.example.net")}
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p>Click <a href="https://lottery.example.net/claim">here</a><img src="https://lottery.example.net/t.gif"></p>
""")


def hostile_headers(*, in_reply_to) -> bytes:
    """CVE-2024-6923 shape: an encoded word carrying a newline and a Bcc in the subject and name."""
    return _crlf(f"""From: =?UTF-8?Q?Bob=0ABcc:_x@evil.example.net?= <bob@example.org>
To: ann@example.com
Subject: =?UTF-8?Q?hello=0ABcc:_x@evil.example.net?=
Date: {DATE}
Message-ID: {_mid()}
In-Reply-To: {in_reply_to}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Reply with a hostile subject.
""")
