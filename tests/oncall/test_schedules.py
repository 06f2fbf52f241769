"""The on-call file: the shipped demo loads; each mistake is refused with its line."""

from pathlib import Path

import pytest

from checks.config import ConfigError
from models.settings import Settings
from oncall.schedules import load_oncall

GOOD = """\
people:
  - id: ada
    name: Ada Lovelace
    email: ada@example.com
    slack_user_id: U0ADA0001
  - id: grace
    name: Grace Hopper
    email: grace@example.com
schedules:
  - name: primary
    time_zone: Europe/Paris
    rotation:
      members: [ada, grace]
      length_days: 7
      handoff: "09:00"
      start: 2026-11-30
"""


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "oncall.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_oncall(path)
    return str(caught.value).replace(f"{path}:", "line ")


def test_the_shipped_demo_file_loads() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    oncall = load_oncall(settings.oncall_file)
    assert [s.name for s in oncall.schedules] == ["data-platform", "ml-platform"]
    assert oncall.person("ada") is not None


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "oncall.yml"
    path.write_text(GOOD)
    oncall = load_oncall(path)
    [schedule] = oncall.schedules
    assert schedule.rotation.members == ["ada", "grace"]
    assert str(schedule.rotation.handoff) == "09:00:00"


def test_no_file_means_no_one_is_on_call() -> None:
    assert load_oncall(None).schedules == []


def test_an_unknown_member_is_refused_with_its_line(tmp_path: Path) -> None:
    said = refused(tmp_path, GOOD.replace("[ada, grace]", "[ada, alan]"))
    assert "line 13: schedules.0.rotation.members.1: unknown person 'alan'" in said
    assert "(people: ada, grace)" in said


def test_a_person_named_twice_is_refused(tmp_path: Path) -> None:
    said = refused(tmp_path, GOOD.replace("id: grace", "id: ada"))
    assert "line 6: people.1: 'ada' is also people.0" in said


def test_a_bad_time_zone_and_a_missing_length_are_refused_each_with_its_line(
    tmp_path: Path,
) -> None:
    text = GOOD.replace("Europe/Paris", "Europe/Atlantis").replace("      length_days: 7\n", "")
    said = refused(tmp_path, text)
    assert (
        "line 11: schedules.0.time_zone: Value error, unknown time zone 'Europe/Atlantis'" in said
    )
    assert "line 12: schedules.0.rotation: Value error, give exactly one of length_days" in said


def test_an_unquoted_handoff_time_is_explained(tmp_path: Path) -> None:
    said = refused(tmp_path, GOOD.replace('"09:00"', "9:00"))  # YAML 1.1: 540 (sexagesimal)
    assert "line 15: schedules.0.rotation.handoff" in said
    assert 'in quotes, e.g. "09:00"' in said


def test_an_unknown_field_a_repeated_key_and_bad_yaml(tmp_path: Path) -> None:
    said = refused(tmp_path, GOOD.replace("    time_zone:", "    timezone: UTC\n    time_zone:"))
    assert "line 11: schedules.0.timezone: Extra inputs are not permitted" in said
    said = refused(tmp_path, GOOD.replace("    name: Ada", "    name: Ada\n    name: Ada"))
    assert "line 4: people.0.name: given twice (first on line 3)" in said
    assert refused(tmp_path, "people: [\n").startswith("line 2: not valid YAML")
    assert "expected a mapping with `people:` and `schedules:`" in refused(tmp_path, "- a\n")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="on-call file not found"):
        load_oncall(tmp_path / "nowhere.yml")
