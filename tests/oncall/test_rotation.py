"""Who is on call, at instants chosen around hand-offs, daylight saving changes and `start`."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from oncall.rotation import Cover, on_call, on_duty
from oncall.schedules import Rotation, Schedule

PARIS = ZoneInfo("Europe/Paris")


def weekly() -> Schedule:
    rotation = Rotation(
        members=["ada", "grace", "linus"],
        length_days=7,
        handoff=time(9, 0),
        start=date(2026, 11, 30),
    )
    return Schedule(name="primary", time_zone="Europe/Paris", rotation=rotation)


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)  # type: ignore[misc]


def test_the_shift_changes_at_the_handoff_and_not_a_second_before() -> None:
    schedule = weekly()
    now, after = on_call(schedule, paris(2026, 12, 7, 8, 59, 59))
    assert (now.person_id, after.person_id) == ("ada", "grace")
    assert now.starts_at == paris(2026, 11, 30, 9, 0)
    assert now.ends_at == after.starts_at == paris(2026, 12, 7, 9, 0)
    now, after = on_call(schedule, paris(2026, 12, 7, 9, 0))
    assert (now.person_id, after.person_id) == ("grace", "linus")
    assert on_call(schedule, paris(2026, 12, 21, 9, 0))[0].person_id == "ada"  # round again


def test_a_week_across_the_spring_change_hands_off_at_nine_local_and_is_an_hour_short() -> None:
    schedule = weekly()
    # 2027-03-28: Paris moves from UTC+1 to UTC+2 at 02:00
    now, _ = on_call(schedule, paris(2027, 3, 28, 12, 0))
    assert now.starts_at.astimezone(PARIS) == paris(2027, 3, 22, 9, 0)
    assert now.ends_at.astimezone(PARIS) == paris(2027, 3, 29, 9, 0)
    assert now.ends_at - now.starts_at == timedelta(hours=7 * 24 - 1)
    assert now.ends_at.utcoffset() == timedelta(0)  # shown in UTC


def test_before_start_the_rotation_runs_backwards() -> None:
    now, after = on_call(weekly(), paris(2026, 11, 30, 8, 0))
    assert (now.person_id, after.person_id) == ("linus", "ada")
    assert now.starts_at == paris(2026, 11, 23, 9, 0)


def test_shifts_of_hours_count_real_time() -> None:
    rotation = Rotation(
        members=["edsger", "grace"], length_hours=12, handoff=time(8, 0), start=date(2026, 12, 1)
    )
    schedule = Schedule(name="ml", time_zone="America/New_York", rotation=rotation)
    first = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 08:00 in New York (EST)
    now, after = on_call(schedule, first + timedelta(hours=12, seconds=-1))
    assert (now.person_id, now.starts_at, after.person_id) == ("edsger", first, "grace")
    now, _ = on_call(schedule, first + timedelta(hours=12))
    assert (now.person_id, now.starts_at) == ("grace", first + timedelta(hours=12))
    now, _ = on_call(schedule, first + timedelta(days=365, hours=1))
    assert now.person_id == "edsger"  # 730 shifts later: an even one


def test_a_rotation_of_one_is_always_that_person() -> None:
    schedule = weekly().model_copy(
        update={"rotation": weekly().rotation.model_copy(update={"members": ["ada"]})}
    )
    for days in range(-30, 30, 3):
        now, after = on_call(schedule, paris(2026, 12, 1, 12, 0) + timedelta(days=days))
        assert (now.person_id, after.person_id) == ("ada", "ada")
        assert now.starts_at <= paris(2026, 12, 1, 12, 0) + timedelta(days=days) < now.ends_at


def test_an_override_in_the_middle_of_a_shift_cuts_it_in_three() -> None:
    schedule = weekly()
    cover = Cover(7, "edsger", paris(2026, 12, 2, 18, 0), paris(2026, 12, 3, 8, 0))
    before, during = on_duty(schedule, [cover], paris(2026, 12, 2, 12, 0))
    assert (before.person_id, before.override_id) == ("ada", None)
    assert (before.starts_at, before.ends_at) == (paris(2026, 11, 30, 9, 0), cover.starts_at)
    assert (during.person_id, during.override_id, during.ends_at) == ("edsger", 7, cover.ends_at)
    now, after = on_duty(schedule, [cover], paris(2026, 12, 3, 7, 0))
    assert now == during
    assert (after.person_id, after.starts_at, after.ends_at) == (
        "ada",
        cover.ends_at,
        paris(2026, 12, 7, 9, 0),
    )


def test_the_newest_of_two_overlapping_overrides_wins() -> None:
    schedule = weekly()
    old = Cover(1, "grace", paris(2026, 12, 2, 0, 0), paris(2026, 12, 4, 0, 0))
    new = Cover(2, "linus", paris(2026, 12, 3, 0, 0), paris(2026, 12, 3, 12, 0))
    now, after = on_duty(schedule, [old, new], paris(2026, 12, 2, 12, 0))
    assert (now.person_id, now.ends_at, after.person_id) == ("grace", new.starts_at, "linus")
    now, after = on_duty(schedule, [old, new], paris(2026, 12, 3, 6, 0))
    assert (now.person_id, after.person_id, after.override_id) == ("linus", "grace", 1)
    assert (after.starts_at, after.ends_at) == (new.ends_at, old.ends_at)  # grace again
