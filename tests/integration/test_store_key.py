"""The E2EE store at rest: pickled with the configured key (or a generated one), an existing store
made with nio's public default key re-pickled at the first start, a key change needing the old key."""

from __future__ import annotations

import pytest
from nio.store import DefaultStore

from ess_bot.errors import FatalError
from ess_bot.transports.matrix import transport as matrix_transport
from ess_bot.transports.store_key import NIO_DEFAULT_KEY

pytestmark = pytest.mark.integration

KEY = "cle-du-magasin-de-test-0123456789"
OTHER = "une-autre-cle-de-test-9876543210"


def identity(bot_runner, device_id: str, key: str) -> dict:
    """The Olm account's identity keys, read with ``key`` (raises with a wrong key)."""
    store = DefaultStore(bot_runner.user_id, device_id, str(bot_runner.workdir / "store"), pickle_key=key)
    try:
        account = store.load_account()
        assert account is not None
        return dict(account.identity_keys)
    finally:
        store.database.close()


async def test_default_key_store_is_migrated_and_key_changes_need_the_old_key(bot_runner, monkeypatch):
    # a store as ess-bot made them before: pickled with nio's default key, no record of the key
    with monkeypatch.context() as patch:
        patch.setattr(matrix_transport, "resolve_store_key", lambda path, configured: (NIO_DEFAULT_KEY, True))
        bot = await bot_runner.start()
        device = bot.client.device_id
        await bot_runner.stop()
    for marker in (bot_runner.workdir / "store").glob("*.key-id"):
        marker.unlink()
    before = identity(bot_runner, device, NIO_DEFAULT_KEY)

    bot_runner.matrix_overrides = {"store_key": KEY}
    bot = await bot_runner.start()
    assert bot.client.device_id == device  # the same device: encrypted rooms go on
    await bot_runner.stop()
    assert identity(bot_runner, device, KEY) == before
    with pytest.raises(Exception):
        identity(bot_runner, device, NIO_DEFAULT_KEY)
    assert not (bot_runner.workdir / "store" / "store.key").exists()  # configured: nothing beside the store

    bot_runner.matrix_overrides = {"store_key": OTHER}
    with pytest.raises(FatalError) as caught:
        await bot_runner.start()
    await bot_runner.stop()
    assert "matrix.previous_store_key" in caught.value.message
    bot_runner.matrix_overrides = {"store_key": OTHER, "previous_store_key": KEY}
    bot = await bot_runner.start()
    assert bot.client.device_id == device
    await bot_runner.stop()
    assert identity(bot_runner, device, OTHER) == before


async def test_without_a_configured_key_one_is_generated_owner_only(bot_runner):
    bot = await bot_runner.start()
    device = bot.client.device_id
    await bot_runner.stop()
    key_file = bot_runner.workdir / "store" / "store.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = key_file.read_text().strip()
    assert len(key) >= 32 and key != NIO_DEFAULT_KEY
    identity(bot_runner, device, key)
    with pytest.raises(Exception):
        identity(bot_runner, device, NIO_DEFAULT_KEY)
