"""One run at a time per workdir: an exclusive OS lock on `<workdir>/lock` for the run's life.

Two processes on one workdir (a command launched twice, a scheduler's retry) would both resume
from the same checkpoint and interleave their checkpoints and metrics. Every command that writes
into a workdir (`train`, `eval`, and any driver that runs several of them, such as a sweep) takes
this lock first, with `hold` or the `holding` decorator; a second one stops at once with
`WorkdirBusyError`, naming the holder and what to do.

The lock is flock(2) on a file descriptor, so the kernel drops it when the holder's process ends
in any way, SIGKILL included: a killed run never leaves a stale lock. The file itself stays (it
is only the place the lock lives; deleting it while a run holds it would let a second run in).
After locking, the holder writes its process id, host, command and start time into the file, so
that a refused run can name it. Linux NFS passes flock to the server as a whole-file lock, so the
lock also holds between hosts sharing the workdir there.

In a multi-host run only process 0 writes the workdir, so only process 0 locks: the others share
the directory (on a shared filesystem their lock would be refused by process 0's).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import functools
import inspect
import json
import os
import socket
from collections.abc import Iterator

from absl import logging

LOCK_FILE = "lock"
# Filesystems without lock support (some network mounts) answer flock with these.
UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP)


class WorkdirBusyError(RuntimeError):
    """Another live process holds the workdir's lock."""


def read_holder(directory: str) -> dict | None:
    """The holder's details as written into the lock file, or None while there are none (no
    holder, or one that has locked but not yet written)."""
    try:
        with open(os.path.join(directory, LOCK_FILE)) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def busy_message(directory: str, holder: dict | None, command: str) -> str:
    """Why `command` cannot run on `directory`, who holds it, and what to do."""
    if holder is None:
        who = "a process that is starting (it has not yet written its details)"
        stop = "stop it"
    else:
        who = (
            f"process {holder.get('pid')} on host {holder.get('host')!r}"
            f" ('gan-jax {holder.get('command')}', since {holder.get('since')})"
        )
        stop = f"stop it (kill {holder.get('pid')} on {holder.get('host')!r})"
    return (
        f"workdir {directory} is held by {who}, so 'gan-jax {command}' cannot use it; wait for"
        f" that run to finish, {stop} and run again, or pass another --workdir. The lock ends"
        f" with its process, so there is no lock file to delete."
    )


@contextlib.contextmanager
def hold(directory: str, command: str, create: bool = True) -> Iterator[dict | None]:
    """Holds `directory` for the body of the `with`; yields the holder's details.

    Args:
      directory: the workdir. Created when missing if `create`; with `create=False` a missing
        directory is not locked (there is nothing in it to protect, and the caller's own checks
        report it).
      command: what runs, for the message a refused run prints ("train", "eval", ...).

    Raises:
      WorkdirBusyError: another process (or another `hold` in this one) holds the directory.
    """
    if not create and not os.path.isdir(directory):
        yield None
        return
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock(fd, directory, command):
            yield None
            return
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        try:
            yield holder
        finally:
            os.ftruncate(fd, 0)  # the details name a live holder only
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, directory: str, command: str) -> bool:
    """Locks `fd` without waiting; False (with a warning) where the filesystem has no locks."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise WorkdirBusyError(busy_message(directory, read_holder(directory), command)) from None
    except OSError as err:
        if err.errno not in UNSUPPORTED:
            raise
        logging.warning(
            "the filesystem of %s does not support locks (%s): nothing stops a second run on"
            " this workdir",
            directory,
            err,
        )
        return False
    return True


def holding(command: str, create: bool = True):
    """Decorator: the function holds (`hold`) the directory passed as its `workdir` argument
    while it runs."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def held(*args, **kwargs):
            directory = signature.bind(*args, **kwargs).arguments["workdir"]
            with hold(directory, command, create=create):
                return fn(*args, **kwargs)

        return held

    return decorate
