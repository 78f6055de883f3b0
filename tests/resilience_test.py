"""Killed, interrupted and restarted runs: nothing written is lost, and resuming is exact."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
from conftest import fresh_state, tiny_config

from gan_jax import train
from gan_jax.checkpoint import Checkpointer
from gan_jax.writers import read_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs the CLI; with KILL_AT_SAVE=n the process SIGKILLs itself during its n-th checkpoint
# write, after the data is on disk but before orbax renames it into place.
DRIVER = textwrap.dedent("""
    import os, signal, sys
    from orbax.checkpoint._src.path import atomicity
    kill_at, calls = int(os.environ.get("KILL_AT_SAVE", "0")), [0]
    original = atomicity.AtomicRenameTemporaryPath.finalize
    async def finalize(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return await original(self, *args, **kwargs)
    atomicity.AtomicRenameTemporaryPath.finalize = finalize
    from gan_jax.cli import run
    sys.argv = ["gan-jax", *sys.argv[1:]]
    run()
""")

CONFIG_FILE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import fresh_state, tiny_config
    def get_config():
        return tiny_config(num_steps=100000, checkpoint_every=8, keep_checkpoints=100)
""")


def start(tmp_path, workdir, num_steps, kill_at_save=0):
    config_file = tmp_path / "tiny.py"
    config_file.write_text(CONFIG_FILE.format(tests=os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, KILL_AT_SAVE=str(kill_at_save))
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRIVER,
            "train",
            f"--config={config_file}",
            f"--workdir={workdir}",
            f"--config.train.num_steps={num_steps}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_checkpoints(workdir, count, proc, timeout=180):
    deadline = time.time() + timeout
    directory = os.path.join(workdir, "checkpoints")
    while time.time() < deadline:
        done = [d for d in os.listdir(directory) if d.isdigit()] if os.path.isdir(directory) else []
        if len(done) >= count:
            return
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.2)
    raise TimeoutError(f"no {count} checkpoints in {directory}")


def resume_and_compare(tmp_path, workdir, extra_steps=8):
    latest = Checkpointer(os.path.join(workdir, "checkpoints")).latest_step()
    target = latest + extra_steps
    proc = start(tmp_path, workdir, target)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, output[-3000:]
    config = tiny_config(num_steps=target, checkpoint_every=8)
    straight = train.train_and_evaluate(config, str(tmp_path / f"straight{target}"))
    like = fresh_state(config)
    resumed = Checkpointer(os.path.join(workdir, "checkpoints")).restore(like)
    assert int(resumed.step) == target
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Each step logged once (rows after the restored checkpoint, written by the killed run, were
    # dropped), and every row as the unbroken run wrote it, bar the wall time.
    rows, straight_rows = read_metrics(workdir), read_metrics(str(tmp_path / f"straight{target}"))
    assert [r["step"] for r in rows] == list(range(4, target + 1, 4))
    for row, straight_row in zip(rows, straight_rows, strict=True):
        assert {**row, "seconds": 0} == {**straight_row, "seconds": 0}
    return latest


def test_sigkill_mid_training_resumes_bit_identical(tmp_path):
    workdir = str(tmp_path / "run")
    proc = start(tmp_path, workdir, 100000)
    wait_for_checkpoints(workdir, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = resume_and_compare(tmp_path, workdir)
    assert latest >= 16


def test_sigkill_mid_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    workdir = str(tmp_path / "run")
    proc = start(tmp_path, workdir, 100000, kill_at_save=3)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == -signal.SIGKILL, output[-3000:]
    entries = os.listdir(os.path.join(workdir, "checkpoints"))
    unfinished = [int(e.split(".")[0]) for e in entries if ".orbax-checkpoint-tmp" in e]
    assert len(unfinished) == 1, entries  # the write the kill interrupted
    complete = Checkpointer(os.path.join(workdir, "checkpoints")).all_steps()
    assert complete == list(range(8, unfinished[0], 8))
    # The kill came after the rows up to the unfinished checkpoint's step were logged.
    assert read_metrics(workdir)[-1]["step"] == unfinished[0] > complete[-1]
    resume_and_compare(tmp_path, workdir)


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    workdir = str(tmp_path / "run")
    proc = start(tmp_path, workdir, 100000)
    wait_for_checkpoints(workdir, 1, proc)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output[-3000:]
    assert "stop requested: saving a checkpoint" in output
    latest = Checkpointer(os.path.join(workdir, "checkpoints")).latest_step()
    assert latest == read_metrics(workdir)[-1]["step"]
    resume_and_compare(tmp_path, workdir)
