"""Local days: where they begin in UTC, and the department's date."""

from __future__ import annotations

from datetime import UTC, date, datetime

from beatmap.clock import day_start, local_today
from beatmap.routing.route import default_seed


def test_a_skipped_midnight_starts_the_day_at_the_first_valid_minute():
    assert day_start(date(2026, 9, 6), "America/Santiago") == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert day_start(date(2026, 9, 7), "America/Santiago") == datetime(2026, 9, 7, 3, tzinfo=UTC)


def test_the_route_seed_is_the_departments_date_not_the_machines():
    late_evening_in_chicago = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)
    assert local_today("America/Chicago", now=late_evening_in_chicago) == date(2026, 3, 9)
    assert default_seed(local_today("America/Chicago", now=late_evening_in_chicago)) == 20260309
