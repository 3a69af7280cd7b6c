"""Per-mailbox sending rules, decided by the dispatcher at claim time (never by sleeping workers).

A mailbox has a daily cap (messages per local day), a minimum interval between two sends with an
optional random jitter, and a send window (days of the week and hours, in the mailbox's time zone).
:func:`mailbox_allowance` says how many of the mailbox's due messages may be claimed *now*, and for the
rest when they may go and why, e.g. "waiting: daily cap of 50 reached; next send Tue 09:00".
Every function takes ``now`` so tests move the clock without sleeping.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db.models import Q

from ..models import Mailbox, SentMessage
from ..validation import validate_zone  # noqa: F401  (one rule for every time zone field; imported from here too)

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Allowance:
    """``count`` messages may be claimed now; the others wait until ``next_at`` (aware datetime) because
    of ``reason``. ``next_send_at`` is the mailbox's new earliest next send (interval + jitter) or None."""

    count: int
    next_at: datetime | None = None
    reason: str = ""
    next_send_at: datetime | None = None


def parse_send_days(value: str) -> set[int]:
    """``"0,1,2,3,4"`` → {0, 1, 2, 3, 4} (0 = Monday). Blank means every day.

    Raises ValidationError for anything but comma-separated digits 0–6."""
    value = (value or "").strip()
    if not value:
        return set(range(7))
    days = set()
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or not 0 <= int(part) <= 6:
            raise ValidationError(f"Send days are numbers 0 (Monday) to 6 (Sunday), comma-separated; got {part!r}.")
        days.add(int(part))
    return days


def zone_or_default(name: str, default: str = "UTC") -> ZoneInfo:
    """ZoneInfo for the IANA ``name``; ``default``'s zone when ``name`` is blank or unknown, else UTC."""
    for candidate in (name, default):
        try:
            if candidate:
                return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def mailbox_zone(mailbox: Mailbox) -> ZoneInfo:
    """The mailbox's time zone (UTC when the stored name is unknown)."""
    return zone_or_default(mailbox.time_zone)


def validate_sending_rules(*, daily_cap: int, min_interval_seconds: int, interval_jitter_seconds: int, send_days: str,
                           send_window_start: time, send_window_end: time, time_zone: str) -> dict[str, str]:
    """{field: message} for invalid sending rules (empty when valid). Used by the mailbox service, forms and admin."""
    problems: dict[str, str] = {}
    try:
        parse_send_days(send_days)
    except ValidationError as err:
        problems["send_days"] = err.messages[0]
    try:
        validate_zone(time_zone)
    except ValidationError as err:
        problems["time_zone"] = err.messages[0]
    for name, value in (("daily_cap", daily_cap), ("min_interval_seconds", min_interval_seconds),
                        ("interval_jitter_seconds", interval_jitter_seconds)):
        if value is None or value < 0:
            problems[name] = "Enter zero or a positive number."
    return problems


def in_window(local: datetime, days: set[int], start: time, end: time) -> bool:
    """True when ``local`` (a datetime in the window's zone) is inside the window: ``days`` (0 = Monday),
    from ``start`` to ``end`` local time; ``start == end`` = all day; a window across midnight
    (22:00–06:00) belongs to the day it opens. Used by mailbox rules and campaign windows alike."""
    if start == end:
        return local.weekday() in days
    t = local.time()
    if start < end:
        return local.weekday() in days and start <= t < end
    if t >= start:
        return local.weekday() in days
    return t < end and (local - timedelta(days=1)).weekday() in days


def window_opening(after: datetime, *, zone: ZoneInfo, days: set[int], start: time, end: time) -> datetime:
    """The first moment at or after ``after`` (aware) inside the window (see :func:`in_window`) read
    in ``zone``; an aware datetime. With no allowed day at all: ``after`` plus a week (look again then)."""
    local = after.astimezone(zone)
    if in_window(local, days, start, end):
        return after
    for offset in range(0, 8):
        opening = datetime.combine((local + timedelta(days=offset)).date(), start, tzinfo=zone)
        if opening >= local and in_window(opening, days, start, end):
            return opening
    return after + timedelta(days=7)


def next_window_opening(*, mailbox: Mailbox, after: datetime) -> datetime:
    """The first moment at or after ``after`` (aware) inside the mailbox's send window (aware, UTC-comparable)."""
    return window_opening(after, zone=mailbox_zone(mailbox), days=parse_send_days(mailbox.send_days),
                          start=mailbox.send_window_start, end=mailbox.send_window_end)


def _day_start(mailbox: Mailbox, now: datetime) -> datetime:
    local = now.astimezone(mailbox_zone(mailbox))
    return datetime.combine(local.date(), time(0, 0), tzinfo=local.tzinfo)


def sends_today(*, mailbox: Mailbox, now: datetime) -> int:
    """Messages this mailbox sent, is sending, or may have sent since local midnight."""
    start = _day_start(mailbox, now)
    return SentMessage.objects.filter(mailbox=mailbox).filter(
        Q(status=SentMessage.Status.SENDING) | Q(sent_at__gte=start)
        | Q(status=SentMessage.Status.UNKNOWN, sending_started_at__gte=start)).count()


def _label(moment: datetime, mailbox: Mailbox, now: datetime) -> str:
    local = moment.astimezone(mailbox_zone(mailbox))
    if local.date() == now.astimezone(mailbox_zone(mailbox)).date():
        return local.strftime("%H:%M:%S")
    return f"{DAY_NAMES[local.weekday()]} {local:%H:%M}"


def mailbox_allowance(*, mailbox: Mailbox, now: datetime, wanted: int) -> Allowance:
    """How many of ``wanted`` due messages of ``mailbox`` may be claimed at ``now``; see :class:`Allowance`."""
    if wanted <= 0:
        return Allowance(0)
    opening = next_window_opening(mailbox=mailbox, after=now)
    if opening > now:
        days = parse_send_days(mailbox.send_days)
        day_text = "every day" if len(days) == 7 else ", ".join(DAY_NAMES[d] for d in sorted(days))
        return Allowance(0, opening, f"waiting: outside the send window ({day_text} "
                                     f"{mailbox.send_window_start:%H:%M}–{mailbox.send_window_end:%H:%M} {mailbox.time_zone}); "
                                     f"next send {_label(opening, mailbox, now)}")
    count = wanted
    if mailbox.daily_cap:
        left = mailbox.daily_cap - sends_today(mailbox=mailbox, now=now)
        if left <= 0:
            tomorrow = _day_start(mailbox, now) + timedelta(days=1)
            opening = next_window_opening(mailbox=mailbox, after=tomorrow)
            return Allowance(0, opening, f"waiting: daily cap of {mailbox.daily_cap} reached; "
                                         f"next send {_label(opening, mailbox, now)}")
        if left < count:
            tomorrow = _day_start(mailbox, now) + timedelta(days=1)
            opening = next_window_opening(mailbox=mailbox, after=tomorrow)
            capped = Allowance(left, opening, f"waiting: daily cap of {mailbox.daily_cap} reached; "
                                              f"next send {_label(opening, mailbox, now)}")
            if not (mailbox.min_interval_seconds or mailbox.interval_jitter_seconds):
                return capped
    if mailbox.min_interval_seconds or mailbox.interval_jitter_seconds:
        if mailbox.next_send_at and mailbox.next_send_at > now:
            return Allowance(0, mailbox.next_send_at,
                             f"waiting: minimum interval of {mailbox.min_interval_seconds} s between sends; "
                             f"next send {_label(mailbox.next_send_at, mailbox, now)}")
        gap = mailbox.min_interval_seconds + random.uniform(0, mailbox.interval_jitter_seconds)
        next_send = now + timedelta(seconds=gap)
        reason = f"waiting: minimum interval of {mailbox.min_interval_seconds} s between sends; next send {_label(next_send, mailbox, now)}"
        return Allowance(1, next_send, reason, next_send_at=next_send)
    return Allowance(count, now + timedelta(seconds=1), "waiting: the next batch", None)


#: The Mailbox fields holding its sending rules (forms, the admin and add_mailbox set them).
RULE_FIELDS = ("daily_cap", "min_interval_seconds", "interval_jitter_seconds", "send_days", "send_window_start",
               "send_window_end", "time_zone")


def mailbox_rules_clean(*, mailbox: Mailbox, data: dict) -> dict:
    """The sending-rule values of ``mailbox`` (RULE_FIELDS) with those present in ``data`` applied
    (nothing is set or saved: the mailbox services write them through ``model_update``).
    ``send_days`` may be a list of day numbers or the stored comma-separated string; it comes back
    as the stored string. Raises ValidationError({field: message})."""
    values = {name: getattr(mailbox, name) for name in RULE_FIELDS}
    for name in RULE_FIELDS:
        if name in data and data[name] not in (None, ""):
            values[name] = data[name]
    if "send_days" in data and isinstance(data["send_days"], (list, tuple, set)):
        values["send_days"] = ",".join(str(int(d)) for d in sorted({int(d) for d in data["send_days"]}))
    problems = validate_sending_rules(**values)
    if problems:
        raise ValidationError(problems)
    values["send_days"] = ",".join(str(d) for d in sorted(parse_send_days(values["send_days"])))
    return values
