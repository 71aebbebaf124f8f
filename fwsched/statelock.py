"""One process at a time owns an app's state: ``StateLock``, an exclusive ``flock`` on a
lock file beside the state file (``state.db.lock``), which also says whether a state
was kept here before."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

from fwsched.errors import StateBusyError, StateError
from fwsched.statefile import prepare_folder


class StateLock:
    """One process at a time owns an app's state: an exclusive ``flock`` next to the file.

    The kernel drops the lock when the process dies, so a crashed owner never
    leaves a stale lock behind. The lock file stays after its owner: ``existed``
    says a state was kept here before (so a missing state file was deleted). It is
    never opened through a symbolic link, and a read-only one still locks (for
    reading the state).
    """

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        prepare_folder(self.path.parent)
        self.existed, self._fd = self._open()
        try:
            info = os.fstat(self._fd)
            if not stat.S_ISREG(info.st_mode):
                raise StateError(f"{self.path} is not a regular file; remove it")
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(self._fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise StateBusyError(
                f"{state_path} is in use by another fwsched process (pid {owner}); "
                "stop it, or send commands to it while it runs"
            ) from None
        except BaseException:
            os.close(self._fd)
            raise
        with contextlib.suppress(OSError):  # a read-only lock file keeps its old pid
            os.ftruncate(self._fd, 0)
            os.write(self._fd, str(os.getpid()).encode())

    def _open(self) -> tuple[bool, int]:
        """(whether the lock file existed, its descriptor)."""
        flags = os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(3):  # another fwsched may create it between our two tries
            try:
                return True, os.open(self.path, os.O_RDWR | flags)
            except FileNotFoundError:
                pass
            except PermissionError:
                try:
                    return True, os.open(self.path, os.O_RDONLY | flags)  # a read-only state
                except OSError as exc:
                    raise self._refused(exc) from None
            except OSError as exc:
                raise self._refused(exc) from None
            try:
                return False, os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._refused(exc) from None
        raise StateError(f"{self.path}: the lock file keeps appearing and vanishing; retry")

    def _refused(self, exc: OSError) -> StateError:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            return StateError(
                f"{self.path} is a symbolic link: fwsched does not follow links in its state "
                "folder (a cloned repository can ship one); remove it, or run `fwsched reset`"
            )
        return StateError(
            f"{self.path}: cannot open the lock file ({exc.strerror or exc}); fix the "
            "permissions of it and of its folder"
        )

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1
