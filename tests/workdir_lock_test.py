"""One run at a time per workdir: a second one stops at once naming the holder; no stale lock."""

import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from conftest import tiny_config

from gan_jax import evaluate, train, workdir_lock
from gan_jax.workdir_lock import WorkdirBusyError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOLDER = textwrap.dedent("""
    import sys, time
    from gan_jax.workdir_lock import hold
    with hold(sys.argv[1], "train"):
        print("held", flush=True)
        time.sleep(600)
""")


def test_a_held_workdir_refuses_train_and_eval_before_any_work(tmp_path):
    workdir = str(tmp_path / "run")
    with workdir_lock.hold(workdir, "eval") as holder:
        assert workdir_lock.read_holder(workdir) == holder
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(WorkdirBusyError, match=rf"process {os.getpid()} on host .*since "):
            train.train_and_evaluate(tiny_config(), workdir)
        with pytest.raises(WorkdirBusyError, match=r"'gan-jax eval', since .*'gan-jax eval'"):
            evaluate.evaluate(workdir)
        assert sorted(os.listdir(workdir)) == [workdir_lock.LOCK_FILE]  # nothing written
    assert workdir_lock.read_holder(workdir) is None  # released, and no details left behind
    with workdir_lock.hold(workdir, "train"):  # free again
        pass


def test_a_second_process_stops_at_once_and_a_killed_holder_leaves_no_lock(tmp_path):
    workdir = str(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, workdir], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        proc = subprocess.run(
            [sys.executable, "-m", "gan_jax", "train", "--config=experiments/ring8.py"]
            + [f"--workdir={workdir}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr[-3000:]
        message = proc.stderr.strip().splitlines()[-1]
        assert message.startswith(f"error: workdir {workdir} is held by process {holder.pid}")
        assert f"on host {socket.gethostname()!r} ('gan-jax train', since 20" in message
        assert "wait for that run to finish" in message and f"kill {holder.pid}" in message
        assert sorted(os.listdir(workdir)) == [workdir_lock.LOCK_FILE]  # stopped before any work
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel released the killed holder's lock; only its stale details remain in the file.
    assert workdir_lock.read_holder(workdir)["pid"] == holder.pid
    with workdir_lock.hold(workdir, "train") as details:
        assert details["pid"] == os.getpid()


def test_a_missing_workdir_is_not_created_by_eval(tmp_path):
    with pytest.raises(ValueError, match="has no config.json"):
        evaluate.evaluate(str(tmp_path / "typo"))
    assert not os.path.exists(tmp_path / "typo")


def test_a_filesystem_without_locks_warns_and_runs(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with workdir_lock.hold(str(tmp_path), "train") as holder:
        assert holder is None
