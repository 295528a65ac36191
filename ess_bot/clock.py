"""The injected clock. Domain code asks a Clock for the time; nothing else reads the wall clock."""

from __future__ import annotations

import time as _time
from datetime import date, datetime, timedelta, tzinfo
from typing import Callable


class Clock:
    """Time in the configured timezone: live, or frozen at a moment that only moves when told to
    (tests, ``ess-bot console --now``)."""

    def __init__(self, tz: tzinfo, frozen_at: datetime | None = None):
        self.tz = tz
        self._listeners: list[Callable[[], None]] = []
        self._frozen: datetime | None = None
        self._frozen_mono = 0.0
        if frozen_at is not None:
            self._frozen = self._aware(frozen_at)

    def _aware(self, at: datetime) -> datetime:
        return (at if at.tzinfo else at.replace(tzinfo=self.tz)).astimezone(self.tz)

    def now(self) -> datetime:
        return self._frozen if self._frozen is not None else datetime.now(self.tz)

    def today(self) -> date:
        return self.now().date()

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for durations such as the uptime."""
        return self._frozen_mono if self._frozen is not None else _time.monotonic()

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def set(self, at: datetime) -> None:
        """Freeze the clock at ``at`` (naive means the clock's timezone) and tell the listeners."""
        at = self._aware(at)
        if self._frozen is not None:
            self._frozen_mono += max((at - self._frozen).total_seconds(), 0.0)
        self._frozen = at
        self._changed()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Called whenever the clock is set (the scheduler re-checks due jobs)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()


def FrozenClock(at: datetime, tz: tzinfo | None = None) -> Clock:  # noqa: N802 (reads like a class)
    """A clock frozen at ``at``."""
    zone = tz or at.tzinfo
    if zone is None:
        raise ValueError("a naive datetime needs a timezone")
    return Clock(zone, frozen_at=at)
