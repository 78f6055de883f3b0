"""Golden values: each experiment config's losses and parameter checksums after two iterations.

Every config is trained as its file defines it (nets, losses, optimizers, seed) with the batch
shrunk to 8, for 2 iterations of `engine.make_train`, on 64 made-up MNIST digits written to a
temporary IDX directory, so nothing here reads ../shared/data. The D and G losses of both
iterations and the sum, sum of magnitudes and sum of squares of each player's parameters are
compared with tests/golden_values.json. The dispatch modes are checked against each other elsewhere
(train_test.py); a change to an init, a default or a loss that they all share moves them all
together, and only a pinned number sees it.

When a deliberate change moves these numbers, rerun

    GAN_JAX_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -p no:cacheprovider tests/golden_test.py

which rewrites tests/golden_values.json, and say in the commit which change moved them and why.
The numbers were taken on CPU; other backends round differently (GPUs multiply float32 matrices
in TF32 by default), so the test runs on CPU only.
"""

import fcntl
import gzip
import importlib.util
import json
import os
import struct
from pathlib import Path

import jax
import numpy as np
import pytest
from experiments_loader import EXPERIMENTS

from gan_jax import data, engine, hparams
from gan_jax.config import load_experiment_file

GOLDEN = Path(__file__).with_name("golden_values.json")
UPDATE = os.environ.get("GAN_JAX_UPDATE_GOLDEN") == "1"
# Loose enough for another CPU's rounding (with XLA held to AVX or to SSE4.2: no FMA, other vector
# widths, no number moved by more than 0.37 of its tolerance), tight enough for a change of init
# (DCGAN's N(0, 0.02) as N(0, 0.0201) moved each DCGAN config's numbers by 60-170 times it).
RTOL = 1e-4
# A loss near zero is a difference of terms (a WGAN critic clipped to 0.01 outputs ~1e-5), whose
# rounding is relative to the terms, not to the difference.
LOSS_ATOL = 1e-8
NUM_DIGITS = 64
BATCH = 8
ITERATIONS = 2

# (experiment file, variant): every file whose get_config builds a training config, each of its
# variants where it lists them; of the toy table's rows (mixture x loss) those whose loss,
# penalty, optimizer or data no other config here uses; of improved_techniques_toys the VBN row
# (a G state with its 'vbn_reference' collection; the other rows' nets and losses are checked
# against numpy in models_test and improved_training_test, and each pin costs ~2 s of
# compiling). The hinge row is left out: at init every margin is active, so D's gradient for a
# last hidden bias is zero in exact arithmetic, and Adam's first step turns the float32 residue
# (0 here, 4e-9 with XLA held to AVX) into a step of up to its learning rate, which moved g_loss
# by 4e-4: not a number every machine reproduces.
CONFIGS = [
    ("ring8", ""),
    ("figure1_1d", ""),
    ("gan2014_mnist", ""),
    ("gan2014_collapse", "paper"),
    ("gan2014_collapse", "authors"),
    ("gan2014_collapse", "smoothing"),
    ("gan2014_collapse", "half_d_lr"),
    ("keras_mlp_mnist", ""),
    ("lsgan_mnist", ""),
    ("wgan_gp_mnist", ""),
    ("stacked_mnist_dcgan", "plain"),
    ("stacked_mnist_dcgan", "r1"),
    ("conditional_mnist", "dcgan"),
    ("conditional_mnist", "cgan"),
    ("conditional_mnist", "acgan"),
    ("toy_mode_coverage", ""),
    ("toy_mode_coverage", "ring8,minimax"),
    ("toy_mode_coverage", "ring8,lsgan_pearson"),
    ("toy_mode_coverage", "ring8,wgan"),
    ("toy_mode_coverage", "ring8,dragan"),
    ("toy_mode_coverage", "ring8,r2"),
    ("toy_mode_coverage", "grid25,tuned"),
    ("improved_techniques_toys", "ring8,vbn"),
    ("sweep_r1_grid25", ""),
    ("improved_gan_mnist_ssl", "100"),
    ("improved_gan_mnist_samples", "mbd"),
]
# Experiment files (or file:variant) with no golden entry, and why: their data is not the fake
# digits' shape (each has its own smoke test), or their program is a pinned one's.
NOT_PINNED = {
    "dcgan_cifar10": "32x32x3 data: tests/image_experiments_test.py",
    "wgan_gp_cifar10": "32x32x3 data: tests/image_experiments_test.py",
    "sngan_cifar10": "32x32x3 data: tests/image_experiments_test.py",
    "dcgan_celeba64": "64x64x3 data: tests/image_experiments_test.py",
    "wgan_gp_text": "text data: tests/text_test.py",
    "wgan_gp_words": "text data: tests/text_test.py",
    "gan2014_full_length": "paper: gan2014_mnist's program (other eval and save intervals);"
    " authors: gan2014_collapse:authors' with z ~ N(0, 1); simultaneous: like"
    " gan2014_collapse:simultaneous",
    "gan2014_collapse:simultaneous": "the program of :authors (update_rule simultaneous) with"
    " D's objective scale 1, a number that :paper's pin covers",
    "improved_gan_mnist_samples:plain": ":mbd's nets without the MBD layer (the SSL nets,"
    " pinned by improved_gan_mnist_ssl:100), trained on the GAN loss (pinned by others)",
    "improved_gan_mnist_ssl:20": "the program of :100 (labels capped at 2 per class here)",
    "improved_gan_mnist_ssl:50": "the program of :100 (labels capped at 2 per class here)",
    "improved_gan_mnist_ssl:200": "the program of :100 (labels capped at 2 per class here)",
}
# The fake set holds 6 or 7 digits of each class: semi-supervised configs use 2 of each.
LABELS_PER_CLASS = 2
# Compiling dominates this file's time: without LLVM's optimisations and XLA's fusion emitters
# the steps compile 3-6x faster, and the numbers agree with those of the training steps' own
# options to float32 rounding (within a quarter of the tolerance when they were pinned).
COMPILER_OPTIONS = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}


def config_id(experiment: str, variant: str) -> str:
    return f"{experiment}:{variant}" if variant else experiment


def write_idx(path: Path, array_u8: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array_u8.ndim]) + struct.pack(f">{array_u8.ndim}I", *array_u8.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array_u8.tobytes())


@pytest.fixture(scope="module")
def fake_mnist_dir(tmp_path_factory) -> str:
    """64 made-up 28x28 digits (a fixed arithmetic pattern, no random generator whose stream
    could change between library versions), labels 0-9 in turn, as the two training IDX files."""
    n_N11, row_1R1, col_11C = np.ogrid[:NUM_DIGITS, :28, :28]
    images = ((n_N11 * 131 + row_1R1 * 29 + col_11C * 7) ** 2 % 251).astype(np.uint8)
    directory = tmp_path_factory.mktemp("fake_mnist")
    write_idx(directory / data.MNIST_FILES["train"][0], images)
    write_idx(directory / data.MNIST_FILES["train"][1], np.arange(NUM_DIGITS, dtype=np.uint8) % 10)
    return str(directory)


def tiny_run_config(experiment: str, variant: str, mnist_dir: str):
    """The experiment's config with a batch of 8, 2 iterations, the fake digits as its data
    (the whole set: the config's own slice is for real MNIST) and no files written."""
    c = load_experiment_file(str(EXPERIMENTS / f"{experiment}.py"), variant)
    c.train.update(batch_size=BATCH, num_steps=ITERATIONS, scan_steps=ITERATIONS)
    c.train.update(log_every=ITERATIONS, sample_every=0, checkpoint_every=0)
    c.data.update(dir=mnist_dir, start=0, stop=NUM_DIGITS, stacked_size=NUM_DIGITS)
    c.data.labels_per_class = min(c.data.labels_per_class, LABELS_PER_CLASS)
    return c


def golden_numbers(config) -> dict[str, list[float]]:
    """D and G losses of each iteration, and per player its parameters' sum, sum of magnitudes
    and sum of squares (float64 on the host) after the last."""
    dataset = data.load_dataset(config.data)
    size = None if dataset is None else dataset.x.shape[0]
    run = jax.jit(engine.make_train(config, size), compiler_options=COMPILER_OPTIONS)
    state, metrics = run(jax.random.PRNGKey(config.seed), hparams.from_config(config), dataset)
    numbers = {name: np.asarray(metrics[name]).tolist() for name in ("d_loss", "g_loss")}
    for player in ("g", "d"):
        leaves = jax.tree.leaves(getattr(state, player).params)
        flat = np.concatenate([np.ravel(np.asarray(p, np.float64)) for p in leaves])
        numbers[f"{player}_params"] = [flat.sum(), np.abs(flat).sum(), (flat**2).sum()]
    return {name: [float(v) for v in values] for name, values in numbers.items()}


def rewrite_entry(key: str, numbers: dict) -> None:
    """Sets one entry of the golden file, under a lock: test workers may write at once."""
    with open(GOLDEN, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        golden = json.loads(f.read() or "{}")
        golden[key] = numbers
        f.seek(0)
        f.truncate()
        f.write(dumps(golden))


def dumps(golden: dict) -> str:
    """The golden file's JSON, one line per quantity so that a diff shows what moved."""
    entries = []
    for key in sorted(golden):
        items = sorted(golden[key].items())
        lines = ",\n".join(f"    {json.dumps(name)}: {json.dumps(v)}" for name, v in items)
        entries.append(f"  {json.dumps(key)}: {{\n{lines}\n  }}")
    return "{\n" + ",\n".join(entries) + "\n}\n"


def moved(numbers: dict, pinned: dict) -> list[str]:
    """The quantities that moved by more than RTOL (and LOSS_ATOL for a loss). A parameter
    sum's terms cancel, so its tolerance is RTOL of their magnitudes' sum (the next number)."""
    lines = []
    for name in sorted(set(numbers) | set(pinned)):
        got, want = numbers.get(name), pinned.get(name)
        if got is None or want is None or len(got) != len(want):
            lines.append(f"  {name}: got {got}, pinned {want}")
            continue
        tolerance = RTOL * np.abs(want)
        if name.endswith("_params"):
            tolerance[0] = RTOL * want[1]
        else:
            tolerance += LOSS_ATOL
        if np.any(np.abs(np.subtract(got, want)) > tolerance):
            lines.append(f"  {name}: got {got}, pinned {want}")
    return lines


@pytest.mark.parametrize("experiment, variant", CONFIGS, ids=[config_id(*c) for c in CONFIGS])
def test_golden_losses_and_parameter_checksums(experiment, variant, fake_mnist_dir):
    if jax.default_backend() != "cpu":
        pytest.skip(f"golden values were taken on CPU, not {jax.default_backend()}")
    key = config_id(experiment, variant)
    numbers = golden_numbers(tiny_run_config(experiment, variant, fake_mnist_dir))
    if UPDATE:
        rewrite_entry(key, numbers)
        return
    pinned = json.loads(GOLDEN.read_text()).get(key)
    how = (
        "If a deliberate change (an init, a default, a loss, the optimizer) moved them, rerun"
        " `GAN_JAX_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -p no:cacheprovider"
        " tests/golden_test.py` to rewrite tests/golden_values.json, and say in the commit"
        " which change moved them and why. Otherwise the change altered training by mistake."
    )
    if pinned is None:
        pytest.fail(f"no golden values for {key!r} in {GOLDEN.name}. {how}")
    if diff := moved(numbers, pinned):
        pytest.fail(f"{key}: golden values moved (rtol {RTOL}):\n" + "\n".join(diff) + f"\n{how}")


def test_every_experiment_config_is_pinned():
    """A new experiment file, or a new variant of one, gets its golden values too, and the
    golden file holds no entry that no test reads."""
    stale = set(json.loads(GOLDEN.read_text())) - {config_id(*c) for c in CONFIGS}
    assert not stale, f"{GOLDEN.name} has entries for configs not in CONFIGS: {sorted(stale)}"
    pinned = {experiment for experiment, _ in CONFIGS}
    for path in sorted(EXPERIMENTS.glob("*.py")):
        if "def get_config" not in path.read_text() or path.stem in NOT_PINNED:
            continue
        assert path.stem in pinned, f"experiments/{path.name} has no entry in CONFIGS"
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for variant in getattr(module, "VARIANTS", ()):
            if config_id(path.stem, variant) in NOT_PINNED:
                continue
            assert (path.stem, variant) in CONFIGS, f"{path.stem}:{variant} has no entry"
