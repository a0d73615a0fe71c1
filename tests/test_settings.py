"""Settings: defaults, reading TOML, refusing unknown keys and looser privacy rules."""

from __future__ import annotations

import dataclasses

import pytest

from beatmap.demo_town import LANDMARKS
from beatmap.errors import InputError
from beatmap.settings import Settings, read_settings
from tests.conftest import ROOT


def test_shipped_settings_file_matches_the_defaults():
    shipped = read_settings(ROOT / "data" / "settings.toml")
    assert dataclasses.replace(shipped, landmarks={}) == Settings()
    assert shipped.landmarks == LANDMARKS  # the demo town's schools, library, park and station


def test_landmarks_are_read_as_latitude_longitude_pairs(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[landmarks]\n"District 7 station" = [41.78, -87.66]\nSchool = [41.79, -87.65]\n')
    assert read_settings(path).landmarks == {"District 7 station": (41.78, -87.66), "School": (41.79, -87.65)}


def test_values_are_read_by_section(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[department]\ntimezone = "America/New_York"\n[flags]\nenforcement_only_min = 5\n[shifts]\nearly = [6, 14]\n'
    )
    s = read_settings(path)
    assert (s.timezone, s.enforcement_only_min, s.shifts) == ("America/New_York", 5, {"early": (6, 14)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[flags]\nenforcment_only_min = 2\n", "unknown key 'enforcment_only_min'"),
        ('[department]\ntimezone = "Gotham"\n', "not an IANA time zone"),
        ("[public]\npublic_min_count = 1\n", "only be made stricter"),
        ("[public]\npublic_delay_days = 2\n", "only be made stricter"),
        ("[flags]\nrarely_fraction = 2\n", "between 0 and 1"),
        ("not toml at all = =", "not a valid TOML"),
        ("[landmarks]\nStation = [-87.66, 41.78, 0]\n", "landmark 'Station' must be \\[latitude, longitude\\]"),
        ("[landmarks]\nStation = [-187.66, 41.78]\n", "landmark 'Station' must be"),
        ('[landmarks]\nStation = "here"\n', r"\[landmarks\] must hold lines of the form name = \[a, b\]"),
    ],
)
def test_bad_settings_are_refused_with_the_file_named(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_settings(path)
    assert str(path) in str(info.value)


def test_a_named_missing_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="settings file not found"):
        read_settings(tmp_path / "nope.toml")
