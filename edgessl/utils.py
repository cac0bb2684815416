"""Small shared helpers: the cache folder, durable atomic writes, clean-up of killed saves,
output-folder locks, a Ctrl-C that stops a loop between units of work.

A file written with :func:`atomic_write` is complete or absent, also across a power loss: the
data goes to a temporary file next to the target, which is fsynced, renamed onto the target,
and the folder is fsynced so the rename itself is on disk. Temporary files are named
``.NAME.PID.RANDOM.edgessl-tmp``, so the temp file of a save killed mid-write (SIGKILL, OOM
killer) is recognisable and :func:`remove_stale_temps` deletes it on the next start.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from edgessl.errors import BadInput

TMP_SUFFIX = ".edgessl-tmp"


def cache_dir() -> Path:
    """Where edgessl keeps derived data (folder indexes, locks, unpacked data sets):
    ``$EDGESSL_CACHE`` if set, else ``$XDG_CACHE_HOME/edgessl``, else ``~/.cache/edgessl``."""
    if os.environ.get("EDGESSL_CACHE"):
        return Path(os.environ["EDGESSL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgessl"


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, fsync it, rename it onto ``path`` and fsync the folder:
    readers never see half a file, and a crash at any moment leaves the old or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the temp file, not the result
        _fsync_path(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_path(path.parent, directory=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and durably."""
    return atomic_write(path, lambda p: p.write_text(text))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _temp_pid(name: str) -> int | None:
    """The writer's pid encoded in a temp file name, None when unreadable."""
    parts = name[:-len(TMP_SUFFIX)].rsplit(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def remove_stale_temps(folder: str | Path, owner: bool = False) -> list[Path]:
    """Delete the temp files that killed saves left in ``folder``: those whose writer is no
    longer alive, or (``owner``: the caller holds the folder's lock, so nobody else writes
    there) every one not written by this process. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.glob(f".*{TMP_SUFFIX}"):
        pid = _temp_pid(p.name)
        if pid == os.getpid():
            continue
        if owner or pid is None or not _pid_alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class FolderLock:
    """An exclusive lock on an output folder, held while a process writes into it: a second
    process is refused with a message naming the holder. ``flock`` on an open file: the
    kernel drops it when the holder exits or is killed, so a dead process never holds it.
    The lock file lives in ``cache_dir()/locks`` (named by the folder's real path), so a
    command refused for bad input leaves no trace in the output folder; it guards against
    runs on the same machine."""

    def __init__(self, folder: str | Path, option: str = "--out"):
        self.folder, self.option = Path(folder), option
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        key = hashlib.sha256(str(self.folder.resolve()).encode()).hexdigest()[:24]
        return cache_dir() / "locks" / f"{key}.lock"

    def acquire(self) -> FolderLock:
        if self.folder.exists() and not self.folder.is_dir():
            raise BadInput(f"{self.option} {self.folder} exists and is not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BadInput(f"cannot create the lock file {self.path} for {self.option} "
                           f"{self.folder} ({exc.strerror}); set EDGESSL_CACHE to a writable "
                           "folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BadInput(f"{self.option} {self.folder} is in use by another edgessl process "
                           f"(pid {holder}); wait for it to finish or choose another "
                           f"{self.option}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class GracefulStop:
    """While active, the first Ctrl-C (SIGINT) only sets :attr:`requested`, which a long loop
    polls between units of work; a second one raises ``KeyboardInterrupt`` at once.

    Why a flag: a ``KeyboardInterrupt`` raised at an arbitrary point can be swallowed by
    third-party code (pymoo has bare ``except:`` clauses in its evaluation path), and then a
    Ctrl-C is silently lost. Outside the main thread signals cannot be handled; there it does
    nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
