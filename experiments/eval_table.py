"""The MNIST evaluation table of the README: trained generators side by side with real data.

Run (after training the workdirs; each row is `gan-jax eval` of the newest checkpoint):
    python experiments/eval_table.py \
        --workdirs runs/gan2014,runs/keras,runs/lsgan,runs/cdcgan,runs/wgan_gp \
        --data_dir ../shared/data/mnist > docs/eval_table.md

The "real data" row scores 10,000 MNIST training images (train[0:10000]) as if they were
samples: the value a perfect generator would get under the same protocol. A cell eval left out
(a Parzen figure of a run that trained on train[50000:51000], say) shows "—", and its reason
is printed under the table. Goodfellow et al. 2014,
Table 1 reports a Parzen log-likelihood of 225 +- 2 for adversarial nets (Deep GSN 214, DBN 138).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gan_jax import data, evaluate, metrics  # noqa: E402
from gan_jax.config import default_config  # noqa: E402


def _cell(*keys, fmt: str):
    """A column's formatter: `fmt` of the record's values, or "—" where eval left one out
    (`skipped`) or wrote null (`non_finite`)."""

    def format_record(record: dict) -> str:
        values = [record.get(key) for key in keys]
        return "—" if any(v is None for v in values) else fmt.format(*values)

    return format_record


COLUMNS = [
    ("Parzen LL", _cell("parzen_ll", "parzen_ll_stderr", fmt="{:.1f} ± {:.1f}")),
    ("σ", _cell("parzen_sigma", fmt="{:.3f}")),
    ("score", _cell("score", fmt="{:.2f}")),
    ("FD", _cell("fd", fmt="{:.2f}")),
    ("KID", _cell("kid", fmt="{:.3f}")),
    ("precision", _cell("precision", fmt="{:.3f}")),
    ("recall", _cell("recall", fmt="{:.3f}")),
    ("density", _cell("density", fmt="{:.3f}")),
    ("coverage", _cell("coverage", fmt="{:.3f}")),
    ("classes", _cell("classes_covered", fmt="{}")),
    ("KL(classes‖U)", _cell("classes_kl", fmt="{:.3f}")),
]


def real_data_row(data_dir: str, num_images: int = 10_000, names=None) -> dict:
    """The metrics (default: evaluate.DEFAULT_METRICS["mnist"]) of train[0:num_images] scored
    as if they were samples, against the reference inputs a GAN row's eval uses."""
    images, _ = data.load_mnist(data_dir, "train")
    config = default_config()
    config.data.update(name="mnist", dir=data_dir, scale="unit")
    inputs = evaluate.metric_inputs(evaluate.reference_inputs(config, data_dir))
    samples = data.scale_images(images[:num_images], "unit")
    names = evaluate.DEFAULT_METRICS["mnist"] if names is None else names
    return metrics.compute_metrics(names, samples, seed=evaluate.EVAL_SEED, **inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdirs", required=True, help="comma-separated training workdirs")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--reuse", action="store_true", help="read existing eval.json files")
    args = parser.parse_args()
    rows = []
    for workdir in args.workdirs.split(","):
        start = time.perf_counter()
        path = os.path.join(workdir, "eval.json")
        if args.reuse and os.path.exists(path):
            with open(path) as f:
                record = json.load(f)
        else:
            record = evaluate.evaluate(workdir, data_dir=args.data_dir)
        name = f"{os.path.basename(workdir.rstrip('/'))} (step {record['step']})"
        rows.append((name, record, time.perf_counter() - start))
    start = time.perf_counter()
    rows.append(("real data (train[0:10k])", real_data_row(args.data_dir), 0.0))
    rows[-1] = (*rows[-1][:2], time.perf_counter() - start)
    print("| run | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, record, _ in rows:
        print(f"| {name} | " + " | ".join(fmt(record) for _, fmt in COLUMNS) + " |")
    print("| Goodfellow et al. 2014, Table 1 | 225 ± 2 |" + " |" * (len(COLUMNS) - 1))
    for name, record, _ in rows:
        for why in {**record.get("skipped", {}), **record.get("non_finite", {})}.values():
            print(f"\n{name}: {why}")
    print()
    print("Wall time (s): " + ", ".join(f"{name}: {secs:.0f}" for name, _, secs in rows))


if __name__ == "__main__":
    main()
