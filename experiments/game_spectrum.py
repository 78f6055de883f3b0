r"""The game Jacobian's spectrum over training: ring of 8, non-saturating GAN with and without R1.

Mescheder et al. 2017 ("The Numerics of GANs") and 2018 ("Which Training Methods for GANs do
actually Converge?", Section 3): near an equilibrium, the Jacobian of the joint gradient field
v = (-grad_G L_G, -grad_D L_D) has eigenvalues with large imaginary parts and real parts near 0
(the players circle), and R1 (gamma/2 E||grad D(x_real)||^2) moves them to the left.

Run from the repository root (CPU; a few minutes, under `nice` on a shared machine):

    nice -n 10 .venv/bin/python experiments/game_spectrum.py --out runs/game_spectrum

It trains the ring-of-8 GAN (G and D MLPs with two hidden layers of 32, 2-d normal z, batch 256,
Adam 1e-3, b1 0.5) twice, without and with R1 (`--gamma`, gan_jax's penalty_weight = gamma/2),
and every `--every` iterations computes the spectrum of v' at the current params on one real
batch and one z batch, matrix-free (`gan_jax.theory.game_jacobian_spectrum`: `--krylov` Arnoldi
steps of Jacobian-vector products). At the first and last checkpoint it also forms the full
Jacobian (N = 2,403 params) and takes all its eigenvalues, to check the matrix-free values.

Writes OUT/game_spectrum.png (left: all eigenvalues of v' at the end of both runs in the complex
plane; middle and right: over training, the largest real part and the largest modulus of the
Ritz values), OUT/game_spectrum_table.md and OUT/game_spectrum.json, and prints the table, the
largest gap between the matrix-free and the exact leading eigenvalues, and the wall times.

Expect (seed 0, 4000 iterations): without R1 the spectrum grows without bound (largest |lambda|
from 4 to ~900, D's curvature) and eigenvalues with real parts up to ~+15 appear (repelling
directions); with R1 (gamma 1) it stays within |lambda| < 7, the largest real part below 0.35
after iteration 250, and the leading eigenvalues are a damped rotation near -0.7 +- 2.6i. The
matrix-free leading eigenvalues match the full matrix's to ~1e-5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import engine, hparams, steps, theory  # noqa: E402
from gan_jax.config import default_config  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)


def spectrum_config(gamma: float, every: int):
    """The ring-of-8 config this experiment trains: R1 weight gamma / 2 (0: none), one
    dispatch per `every` iterations. (Not a `get_config`: it is not a `--config` file.)"""
    c = default_config()
    c.train.update(scan_steps=every, log_every=every)  # one dispatch per checkpoint interval
    c.model.generator_kwargs = {"hidden": (32, 32), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (32, 32)}
    if gamma > 0:
        c.loss.update(penalty="r1", penalty_weight=gamma / 2)
    return c


def summarise(spectrum) -> dict:
    """The numbers the table and the plot need, as plain floats."""
    eig = np.asarray(spectrum.eigenvalues)
    rel = np.asarray(spectrum.residuals) / np.maximum(np.abs(eig), 1e-12)

    def cx(z):
        return [float(np.real(z)), float(np.imag(z))]

    return {
        "largest_modulus": cx(spectrum.largest_modulus),
        "largest_real": cx(spectrum.largest_real),
        "largest_imag": cx(spectrum.largest_imag),
        "converged": int(np.sum(rel < 1e-3)),
        "eigenvalues": [cx(z) for z in eig],
        "residual_largest_modulus": float(rel[0]),
    }


def run(gamma: float, num_steps: int, every: int, krylov: int, seed: int, full_at: set):
    config = spectrum_config(gamma, every)
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    compiled = engine.jit_steps(spec)
    state = compiled.init(jax.random.PRNGKey(seed), hp, None)
    key = jax.random.PRNGKey(seed + 1)  # the same z and start vector at every checkpoint
    rows, times = [], {"train": 0.0, "arnoldi": 0.0, "full": 0.0}
    for step in range(0, num_steps + 1, every):
        if step:
            start = time.time()
            state, _ = engine.advance(compiled, state, None, hp, every)
            jax.block_until_ready(state)
            times["train"] += time.time() - start
        batch = steps.d_batch(state, None, spec=spec)
        start = time.time()
        spectrum = theory.game_jacobian_spectrum(
            state, batch, hp, spec=spec, key=key, num_steps=krylov
        )
        times["arnoldi"] += time.time() - start
        row = {"step": step, "arnoldi": summarise(spectrum)}
        if step in full_at:
            start = time.time()
            exact = theory.game_jacobian_spectrum(
                state, batch, hp, spec=spec, key=key, method="full"
            )
            times["full"] += time.time() - start
            row["full"] = summarise(exact)
        rows.append(row)
        a = row["arnoldi"]
        print(
            f"gamma {gamma:g} step {step:5d}: largest |lambda| {a['largest_modulus']}, largest "
            f"Re {a['largest_real']}, largest |Im| {a['largest_imag']}",
            flush=True,
        )
    return rows, times, spectrum.num_params


def fmt(z) -> str:
    re, im = z
    return f"{re:.3g} {'+' if im >= 0 else '-'} {abs(im):.3g}i"


def table(results) -> str:
    lines = [
        "| run | iteration | largest abs(lambda) | largest Re | largest abs(Im) "
        "| full: largest abs(lambda) | full: largest Re | full: largest abs(Im) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rows in results.items():
        for row in rows:
            a = row["arnoldi"]
            full = row.get("full")
            keys = ("largest_modulus", "largest_real", "largest_imag")
            exact = " | ".join(fmt(full[k]) for k in keys) if full else " |  | "
            lines.append(
                f"| {name} | {row['step']} | {fmt(a['largest_modulus'])} "
                f"| {fmt(a['largest_real'])} | {fmt(a['largest_imag'])} | {exact} |"
            )
    return "\n".join(lines)


def plot(results, path):
    fig, (ax_eig, ax_re, ax_mod) = plt.subplots(1, 3, figsize=(16, 4.8))
    for (name, rows), colour in zip(results.items(), ("C3", "C0"), strict=True):
        last = rows[-1].get("full", rows[-1]["arnoldi"])
        eig = np.array(last["eigenvalues"])
        ax_eig.scatter(eig[:, 0], eig[:, 1], s=8, color=colour, alpha=0.6, label=name)
        steps_T = [r["step"] for r in rows]
        ax_re.plot(steps_T, [r["arnoldi"]["largest_real"][0] for r in rows], color=colour)
        ax_mod.plot(steps_T, [np.hypot(*r["arnoldi"]["largest_modulus"]) for r in rows], colour)
    ax_eig.axvline(0.0, color="k", lw=0.6)
    # Without R1, D's curvature reaches Re = -900: a symmetric log scale keeps 0 +- 1 readable.
    ax_eig.set_xscale("symlog", linthresh=1.0)
    ax_eig.set(xlabel="Re lambda (symlog)", ylabel="Im lambda", title="all eigenvalues at the end")
    ax_eig.legend(fontsize=8)
    ax_re.axhline(0.0, color="k", lw=0.6)
    ax_re.set(xlabel="iteration", ylabel="Re lambda", title="largest real part (Arnoldi)")
    ax_mod.set(xlabel="iteration", ylabel="|lambda|", title="largest modulus (Arnoldi)")
    ax_mod.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=4000, help="training iterations per run")
    parser.add_argument("--every", type=int, default=250, help="iterations between spectra")
    parser.add_argument("--krylov", type=int, default=100, help="Arnoldi steps")
    parser.add_argument("--gamma", type=float, default=1.0, help="R1's gamma in the second run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    begin = time.time()
    results, walls = {}, {}
    for gamma in (0.0, args.gamma):
        name = "non-saturating" if gamma == 0 else f"non-saturating + R1 (gamma {gamma:g})"
        rows, times, n = run(gamma, args.steps, args.every, args.krylov, args.seed, {0, args.steps})
        results[name], walls[name] = rows, times
    text = table(results)
    print(f"\nN = {n} params\n" + text)
    gaps = [
        abs(complex(*row["arnoldi"][k]) - complex(*row["full"][k]))
        for rows in results.values()
        for row in rows
        if "full" in row
        for k in ("largest_modulus", "largest_real", "largest_imag")
    ]
    print(f"largest gap matrix-free vs full, over the leading eigenvalues: {max(gaps):.2g}")
    for name, times in walls.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    plot(results, os.path.join(args.out, "game_spectrum.png"))
    with open(os.path.join(args.out, "game_spectrum_table.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "game_spectrum.json"), "w") as f:
        json.dump({"results": results, "walls": walls, "num_params": n}, f)
    print(f"total wall time {time.time() - begin:.0f} s")


if __name__ == "__main__":
    main()
