"""The simulated clock, after trio's MockClock: virtual = virtual_base + rate * (real - real_base).

The live runner can hold it back at a limit (the next due occurrence), so an
occurrence fires at exactly its due time however late the runner wakes.

The real time source is injected so tests drive it by hand instead of sleeping or patching.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

END_OF_TIME = datetime.max.replace(tzinfo=UTC)  # the last instant a datetime can hold


class SimClock:
    """Virtual UTC time that runs at ``rate`` * real time (0 = paused) and never goes backwards.

    Thread-safe: the live runner reads it from several threads while commands move it.
    """

    def __init__(
        self,
        start: datetime,
        *,
        rate: float = 1.0,
        real_time: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._real_time = real_time
        self._virtual_base = _aware_utc(start)
        self._real_base = real_time()
        self._rate = _checked_rate(rate)
        self._limit: datetime | None = None  # held no further than this

    def __repr__(self) -> str:
        return f"SimClock(now={self.now().isoformat()}, rate={self._rate})"

    def now(self) -> datetime:
        """The current virtual time, aware UTC."""
        with self._lock:
            return self._now_at(self._real_time())

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, rate: float) -> None:
        self.set_rate(rate)

    @property
    def paused(self) -> bool:
        return self._rate == 0

    def set_rate(self, rate: float) -> None:
        """Run at ``rate`` * real time from now on; re-bases so the time stays continuous."""
        rate = _checked_rate(rate)
        with self._lock:
            real = self._real_time()
            self._virtual_base, self._real_base = self._now_at(real), real
            self._rate = rate

    def pause(self) -> None:
        """Stop the clock; only ``advance``/``advance_to`` (or a new rate) move it."""
        self.set_rate(0.0)

    def hold(self, limit: datetime | None) -> None:
        """Run no further than ``limit`` (None: no limit) until the limit moves.

        The time held back is caught up, up to the new limit, when the limit moves on,
        so the clock keeps pace with real time. A limit already passed holds the clock
        where it is: it never goes backwards.
        """
        with self._lock:
            if limit is None:
                self._limit = None
            else:
                self._limit = max(_aware_utc(limit), self._now_at(self._real_time()))

    def advance_to(self, t: datetime) -> None:
        """Jump forward to ``t``; the clock then keeps running from there at the same rate.

        A limit below ``t`` moves up to it: the clock is held at ``t`` until the next ``hold``.
        """
        target = _aware_utc(t)
        with self._lock:
            real = self._real_time()
            if target < self._now_at(real):
                raise ValueError("time can't go backwards")
            self._jump(target, real)

    def advance(self, delta: timedelta) -> None:
        """Jump forward by ``delta``."""
        if delta < timedelta(0):
            raise ValueError("time can't go backwards")
        with self._lock:
            real = self._real_time()
            try:
                target = self._now_at(real) + delta
            except OverflowError:
                raise ValueError("time can't go past the year 9999") from None
            self._jump(target, real)

    def _jump(self, target: datetime, real: float) -> None:
        self._virtual_base, self._real_base = target, real
        if self._limit is not None and self._limit < target:
            self._limit = target

    def seconds_until(self, t: datetime) -> float | None:
        """Real seconds until the virtual time reaches ``t`` at the current rate.

        0 if it already has; None if the clock is paused, or held short of it.
        """
        target = _aware_utc(t)
        with self._lock:
            remaining = target - self._now_at(self._real_time())
            if remaining <= timedelta(0):
                return 0.0
            if self._rate == 0 or (self._limit is not None and self._limit < target):
                return None
            return remaining.total_seconds() / self._rate

    def _now_at(self, real: float) -> datetime:
        # Clamped so that a real clock that steps back cannot move virtual time backwards.
        elapsed = max(real - self._real_base, 0.0)
        if self._rate == 0 or elapsed == 0:
            now = self._virtual_base
        else:
            try:
                now = self._virtual_base + timedelta(seconds=self._rate * elapsed)
            except OverflowError:  # a fast clock near the year 9999 stops at its end
                now = END_OF_TIME
        return now if self._limit is None else min(now, self._limit)


def _checked_rate(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ValueError(f"rate must be a number, not {rate!r}")
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be a finite number >= 0 (0 = paused), not {rate!r}")
    return float(rate)


def _aware_utc(dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {dt!r}")
    return dt.astimezone(UTC)
