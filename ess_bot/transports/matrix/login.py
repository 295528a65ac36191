"""Matrix login: credentials kept in the store, the E2EE store's key, French start errors."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import ClientConnectionError
from nio import LoginResponse, WhoamiResponse

from ess_bot.errors import FatalError
from ess_bot.files import private_dir, private_files
from ess_bot.transports.store_key import mark_store, prepare_store

log = logging.getLogger("ess_bot.transports.matrix")

START_TRIES = 3       # connection attempts to the homeserver at start before giving up with a French line
NETWORK_ERRORS = (ConnectionError, ClientConnectionError, TimeoutError, asyncio.TimeoutError, OSError)


class FatalMatrixError(FatalError):
    """A problem that retrying will not solve (bad credentials); the message is French."""


class RepeatedWarnings(logging.Filter):
    """matrix-nio logs one WARNING per rate-limited request ("Got 429 response…") and per retried
    connection failure ("Timed out, sleeping for 0s", even when the connection was refused). The
    failures are the bot's to report — once per outage, see ``Health`` — so nio's retry lines are
    dropped unless the log is at DEBUG; of its 429 lines at most one per ``window`` seconds gets
    through, saying how many were folded into it. One instance per bot, on nio's client logger."""

    LOGGER = "nio.client.async_client"

    def __init__(self, monotonic: Callable[[], float], window: float = 60.0):
        super().__init__()
        self.monotonic = monotonic
        self.window = window
        self._last = float("-inf")
        self._folded = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Timed out, sleeping"):
            return logging.getLogger(self.LOGGER).isEnabledFor(logging.DEBUG)
        if not message.startswith("Got 429 response"):
            return True
        now = self.monotonic()
        if now - self._last < self.window:
            self._folded += 1
            return False
        self._last = now
        if self._folded:
            record.msg = f"{record.msg} (and {self._folded} more in the last {self.window:.0f} s)"
            self._folded = 0
        return True


@dataclass
class Credentials:
    user_id: str
    device_id: str
    access_token: str
    homeserver: str

    @classmethod
    def load(cls, path: Path) -> "Credentials | None":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in ("user_id", "device_id", "access_token", "homeserver")})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        private_dir(path.parent)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only from the first byte
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.__dict__, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)


REFUSALS = {"M_FORBIDDEN": "identifiant ou mot de passe incorrect", "M_UNKNOWN_TOKEN": "jeton inconnu ou expiré",
            "M_MISSING_TOKEN": "jeton absent", "M_USER_DEACTIVATED": "compte désactivé",
            "M_INVALID_USERNAME": "identifiant invalide", "M_USER_LOCKED": "compte verrouillé"}


def _refusal(resp: Any) -> str:
    code = getattr(resp, "status_code", None) or "?"
    return f"{REFUSALS[code]} ({code})" if code in REFUSALS else f"erreur {code}"


def _raise_unless_refused(resp: Any) -> None:
    """An error answer that is not a refusal of the credentials (a 502 from a proxy while the homeserver
    restarts, a rate limit…) is a passing failure: retried as a connection error, not fatal."""
    if getattr(resp, "status_code", None) not in REFUSALS:
        raise ConnectionError(f"homeserver answered {getattr(resp, 'status_code', '?')}: "
                              f"{getattr(resp, 'message', resp)}")


def _network_reason(exc: BaseException) -> str:
    """A short French reason for a failed connection to the homeserver."""
    import socket

    chain, e = [], exc
    while e is not None and len(chain) < 5:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(c) for c in chain).lower()
    if any(isinstance(c, socket.gaierror) for c in chain) or "name or service not known" in text:
        return "nom d'hôte inconnu"
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "connection refused" in text \
            or "connect call failed" in text:
        return "connexion refusée"
    if any(isinstance(c, (TimeoutError, asyncio.TimeoutError)) for c in chain):
        return "pas de réponse dans le délai"
    if "ssl" in text or "certificate" in text:
        return "échec de la connexion sécurisée (certificat ?)"
    return "connexion impossible"



class MatrixLogin:
    """The login half of :class:`ess_bot.transports.matrix.MatrixTransport` (a mixin: ``config``,
    ``client``, ``store_path``, ``backoff_max`` and the store key are the transport's)."""

    @property
    def _credentials_path(self) -> Path:
        return self.store_path / "credentials.json"

    async def _login_at_start(self) -> None:
        """:meth:`login`, tried START_TRIES times; a homeserver still unreachable → FatalError."""
        for attempt in range(1, START_TRIES + 1):
            try:
                return await self.login()
            except NETWORK_ERRORS as exc:
                if attempt == START_TRIES:
                    raise FatalMatrixError(f"Serveur Matrix injoignable : {self.config.matrix.homeserver} "
                                           f"({_network_reason(exc)}). Vérifiez matrix.homeserver et le réseau, "
                                           "puis relancez.") from exc
                log.debug("homeserver %s unreachable at start (%s); trying again", self.config.matrix.homeserver,
                          exc)
                await asyncio.sleep(min(attempt, self.backoff_max))

    async def login(self) -> None:
        m = self.config.matrix
        creds = Credentials.load(self._credentials_path)
        if m.access_token:
            self.client.access_token = m.access_token
            who = await self.client.whoami()
            if not isinstance(who, WhoamiResponse):
                _raise_unless_refused(who)
                raise FatalMatrixError(f"Le jeton d'accès configuré (matrix.access_token) est refusé par "
                                       f"{m.homeserver} : {_refusal(who)}.")
            if who.user_id != m.user_id:
                raise FatalMatrixError(f"Le jeton d'accès appartient à {who.user_id}, pas à {m.user_id} (matrix.user_id).")
            self._prepare_store(who.device_id)
            self.client.restore_login(m.user_id, who.device_id, m.access_token)
            Credentials(m.user_id, who.device_id, m.access_token, m.homeserver).save(self._credentials_path)
        elif creds and creds.user_id == m.user_id and creds.homeserver == m.homeserver:
            self._prepare_store(creds.device_id)
            self.client.restore_login(creds.user_id, creds.device_id, creds.access_token)
            who = await self.client.whoami()
            if not isinstance(who, WhoamiResponse):
                _raise_unless_refused(who)
                log.warning("stored access token refused (%s); logging in again with the password", who)
                await self._password_login(device_id=creds.device_id)
        else:
            await self._password_login()
        private_files(self.store_path)  # nio's key database, created with the umask's mode
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        log.info("logged in as %s (device %s)", self.client.user_id, self.client.device_id)

    def _prepare_store(self, device_id: str) -> None:
        """Before nio opens a device's E2EE store: pickled with the configured key (re-pickled once from
        the previous one, see ess_bot.transports.store_key)."""
        if not self.config.matrix.encryption:
            return
        prepare_store(self.store_path, self.config.matrix.user_id, device_id, self._store_key,
                      self.config.matrix.previous_store_key)
        if not self._store_key_configured:
            log.warning("the E2EE store's key is kept beside it (%s/store.key): set ESS_BOT_STORE_KEY "
                        "(or matrix.store_key) to keep it out of the store's folder", self.store_path)

    async def _password_login(self, device_id: str | None = None) -> None:
        m = self.config.matrix
        if not m.password:
            raise FatalMatrixError("Aucun mot de passe ni jeton d'accès valide : renseignez matrix.password "
                                   "ou ESS_BOT_MATRIX_PASSWORD.")
        if device_id:
            self.client.device_id = device_id  # keep the same device, and so the E2EE keys
            self._prepare_store(device_id)
        resp = await self.client.login(password=m.password, device_name=m.device_name)
        if not device_id and isinstance(resp, LoginResponse):
            mark_store(self.store_path, resp.user_id, resp.device_id, self._store_key)  # nio made it with our key
        if not isinstance(resp, LoginResponse):
            _raise_unless_refused(resp)
            raise FatalMatrixError(f"Connexion refusée par {m.homeserver} pour {m.user_id} : {_refusal(resp)}. "
                                   "Vérifiez matrix.password (ou ESS_BOT_MATRIX_PASSWORD).")
        Credentials(resp.user_id, resp.device_id, resp.access_token, m.homeserver).save(self._credentials_path)
