"""Pictures of samples (image grids, 2-D scatters over D's contours, 1-D densities) and of
learning curves."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def image_grid(x_NxHxWxC, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tiles images with values in [0, 1] into one uint8 image [rows*(H+pad), cols*(W+pad), C]."""
    x = np.clip(np.asarray(x_NxHxWxC, np.float32), 0.0, 1.0)
    n, h, w, c = x.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.float32)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = x[i]
    return (grid * 255).round().astype(np.uint8)


def save_image_grid(
    path: str, x_NxHxWxC, columns: int | None = None, scale: int = 2, pad: int = 1
) -> None:
    """Writes `image_grid(x_NxHxWxC, columns, pad)` (values in [0, 1]; default columns: about
    sqrt(N)) to the PNG at `path`, each pixel drawn as `scale` x `scale` pixels; creates the
    file's directory."""
    grid = image_grid(x_NxHxWxC, columns, pad)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    image.save(path)


def save_scatter_2d(path, samples_Nx2, data_Nx2, grid_xy, d_GxG, title="", d_label="D(x)") -> None:
    """Samples over the data, with D's output as filled contours in the background."""
    fig, ax = plt.subplots(figsize=(5, 5))
    xs, ys = grid_xy
    contour = ax.contourf(xs, ys, d_GxG, levels=20, cmap="coolwarm", alpha=0.6)
    fig.colorbar(contour, ax=ax, label=d_label, shrink=0.8)
    ax.scatter(*np.asarray(data_Nx2).T, s=2, c="black", alpha=0.3, label="data")
    ax.scatter(*np.asarray(samples_Nx2).T, s=2, c="limegreen", alpha=0.5, label="G(z)")
    ax.set_xlim(xs.min(), xs.max())
    ax.set_ylim(ys.min(), ys.max())
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    _save(fig, path)


def save_density_1d(path, samples_N, data_N, grid_x, d_G, title="", d_label="D(x)") -> None:
    """Histograms of data and samples with D(x) over x (the layout of the 2014 Figure 1)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(grid_x.min(), grid_x.max(), 80)
    ax.hist(np.asarray(data_N), bins=bins, density=True, color="black", alpha=0.3, label="p_data")
    ax.hist(np.asarray(samples_N), bins=bins, density=True, color="green", alpha=0.4, label="p_g")
    ax.plot(grid_x, d_G, color="blue", linestyle="--", label=d_label)
    ax.set_xlabel("x")
    ax.legend()
    ax.set_title(title)
    _save(fig, path)


MAX_NAMED_RUNS = 8  # learning curves: more runs than this share one legend entry


def save_curves(
    path, panels: dict, x_label: str, reference=None, reference_label="", log_y=False
) -> None:
    """One panel per metric: {name: (lines, band)}, lines a list of (label, x_N, value_N,
    stderr_N or None) drawn with markers (error bars where stderr is given), band None or
    (x_S, mean_S, std_S) drawn as a black line with a shaded band of one std; a dashed
    horizontal line at `reference` if given. More than MAX_NAMED_RUNS lines (a sweep's
    members) are drawn thin in one colour with one legend entry, which would otherwise cover the
    panel."""
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(6, 3 * len(panels)), sharex=True, squeeze=False
    )
    for ax, (name, (lines, band)) in zip(axes[:, 0], panels.items(), strict=True):
        many = len(lines) > MAX_NAMED_RUNS
        for i, (label, x, value, stderr) in enumerate(lines):
            if many:
                style = {"color": "tab:blue", "linewidth": 0.8, "markersize": 2, "alpha": 0.35}
                label = f"each of {len(lines)} runs" if i == 0 else None
            else:
                style = {"markersize": 3, "alpha": 0.5 if band else 1.0}
                label = label if band else name
            ax.errorbar(x, value, yerr=stderr, marker="o", capsize=2, label=label, **style)
        if band:
            x, mean, std = band
            # Markers: a mean at one common step is a point, not a line.
            ax.plot(x, mean, color="black", marker="s", markersize=3, label=f"mean of {len(lines)}")
            ax.fill_between(x, mean - std, mean + std, color="black", alpha=0.15)
        if reference is not None:
            ax.axhline(reference, color="gray", linestyle="--", label=reference_label)
        ax.set_ylabel(name)
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel(x_label)
    _save(fig, path)


def _save(fig, path) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
