"""The weekly maintenance window of an env's Amazon MQ broker: when it may start, how long it may last, and how two
envs' windows and business hours compare. Pure (no Pulumi): the env loader's rules and the broker component use it.

Sources:

* botocore ``mq`` model, ``WeeklyStartTime``: ``DayOfWeek`` (MONDAY..SUNDAY), ``TimeOfDay`` ("in 24-hour format"),
  ``TimeZone`` ("UTC by default, in either the Country/City format, or the UTC offset format").
* Amazon MQ developer guide, "Scheduling the maintenance window for an Amazon MQ broker": maintenance "can last up to
  two hours"; a cluster is maintained one node at a time, keeping two running. "Version upgrades": patch upgrades of
  RabbitMQ 3.13+ brokers happen in the window or at a reboot, and a single-instance broker is offline while it
  reboots.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DAYS: tuple[DayOfWeek, ...] = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

#: How long Amazon MQ's maintenance may last from the window's start ("can last up to two hours").
MAINTENANCE_MINUTES = 120
#: Business hours the window of a prod-baseline env stays out of, in the env's own time zone: Monday to Friday.
BUSINESS_DAYS = DAYS[:5]
BUSINESS_START, BUSINESS_END = 8 * 60, 18 * 60
TIME_OF_DAY = r"^([01]\d|2[0-3]):[0-5]\d$"
_WEEK = 7 * 24 * 60
#: Mondays of a winter and a summer week without a DST change in either hemisphere: a window is compared in both,
#: since a zone's UTC offset (and so the UTC hour of its window) moves with daylight saving time.
_REFERENCE_MONDAYS = (date(2026, 1, 5), date(2026, 7, 6))
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z_-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*)+$")


def time_zone_problem(zone: str) -> str | None:
    """Why ``zone`` is not a time zone the platform gives Amazon MQ (None: it is): ``UTC`` or an IANA
    ``Area/City`` name (botocore mq ``WeeklyStartTime.TimeZone``: "Country/City format"), known to the tz
    database (so its UTC offset, and the window's UTC hour, can be worked out here)."""
    if zone == "UTC":
        return None
    if not _ZONE_NAME.fullmatch(zone):
        return (f"{zone!r} is not an IANA time zone in Area/City form (e.g. Europe/Dublin, America/New_York) or UTC "
                "(Amazon MQ's WeeklyStartTime.TimeZone)")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        if not available_timezones():
            # zoneinfo reads the system's tz database (zoneinfo.TZPATH) or the `tzdata` package; a slim runner
            # image has neither, and every zone would be blamed on the env file (Python docs, zoneinfo "Data sources").
            return (f"{zone!r} cannot be checked: this machine has no tz database (no /usr/share/zoneinfo and no "
                    "`tzdata` package); install the OS tzdata package on the runner, the env file is not at fault")
        return f"{zone!r} is not in the tz database (an IANA Area/City name such as Europe/Dublin, or UTC)"
    return None


def _start(day: str, time_of_day: str, zone: str, monday: date) -> datetime:
    hours, minutes = (int(part) for part in time_of_day.split(":"))
    local = datetime.combine(monday + timedelta(days=DAYS.index(day)), datetime.min.time()).replace(
        hour=hours, minute=minutes, tzinfo=ZoneInfo(zone) if zone != "UTC" else UTC)
    return local.astimezone(UTC)


def utc_starts(day: str, time_of_day: str, zone: str) -> tuple[int, ...]:
    """The window's start as minutes after Monday 00:00 UTC, in a winter and a summer week."""
    starts = []
    for monday in _REFERENCE_MONDAYS:
        origin = datetime.combine(monday, datetime.min.time(), tzinfo=UTC)
        starts.append(int((_start(day, time_of_day, zone, monday) - origin).total_seconds() // 60) % _WEEK)
    return tuple(starts)


def windows_overlap(first: tuple[str, str, str], second: tuple[str, str, str]) -> bool:
    """Whether two windows ``(day, HH:MM, zone)``, each lasting :data:`MAINTENANCE_MINUTES`, share a minute in a
    winter or a summer week."""
    for one, other in zip(utc_starts(*first), utc_starts(*second), strict=True):
        if (other - one) % _WEEK < MAINTENANCE_MINUTES or (one - other) % _WEEK < MAINTENANCE_MINUTES:
            return True
    return False


def business_hours_problem(day: str, time_of_day: str) -> str | None:
    """Why a window starting ``day`` at ``time_of_day`` (the env's own time zone) reaches into business hours,
    Monday to Friday 08:00-18:00, within the two hours it may last (None: it does not)."""
    hours, minutes = (int(part) for part in time_of_day.split(":"))
    start = DAYS.index(day) * 24 * 60 + hours * 60 + minutes
    for offset in range(MAINTENANCE_MINUTES):
        minute = (start + offset) % _WEEK
        weekday, in_day = divmod(minute, 24 * 60)
        if DAYS[weekday] in BUSINESS_DAYS and BUSINESS_START <= in_day < BUSINESS_END:
            return (f"{day} {time_of_day} and the two hours Amazon MQ's maintenance may last from it reach into "
                    f"business hours ({DAYS[weekday]} {in_day // 60:02d}:{in_day % 60:02d}; Monday to Friday "
                    "08:00-18:00 in the window's time zone): a prod broker's nodes restart then (a single instance "
                    "is offline); start it at night or at the weekend")
    return None
