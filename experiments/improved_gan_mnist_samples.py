r"""Sample quality with and without minibatch discrimination (Salimans et al. 2016, Sec. 3.2 and
5.1), MNIST, at equal steps.

The paper shows MNIST samples of a model trained with minibatch discrimination (Fig. 3); the
authors' repository has no MNIST script for it (their minibatch-discrimination models are
CIFAR-10's and SVHN's, train_*_minibatch_discrimination.py), so this is the semi-supervised
setting of experiments/improved_gan_mnist_ssl.py (the authors' MNIST nets, 100 labels, Adam
0.003 with beta1 0.5, batch 100) with G trained on the GAN loss itself (the non-saturating
-log D(G(z)); feature matching, which the paper finds better for classification but worse for
samples, is off) and, in `:mbd`, a minibatch-discrimination layer of 100 kernels of dimension 5
(the authors' CIFAR-10 setting, their parametrisation of T: weight-normalised with a learned
log-scale and a bias per kernel, set from data at init) before D's output layer; `:plain` is
the same without it.

Train both for the same number of steps, then compare (10,000 samples each: the classifier
score of gan_jax's MNIST classifier, the authors' 10-split convention, FD and precision/recall
in its feature space; a sample grid side by side):

    python -m gan_jax train --config experiments/improved_gan_mnist_samples.py:mbd \
        --workdir runs/ssl_mbd --config.data.dir=../shared/data/mnist
    python -m gan_jax train --config experiments/improved_gan_mnist_samples.py:plain \
        --workdir runs/ssl_plain --config.data.dir=../shared/data/mnist
    python experiments/improved_gan_mnist_samples.py --workdirs runs/ssl_mbd,runs/ssl_plain \
        --data_dir ../shared/data/mnist --out docs

Writes OUT/improved_gan_mnist_samples.png (left: mbd, right: plain) and
OUT/improved_gan_mnist_samples.md (the table). The default length is 5 epochs (3,000 steps).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from gan_jax import evaluate, plotting, sample  # noqa: E402
from gan_jax.config import load_experiment_file  # noqa: E402

VARIANTS = ("mbd", "plain")
METRICS = "score,fd,pr"
MBD_KERNELS = 100


def get_config(variant: str = "mbd"):
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not allowed; expected one of {VARIANTS}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "improved_gan_mnist_ssl.py")
    c = load_experiment_file(path)
    c.loss.update(name="non_saturating", g_objective="adversarial")
    if variant == "mbd":
        c.model.discriminator_kwargs = dict(
            c.model.discriminator_kwargs,
            minibatch_discrimination=MBD_KERNELS,
            minibatch_parametrisation="authors",
        )
    c.train.update(num_steps=3000, sample_every=3000, checkpoint_every=3000)
    c.eval.update(every=3000, metrics="d_error")
    return c


def row(name: str, record: dict) -> str:
    return (
        f"| {name} | {record['step']} | {record['score']:.2f} +- {record['score_std']:.2f} |"
        f" {record['fd']:.2f} | {record['precision']:.3f} | {record['recall']:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdirs", required=True, help="the mbd and plain workdirs, comma")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    workdirs = args.workdirs.split(",")
    if len(workdirs) != len(VARIANTS):
        parser.error(f"--workdirs: expected {len(VARIANTS)} workdirs ({', '.join(VARIANTS)})")
    rows, grids = [], []
    for variant, workdir in zip(VARIANTS, workdirs, strict=True):
        record = evaluate.evaluate(workdir, METRICS, 10_000, args.data_dir)
        rows.append(row(variant, record))
        config = evaluate.load_workdir_config(workdir)
        state = evaluate.restore_state(config, workdir)
        x, _ = sample.draw_samples(config, state, 100, seed=evaluate.EVAL_SEED)
        grids.append(plotting.image_grid(np.asarray(x), columns=10))
    os.makedirs(args.out, exist_ok=True)
    gap = np.full((grids[0].shape[0], 8, *grids[0].shape[2:]), 255, grids[0].dtype)
    side_by_side = np.concatenate([grids[0], gap, grids[1]], axis=1) / 255.0
    path = os.path.join(args.out, "improved_gan_mnist_samples.png")
    plotting.save_image_grid(path, side_by_side[None], columns=1)
    table = [
        "| D | steps | classifier score (10 splits) | FD | precision | recall |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    with open(os.path.join(args.out, "improved_gan_mnist_samples.md"), "w") as f:
        f.write("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
