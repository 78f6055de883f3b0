r"""The Dirac-GAN of Mescheder et al. 2018 (Figures 2-4): trajectories and equilibrium eigenvalues.

Run from the repository root (CPU; about half a minute):

    .venv/bin/python experiments/dirac_gan.py --out runs/dirac_gan

Writes OUT/dirac_gan.png: for each setting, the gradient field (grey) and 500 steps of
simultaneous (orange) and alternating (blue, D first) gradient descent with step 0.2 from
theta = 1, psi = -1 (the paper's start; our psi is minus the paper's, gan_jax's logits being
positive on real data, so the picture is the paper's mirrored in psi). It prints and writes
OUT/dirac_gan_table.md: per setting, the eigenvalues of the Jacobian at the equilibrium by
`jax.jacfwd` (`gan_jax.theory.equilibrium_jacobian`) against the paper's closed form, the
largest modulus of the eigenvalues of the two update maps (< 1: locally convergent), and the
distance to the equilibrium after 500 steps.

Expect: unregularised GAN, NS-GAN and WGAN have eigenvalues +-i f'(0) (+-0.5i, +-1i), simultaneous
GD spirals out (update modulus sqrt(1 + h^2 f'(0)^2) > 1) and alternating GD circles (modulus 1);
WGAN-GP's field points away from psi = 0 on both sides, so it never settles; instance noise,
R1/R2 and consensus move both eigenvalues left and both methods converge.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import dirac_gan, theory  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

START = (1.0, -1.0)
STEP_SIZE = 0.2
NUM_STEPS = 500
# (title, loss, regulariser, gamma, WGAN clip): the paper's notebook's settings.
SETTINGS = (
    ("GAN (minimax G)", "minimax", "none", 0.0, None),
    ("non-saturating GAN", "non_saturating", "none", 0.0, None),
    ("WGAN, clip 1", "wgan", "none", 0.0, 1.0),
    ("WGAN-GP, gamma 0.7", "wgan", "gp", 0.7, None),
    ("instance noise, std 0.7", "minimax", "instance_noise", 0.7, None),
    ("R1, gamma 0.3", "minimax", "r1", 0.3, None),
    ("R1, gamma 1 (critical)", "minimax", "r1", 1.0, None),
    ("NS-GAN + R2, gamma 0.3", "non_saturating", "r2", 0.3, None),
    ("consensus, gamma 1", "minimax", "consensus", 1.0, None),
)


def fmt(z: complex) -> str:
    z = complex(z)
    re = 0.0 if abs(z.real) < 5e-7 else z.real
    if abs(z.imag) < 5e-7:
        return f"{re:.6g}"
    return f"{re:.6g} {'+' if z.imag > 0 else '-'} {abs(z.imag):.6g}i"


def pair(eig_2) -> str:
    return ", ".join(fmt(z) for z in eig_2)


def run_setting(loss, regulariser, gamma, clip):
    paths = {
        mode: np.asarray(
            dirac_gan.trajectory(
                START,
                loss,
                regulariser,
                gamma,
                step_size=STEP_SIZE,
                num_steps=NUM_STEPS,
                mode=mode,
                clip=clip,
            )
        )
        for mode in dirac_gan.MODES
    }
    _, eig_2 = theory.equilibrium_jacobian(loss, regulariser, gamma)
    closed_2 = theory.closed_form_eigenvalues(loss, regulariser, gamma)
    radius = {
        mode: float(
            np.max(
                np.abs(
                    dirac_gan.update_jacobian(
                        loss, regulariser, gamma, step_size=STEP_SIZE, mode=mode
                    )[1]
                )
            )
        )
        for mode in dirac_gan.MODES
    }
    return paths, eig_2, closed_2, radius


def plot(results, path):
    fig, axes = plt.subplots(3, 3, figsize=(12, 12))
    grid_G = np.linspace(-2.0, 2.0, 15)
    theta_GG, psi_GG = np.meshgrid(grid_G, grid_G)
    for ax, (title, loss, regulariser, gamma, clip), (paths, *_) in zip(
        axes.flat, SETTINGS, results, strict=True
    ):
        field = jax.jit(
            jax.vmap(
                lambda t, p, loss=loss, reg=regulariser, g=gamma: theory.dirac_gan_vector_field(
                    t, p, loss, reg, g
                )
            )
        )
        v_G2 = np.asarray(field(theta_GG.ravel(), psi_GG.ravel()))
        ax.quiver(theta_GG, psi_GG, v_G2[:, 0], v_G2[:, 1], color="0.7", angles="xy")
        for mode, colour in (("simultaneous", "C1"), ("alternating", "C0")):
            p = np.clip(paths[mode], -2.2, 2.2)
            ax.plot(p[:, 0], p[:, 1], color=colour, lw=1.0, label=mode)
        if clip is not None:
            for bound in (-clip, clip):
                ax.axhline(bound, color="k", ls=":", lw=0.8)
        ax.plot(*START, "ko", ms=4)
        ax.plot(0, 0, "r*", ms=10)
        ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), title=title, xlabel="theta", ylabel="psi")
        ax.set_aspect("equal")
    axes.flat[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(
        f"Dirac-GAN: {NUM_STEPS} gradient steps of size {STEP_SIZE} from (theta, psi) = {START}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def table(results) -> str:
    lines = [
        "| setting | eigenvalues (jacfwd) | closed form (paper) | max abs error "
        "| update modulus sim / alt | distance after 500 sim / alt |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (title, *_), (paths, eig_2, closed_2, radius) in zip(SETTINGS, results, strict=True):
        error = np.max(np.abs(np.asarray(eig_2) - np.asarray(closed_2)))
        dist = {m: np.linalg.norm(paths[m][-1]) for m in dirac_gan.MODES}
        lines.append(
            f"| {title} | {pair(eig_2)} | {pair(closed_2)} | {error:.2g} "
            f"| {radius['simultaneous']:.5g} / {radius['alternating']:.5g} "
            f"| {dist['simultaneous']:.3g} / {dist['alternating']:.3g} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for the figure and the table")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    jax.config.update("jax_enable_x64", True)  # eigenvalues to float64 precision
    start = time.time()
    results = [run_setting(*setting[1:]) for setting in SETTINGS]
    plot(results, os.path.join(args.out, "dirac_gan.png"))
    text = table(results)
    print(text)
    with open(os.path.join(args.out, "dirac_gan_table.md"), "w") as f:
        f.write(text + "\n")
    print(f"\nwrote {args.out}/dirac_gan.png and dirac_gan_table.md in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
