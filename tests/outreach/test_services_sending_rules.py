"""The send window shared by mailbox rules and campaigns (outreach.services.sending_rules)."""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from outreach.models import Mailbox
from outreach.services.sending_rules import in_window, next_window_opening, parse_send_days, zone_or_default

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = parse_send_days("0,1,2,3,4")


def test_a_window_across_midnight_belongs_to_the_day_it_opens():
    friday_night = datetime(2026, 12, 4, 23, 30, tzinfo=PARIS)
    saturday_early = datetime(2026, 12, 5, 2, 0, tzinfo=PARIS)  # still Friday's window
    monday_early = datetime(2026, 12, 7, 2, 0, tzinfo=PARIS)  # Sunday's window: Sunday is not a send day
    assert in_window(friday_night, WEEKDAYS, time(22), time(6))
    assert in_window(saturday_early, WEEKDAYS, time(22), time(6))
    assert not in_window(monday_early, WEEKDAYS, time(22), time(6))


def test_the_mailbox_window_opens_in_the_mailbox_zone():
    mailbox = Mailbox(send_days="0,1,2,3,4", send_window_start=time(9), send_window_end=time(17), time_zone="Europe/Paris")
    saturday_noon_utc = datetime(2026, 12, 5, 12, 0, tzinfo=ZoneInfo("UTC"))
    assert next_window_opening(mailbox=mailbox, after=saturday_noon_utc) == datetime(2026, 12, 7, 9, 0, tzinfo=PARIS)
    tuesday_10_paris = datetime(2026, 12, 8, 10, 0, tzinfo=PARIS)
    assert next_window_opening(mailbox=mailbox, after=tuesday_10_paris) == tuesday_10_paris


def test_an_unknown_zone_falls_back_to_the_default_then_utc():
    assert zone_or_default("Mars/Olympus", "Europe/Paris") == PARIS
    assert zone_or_default("", "") == ZoneInfo("UTC")
