"""A real, throw-away PostgreSQL server for integration tests.

Usage (sync, e.g. from a session-scoped fixture)::

    pg = PostgresServer()
    pg.start()                                   # initdb + postmaster, ~1-2 s
    url = pg.create_database("bot_test")         # postgresql+asyncpg://postgres@127.0.0.1:<port>/bot_test
    ...
    pg.stop()

The cluster lives in a temp dir, listens on 127.0.0.1 only (plus a unix
socket inside the temp dir), uses trust auth and runs with
fsync/synchronous_commit/full_page_writes off. When the test process runs as
root the binaries run as the ``postgres`` OS user (PostgreSQL refuses to run
as root); otherwise as the current user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .synapse import LOOPBACK, free_port, log_tail, popen_server, stop_process

__all__ = ["PostgresServer", "PostgresError", "find_pg_bindir"]


class PostgresError(RuntimeError):
    """PostgreSQL failed to initialise/start, or a client command failed."""


def find_pg_bindir() -> Path:
    """Directory holding initdb/postgres: from PATH (resolving symlinks such
    as /usr/local/bin/initdb), else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found:
        real = Path(os.path.realpath(found)).parent
        if (real / "postgres").exists():
            return real
        if (Path(found).parent / "postgres").exists():
            return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0),
    )
    for c in reversed(candidates):
        if (Path(c) / "initdb").exists():
            return Path(c)
    raise PostgresError("PostgreSQL binaries not found (no initdb on PATH or in /usr/lib/postgresql/*/bin)")


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresServer:
    """A PostgreSQL postmaster subprocess with its own temp cluster.

    Attributes after :meth:`start`: ``port``, ``host`` (127.0.0.1),
    ``tmpdir``, ``datadir``, ``socket_dir``, ``log_path``, ``user``
    (DB superuser, ``postgres``), ``startup_seconds``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        bindir: str | Path | None = None,
        os_user: str | None = None,
        startup_timeout: float = 60.0,
        extra_settings: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.host = LOOPBACK
        self.user = "postgres"  # database superuser created by initdb -U
        self.bindir = Path(bindir) if bindir else None
        self.startup_timeout = startup_timeout
        self.extra_settings = extra_settings or {}
        if os_user is None and os.geteuid() == 0:
            os_user = "postgres"
        self.os_user = os_user
        self.tmpdir: Path | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen | None = None

    # -- paths -----------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "postgres.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def _env(self) -> dict[str, str]:
        # No inherited PG* variables (PGHOST, PGDATA, ...) may redirect us.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        if self.tmpdir is not None:
            env["HOME"] = str(self.tmpdir)
        return env

    # -- urls -------------------------------------------------------------

    def url(self, dbname: str = "postgres", driver: str = "asyncpg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/db``.
        ``driver=""`` gives a plain ``postgresql://`` URL."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq/asyncpg DSN: ``postgresql://postgres@127.0.0.1:<port>/<db>``."""
        return self.url(dbname, driver="")

    # -- lifecycle --------------------------------------------------------

    def start(self) -> "PostgresServer":
        if self.running:
            return self
        t0 = time.monotonic()
        if self.bindir is None:
            self.bindir = find_pg_bindir()
        uid = gid = None
        if self.os_user is not None:
            try:
                pw = pwd.getpwnam(self.os_user)
            except KeyError:
                raise PostgresError(
                    f"running as root but OS user {self.os_user!r} does not exist; "
                    "PostgreSQL refuses to run as root"
                ) from None
            uid, gid = pw.pw_uid, pw.pw_gid
        base = tempfile.gettempdir()
        if uid is not None and not os.stat(base).st_mode & 0o001:
            base = "/tmp"  # $TMPDIR not traversable by the postgres OS user
        self.tmpdir = Path(tempfile.mkdtemp(prefix="ess-bot-pg-", dir=base))
        if uid is not None:
            os.chown(self.tmpdir, uid, gid)
        if self.port is None:
            self.port = free_port()

        init = subprocess.run(
            [
                self._bin("initdb"),
                "-D", str(self.datadir),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=str(self.tmpdir),
            env=self._env(),
            user=self.os_user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
        if init.returncode != 0:
            out = init.stdout.decode("utf-8", "replace")
            self._cleanup()
            raise PostgresError(f"initdb failed (rc={init.returncode}):\n{out[-4000:]}")

        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_checkpoints": "off",
            **self.extra_settings,
        }
        args = [self._bin("postgres"), "-D", str(self.datadir)]
        for k, v in settings.items():
            args += ["-c", f"{k}={v}"]
        self._args = args
        self._launch()
        if uid is not None:
            os.chown(self.log_path, uid, gid)
        try:
            self._wait_ready(t0)
        except BaseException:
            # Kill it but keep the temp dir (cluster + log) for inspection.
            proc, self._proc = self._proc, None
            stop_process(proc, signal.SIGINT, timeout=15)
            raise
        self.startup_seconds = time.monotonic() - t0
        print(
            f"\n[harness] PostgreSQL up on {self.host}:{self.port} in "
            f"{self.startup_seconds:.2f}s (dir {self.tmpdir})",
            file=sys.stderr,
        )
        return self

    def _launch(self) -> None:
        # SIGQUIT (immediate shutdown) if the test process dies abruptly.
        self._proc = popen_server(
            self._args,
            log_path=self.log_path,
            cwd=self.tmpdir,
            env=self._env(),
            user=self.os_user,
            death_signal=signal.SIGQUIT,
        )

    def halt(self, immediate: bool = False) -> None:
        """Stop the server but keep its cluster (for :meth:`resume`): a fast shutdown (SIGINT) that
        ends every session, or an immediate one (SIGQUIT), as in a crash."""
        proc, self._proc = self._proc, None
        stop_process(proc, signal.SIGQUIT if immediate else signal.SIGINT, timeout=15)

    def resume(self) -> None:
        """Start the halted server again, on the same port and data."""
        assert self._proc is None and self.tmpdir is not None, "halt() first"
        self._launch()
        self._wait_ready(time.monotonic())

    def _wait_ready(self, t0: float) -> None:
        assert self._proc is not None
        deadline = t0 + self.startup_timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise PostgresError(
                    f"postgres exited with code {rc} during startup "
                    f"(temp dir {self.tmpdir} kept for inspection).\n"
                    f"--- {self.log_path} (tail) ---\n{log_tail(self.log_path)}"
                )
            r = subprocess.run(
                [self._bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-U", self.user],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"postgres not ready within {self.startup_timeout:.0f}s "
                    f"(temp dir {self.tmpdir} kept for inspection).\n"
                    f"--- {self.log_path} (tail) ---\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL after 15 s; removes the temp dir."""
        proc, self._proc = self._proc, None
        stop_process(proc, signal.SIGINT, timeout=15)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------

    def _client(self, tool: str, *args: str) -> str:
        if not self.running:
            raise PostgresError("PostgreSQL is not running")
        r = subprocess.run(
            [self._bin(tool), "-h", self.host, "-p", str(self.port), "-U", self.user, *args],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        if r.returncode != 0:
            raise PostgresError(
                f"{tool} {' '.join(args)} failed (rc={r.returncode}): "
                f"{(r.stderr or r.stdout).decode('utf-8', 'replace').strip()}"
            )
        return r.stdout.decode("utf-8", "replace")

    def create_database(self, name: str | None = None, driver: str = "asyncpg") -> str:
        """``CREATE DATABASE name`` (random name if None); returns its
        SQLAlchemy URL ``postgresql+asyncpg://postgres@127.0.0.1:<port>/<name>``."""
        name = name or f"test_{secrets.token_hex(6)}"
        if not _IDENT.match(name):
            raise ValueError(f"invalid database name {name!r} (use [A-Za-z_][A-Za-z0-9_]*)")
        self._client("createdb", name)
        return self.url(name, driver=driver)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE name WITH (FORCE)`` (terminates open connections)."""
        if not _IDENT.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with psql (unaligned, tuples only); returns stdout."""
        return self._client("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-c", sql)
