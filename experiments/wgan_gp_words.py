r"""Words from a word list with the WGAN-GP language model, with and without the gradient
penalty (Gulrajani et al. 2017, Sec. 5.2: the penalty is what lets a critic of one-hot data
against G's softmax vectors train G).

Data: a word list, one word per line (Debian's `wamerican` installs /usr/share/dict/words,
104,334 entries), each cut to 12 characters and padded; 10% of the entries are held out. Nets
and optimizer as experiments/wgan_gp_text.py (the authors' gan_language.py: 1-D residual nets,
10 critic updates per G update, Adam(1e-4, b1 0.5, b2 0.9), batch 64), DIM 64 for a CPU.
':gp' is WGAN-GP (lambda 10); ':no_gp' the same critic loss and nets with lambda 0. Every 50 G
updates the run logs, on 640 samples: `words_in_list` (the share of generated words that are
entries of the list, its 12-character cut), `words_novel` (the share not in the training
split) and js1..js4 against the held-out words.

    nice -n 10 python experiments/wgan_gp_words.py --workdir runs/words --out docs

trains both (WORKDIR/gp, WORKDIR/no_gp; 600 G updates each) and writes
OUT/wgan_gp_words.png (in-list share and js1 over training, both runs) and OUT/wgan_gp_words.md
(the figures, samples at a few steps, the wall times). One run alone:

    python -m gan_jax train --config experiments/wgan_gp_words.py:gp --workdir runs/words/gp
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wgan_gp_text import curves, read_metrics, sample_excerpt, save_curves  # noqa: E402

from gan_jax import train  # noqa: E402
from gan_jax.config import load_experiment_file  # noqa: E402

VARIANTS = ("gp", "no_gp")
WORD_LIST = "/usr/share/dict/words"


def get_config(variant: str = "gp"):
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not allowed; expected one of {VARIANTS}")
    here = os.path.dirname(os.path.abspath(__file__))
    c = load_experiment_file(os.path.join(here, "wgan_gp_text.py"), "local")
    c.data.update(dir=WORD_LIST, seq_len=12, text_mode="lines")
    c.train.update(num_steps=600, log_every=50, sample_every=200, checkpoint_every=200)
    c.eval.update(every=50, metrics="ngram_js,words")
    if variant == "no_gp":
        c.loss.update(penalty="none", penalty_weight=0.0)
    return c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/words")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    runs, walls, failures = {}, {}, {}
    for variant in VARIANTS:
        config = get_config(variant)
        workdir = os.path.join(args.workdir, variant)
        start = time.perf_counter()
        try:
            train.train_and_evaluate(config, workdir)
        except FloatingPointError as err:  # an unconstrained critic may diverge: report it
            failures[variant] = str(err)
        walls[variant] = time.perf_counter() - start
        runs[variant] = read_metrics(workdir)
    os.makedirs(args.out, exist_ok=True)
    save_curves(
        os.path.join(args.out, "wgan_gp_words.png"),
        runs,
        ["words_in_list", "js1"],
        "Words (12 chars): WGAN-GP vs lambda = 0",
        "share / JS (bits)",
    )
    keys = ["words_in_list", "words_novel", "js1", "js2", "js4"]
    lines = ["# Words, WGAN-GP with and without the penalty", ""]
    for variant, records in runs.items():
        steps, values = curves(records, keys)
        lines += [f"## {variant} (wall {walls[variant]:.0f} s)", ""]
        if variant in failures:
            lines += [f"Stopped: {failures[variant]}", ""]
        lines += ["| G updates | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += [
            f"| {s} | " + " | ".join(f"{values[k][i]:.3f}" for k in keys) + " |"
            for i, s in enumerate(steps)
        ]
        done = [s for s in (200, 400, 600) if s <= (steps[-1] if len(steps) else 0)]
        lines += ["", sample_excerpt(os.path.join(args.workdir, variant), done, lines=12)]
    with open(os.path.join(args.out, "wgan_gp_words.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
