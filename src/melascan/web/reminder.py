"""The optional re-check reminder of a tracked lesion: an iCalendar (``.ics``) file with one
all-day event some weeks ahead, holding the lesion's name and nothing else about the person."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from icalendar import Calendar, Event

#: Weeks ahead the form offers: (fewest, most, default). Dermatology follow-up of a
#: watched mole is commonly 3 months.
WEEKS = (1, 52, 12)


def reminder_date(today: date, weeks: int) -> date:
    """The day of the re-check: ``weeks`` weeks after ``today``."""
    return today + timedelta(weeks=weeks)


def reminder_ics(summary: str, description: str, day: date, now: datetime | None = None) -> bytes:
    """An iCalendar file with one all-day event on ``day`` (``summary``: its title)."""
    calendar = Calendar()
    calendar.add("prodid", "-//MelaScan//re-check reminder//EN")
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"{uuid.uuid4()}@melascan")
    event.add("dtstamp", now or datetime.now(timezone.utc))
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "TRANSPARENT")  # a reminder, not a busy slot
    calendar.add_component(event)
    return calendar.to_ical()
