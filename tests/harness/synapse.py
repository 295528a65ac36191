"""A real, throw-away Synapse homeserver for integration tests.

Usage (sync, e.g. from a session-scoped fixture)::

    hs = SynapseServer()
    hs.start()                      # ~3-6 s, prints the startup time once
    user_id, token, device = hs.register_user(fresh_user("alice"))
    ...
    hs.stop()

Everything listens on 127.0.0.1 only; federation, presence, URL previews,
metrics and stats reporting are off, and every rate limiter is relaxed.

This module also holds the small process helpers (``free_port``,
``stop_process``, ...) used by :mod:`tests.harness.postgres`.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import yaml

LOOPBACK = "127.0.0.1"

__all__ = [
    "SynapseServer",
    "SynapseError",
    "fresh_user",
    "free_port",
]


# --------------------------------------------------------------------------
# generic process / network helpers (also used by postgres.py)
# --------------------------------------------------------------------------


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1.

    There is an unavoidable tiny race between closing the probe socket and
    the server binding the port; the servers then fail loudly at startup.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def log_tail(path: Path | str, lines: int = 60) -> str:
    """The last ``lines`` lines of a (possibly missing) log file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"<could not read {path}: {e}>"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _make_preexec(death_signal: int):
    """A preexec_fn asking the kernel to send ``death_signal`` to the child
    when the test process dies (no orphaned servers after a crash/kill -9).

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only
    armed when forking from the main thread. Python runs preexec_fn after the
    ``Popen(user=...)`` uid switch, which matters: a credential change clears
    the setting.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(1, death_signal, 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent died before prctl took effect
            os._exit(1)

    return preexec


def popen_server(
    args: list[str],
    *,
    log_path: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen:
    """Start a long-running server, stdout+stderr appended to ``log_path``.

    The child gets its own process group so a Ctrl-C aimed at pytest does not
    hit it directly; the harness stays in charge of shutting it down.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(cwd),
            env=env,
            user=user,
            preexec_fn=_make_preexec(death_signal),
            process_group=0,
        )


def stop_process(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Stop ``proc``: SIGCONT (in case it is paused), ``sig``, wait, then
    SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# urllib honours *_proxy environment variables by default; never let a
# proxy get between us and 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------
# Synapse
# --------------------------------------------------------------------------


class SynapseError(RuntimeError):
    """Synapse failed to start, or an admin API call failed."""


_LOCALPART_BAD = re.compile(r"[^a-z0-9._=\-/+]")


def fresh_user(prefix: str = "user") -> str:
    """A unique, valid Matrix localpart such as ``alice-3f9a1c2b``."""
    base = _LOCALPART_BAD.sub("_", prefix.lower()) or "user"
    return f"{base}-{secrets.token_hex(4)}"


# Every rate limiter this Synapse version reads (see
# synapse/config/ratelimiting.py), opened up wide.
_FAST = {"per_second": 10000, "burst_count": 100000}


def _ratelimit_config() -> dict[str, Any]:
    return {
        "rc_message": dict(_FAST),
        "rc_registration": dict(_FAST),
        "rc_registration_token_validity": dict(_FAST),
        "rc_login": {
            "address": dict(_FAST),
            "account": dict(_FAST),
            "failed_attempts": dict(_FAST),
        },
        "rc_admin_redaction": dict(_FAST),
        "rc_joins": {"local": dict(_FAST), "remote": dict(_FAST)},
        "rc_joins_per_room": dict(_FAST),
        "rc_key_requests": dict(_FAST),
        "rc_3pid_validation": dict(_FAST),
        "rc_invites": {
            "per_room": dict(_FAST),
            "per_user": dict(_FAST),
            "per_issuer": dict(_FAST),
        },
        "rc_third_party_invite": dict(_FAST),
        "rc_media_create": dict(_FAST),
        "rc_presence": {"per_user": dict(_FAST)},
        "rc_delayed_event_mgmt": dict(_FAST),
        "rc_room_creation": dict(_FAST),
        "rc_reports": dict(_FAST),
        "rc_user_directory": dict(_FAST),
        "rc_profile": dict(_FAST),
        # Federation is off; keep its limiter generous anyway.
        "rc_federation": {
            "window_size": 1000,
            "sleep_limit": 10000,
            "sleep_delay": 1,
            "reject_limit": 100000,
            "concurrent": 1000,
        },
    }


def _log_config(log_file: Path, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                " - %(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_file),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": level}},
        "root": {"level": level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


class SynapseServer:
    """A Synapse homeserver subprocess with its own temp dir and SQLite DB.

    Attributes available after :meth:`start`: ``base_url``
    (``http://127.0.0.1:<port>``), ``server_name``, ``port``, ``tmpdir``,
    ``config_path``, ``log_path`` (Synapse's own log, WARNING+),
    ``stdout_path`` (process stdout/stderr), ``startup_seconds``,
    ``registration_shared_secret``.
    """

    def __init__(
        self,
        server_name: str = "localhost",
        *,
        port: int | None = None,
        tmpdir: str | Path | None = None,
        log_level: str = "WARNING",
        extra_config: dict[str, Any] | None = None,
        startup_timeout: float = 60.0,
        keep_tmpdir: bool = False,
    ) -> None:
        self.server_name = server_name
        self.port = port
        self._given_tmpdir = Path(tmpdir) if tmpdir is not None else None
        self.tmpdir: Path | None = None
        self.log_level = log_level
        self.extra_config = extra_config or {}
        self.startup_timeout = startup_timeout
        self.keep_tmpdir = keep_tmpdir
        self.registration_shared_secret = secrets.token_hex(32)
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self._paused = False

    fresh_user = staticmethod(fresh_user)

    # -- paths / urls ------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise SynapseError("SynapseServer not started")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "homeserver.log"

    @property
    def stdout_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "stdout.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    # -- config --------------------------------------------------------------

    def build_config(self) -> dict[str, Any]:
        assert self.tmpdir is not None and self.port is not None
        d = self.tmpdir
        cfg: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"http://{LOOPBACK}:{self.port}/",
            "pid_file": str(d / "homeserver.pid"),
            "report_stats": False,
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": [LOOPBACK],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    # "client" also mounts /_synapse/admin and the media API;
                    # no "federation" resource at all.
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "federation_domain_whitelist": [],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "database": {
                "name": "sqlite3",
                "args": {"database": str(d / "homeserver.db")},
            },
            "log_config": str(d / "log.config.yaml"),
            "media_store_path": str(d / "media_store"),
            "max_upload_size": "50M",
            "url_preview_enabled": False,
            "enable_registration": False,
            "registration_shared_secret": self.registration_shared_secret,
            "bcrypt_rounds": 4,
            "signing_key_path": str(d / "signing.key"),
            "macaroon_secret_key": secrets.token_hex(32),
            "form_secret": secrets.token_hex(32),
            "enable_metrics": False,
            "presence": {"enabled": False},
            "filter_timeline_limit": 5000,
            **_ratelimit_config(),
        }
        cfg.update(self.extra_config)
        return cfg

    def _write_files(self) -> None:
        assert self.tmpdir is not None
        from signedjson.key import generate_signing_key, write_signing_keys

        (self.tmpdir / "media_store").mkdir(exist_ok=True)
        key_path = self.tmpdir / "signing.key"
        if not key_path.exists():  # keep the server's identity across a stop/start in the same dir
            with open(key_path, "w") as f:
                write_signing_keys(f, [generate_signing_key("a_test")])
        (self.tmpdir / "log.config.yaml").write_text(
            yaml.safe_dump(_log_config(self.log_path, self.log_level))
        )
        self.config_path.write_text(yaml.safe_dump(self.build_config(), sort_keys=False))

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "SynapseServer":
        if self.running:
            return self
        t0 = time.monotonic()
        if self._given_tmpdir is not None:
            self.tmpdir = self._given_tmpdir
            self.tmpdir.mkdir(parents=True, exist_ok=True)
        else:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="ess-bot-synapse-"))
        if self.port is None:
            self.port = free_port()
        self._write_files()

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.lower().endswith("_proxy")  # belt and braces: loopback only
        }
        self._proc = popen_server(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            log_path=self.stdout_path,
            cwd=self.tmpdir,
            env=env,
        )
        try:
            self._wait_healthy(t0)
        except BaseException:
            # Kill it but keep the temp dir (config + logs) for inspection.
            proc, self._proc = self._proc, None
            stop_process(proc, signal.SIGTERM, timeout=15)
            raise
        self.startup_seconds = time.monotonic() - t0
        print(
            f"\n[harness] Synapse {self.server_name} up on {self.base_url} "
            f"in {self.startup_seconds:.2f}s (dir {self.tmpdir})",
            file=sys.stderr,
        )
        return self

    def _failure_report(self, why: str) -> str:
        return (
            f"Synapse {why} (temp dir {self.tmpdir} kept for inspection).\n"
            f"--- {self.stdout_path} (tail) ---\n{log_tail(self.stdout_path)}\n"
            f"--- {self.log_path} (tail) ---\n{log_tail(self.log_path)}"
        )

    def _wait_healthy(self, t0: float) -> None:
        assert self._proc is not None
        deadline = t0 + self.startup_timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise SynapseError(self._failure_report(f"exited with code {rc} during startup"))
            try:
                with _OPENER.open(self.base_url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise SynapseError(
                    self._failure_report(
                        f"did not answer /health within {self.startup_timeout:.0f}s"
                    )
                )
            time.sleep(0.1)

    def health(self, timeout: float = 2.0) -> bool:
        try:
            with _OPENER.open(self.base_url + "/health", timeout=timeout) as r:
                return r.status == 200 and r.read().strip() == b"OK"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self) -> None:
        """Terminate Synapse (SIGTERM, then SIGKILL after 15 s) and remove
        the temp dir unless ``keep_tmpdir``."""
        proc, self._proc = self._proc, None
        self._paused = False
        stop_process(proc, signal.SIGTERM, timeout=15)
        if self.tmpdir is not None and not self.keep_tmpdir and self._given_tmpdir is None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "SynapseServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- outage simulation ---------------------------------------------------

    def pause(self) -> None:
        """Freeze Synapse with SIGSTOP: the port stays open and the kernel
        still accepts TCP connections, but no request is answered (clients
        see timeouts, not connection refused) until :meth:`resume`."""
        if not self.running:
            raise SynapseError("Synapse is not running")
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    @contextlib.contextmanager
    def paused_ctx(self) -> Iterator[None]:
        """``with hs.paused_ctx(): ...`` -- paused inside, resumed after."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    # -- shared-secret registration -----------------------------------------

    def _register_body(
        self, nonce: str, localpart: str, password: str, admin: bool, displayname: str | None
    ) -> dict[str, Any]:
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(nonce.encode())
        mac.update(b"\x00")
        mac.update(localpart.encode())
        mac.update(b"\x00")
        mac.update(password.encode())
        mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        if displayname is not None:
            body["displayname"] = displayname
        return body

    def register_user(
        self,
        localpart: str,
        password: str | None = None,
        admin: bool = False,
        displayname: str | None = None,
    ) -> tuple[str, str, str]:
        """Register via the shared-secret admin API (sync, urllib).

        Returns ``(user_id, access_token, device_id)``. Synapse lower-cases
        the localpart. Use :func:`fresh_user` for unique names.
        """
        password = password or secrets.token_hex(12)
        url = self.base_url + "/_synapse/admin/v1/register"
        nonce = self._http_json("GET", url)["nonce"]
        res = self._http_json(
            "POST", url, self._register_body(nonce, localpart, password, admin, displayname)
        )
        return res["user_id"], res["access_token"], res["device_id"]

    async def register_user_async(
        self,
        localpart: str,
        password: str | None = None,
        admin: bool = False,
        displayname: str | None = None,
        session: Any = None,
    ) -> tuple[str, str, str]:
        """Async twin of :meth:`register_user` (aiohttp)."""
        import aiohttp

        password = password or secrets.token_hex(12)
        url = self.base_url + "/_synapse/admin/v1/register"
        own = session is None
        if own:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with session.get(url) as r:
                data = await r.json()
                if r.status != 200:
                    raise SynapseError(f"GET {url} -> {r.status}: {data}")
                nonce = data["nonce"]
            body = self._register_body(nonce, localpart, password, admin, displayname)
            async with session.post(url, json=body) as r:
                res = await r.json()
                if r.status != 200:
                    raise SynapseError(f"POST {url} -> {r.status}: {res}")
        finally:
            if own:
                await session.close()
        return res["user_id"], res["access_token"], res["device_id"]

    def login(self, user_id_or_localpart: str, password: str, device_id: str | None = None) -> tuple[str, str, str]:
        """Password login (sync). Returns ``(user_id, access_token, device_id)``."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id_or_localpart},
            "password": password,
        }
        if device_id:
            body["device_id"] = device_id
        res = self._http_json("POST", self.base_url + "/_matrix/client/v3/login", body)
        return res["user_id"], res["access_token"], res["device_id"]

    def _http_json(
        self, method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with _OPENER.open(req, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            with e:
                detail = e.read().decode("utf-8", "replace")
            raise SynapseError(f"{method} {url} -> {e.code}: {detail}") from None
