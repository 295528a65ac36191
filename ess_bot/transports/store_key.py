"""The key that encrypts the E2EE store at rest (matrix-nio pickles the Olm account and sessions
with it).

- The key comes from ``matrix.store_key`` or ``ESS_BOT_STORE_KEY`` (best: from the environment, a
  systemd credential, or a secret manager, so that a copy of the store folder alone is useless).
  Without one, a random key is generated once and kept in ``<store>/store.key`` (0600): better than
  nio's public default, but in the same folder as what it protects — the start log says so.
- ``<store>/<user>_<device>.key-id`` records which key that device's store is pickled with (a hash,
  never the key).
- A store pickled with another key — nio's default ``DEFAULT_KEY`` for stores made before this, or
  ``matrix.previous_store_key`` / ``ESS_BOT_PREVIOUS_STORE_KEY`` when the key is changed — is
  re-pickled with the new key on a copy that then replaces the original, before nio opens it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
from pathlib import Path

from ess_bot.errors import FatalError
from ess_bot.files import write_private

log = logging.getLogger(__name__)

NIO_DEFAULT_KEY = "DEFAULT_KEY"
KEY_FILE = "store.key"


def key_id(key: str) -> str:
    return hashlib.sha256(("ess-bot store key:" + key).encode("utf-8")).hexdigest()[:24]


def resolve_store_key(store_path: Path, configured: str) -> tuple[str, bool]:
    """(the key to use, whether it came from the configuration). Generates the key file if needed."""
    if configured:
        return configured, True
    path = store_path / KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key, False
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(32)
    write_private(path, key.encode("utf-8"))
    return key, False


def store_file(store_path: Path, user_id: str, device_id: str) -> Path:
    return store_path / f"{user_id}_{device_id}.db"  # nio's DefaultStore naming


def mark_store(store_path: Path, user_id: str, device_id: str, key: str) -> None:
    """A store nio has just created with ``key`` (a new device): note which key it is."""
    write_private(store_file(store_path, user_id, device_id).with_suffix(".key-id"), key_id(key).encode("ascii"))


def prepare_store(store_path: Path, user_id: str, device_id: str, key: str, previous: str = "") -> bool:
    """Before nio opens the store of ``device_id``: make sure it is pickled with ``key``, re-pickling
    it from the previous key (``previous``, the generated key file's, or nio's default) if needed.
    Returns True when it re-pickled. A store whose key is unknown → FatalError (French)."""
    db = store_file(store_path, user_id, device_id)
    marker = db.with_suffix(".key-id")
    wanted = key_id(key)
    if not db.exists():
        write_private(marker, wanted.encode("ascii"))
        return False
    current = marker.read_text(encoding="ascii").strip() if marker.exists() else key_id(NIO_DEFAULT_KEY)
    if current == wanted:
        return False
    candidates = [k for k in (previous, _generated_key(store_path), NIO_DEFAULT_KEY) if k]
    old = next((k for k in candidates if key_id(k) == current), None)
    if old is None:
        raise FatalError("Le magasin de chiffrement (matrix.store_path) a été chiffré avec une autre clé que "
                         "matrix.store_key / ESS_BOT_STORE_KEY. Indiquez l'ancienne clé dans "
                         "matrix.previous_store_key (ou ESS_BOT_PREVIOUS_STORE_KEY) le temps d'un démarrage.")
    try:
        _repickle(db, store_path, user_id, device_id, old, key)
    except _WrongKey:
        # a crash after the copy replaced the store but before the marker was written: already new
        try:
            _repickle(db, store_path, user_id, device_id, key, key)
        except _WrongKey:
            raise FatalError(f"Le magasin de chiffrement {db} ne s'ouvre ni avec l'ancienne clé ni avec la "
                             "nouvelle (matrix.store_key, matrix.previous_store_key).") from None
    write_private(marker, wanted.encode("ascii"))
    log.info("E2EE store of device %s re-encrypted with the configured key", device_id)
    return True


def _generated_key(store_path: Path) -> str:
    try:
        return (store_path / KEY_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


class _WrongKey(Exception):
    pass


def _repickle(db: Path, store_path: Path, user_id: str, device_id: str, old: str, new: str) -> None:
    """Load everything nio pickles with ``old`` from a copy of the store, save it with ``new``, then
    put the copy in place (one rename: the store is never half re-encrypted)."""
    from nio.store import DefaultStore

    work = store_path / ".rekey"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        copy = work / db.name
        shutil.copy2(db, copy)
        os.chmod(copy, 0o600)
        store = DefaultStore(user_id, device_id, str(work), pickle_key=old)
        try:
            try:
                account = store.load_account()
                sessions = store.load_sessions()
                group_sessions = store.load_inbound_group_sessions()
            except Exception as exc:  # vodozemac refuses a pickle opened with the wrong key
                raise _WrongKey() from exc
            if account is None:
                return
            store.pickle_key = new
            store.save_account(account)
            for sender_key, session_list in sessions.items():
                for session in session_list:
                    store.save_session(sender_key, session)
            for session in group_sessions:
                store.save_inbound_group_session(session)
        finally:
            store.database.close()
        os.replace(copy, db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
