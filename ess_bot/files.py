"""Files the bot writes (database, E2EE store, exported reports, degraded-mode journal) are for its
own user only — 0600 files, 0700 folders — whatever the umask of the process that starts it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """``path`` (and its parents when created) as a folder only the bot's user may open: 0700; an
    existing folder open to others is closed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def create_private_file(path: Path) -> None:
    """``path``'s folder (0700 when created) and the file (0600), whatever the umask; an existing file
    keeps its content and becomes 0600 if it was open to others."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (replaced if it exists), readable by the bot's user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def private_files(folder: Path) -> None:
    """Every file directly in ``folder`` (a library's files created with the umask's mode): 0600."""
    for child in folder.iterdir():
        try:
            if child.is_file() and child.stat().st_mode & 0o077:
                child.chmod(0o600)
        except OSError as exc:
            log.warning("could not restrict %s: %s", child, exc)
