"""Time arithmetic of campaigns: step delays (hours, days, business days) and the send window in
the recipient's time zone. Pure functions of their arguments (no clock, no database). Send days
are parsed by the mailbox rules' ``parse_send_days`` (the same "0,1,2,3,4" notation)."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError


def zone_or_default(name: str, default: str = "UTC") -> ZoneInfo:
    """ZoneInfo for the IANA ``name``; ``default``'s zone when ``name`` is blank or unknown."""
    for candidate in (name, default, "UTC"):
        try:
            if candidate:
                return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def validate_zone(name: str) -> None:
    """Raise ValidationError unless ``name`` is an IANA time zone name (e.g. Europe/Paris)."""
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValidationError(f"Unknown time zone “{name}”; use an IANA name such as Europe/Paris.") from err


def in_window(local: datetime, days: set[int], start: time, end: time) -> bool:
    """True when ``local`` (a datetime in the window's zone) is inside it; ``start == end`` = all day;
    a window across midnight (22:00–06:00) belongs to the day it opens."""
    if start == end:
        return local.weekday() in days
    t = local.time()
    if start < end:
        return local.weekday() in days and start <= t < end
    if t >= start:
        return local.weekday() in days
    return t < end and (local - timedelta(days=1)).weekday() in days


def window_opening(after: datetime, *, zone: ZoneInfo, days: set[int], start: time, end: time) -> datetime:
    """The first moment at or after ``after`` (aware) inside the window, as an aware datetime."""
    local = after.astimezone(zone)
    if in_window(local, days, start, end):
        return after
    for offset in range(0, 8):
        opening = datetime.combine((local + timedelta(days=offset)).date(), start, tzinfo=zone)
        if opening >= local and in_window(opening, days, start, end):
            return opening
    return after + timedelta(days=7)  # no day allowed at all


def add_delay(moment: datetime, *, amount: int, unit: str, business_days: bool, zone: ZoneInfo) -> datetime:
    """``moment`` plus ``amount`` ``unit`` ("hours" | "days"). With ``business_days`` (days only),
    Saturdays and Sundays in ``zone`` are not counted and a result on a weekend moves to Monday."""
    if unit == "hours":
        return moment + timedelta(hours=amount)
    if not business_days:
        return moment + timedelta(days=amount)
    local = moment.astimezone(zone)
    added = 0
    while added < amount:
        local = local + timedelta(days=1)
        if local.weekday() < 5:
            added += 1
    while local.weekday() >= 5:
        local = local + timedelta(days=1)
    return local
