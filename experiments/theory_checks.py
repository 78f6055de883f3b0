r"""Numerical checks of the GAN theory in `gan_jax.theory`: a table of identities and a plot.

Run from the repository root (CPU is enough; about a minute, nearly all of it the GAN training):

    .venv/bin/python experiments/theory_checks.py --out /tmp/theory_out

It prints one row per identity with its left side, right side and absolute error (for an
inequality, the amount by which it is violated), writes the same table to OUT/theory_checks.txt,
and plots JSD(p_data, p_g) and C(G) over gradient descent on p_g (Goodfellow et al. 2014,
Proposition 2) to OUT/proposition2_descent.png.

It also trains the 1-D GAN of experiments/figure1_1d.py (p_data = N(4, 0.5^2), neural G and D)
and plots, over the training, JSD(p_data, p_g), C(G) = -log 4 + 2 JSD and the trained D's own
V(D, G) <= C(G), against -log 4, to OUT/training_jsd.png; its final values end the table. p_g is
the histogram of G applied to evenly spaced quantiles of z (a noise-free sample of p_g), p_data
the exact Gaussian mass of each bin, so JSD and C(G) are those of the binned distributions.
`--train_steps 0` skips the training.

To add a check, write a function `(Setup) -> list[Row]` and append it to CHECKS.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from experiments import figure1_1d  # noqa: E402
from gan_jax import engine, hparams, steps, theory  # noqa: E402
from gan_jax.data import GAUSSIAN_1D  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

LOG4 = math.log(4.0)
SATURATION_D = (1e-3, 1e-2, 0.1, 0.5)


@dataclasses.dataclass(frozen=True)
class Setup:
    """The random distributions every check shares: p_data and p_g are (K,) probability vectors."""

    p_data: jax.Array
    p_g: jax.Array
    rng: np.random.Generator


@dataclasses.dataclass(frozen=True)
class Row:
    """One identity: its two sides and the error the table reports."""

    name: str
    lhs: float
    rhs: float
    error: float | None = None  # |lhs - rhs| unless set (for summaries; inequality violations)

    @property
    def abs_error(self) -> float:
        return abs(self.lhs - self.rhs) if self.error is None else self.error


def _random_distribution(rng, k, scale=2.0):
    logits_K = scale * rng.normal(size=k)
    return jnp.asarray(np.exp(logits_K) / np.sum(np.exp(logits_K)))


# ----------------------------------------------------------------------------- checks


def check_optimal_discriminator(s: Setup) -> list[Row]:
    """Goodfellow et al. 2014, Prop. 1: D* = p_data / (p_data + p_g) is a stationary point and
    the maximum of V(D, G) for fixed G (against 1000 random perturbations of D* in logit space)."""
    d_star_K = theory.optimal_discriminator(s.p_data, s.p_g)
    v_star, grad_K = jax.value_and_grad(theory.value_function, argnums=2)(s.p_data, s.p_g, d_star_K)
    noise_MK = 0.3 * s.rng.normal(size=(1000, d_star_K.shape[0]))
    d_MK = jax.nn.sigmoid(jnp.log(d_star_K) - jnp.log1p(-d_star_K) + noise_MK)
    v_M = jax.vmap(theory.value_function, in_axes=(None, None, 0))(s.p_data, s.p_g, d_MK)
    return [
        Row("Prop 1: max|dV/dD| at D* = 0", float(jnp.max(jnp.abs(grad_K))), 0.0),
        Row(
            "Prop 1: V(D*) >= max V(1000 perturbed D)",
            float(v_star),
            float(jnp.max(v_M)),
            max(0.0, float(jnp.max(v_M) - v_star)),
        ),
    ]


def check_theorem1(s: Setup) -> list[Row]:
    """Goodfellow et al. 2014, Thm. 1: C(G) = V(D*, G) = -log 4 + 2 JSD(p_data || p_g), -log 4 at
    p_g = p_data, and C's gradient in p_g (autodiff) against log(1 - D*)."""
    c = theory.virtual_training_criterion(s.p_data, s.p_g)
    jsd = theory.jensen_shannon(s.p_data, s.p_g)
    d_star_K = theory.optimal_discriminator(s.p_data, s.p_g)
    grad_K = jax.grad(theory.virtual_training_criterion, argnums=1)(s.p_data, s.p_g)
    expected_K = jnp.log1p(-d_star_K)
    return [
        Row("Thm 1: C(G) = -log 4 + 2 JSD", float(c), float(-LOG4 + 2.0 * jsd)),
        Row(
            "Thm 1: C(G) = V(D*, G)",
            float(c),
            float(theory.value_function(s.p_data, s.p_g, d_star_K)),
        ),
        Row(
            "Thm 1: C(p_data) = -log 4",
            float(theory.virtual_training_criterion(s.p_data, s.p_data)),
            -LOG4,
        ),
        Row(
            "dC/dp_g = log(1 - D*) (norms; err=max)",
            float(jnp.linalg.norm(grad_K)),
            float(jnp.linalg.norm(expected_K)),
            float(jnp.max(jnp.abs(grad_K - expected_K))),
        ),
    ]


def check_lsgan(s: Setup) -> list[Row]:
    """Mao et al. 2017, Sec. 3.2.2: with b - c = 1 and b - a = 2,
    2 C(G) = Pearson chi2(p_d + p_g || 2 p_g)."""
    a, b, c = -1.0, 1.0, 0.0  # b - c = 1 and b - a = 2 (Mao et al. 2017, eq. 8)
    c_g = theory.lsgan_generator_criterion(s.p_data, s.p_g, a, b, c)
    chi2 = theory.pearson_chi2(2.0 * s.p_g, s.p_data + s.p_g)
    return [Row("LSGAN: 2C(G) = chi2(p_d + p_g || 2 p_g)", float(2.0 * c_g), float(chi2))]


def check_wasserstein(s: Setup) -> list[Row]:
    """W1 in 1-D (Arjovsky et al. 2017's distance): from samples and from densities on a grid,
    against scipy and against the quantile coupling's integral."""
    x_N = s.rng.normal(0.0, 1.0, 1000)
    y_N = s.rng.exponential(2.0, 1000) - 1.0
    grid_K = np.linspace(-10.0, 10.0, 20001)
    p_K = stats.norm.pdf(grid_K, 0.0, 1.0)
    q_K = stats.norm.pdf(grid_K, 2.0, 0.5)
    # Quantile coupling: W1 = E_z |F^-1(u) - G^-1(u)| = E_z |2 - 0.5 z| for z ~ N(0, 1).
    quantile_w1 = integrate.quad(lambda z: abs(2.0 - 0.5 * z) * stats.norm.pdf(z), -40, 40)[0]
    return [
        Row(
            "W1 samples: sorted closed form vs scipy",
            float(theory.wasserstein1_1d(jnp.asarray(x_N), jnp.asarray(y_N))),
            stats.wasserstein_distance(x_N, y_N),
        ),
        Row(
            "W1 grid weights: CDF integral vs scipy",
            float(theory.wasserstein1_1d_densities(p_K, q_K, grid_K)),
            stats.wasserstein_distance(grid_K, grid_K, p_K, q_K),
        ),
        Row(
            "W1 N(0,1) vs N(2,.5^2): grid vs quantile",
            float(theory.wasserstein1_1d_densities(p_K, q_K, grid_K)),
            quantile_w1,
        ),
    ]


def _interpolate_density(x_K, real, fake):
    """Density of eps x_real + (1 - eps) x_fake, eps ~ U[0, 1], for Gaussians (mean, std)."""
    eps_E = np.linspace(0.0, 1.0, 401)[:, None]
    mean_EK = eps_E * real[0] + (1.0 - eps_E) * fake[0]
    var_EK = (eps_E * real[1]) ** 2 + ((1.0 - eps_E) * fake[1]) ** 2
    pdf_EK = np.exp(-0.5 * (x_K[None] - mean_EK) ** 2 / var_EK) / np.sqrt(2.0 * np.pi * var_EK)
    return np.trapezoid(pdf_EK, eps_E[:, 0], axis=0)


def check_wgan_gp_bias(s: Setup) -> list[Row]:
    """The best WGAN-GP critic's gap E_p f - E_q f (lambda 10, Gulrajani et al. 2017, eq. 3) on
    1-D Gaussians against W1: the penalty is soft, so the gap exceeds W1 (reported, not equal)."""
    del s
    real, fake = (0.0, 1.0), (2.0, 0.5)
    grid_K = np.linspace(-8.0, 10.0, 3601)
    p_K, q_K = stats.norm.pdf(grid_K, *real), stats.norm.pdf(grid_K, *fake)
    rho_K = _interpolate_density(grid_K, real, fake)
    return [
        Row(
            "WGAN-GP l=10 optimal gap vs W1 (soft bias)",
            float(theory.wgan_gp_optimal_gap_1d(p_K, q_K, rho_K, grid_K, 10.0)),
            float(theory.wasserstein1_1d_densities(p_K, q_K, grid_K)),
        )
    ]


def check_saturation(s: Setup) -> list[Row]:
    """Goodfellow et al. 2014, Sec. 3: the non-saturating G loss's gradient over the minimax one's
    is (1 - D) / D at D = D(G(z))."""
    del s
    rows = []
    for d in SATURATION_D:
        ratio = theory.generator_gradient_ratio(jnp.float64(d))
        rows.append(Row(f"NS/S grad ratio at D(G(z))={d:g}", float(ratio), (1.0 - d) / d))
    return rows


CHECKS = (
    check_optimal_discriminator,
    check_theorem1,
    check_lsgan,
    check_wasserstein,
    check_wgan_gp_bias,
    check_saturation,
)


# ----------------------------------------------------------------------------- Proposition 2


def run_proposition2(s: Setup, learning_rate: float, num_steps: int):
    """Goodfellow et al. 2014, Prop. 2: gradient descent on C(G) over p_g's logits, D = D* at every
    step, drives JSD to 0 without increasing it. Returns (rows, JSD per step, C per step)."""
    logits_K = jnp.asarray(2.0 * s.rng.normal(size=s.p_data.shape[0]))
    descend = jax.jit(theory.criterion_descent, static_argnums=(2, 3))
    logits_K, jsd_T, c_T = descend(s.p_data, logits_K, learning_rate, num_steps)
    final_jsd = theory.jensen_shannon(s.p_data, jax.nn.softmax(logits_K))
    rows = [
        Row(f"Prop 2: JSD after {num_steps} steps = 0", float(final_jsd), 0.0),
        Row(
            "Prop 2: JSD non-increasing: max step change",
            float(jnp.max(jnp.diff(jsd_T))),
            0.0,
            max(0.0, float(jnp.max(jnp.diff(jsd_T)))),
        ),
    ]
    return rows, np.asarray(jsd_T), np.asarray(c_T)


def plot_proposition2(jsd_T, c_T, path):
    """C(G) and JSD against descent steps, linear and log scale, to the PNG at `path`."""
    steps_T = np.arange(len(jsd_T))
    fig, (ax_lin, ax_log) = plt.subplots(1, 2, figsize=(10, 4))
    # Log steps: most of the descent happens in the first few dozen updates.
    ax_lin.semilogx(steps_T + 1, c_T, label="C(G) = V(D*, G)")
    ax_lin.semilogx(steps_T + 1, jsd_T, label="JSD(p_data || p_g)")
    ax_lin.axhline(-LOG4, color="k", linestyle="--", label="-log 4")
    ax_lin.set_xlabel("gradient step on p_g logits + 1")
    ax_lin.set_title("Proposition 2: descent on C(G) with D = D*")
    ax_lin.legend()
    ax_log.semilogy(steps_T, np.maximum(jsd_T, 1e-300), label="JSD")
    ax_log.semilogy(steps_T, np.maximum(c_T + LOG4, 1e-300), "--", label="C(G) + log 4")
    ax_log.set_xlabel("gradient step on p_g logits")
    ax_log.set_title("convergence (log scale)")
    ax_log.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- GAN training


TRAIN_EDGES = np.linspace(0.0, 8.0, 161)  # 0.05-wide bins; the outer two are open to +-infinity
TRAIN_SAMPLES = 20_000


def gaussian_bin_masses(edges_E, mean: float, std: float) -> np.ndarray:
    """Mass of N(mean, std^2) in each of the E - 1 bins, the outer ones open-ended."""
    cdf_E = stats.norm.cdf(np.concatenate([[-np.inf], edges_E[1:-1], [np.inf]]), mean, std)
    return np.diff(cdf_E)


def sample_bin_counts(x_N, edges_E) -> jax.Array:
    """Samples in each bin, those beyond the edges counted in the outer bins."""
    return jnp.histogram(jnp.clip(x_N, edges_E[0], edges_E[-1]), bins=edges_E)[0]


def train_and_track(config, seed: int, num_chunks: int, chunk: int):
    """Trains the 1-D GAN, returning per chunk G's bin counts and D's logits at the bin centres.

    All in one compiled scan; float32 like every training run, whatever the x64 flag says.
    """
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    centres_K1 = jnp.asarray(0.5 * (TRAIN_EDGES[1:] + TRAIN_EDGES[:-1]), jnp.float32)[:, None]
    edges_E = jnp.asarray(TRAIN_EDGES, jnp.float32)
    z_N1 = figure1_1d.z_quantiles(TRAIN_SAMPLES)

    def snapshot(state):
        counts_K = sample_bin_counts(steps.generate(state, z_N1)[:, 0], edges_E)
        return counts_K, steps.discriminate(state, centres_K1)

    def body(state, _):
        state = engine.run_iterations(state, None, hp, spec=spec, num_iterations=chunk)[0]
        return state, snapshot(state)

    @jax.jit
    def run(state):
        first = snapshot(state)
        _, rest = jax.lax.scan(body, state, None, length=num_chunks)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)

    return run(figure1_1d.init_state(spec, hp, seed))


def run_training(num_steps: int, chunk: int, seed: int):
    """Rows and curves (iterations, JSD, C(G), V(trained D, G)) of a real 1-D GAN training run."""
    config = figure1_1d.get_config()
    with jax.enable_x64(False):
        counts_TK, logits_TK = train_and_track(config, seed, num_steps // chunk, chunk)
    p_data_K = gaussian_bin_masses(TRAIN_EDGES, GAUSSIAN_1D["mean"], GAUSSIAN_1D["std"])
    # Normalised in float64: Theorem 1's identity needs masses that sum to 1 to float64 precision.
    p_g_TK = np.asarray(counts_TK, np.float64) / TRAIN_SAMPLES
    # The sigmoid in float64: in float32 a logit above ~17 already gives D = 1, log(1 - D) = -inf.
    d_TK = jax.nn.sigmoid(np.asarray(logits_TK, np.float64))
    per_step = jax.vmap(
        lambda p_g_K, d_K: (
            theory.jensen_shannon(p_data_K, p_g_K),
            theory.virtual_training_criterion(p_data_K, p_g_K),
            theory.value_function(p_data_K, p_g_K, d_K),
        )
    )
    jsd_T, c_T, v_T = (np.asarray(a) for a in per_step(p_g_TK, d_TK))
    iters_T = chunk * np.arange(len(jsd_T))
    rows = [
        Row(f"GAN 1-D: JSD(p_data, p_g) after {num_steps} it.", float(jsd_T[-1]), 0.0),
        Row(f"GAN 1-D: C(G) after {num_steps} it. = -log 4", float(c_T[-1]), -LOG4),
        Row(
            "GAN 1-D: C(G) = -log 4 + 2 JSD (max over run)",
            float(c_T[-1]),
            float(-LOG4 + 2.0 * jsd_T[-1]),
            float(np.max(np.abs(c_T - (-LOG4 + 2.0 * jsd_T)))),
        ),
        Row(
            "GAN 1-D: trained D: V(D, G) <= C(G) (max viol.)",
            float(v_T[-1]),
            float(c_T[-1]),
            max(0.0, float(np.max(v_T - c_T))),
        ),
    ]
    return rows, (iters_T, jsd_T, c_T, v_T)


def plot_training(iters_T, jsd_T, c_T, v_T, path):
    """The 1-D GAN's C(G), V(D, G) and JSD against training iterations, to the PNG at `path`."""
    fig, (ax_c, ax_jsd) = plt.subplots(1, 2, figsize=(10, 4))
    ax_c.plot(iters_T, c_T, label="C(G) = max_D V(D, G)")
    ax_c.plot(iters_T, v_T, "--", label="V(D, G), the trained D")
    ax_c.axhline(-LOG4, color="k", linestyle=":", label="-log 4 (global optimum)")
    ax_c.set_ylim(-1.6, 0.05)  # the untrained D's V (about -3.8) is off the bottom at iteration 0
    ax_c.set_xlabel("training iteration (5 D steps + 1 G step each)")
    ax_c.set_title("1-D GAN training: C(G) -> -log 4 (Theorem 1)")
    ax_c.legend()
    ax_jsd.semilogy(iters_T, jsd_T, color="C2")
    ax_jsd.set_xlabel("training iteration")
    ax_jsd.set_title("JSD(p_data || p_g), binned, nats")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def format_table(rows) -> str:
    """The rows as a fixed-width text table: identity, both sides, absolute error."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'identity':<{width}}  {'left side':>14}  {'right side':>14}  {'abs error':>10}"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.lhs:>14.8g}  {r.rhs:>14.8g}  {r.abs_error:>10.3g}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for the table and the plot")
    parser.add_argument("--support", type=int, default=16, help="support size K")
    parser.add_argument("--steps", type=int, default=3000, help="Proposition 2 descent steps")
    parser.add_argument("--lr", type=float, default=5.0, help="Proposition 2 step size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train_steps", type=int, default=4000, help="1-D GAN iterations; 0 skips the training"
    )
    parser.add_argument("--train_every", type=int, default=50, help="iterations between points")
    args = parser.parse_args(argv)

    jax.config.update("jax_enable_x64", True)  # the identities are checked to float64 precision
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    setup = Setup(
        _random_distribution(rng, args.support), _random_distribution(rng, args.support), rng
    )

    rows = [row for check in CHECKS for row in check(setup)]
    prop2_rows, jsd_T, c_T = run_proposition2(setup, args.lr, args.steps)
    rows += prop2_rows
    plot_paths = [os.path.join(args.out, "proposition2_descent.png")]
    plot_proposition2(jsd_T, c_T, plot_paths[-1])
    if args.train_steps:
        train_rows, curves = run_training(args.train_steps, args.train_every, args.seed)
        rows += train_rows
        plot_paths.append(os.path.join(args.out, "training_jsd.png"))
        plot_training(*curves, plot_paths[-1])

    table = format_table(rows)
    print(table)
    with open(os.path.join(args.out, "theory_checks.txt"), "w") as f:
        f.write(table + "\n")
    print("\nwrote " + ", ".join(plot_paths))


if __name__ == "__main__":
    main()
