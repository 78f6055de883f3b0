"""A sweep's plots: each metric of its results table against each swept key.

`series` and `heatmap_table` make the numbers from `sweep_outputs.results_rows`' grid point rows
(each a mean and standard deviation over the point's members that did not fail); `write_plots`
draws them into DIR/plots/<metric>.png:

- one swept key: the mean over seeds against the key's values, with a band of +- one std;
- two swept keys: a heatmap of the mean, rows the first key's values, columns the second's;
- three or more: one line per key, the mean over the other keys' grid points.
"""

from __future__ import annotations

import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PLOTS_DIR = "plots"


def metric_columns(rows: list[dict]) -> list[str]:
    """The results columns that have a `<name>_std` column beside them (final d_loss, g_loss
    and the eval metrics), in table order."""
    columns = list(rows[0]) if rows else []
    return [c for c in columns if f"{c}_std" in columns]


def _point_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if str(r["row"]).startswith("point ")]


def _check(rows: list[dict], grid: dict, metric: str) -> None:
    if metric not in metric_columns(rows):
        raise ValueError(
            f"metric {metric!r} is not a results column; allowed: {metric_columns(rows)}"
        )
    missing = [key for key in grid if any(key not in r for r in _point_rows(rows))]
    if missing:
        raise ValueError(f"swept keys {missing} are not columns of the results rows")


def _float(value) -> float:
    return float("nan") if value in ("", None) else float(value)


def series(rows: list[dict], grid: dict, key: str, metric: str):
    """(x_V, mean_V, std_V): `metric` against the V values of swept `key`.

    With `key` the only swept key, mean_V and std_V are the grid points' own mean and std over
    seeds (the results table's point rows). With other keys swept too, mean_V[v] is the mean of
    the point means over the points whose `key` is value v, and std_V[v] their standard
    deviation (numpy's, ddof 0): how much the other keys move the metric. Points without a mean
    (all their members failed) are left out; NaN where none is left.

    Raises:
      ValueError: `key` is not swept, or `metric` is not a results column with a std.
    """
    if key not in grid:
        raise ValueError(f"key {key!r} is not swept; swept keys: {list(grid)}")
    _check(rows, grid, metric)
    points = _point_rows(rows)
    x_V = list(grid[key])
    mean_V, std_V = np.full(len(x_V), np.nan), np.full(len(x_V), np.nan)
    for v, x in enumerate(x_V):
        at = [r for r in points if r[key] == x]
        if len(grid) == 1:
            if at:
                mean_V[v], std_V[v] = _float(at[0][metric]), _float(at[0][f"{metric}_std"])
            continue
        means = np.array([_float(r[metric]) for r in at])
        means = means[np.isfinite(means)]
        if means.size:
            mean_V[v], std_V[v] = means.mean(), means.std()
    return x_V, mean_V, std_V


def heatmap_table(rows: list[dict], grid: dict, metric: str) -> np.ndarray:
    """mean_RxC: the grid points' mean of `metric`, rows the R values of the grid's first key,
    columns the C values of its second (NaN where all of a point's members failed).

    Raises:
      ValueError: the grid does not sweep exactly two keys, or `metric` is not a results
        column with a std.
    """
    if len(grid) != 2:
        raise ValueError(f"a heatmap needs exactly 2 swept keys; got {list(grid)}")
    _check(rows, grid, metric)
    (row_key, row_values), (col_key, col_values) = grid.items()
    mean_RxC = np.full((len(row_values), len(col_values)), np.nan)
    for r in _point_rows(rows):
        mean_RxC[row_values.index(r[row_key]), col_values.index(r[col_key])] = _float(r[metric])
    return mean_RxC


def _numeric(values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _label(value) -> str:
    return f"{value:g}" if _numeric([value]) else str(value)


def _log_scale(values) -> bool:
    """Whether values are all positive and span more than a factor 10 (a log x axis)."""
    array = np.asarray(values, float)
    return bool(np.all(array > 0) and array.max() > 10 * array.min())


def _line(ax, rows, grid, key, metric) -> None:
    x_V, mean_V, std_V = series(rows, grid, key, metric)
    band = "+- std over seeds" if len(grid) == 1 else "+- std over the other keys' points"
    # Values that are not numbers (a loss name, a net) sit at evenly spaced, labelled ticks.
    positions = x_V if _numeric(x_V) else list(range(len(x_V)))
    ax.plot(positions, mean_V, marker="o", label="mean")
    ax.fill_between(positions, mean_V - std_V, mean_V + std_V, alpha=0.25, label=band)
    if not np.isfinite(mean_V).any():  # no point to set the range: the key's own
        if len(positions) > 1:  # (one value: matplotlib's default range, without a warning)
            ax.set_xlim(min(positions), max(positions))
        ax.text(0.5, 0.5, "no finite value", ha="center", va="center", transform=ax.transAxes)
    if not _numeric(x_V):
        ax.set_xticks(positions, [_label(v) for v in x_V])
    elif _log_scale(x_V):
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")


def _heatmap(fig, ax, rows, grid, metric) -> None:
    mean_RxC = heatmap_table(rows, grid, metric)
    (row_key, row_values), (col_key, col_values) = grid.items()
    image = ax.imshow(np.ma.masked_invalid(mean_RxC), cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"{metric} (mean over seeds)")
    ax.set_xticks(range(len(col_values)), [_label(v) for v in col_values])
    ax.set_yticks(range(len(row_values)), [_label(v) for v in row_values])
    ax.set_xlabel(col_key)
    ax.set_ylabel(row_key)
    for (r, c), value in np.ndenumerate(mean_RxC):
        if not np.isfinite(value):  # a blank cell: every member of the point failed
            ax.text(c, r, "n/a", ha="center", va="center", color="black", fontsize="small")
            continue
        # Dark text on viridis' bright upper half, light text on its dark lower half.
        bright = image.norm(value) > 0.5
        color = "black" if bright else "white"
        ax.text(c, r, f"{value:.3g}", ha="center", va="center", color=color, fontsize="small")


def plot_path(workdir: str, metric: str) -> str:
    """DIR/plots/<metric>.png, with characters other than letters, digits, '_', '.' and '-'
    replaced by '_'."""
    return os.path.join(workdir, PLOTS_DIR, re.sub(r"[^A-Za-z0-9_.-]", "_", metric) + ".png")


def write_plots(workdir: str, rows: list[dict], grid: dict) -> list[str]:
    """One png per metric column of `rows` (see the module docstring for the layout) under
    DIR/plots/; returns their paths. A sweep without swept keys (seeds only) has no plots."""
    if not grid:
        return []
    paths = []
    for metric in metric_columns(rows):
        if len(grid) == 2:
            fig, ax = plt.subplots(figsize=(6, 4.5))
            _heatmap(fig, ax, rows, grid, metric)
        else:
            fig, axes = plt.subplots(1, len(grid), figsize=(5 * len(grid), 4), squeeze=False)
            for ax, key in zip(axes[0], grid, strict=True):
                _line(ax, rows, grid, key, metric)
        fig.suptitle(f"{metric} at the end of the sweep")
        path = plot_path(workdir, metric)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
