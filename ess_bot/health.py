"""What is degraded right now: one record per component (the database, the homeserver, the outbox…).

Long-running tasks report here when an outage starts and when it ends; ``/healthz`` shows the
snapshot, and the log gets one line per outage instead of one per attempt. One instance per App,
passed in (never global).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)


@dataclass
class Outage:
    component: str
    since: float        # monotonic time of the first failure
    detail: str
    attempts: int = 1


@dataclass
class Health:
    monotonic: Callable[[], float]
    outages: dict[str, Outage] = field(default_factory=dict)

    def failed(self, component: str, detail: str, logger: logging.Logger | None = None) -> bool:
        """Record a failure of ``component``; True (and one WARNING line) when it is a new outage."""
        current = self.outages.get(component)
        if current is not None:
            current.attempts += 1
            current.detail = detail
            return False
        self.outages[component] = Outage(component, self.monotonic(), detail)
        (logger or log).warning("%s unavailable: %s (retrying; logged once per outage)", component, detail)
        return True

    def recovered(self, component: str, logger: logging.Logger | None = None) -> bool:
        """``component`` works again; True (and one line) when it had been failing."""
        current = self.outages.pop(component, None)
        if current is None:
            return False
        (logger or log).warning("%s available again after %.1f s (%d failed attempts)", component,
                                self.monotonic() - current.since, current.attempts)
        return True

    def degraded(self, component: str) -> bool:
        return component in self.outages

    @property
    def ok(self) -> bool:
        return not self.outages

    def snapshot(self) -> dict:
        """For ``/healthz``: ``{"status": "ok"|"degraded", "degraded": {component: {...}}}``."""
        now = self.monotonic()
        return {"status": "ok" if self.ok else "degraded",
                "degraded": {name: {"since_seconds": round(now - o.since, 1), "attempts": o.attempts,
                                    "detail": o.detail[:200]}
                             for name, o in sorted(self.outages.items())}}
