"""Database faults on demand, for the tests of the degraded mode: a real engine whose writes (or
reads too) fail as a full disk or a vanished server make them fail."""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from ess_bot.storage.db import Database

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class DatabaseFaults:
    """``faults = DatabaseFaults(db)``; ``faults.writes_fail = True`` makes every INSERT, UPDATE and
    DELETE fail with SQLite's "database or disk is full"; ``faults.reads_fail = True`` makes every
    statement fail. ``faults.refused`` counts the statements refused."""

    def __init__(self, db: Database):
        self.writes_fail = False
        self.reads_fail = False
        self.refused = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._check)

    def _check(self, conn, cursor, statement, parameters, context, executemany) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if self.reads_fail or (self.writes_fail and verb in WRITES):
            self.refused += 1
            raise OperationalError(statement, parameters, sqlite3.OperationalError("database or disk is full"))

    def heal(self) -> None:
        self.writes_fail = self.reads_fail = False
