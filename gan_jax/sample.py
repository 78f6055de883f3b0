"""Samples of a trained generator, written for outside tools: `gan-jax sample`.

    gan-jax sample --workdir DIR --num N --seed S --out FILE.npz|OUTDIR/

Restores the newest checkpoint of a training workdir with the workdir's own config
(`evaluate.load_workdir_config`, `evaluate.restore_state`) and writes N samples of G in
inference mode. Sample i is G(z_i), or G(z_i, y_i) for a conditional G, where

    z_i = steps.sample_z(jax.random.fold_in(jax.random.PRNGKey(S), i), 1, z_dim, z_dist)[0]
    y_i = i mod K   (K = model.num_classes; the `conditional_nets.default_labels` convention)

so a sample depends only on the checkpoint, S and i: the same seed gives the same samples, the
first n samples of a larger draw are a draw of n, and the batch size (samples are made in jitted
batches of a fixed size, the last one padded, so one compile serves any N) changes nothing.

Outputs (`--out`):
- FILE.npz (numpy.load): `x` float32 [N, *data shape] ([N, 2] for the 2-D toys, [N, 28, 28, 1]
  for MNIST, [N, 28, 28, 3] for Stacked MNIST) in the data's value range as G produces it:
  [0, 1] for data.scale='unit', [-1, 1] for 'symmetric', any real value for the toys;
  `value_range` float32 [2], that range; `y` int32 [N], the labels, only for a conditional G;
  `step` (the checkpoint's G step) and `seed`, int64 scalars.
- OUTDIR/ (a path ending in '/', or an existing empty directory): for image data one PNG per
  sample, `<i>.png` zero-padded so that name order is sample order, 8-bit grey or RGB with the
  value range mapped onto 0..255 (what FID/KID tools that read a folder of images expect), plus
  `labels.csv` (file,label) for a conditional G; for the toys `samples.csv`, a header
  `x0,x1[,y]` and one row per sample; for text `samples.txt`, as FILE.txt.
- Text runs (data.name 'text' or 'tfds:lm1b'): in the .npz, `x` is G's softmax float32
  [N, L, V] and `tokens` int32 [N, L] its argmax, the token ids of the workdir's vocab.json;
  FILE.txt holds one sample per line, decoded by that vocabulary as training writes
  `samples/step_<N>.txt` (`text_data.sample_lines`).
Each output appears complete or not at all: it is written under a hidden temporary name in the
same directory and renamed into place (os.replace), so an interrupted run leaves no partial
file at the given path.

No workdir lock: sample only reads the workdir, so it can run while `gan-jax train` writes it.
Orbax finalises each checkpoint by renaming a complete temporary directory, so a reader sees only
complete checkpoints; the newest one at restore time is used and its step recorded (should the
run's keep-3 rotation delete it mid-read, the restore stops with CheckpointError: run again).
The output may lie inside the workdir, but not under its checkpoints/ directory, whose entries
orbax reads as checkpoints.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from gan_jax import data, steps, text_data
from gan_jax.checkpoint import require_checkpoint
from gan_jax.evaluate import load_workdir_config, restore_state

BATCH_SIZE = 1000  # samples per jitted call; any size gives the same samples
MAX_SEED = 2**32 - 1  # jax.random.PRNGKey keeps 32 bits without x64: 2**32 would act as 0
NPZ_SUFFIX = ".npz"
TXT_SUFFIX = ".txt"
OUT_FORMS = "FILE.npz, or a directory OUTDIR/ (a path ending in '/' or an existing empty one)"
TEXT_OUT_FORMS = "FILE.txt, " + OUT_FORMS


def is_conditional(config) -> bool:
    """Whether the config's G takes a class label (`model.conditioning` other than 'none')."""
    return config.model.get("conditioning", "none") != "none"


def value_range(config) -> tuple[float, float]:
    """The closed interval the data (and a G that suits it) take values in."""
    if config.data.name in data.TOY_DATASETS:
        return data.TOY_RANGE
    return data.SCALE_RANGES[config.data.scale]


def latent_code(key, index, z_dim: int, z_dist: str) -> jax.Array:
    """z_i [z_dim] of sample `index`: one draw from fold_in(key, index), independent of the
    batch it is made in."""
    return steps.sample_z(jax.random.fold_in(key, index), 1, z_dim, z_dist)[0]


@functools.partial(jax.jit, static_argnames=("rows", "z_dim", "z_dist", "num_classes"))
def generate_rows(state, key, start, *, rows: int, z_dim: int, z_dist: str, num_classes: int):
    """(x [rows, *data shape], y_R or None): samples start .. start + rows - 1 (see the module
    docstring); `start` is traced, so every batch of one size shares a compile. `num_classes`
    is 0 for an unconditional G."""
    index_R = start + jnp.arange(rows)
    z_RxZ = jax.vmap(lambda i: latent_code(key, i, z_dim, z_dist))(index_R)
    y_R = index_R % num_classes if num_classes else None
    return steps.generate(state, z_RxZ, y_R), y_R


def draw_samples(config, state, num: int, seed: int, batch_size: int = BATCH_SIZE):
    """(x [num, *data shape] float32, y [num] int32 or None for an unconditional G): samples
    0 .. num - 1 of the state's G for `seed`, made `batch_size` at a time (the last batch
    padded and cut, so there is one compile)."""
    rows = min(batch_size, num)
    num_classes = config.model.num_classes if is_conditional(config) else 0
    generate = functools.partial(
        generate_rows,
        rows=rows,
        z_dim=config.model.z_dim,
        z_dist=config.model.z_dist,
        num_classes=num_classes,
    )
    state = jax.device_put(state)  # once, not per batch
    key = jax.random.PRNGKey(seed)
    x, y = None, None
    for start in range(0, num, rows):
        x_R, y_R = generate(state, key, start)
        if x is None:  # the samples' shape is G's, so the data source need not be read
            x = np.empty((num, *x_R.shape[1:]), np.float32)
            y = np.empty((num,), np.int32) if num_classes else None
        size = min(rows, num - start)
        x[start : start + size] = np.asarray(x_R)[:size]
        if y is not None:
            y[start : start + size] = np.asarray(y_R)[:size]
    return x, y


def to_uint8(x, low: float, high: float) -> np.ndarray:
    """Values in [low, high] mapped linearly onto 0..255, rounded (outside: clipped)."""
    unit = (np.asarray(x, np.float32) - low) / (high - low)
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def _temporary_path(path: str) -> str:
    """A hidden name beside `path`, so the final os.replace stays on one filesystem."""
    head, tail = os.path.split(os.path.normpath(path))
    return os.path.join(head, f".{tail}.tmp-{uuid.uuid4().hex[:12]}")


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _write_atomically(path: str, write) -> None:
    """Calls write(f) on a new binary file under a hidden name, then renames it to `path`."""
    tmp = _temporary_path(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_npz(path: str, x, y, step: int, seed: int, x_range, text: bool = False) -> None:
    """Writes the .npz of the module docstring atomically (with `tokens` for text)."""
    arrays = {
        "x": x,
        "value_range": np.asarray(x_range, np.float32),
        "step": np.int64(step),
        "seed": np.int64(seed),
    }
    if y is not None:
        arrays["y"] = y
    if text:
        arrays["tokens"] = np.argmax(x, axis=-1).astype(np.int32)
    # A file object: np.savez would add '.npz' to a name.
    _write_atomically(path, lambda f: np.savez(f, **arrays))


def write_text(path: str, x, vocab: text_data.Vocabulary) -> None:
    """Writes FILE.txt of the module docstring atomically: one decoded sample per line."""
    lines = text_data.sample_lines(vocab, x)
    _write_atomically(path, lambda f: f.write(lines.encode("utf-8")))


def _write_images(directory: str, x, y, x_range) -> None:
    pixels = to_uint8(x, *x_range)
    width = len(str(len(pixels) - 1))
    names = [f"{i:0{width}d}.png" for i in range(len(pixels))]
    for name, image in zip(names, pixels, strict=True):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            os.path.join(directory, name)
        )
    if y is not None:
        with open(os.path.join(directory, "labels.csv"), "w") as f:
            f.write("file,label\n" + "".join(f"{n},{c}\n" for n, c in zip(names, y, strict=True)))


def _write_points(directory: str, x, y) -> None:
    columns = [f"x{j}" for j in range(x.shape[1])]
    table, fmt = x, ["%.9g"] * x.shape[1]  # 9 digits give float32 back exactly
    if y is not None:
        table, fmt = np.column_stack([x, y]), fmt + ["%d"]
        columns.append("y")
    np.savetxt(
        os.path.join(directory, "samples.csv"),
        table,
        fmt=fmt,
        delimiter=",",
        header=",".join(columns),
        comments="",
    )


def write_directory(path: str, x, y, config, vocab=None) -> None:
    """Writes the OUTDIR/ of the module docstring: built in a hidden directory beside `path`,
    then renamed onto it (`path` is new or empty, see `check_out`). `vocab`: a text run's."""
    tmp = _temporary_path(path)
    try:
        os.mkdir(tmp)
        if vocab is not None:
            write_text(os.path.join(tmp, "samples.txt"), x, vocab)
        elif config.data.name in data.TOY_DATASETS:
            _write_points(tmp, x, y)
        else:
            _write_images(tmp, x, y, value_range(config))
        os.replace(tmp, os.path.normpath(path))  # replaces an empty directory only
    except BaseException:
        _remove(tmp)
        raise


def check_out(out: str, workdir: str, text: bool = False) -> str:
    """'npz', 'dir' or, for a `text` run, 'txt': the form `out` asks for; ValueError for any
    other path, an existing non-empty directory, or a path under the workdir's checkpoints/."""
    forms = TEXT_OUT_FORMS if text else OUT_FORMS
    checkpoints = os.path.realpath(os.path.join(workdir, "checkpoints"))
    target = os.path.realpath(out)
    if os.path.commonpath([checkpoints, target]) == checkpoints:
        raise ValueError(
            f"--out {out!r} lies under {checkpoints}, where orbax reads every entry as a"
            f" checkpoint; expected {forms} elsewhere"
        )
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        if os.path.isdir(out) and os.listdir(out):
            raise ValueError(
                f"--out {out!r} is a directory that is not empty, and new samples would mix with"
                " its files; expected a new or empty directory, or FILE.npz (or FILE.txt for text)"
            )
        if os.path.lexists(out.rstrip("/" + os.sep)) and not os.path.isdir(out):
            raise ValueError(f"--out {out!r} names an existing file; expected {forms}")
        return "dir"
    if out.endswith(NPZ_SUFFIX):
        return "npz"
    if text and out.endswith(TXT_SUFFIX):
        return "txt"
    if out.endswith(TXT_SUFFIX):
        raise ValueError(f"--out {out!r}: FILE.txt is for text runs; expected {forms}")
    raise ValueError(f"--out {out!r} is not allowed; expected {forms}")


def check_whole(name: str, value, lowest: int, highest: int | None = None) -> None:
    """ValueError naming `value` unless it is an int (not a bool) in [lowest, highest]."""
    if (
        not isinstance(value, int | np.integer)
        or isinstance(value, bool)
        or value < lowest
        or (highest is not None and value > highest)
    ):
        allowed = f">= {lowest}" if highest is None else f"from {lowest} to {highest}"
        raise ValueError(f"{name} {value!r} is not allowed; expected a whole number {allowed}")


def sample(
    workdir: str, num: int, seed: int, out: str, batch_size: int = BATCH_SIZE
) -> dict[str, object]:
    """Writes `num` samples of the newest checkpoint in `workdir` (latent codes from `seed`) to
    `out`, FILE.npz or OUTDIR/ (see the module docstring for the files and value ranges).

    Returns {"out", "format" ('npz', 'png', 'csv' or 'txt'), "num", "seed", "step"}.

    Raises:
      ValueError, before any compute: `num` < 1, `seed` outside [0, 2**32 - 1], `batch_size` < 1
        (or any of them not a whole number), an `out` of another form, an existing non-empty
        OUTDIR, an `out` under the workdir's checkpoints/, a workdir without config.json or
        without a checkpoint, a text run's workdir without its vocab.json (DataError).
      checkpoint.CheckpointError (a ValueError): a checkpoint that does not fit the config.
    """
    check_whole("--num", num, 1)
    check_whole("--seed", seed, 0, MAX_SEED)
    check_whole("batch_size", batch_size, 1)
    config = load_workdir_config(workdir)
    text = text_data.is_text(config.data.name)
    form = check_out(out, workdir, text)
    require_checkpoint(workdir, "to sample from")
    vocab = text_data.workdir_vocab(workdir) if text else None
    parent = os.path.dirname(os.path.normpath(out))
    if parent:
        os.makedirs(parent, exist_ok=True)
    state = restore_state(config, workdir)
    x, y = draw_samples(config, state, num, seed, batch_size)
    step = int(state.step)
    if form == "npz":
        write_npz(out, x, y, step, seed, value_range(config), text)
    elif form == "txt":
        write_text(out, x, vocab)
    else:
        write_directory(out, x, y, config, vocab)
        form = "txt" if text else "csv" if config.data.name in data.TOY_DATASETS else "png"
    return {"out": out, "format": form, "num": num, "seed": seed, "step": step}
