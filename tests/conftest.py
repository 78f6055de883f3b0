"""Shared fixtures. Eight fake CPU devices are configured before JAX starts, for the pmap tests."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# Compiling dominates this suite's time. Without LLVM's optimisation passes XLA:CPU compiles
# faster (the default run takes about 30% less time); float32 results may then differ from an
# optimised build's in the last bits, which no test compares against: every comparison a test
# makes is between programs compiled alike (the processes tests start inherit these flags), and
# golden_test pins its values under these options. The steps' own options still apply.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count=8 {TEST_XLA_FLAGS}")
# Compiling dominates this suite's time and many tests compile the same small nets, so one
# compilation cache serves the whole run: the xdist workers and the processes tests start
# inherit it from the first process, which removes it at the end (a user's own cache is kept).
OWN_CACHE_DIR = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    OWN_CACHE_DIR = tempfile.mkdtemp(prefix="gan_jax_test_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = OWN_CACHE_DIR
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# Decoded data sets that tests do not direct elsewhere go to a folder of this run's, never to the
# user's cache (gan_jax.data_cache.default_cache_dir), removed at the end the same way.
OWN_DATA_CACHE_DIR = None
if "GAN_JAX_DATA_CACHE" not in os.environ:
    OWN_DATA_CACHE_DIR = tempfile.mkdtemp(prefix="gan_jax_test_data_cache_")
    os.environ["GAN_JAX_DATA_CACHE"] = OWN_DATA_CACHE_DIR
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

from gan_jax import engine, hparams  # noqa: E402
from gan_jax.config import default_config  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir():
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {MNIST_DIR}")
    return str(MNIST_DIR)


def tiny_config(**train):
    """A ring8 config with small nets that compiles and runs in a second or two."""
    c = default_config()
    c.model.generator_kwargs = {"hidden": (16,), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (16,)}
    c.train.update(batch_size=32, num_steps=8, scan_steps=4, log_every=4, sample_every=0)
    c.train.update(**train)
    return c


def fresh_state(config, seed=0, dataset=None):
    """A config's initial state (the engine's init with the config's own Hparams): the
    structure a checkpoint of that config restores into."""
    spec = engine.make_spec(config, None if dataset is None else dataset.x.shape[0])
    return engine.init(jax.random.PRNGKey(seed), hparams.from_config(config), dataset, spec=spec)


def free_port():
    """A free TCP port on the loopback interface (for a jax.distributed coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(args: list[str], log_dir, devices_each: int = 4) -> None:
    """`python -m gan_jax ARGS` as 2 processes of `devices_each` fake CPU devices joined by
    jax.distributed over loopback; asserts both exit 0 (showing their output's tails if not)."""
    port = free_port()
    procs, logs = [], []
    for process_id in range(2):
        env = dict(
            os.environ,
            XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_each} {TEST_XLA_FLAGS}",
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(process_id),
        )
        # Output goes to files: a full pipe would block one process inside a collective.
        logs.append(open(Path(log_dir) / f"process{process_id}.log", "w+"))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gan_jax", *args],
                cwd=Path(__file__).resolve().parents[1],
                env=env,
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
            )
        )
    for proc in procs:
        proc.wait(timeout=240)
    outputs = [(log.seek(0), log.read())[1][-3000:] for log in logs]
    for log in logs:
        log.close()
    assert [p.returncode for p in procs] == [0, 0], outputs


def pytest_sessionfinish(session):
    for own in (OWN_CACHE_DIR, OWN_DATA_CACHE_DIR):
        if own:
            shutil.rmtree(own, ignore_errors=True)
