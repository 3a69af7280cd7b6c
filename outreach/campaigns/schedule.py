"""Time arithmetic of campaigns: step delays (hours, days, business days). Pure functions of their
arguments (no clock, no database). The send window, time zones and send days are the mailbox rules'
(:mod:`outreach.services.sending_rules`: ``window_opening``, ``zone_or_default``, ``parse_send_days``),
read in the recipient's zone."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


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
