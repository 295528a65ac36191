"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.harness import PostgresServer, SynapseServer, TestUser, fresh_user
from tests.sanitiser import SanitiserCheck, install

# ---------------------------------------------------------------------------
# Every message the bot produces, in any test, goes through a strict allow-list sanitiser
# (tests/sanitiser.py): HTML the sanitiser would change, a matrix.to link that is not one of the bot's
# pills, or a Markdown escape left in a plain body fails the test at teardown.
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sanitiser(monkeypatch) -> Iterator[SanitiserCheck]:
    """The check of this test's outgoing messages; a test may read ``sanitiser.findings`` (and clear
    them when it fed unsafe messages on purpose)."""
    check = SanitiserCheck()
    install(monkeypatch, check)
    yield check
    if check.findings:
        pytest.fail(check.report(), pytrace=False)


# ---------------------------------------------------------------------------
# Real-server harness fixtures (tests/harness/). Servers listen on 127.0.0.1.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """One real Synapse (SQLite, federation off) for the whole session."""
    hs = SynapseServer()
    hs.start()
    try:
        yield hs
    finally:
        hs.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole session; use
    ``postgres.create_database()`` for an isolated database per test."""
    pg = PostgresServer()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


MakeUser = Callable[..., Awaitable[TestUser]]


@pytest.fixture
async def make_user(synapse: SynapseServer) -> AsyncIterator[MakeUser]:
    """Factory: ``await make_user("alice", admin=False, listen=True)`` registers
    a fresh ``@alice-<random>:localhost`` and returns a :class:`TestUser`.
    With ``listen=True`` the user's sync position is pinned at creation, so
    ``wait_for`` sees everything that happens after. Clients are closed at
    teardown."""
    users: list[TestUser] = []

    async def factory(
        prefix: str = "user", *, admin: bool = False, listen: bool = True, displayname: str | None = None
    ) -> TestUser:
        user_id, token, device_id = await synapse.register_user_async(
            fresh_user(prefix), admin=admin, displayname=displayname
        )
        user = TestUser(synapse.base_url, user_id, token, device_id)
        users.append(user)
        if listen:
            await user.start_listening()
        return user

    yield factory
    for user in users:
        await user.close()


# ---------------------------------------------------------------------------
# Storage under test: every test that asks for ``db_url`` runs on SQLite and on the real PostgreSQL.
# ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database URL: an SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    pg = request.getfixturevalue("postgres")
    return pg.create_database()
