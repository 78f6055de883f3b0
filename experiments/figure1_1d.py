r"""Goodfellow et al. 2014, Figure 1, reproduced from a real 1-D GAN training run.

p_data is the 'gaussian_1d' bump N(4, 0.5^2); z is uniform on [-1, 1] (the paper's lower line);
G and D are small ReLU MLPs trained by this engine's own pure updates (`gan_jax.engine`): Adam, the
non-saturating G loss, k = 5 D steps per G step (Algorithm 1).

Run (about a minute on 2 CPU cores; seed = the config's, 1, unless --seed):

    .venv/bin/python experiments/figure1_1d.py --out runs/figure1

It writes OUT/figure1.png with the paper's four panels, each showing p_data (black dotted), p_g
(green solid, a kernel density estimate of 20,000 samples of G) and D(x) (blue dashed) over x,
and below them the map x = G(z): lines from evenly spaced z on the lower line to G(z) on the x
line, which bunch up where p_g is dense.
  (a) after ~25 whole iterations from scratch: p_g sits off the data, D is a partial classifier;
  (b) after D alone trained with G frozen: D(x) -> D*(x) = p_data / (p_data + p_g) (Prop. 1;
      D* computed from the densities is drawn thin and grey);
  (c) after G alone stepped against that D: G(z) has flowed towards where D says "data";
  (d) after 4000 more whole iterations: p_g ~ p_data and D(x) ~ 1/2 where both have mass.
      G's support is bounded (z is), so in p_data's far tails p_g = 0 and D = D* = 1.
Unlike the paper's schematic, the learnt map folds (lines cross): G sends both ends of the z line
into the data, and where G turns back p_g has a sharp peak.

The same config through the standard training loop (samples/step_*.png: p_g and D(x)):

    .venv/bin/python -m gan_jax train --config experiments/figure1_1d.py --workdir runs/figure1_1d

runs, but starts from the default initialisation, whose first-layer biases are all 0: every ReLU
kink of D sits at x = 0, far from the data at x = 4, and there D stays (piecewise) linear, then
goes flat at 1/2 with its units dead, while G's samples pile up in a spike (seen at step 4000).
`main` first moves the kinks into the inputs' range (`spread_kinks`), which no config field can
express yet.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from gan_jax import engine, hparams, steps, theory  # noqa: E402
from gan_jax.config import default_config  # noqa: E402
from gan_jax.data import GAUSSIAN_1D  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

X_RANGE = (1.0, 7.0)  # the x axis of every panel
KINK_RANGE = (0.0, 8.0)  # where D's first-layer kinks start: the data and G's path to them
Z_RANGE = (-1.0, 1.0)  # uniform z (steps.sample_z)
WARMUP_MEAN = 2.5  # (a) stops once G's mean has come this far from 0 towards the data's 4
D_ONLY_STEPS = 1000  # (b) D updates with G frozen
G_ONLY_STEPS = 20  # (c) G updates with D frozen
NUM_DENSITY_SAMPLES = 20_000
NUM_MAP_LINES = 24


def get_config():
    c = default_config()
    c.seed = 1
    c.data.name = "gaussian_1d"
    c.model.z_dim = 1
    c.model.z_dist = "uniform"  # Figure 1: "z is sampled ... in this case uniformly"
    c.model.generator_kwargs = {"hidden": (64, 64), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (64, 64)}
    c.loss.name = "non_saturating"
    # G's steps shrink (1/1.0003 per update, e^-1.2 after 4000) so that p_g settles. D's shrink
    # a little (e^-0.6 after its 20,000): once p_g ~ p_data its gradients are noise, which Adam
    # turns into full-size steps that kill its ReLUs one by one, and a dead D sits at 1/2 for
    # want of units rather than because D* = 1/2. Much faster decay leaves D too slow to stop G
    # piling its samples into spikes.
    c.optim.g.update(lr=1e-3, lr_decay=1.0003)
    c.optim.d.update(lr=1e-3, lr_decay=1.00003)
    c.train.update(batch_size=256, num_steps=4000, d_steps=5, scan_steps=100)
    c.train.update(log_every=100, sample_every=1000, checkpoint_every=1000)
    return c


# ----------------------------------------------------------------------------- training


def spread_kinks(params, key, lo: float, hi: float):
    """First-layer biases that put each ReLU's kink w (x - c) at a random c in [lo, hi].

    Zero biases put every kink at input 0: the data here sit at x = 4, where D could then only be
    linear until its biases had travelled that far. G's input z is centred, but with its kinks
    spread over [-1, 1] too it can bend into the shape of p_data sooner.
    """
    kernel_1xH = params["Dense_0"]["kernel"]
    centres_H = jax.random.uniform(key, kernel_1xH.shape[1:], minval=lo, maxval=hi)
    return {**params, "Dense_0": {"kernel": kernel_1xH, "bias": -kernel_1xH[0] * centres_H}}


def init_state(spec, hp, seed: int):
    """The engine's initial state (as `train_and_evaluate` makes it), kinks spread."""
    key = jax.random.PRNGKey(seed)
    state = engine.init(key, hp, spec=spec)
    key_g, key_d = jax.random.split(jax.random.fold_in(key, 1))
    return state.replace(
        g=state.g.replace(params=spread_kinks(state.g.params, key_g, *Z_RANGE)),
        d=state.d.replace(params=spread_kinks(state.d.params, key_d, *KINK_RANGE)),
    )


def repeat(update, state, num: int):
    """`num` applications of a pure (state, dataset) -> (state, metrics) update, in one scan."""
    return jax.lax.scan(lambda s, _: update(s, None), state, None, length=num)[0]


def train_panels(config):
    """The states of panels (a)-(d), each trained on from the one before."""
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    iterate, d_only, g_only = (
        jax.jit(
            functools.partial(repeat, functools.partial(update, hparams=hp, spec=spec)),
            static_argnums=1,
        )
        for update in (engine.iteration, engine.d_update, engine.g_update)
    )
    z_grid = z_quantiles(NUM_DENSITY_SAMPLES)
    state = init_state(spec, hp, config.seed)
    # (a) whole iterations (k D steps, one G step) until p_g has moved partway to the data.
    while float(jnp.mean(steps.generate(state, z_grid))) < WARMUP_MEAN:
        state = iterate(state, 5)
    a = state
    b = d_only(a, D_ONLY_STEPS)  # G frozen: only D's updates are called
    c = g_only(b, G_ONLY_STEPS)  # D frozen
    d = iterate(c, config.train.num_steps)
    return a, b, c, d


# ----------------------------------------------------------------------------- the figure


def z_quantiles(n: int) -> jax.Array:
    """n evenly spaced quantiles of U[-1, 1] as z_nx1: G's pushforward without sampling noise."""
    return jnp.linspace(*Z_RANGE, 2 * n + 1)[1::2, None]


def panel_curves(state, x_K):
    """(p_g, D(x)) on the grid: p_g by a Gaussian KDE of G's samples, D as a probability."""
    samples_N = np.asarray(steps.generate(state, z_quantiles(NUM_DENSITY_SAMPLES)))[:, 0]
    p_g_K = stats.gaussian_kde(samples_N)(x_K)
    d_K = np.asarray(jax.nn.sigmoid(steps.discriminate(state, jnp.asarray(x_K[:, None]))))
    return p_g_K, d_K


def draw_panel(ax_density, ax_map, state, x_K, p_data_K, title, show_optimum=False):
    p_g_K, d_K = panel_curves(state, x_K)
    if show_optimum:
        d_star_K = theory.optimal_discriminator(p_data_K, p_g_K)
        ax_density.plot(x_K, d_star_K, color="0.6", lw=0.8, label="D* (Prop. 1)")
    ax_density.plot(x_K, p_data_K, "k:", lw=2, label="p_data")
    ax_density.plot(x_K, p_g_K, color="green", lw=1.5, label="p_g")
    ax_density.plot(x_K, d_K, color="blue", ls="--", lw=1.5, label="D(x)")
    ax_density.set_xlim(*X_RANGE)
    ax_density.set_ylim(0.0, 1.05)
    ax_density.set_title(title)
    ax_density.set_xticks([])
    for side in ("top", "right"):
        ax_density.spines[side].set_visible(False)

    # The map x = G(z): the lower line is z (stretched to the panel's width), the upper is x.
    z_L = np.linspace(*Z_RANGE, NUM_MAP_LINES + 2)[1:-1]
    x_L = np.asarray(steps.generate(state, jnp.asarray(z_L[:, None])))[:, 0]
    z_at_L = X_RANGE[0] + (z_L - Z_RANGE[0]) / (Z_RANGE[1] - Z_RANGE[0]) * np.ptp(X_RANGE)
    for z_pos, x in zip(z_at_L, x_L, strict=True):
        ax_map.annotate(
            "", (x, 1.0), (z_pos, 0.0), arrowprops=dict(arrowstyle="->", lw=0.7, color="0.2")
        )
    ax_map.axhline(0.0, color="k", lw=1)
    ax_map.axhline(1.0, color="k", lw=1)
    ax_map.set_xlim(*X_RANGE)
    ax_map.set_ylim(-0.15, 1.15)
    ax_map.set_yticks([0.0, 1.0], ["z", "x"])
    ax_map.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax_map.spines[side].set_visible(False)
    return ax_density


TITLES = (
    "(a) early: p_g off the data",
    "(b) D trained, G frozen: D -> D*",
    "(c) G updated, D frozen",
    "(d) trained: p_g ~ p_data, D ~ 1/2",
)


def plot_figure(states, path):
    x_K = np.linspace(*X_RANGE, 801)
    p_data_K = stats.norm.pdf(x_K, GAUSSIAN_1D["mean"], GAUSSIAN_1D["std"])
    fig, axes = plt.subplots(
        2, 4, figsize=(16, 5.0), gridspec_kw={"height_ratios": (3, 1)}, sharex="col"
    )
    for i, (state, title) in enumerate(zip(states, TITLES, strict=True)):
        draw_panel(axes[0, i], axes[1, i], state, x_K, p_data_K, title, show_optimum=i in (1, 3))
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0.0, 0.06, 1.0, 1.0))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for figure1.png")
    parser.add_argument("--seed", type=int, default=None, help="default: the config's")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    config = get_config()
    if args.seed is not None:
        config.seed = args.seed
    states = train_panels(config)
    path = os.path.join(args.out, "figure1.png")
    plot_figure(states, path)
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
