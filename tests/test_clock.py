"""The simulated clock (fwsched.clock.SimClock), driven by a fake real-time source."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fwsched.clock import SimClock

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


class FakeRealTime:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def sleep(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def real() -> FakeRealTime:
    return FakeRealTime()


def test_runs_at_real_speed_by_default(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    assert clock.now() == START
    assert clock.now().tzinfo is UTC
    assert clock.rate == 1.0
    real.sleep(1.5)
    assert clock.now() == START + timedelta(seconds=1.5)


def test_start_is_converted_to_utc(real: FakeRealTime) -> None:
    clock = SimClock(
        datetime(2026, 1, 5, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        real_time=real,
    )
    assert clock.now() == START
    assert clock.now().tzinfo is UTC


def test_naive_start_is_refused(real: FakeRealTime) -> None:
    with pytest.raises(ValueError, match="aware"):
        SimClock(datetime(2026, 1, 5, 9), real_time=real)


def test_rate(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=60, real_time=real)
    real.sleep(2)
    assert clock.now() == START + timedelta(minutes=2)


def test_rate_change_keeps_time_continuous(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    real.sleep(10)
    clock.set_rate(100)
    assert clock.now() == START + timedelta(seconds=10)  # no jump at the change
    assert clock.rate == 100
    real.sleep(1)
    assert clock.now() == START + timedelta(seconds=110)
    clock.rate = 0.5  # the property setter re-bases too
    assert clock.now() == START + timedelta(seconds=110)
    real.sleep(4)
    assert clock.now() == START + timedelta(seconds=112)


def test_pause_stops_time(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    real.sleep(5)
    clock.pause()
    assert clock.paused and clock.rate == 0
    real.sleep(3600)
    assert clock.now() == START + timedelta(seconds=5)
    clock.set_rate(1)
    assert not clock.paused
    real.sleep(1)
    assert clock.now() == START + timedelta(seconds=6)


def test_starts_paused(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=0, real_time=real)
    real.sleep(100)
    assert clock.now() == START


@pytest.mark.parametrize("rate", [-1, -0.001, float("nan"), float("inf"), True, "2"])
def test_bad_rate_is_refused(real: FakeRealTime, rate: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        SimClock(START, rate=rate, real_time=real)  # type: ignore[arg-type]
    clock = SimClock(START, real_time=real)
    with pytest.raises(ValueError, match="rate"):
        clock.set_rate(rate)  # type: ignore[arg-type]
    assert clock.rate == 1.0


def test_advance_to_jumps_and_keeps_running(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    target = START + timedelta(days=3)
    clock.advance_to(target)
    assert clock.now() == target
    real.sleep(2)
    assert clock.now() == target + timedelta(seconds=2)


def test_advance_to_while_paused(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=0, real_time=real)
    clock.advance_to(START + timedelta(hours=1))
    real.sleep(50)
    assert clock.now() == START + timedelta(hours=1)


def test_advance_to_now_is_allowed(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=0, real_time=real)
    clock.advance_to(START)
    assert clock.now() == START


def test_advance_to_accepts_other_offsets(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=0, real_time=real)
    clock.advance_to(datetime(2026, 1, 5, 11, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == START + timedelta(hours=1)
    assert clock.now().tzinfo is UTC


def test_time_cannot_go_backwards(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    real.sleep(10)
    with pytest.raises(ValueError, match=r"^time can't go backwards$"):
        clock.advance_to(START + timedelta(seconds=9))
    with pytest.raises(ValueError, match=r"^time can't go backwards$"):
        clock.advance(timedelta(microseconds=-1))
    assert clock.now() == START + timedelta(seconds=10)


def test_advance_by_delta(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    real.sleep(1)
    clock.advance(timedelta(hours=2))
    assert clock.now() == START + timedelta(hours=2, seconds=1)
    clock.advance(timedelta(0))
    assert clock.now() == START + timedelta(hours=2, seconds=1)


def test_real_time_stepping_back_does_not_move_virtual_time_back(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    real.sleep(10)
    clock.set_rate(2)
    real.sleep(-5)
    assert clock.now() == START + timedelta(seconds=10)


def test_seconds_until(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=60, real_time=real)
    assert clock.seconds_until(START + timedelta(minutes=30)) == pytest.approx(30.0)
    assert clock.seconds_until(START) == 0.0
    assert clock.seconds_until(START - timedelta(days=1)) == 0.0
    real.sleep(10)
    assert clock.seconds_until(START + timedelta(minutes=30)) == pytest.approx(20.0)
    clock.pause()
    assert clock.seconds_until(START + timedelta(minutes=30)) is None
    assert clock.seconds_until(START + timedelta(minutes=10)) == 0.0
    clock.set_rate(1)
    assert clock.seconds_until(START + timedelta(minutes=11)) == pytest.approx(60.0)


def test_seconds_until_then_sleeping_reaches_the_target(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=7.3, real_time=real)
    target = START + timedelta(hours=5, microseconds=17)
    wait = clock.seconds_until(target)
    assert wait is not None
    real.sleep(wait)
    assert abs(clock.now() - target) <= timedelta(microseconds=1)


def test_seconds_until_refuses_naive(real: FakeRealTime) -> None:
    clock = SimClock(START, real_time=real)
    with pytest.raises(ValueError, match="aware"):
        clock.seconds_until(datetime(2026, 1, 5, 10))


def test_a_held_clock_stops_at_its_limit_and_catches_up_when_it_moves(
    real: FakeRealTime,
) -> None:
    clock = SimClock(START, rate=60, real_time=real)
    due = START + timedelta(minutes=5)
    clock.hold(due)
    assert clock.seconds_until(due) == pytest.approx(5.0)
    assert clock.seconds_until(due + timedelta(seconds=1)) is None  # held short of it
    real.sleep(7)  # woke two simulated minutes late
    assert clock.now() == due
    clock.hold(START + timedelta(minutes=6))
    assert clock.now() == START + timedelta(minutes=6)
    clock.hold(None)
    assert clock.now() == START + timedelta(minutes=7)  # no time lost


def test_a_limit_already_passed_holds_the_clock_where_it_is(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=60, real_time=real)
    real.sleep(1)
    clock.hold(START)  # overdue: the clock stays, it does not go back
    assert clock.now() == START + timedelta(minutes=1)
    real.sleep(1)
    assert clock.now() == START + timedelta(minutes=1)
    assert clock.seconds_until(START + timedelta(minutes=1)) == 0.0


def test_jumps_move_a_lower_limit_with_them(real: FakeRealTime) -> None:
    clock = SimClock(START, rate=60, real_time=real)
    clock.hold(START)
    clock.advance_to(START + timedelta(hours=1))
    real.sleep(1)
    assert clock.now() == START + timedelta(hours=1)
    clock.advance(timedelta(minutes=1))
    real.sleep(1)
    assert clock.now() == START + timedelta(hours=1, minutes=1)
    clock.hold(None)
    assert clock.now() == START + timedelta(hours=1, minutes=2)  # caught up since the jump


def test_default_real_time_is_monotonic() -> None:
    clock = SimClock(START)
    first = clock.now()
    assert clock.now() >= first >= START


def test_concurrent_readers_see_time_never_going_backwards(real: FakeRealTime) -> None:
    lock = threading.Lock()

    def ticking() -> float:
        with lock:  # every read of real time moves it: a busy, racing real clock
            real.value += 0.001
            return real.value

    clock = SimClock(START, rate=1000, real_time=ticking)
    failures: list[str] = []

    def reader() -> None:
        last = clock.now()
        for _ in range(2000):
            now = clock.now()
            if now < last:
                failures.append(f"{now} < {last}")
            last = now

    def writer() -> None:
        for i in range(500):
            clock.set_rate(float(i % 7))
            clock.advance(timedelta(milliseconds=1))

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
