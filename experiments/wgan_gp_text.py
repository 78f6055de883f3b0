r"""The WGAN-GP character-level language model (Gulrajani et al. 2017, Sec. 5.2, Table 4).

G emits a softmax over the characters at each of 32 positions, the critic reads those vectors
and one-hot real sequences, and the gradient penalty (lambda 10) trains it: the authors'
gan_language.py (igul222/improved_wgan_training) with its settings: the Billion Word benchmark
(lm1b) one sentence per line cut to 32 characters, batch 64, the 1-D residual nets of DIM 512
(`gan_jax.text_nets`), z ~ N(0, I_128), 10 critic updates per G update, Adam(1e-4, b1 0.5,
b2 0.9) for both, 200,000 G updates, the n-gram JS curves (n = 1..4, `text_metrics`) every 100
updates on 640 samples. The paper's Table 4 shows its samples; the authors' log gives no JS
figure to match. A GPU run; on lm1b (prepared once with TFDS, see the README):

    python -m gan_jax train --config experiments/wgan_gp_text.py --workdir runs/text_lm1b \
        --config.data.stop=10000000

The short CPU run here ('local': /usr/share/common-licenses, the license texts Debian ships,
cut into windows of 32 characters; DIM 64; 400 G updates) trains, logs js1..js4 to
metrics.jsonl and writes samples every 100 updates:

    nice -n 10 python experiments/wgan_gp_text.py --workdir runs/text_local --out docs

which also writes OUT/wgan_gp_text_js.png (the JS curves, with the held-out floor: the JS of
640 training windows against the held-out ones) and OUT/wgan_gp_text.md (samples at a few steps,
the figures, the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import text_data, text_metrics, train  # noqa: E402
from gan_jax.config import default_config, optimizer_config  # noqa: E402

VARIANTS = ("lm1b", "local")
LOCAL_CORPUS = "/usr/share/common-licenses"
EVAL_SAMPLES = 640  # the authors' 10 batches of 64


def get_config(variant: str = "lm1b"):
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not allowed; expected one of {VARIANTS}")
    c = default_config()
    c.data.update(name="tfds:lm1b", seq_len=32, text_mode="lines", vocab_size=2048)
    c.model.update(generator="text_resnet", discriminator="text_resnet", z_dim=128)
    c.model.update(z_dist="normal")
    c.model.generator_kwargs = {"dim": 512}
    c.model.discriminator_kwargs = {"dim": 512}
    c.loss.update(name="wgan", penalty="gp", penalty_weight=10.0)
    c.optim.g = optimizer_config(name="adam", lr=1e-4, b1=0.5, b2=0.9)
    c.optim.d = optimizer_config(name="adam", lr=1e-4, b1=0.5, b2=0.9)
    c.train.update(batch_size=64, num_steps=200_000, d_steps=10, scan_steps=100)
    c.train.update(log_every=100, sample_every=1000, checkpoint_every=1000)
    c.eval.update(every=100, metrics="ngram_js", num_samples=EVAL_SAMPLES)
    if variant == "local":
        c.data.update(name="text", dir=LOCAL_CORPUS, text_mode="windows", vocab_size=256)
        c.model.generator_kwargs = {"dim": 64}
        c.model.discriminator_kwargs = {"dim": 64}
        c.train.update(num_steps=400, scan_steps=25, log_every=25, sample_every=100)
        c.train.update(checkpoint_every=100)
        c.eval.update(every=25)
    return c


# ----------------------------------------------------------------------------- reporting


def read_metrics(workdir: str) -> list[dict]:
    """The records of a workdir's metrics.jsonl, in order."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def curves(records: list[dict], keys) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(steps, {key: values}) of the records that hold every key."""
    rows = [r for r in records if all(k in r for k in keys)]
    return np.array([r["step"] for r in rows]), {k: np.array([r[k] for r in rows]) for k in keys}


def save_curves(path: str, runs: dict, keys, title: str, ylabel: str, floors=None) -> None:
    """One panel: each run's curve of each key against G updates (runs: {label: records}),
    dotted lines at `floors` ({key: value})."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, records in runs.items():
        steps, values = curves(records, keys)
        for key in keys:
            ax.plot(steps, values[key], label=f"{key} {label}".strip())
    for i, value in enumerate((floors or {}).values()):
        ax.axhline(value, ls=":", color=f"C{i}", lw=1)
    ax.set(xlabel="G updates", ylabel=ylabel, title=title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sample_excerpt(workdir: str, steps, lines: int = 8) -> str:
    """Markdown: the first `lines` samples of samples/step_<N>.txt for each step."""
    out = []
    for step in steps:
        with open(os.path.join(workdir, "samples", f"step_{step}.txt"), encoding="utf-8") as f:
            rows = f.read().splitlines()[:lines]
        out += [f"Step {step}:", "", "```", *rows, "```", ""]
    return "\n".join(out)


def heldout_floor(config) -> dict[str, float]:
    """js1..js4 of EVAL_SAMPLES training examples against the held-out ones: what a G that
    draws real data would score against this reference (the authors print the same for
    their validation lines)."""
    text = text_data.load_text(config.data)
    rows = np.random.default_rng(0).permutation(len(text.train))[:EVAL_SAMPLES]
    return text_metrics.ngram_js_all(text.train[rows], text.heldout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/text_local")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--variant", default="local", choices=VARIANTS)
    args = parser.parse_args()
    config = get_config(args.variant)
    start = time.perf_counter()
    train.train_and_evaluate(config, args.workdir)
    wall = time.perf_counter() - start
    records = read_metrics(args.workdir)
    floor = heldout_floor(config)
    keys = [f"js{n}" for n in text_metrics.NGRAM_ORDERS]
    os.makedirs(args.out, exist_ok=True)
    save_curves(
        os.path.join(args.out, "wgan_gp_text_js.png"),
        {"": records},
        keys,
        f"WGAN-GP text, {config.data.name} (dotted: held-out floor)",
        "n-gram JS (bits)",
        floor,
    )
    steps, values = curves(records, keys)
    table = ["| G updates | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    table += [
        f"| {s} | " + " | ".join(f"{values[k][i]:.3f}" for k in keys) + " |"
        for i, s in enumerate(steps)
        if s % config.train.sample_every == 0 or i == 0
    ]
    table.append("| held-out floor | " + " | ".join(f"{floor[k]:.3f}" for k in keys) + " |")
    sample_steps = range(
        config.train.sample_every, config.train.num_steps + 1, config.train.sample_every
    )
    text = [
        "# WGAN-GP text, CPU run",
        "",
        f"Command: `nice -n 10 python experiments/wgan_gp_text.py --variant {args.variant}"
        f" --workdir {args.workdir} --out {args.out}`; wall time {wall:.0f} s.",
        "",
        *table,
        "",
        sample_excerpt(args.workdir, sample_steps),
    ]
    with open(os.path.join(args.out, "wgan_gp_text.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(text))
    print("\n".join(table), f"\nwall {wall:.0f} s")


if __name__ == "__main__":
    main()
