"""Reference values of every metric on real data: what a perfect generator would score.

Run from the repository root (after experiments/mnist_classifier.py has written the weights):

    .venv/bin/python experiments/real_data_metrics.py --data_dir ../shared/data/mnist

Prints one JSON object with, and the wall time of each:
  - the classifier score and class histogram of the 10k MNIST test images;
  - FD, KID, precision / recall / density / coverage of train[0:10000] (as reference) vs test;
  - the Parzen log-likelihood of the test set under train[0:10000] as samples, sigma chosen on
    train[50000:51000] (Goodfellow et al. 2014 protocol, pixels in [0, 1]);
  - ring8 / grid25 mixture metrics of 2,500 samples of the true mixtures;
  - Stacked MNIST modes of 26,000 stacked test digits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import classifier, data, metrics  # noqa: E402


def _timed(results: dict, name: str, fn):
    start = time.time()
    out = fn()
    results[name] = {**out, "wall_s": round(time.time() - start, 2)}
    print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared/data/mnist"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    train_x, train_y = data.load_mnist_idx(args.data_dir, "train")
    test_x, test_y = data.load_mnist_idx(args.data_dir, "test")
    params = classifier.load_classifier()
    results: dict = {}
    cache: dict = {}

    def embed():
        cache["test"] = classifier.logits_and_features(params, test_x, "uint8")
        cache["train"] = classifier.logits_and_features(params, train_x[:10000], "uint8")
        logits = np.asarray(cache["test"][0])
        return {"test_accuracy": float(np.mean(np.argmax(logits, 1) == test_y))}

    _timed(results, "classifier_forward_20k", embed)

    def score():
        logits = cache["test"][0]
        mean10, std10 = metrics.classifier_score(logits, n_splits=10)
        hist = metrics.class_histogram(logits)
        return {
            "score": metrics.classifier_score(logits, n_splits=1)[0],
            "score_10splits_mean": mean10,
            "score_10splits_std": std10,
            "classes_covered": hist["covered"],
            "classes_kl": hist["kl"],
        }

    _timed(results, "test_score", score)
    train_feats, test_feats = cache["train"][1], cache["test"][1]
    _timed(results, "fd", lambda: {"fd": metrics.frechet_distance(train_feats, test_feats)})

    def kid():
        mean, std = metrics.kernel_inception_distance(train_feats, test_feats, seed=args.seed)
        return {"kid": mean, "kid_std": std}

    _timed(results, "kid", kid)
    _timed(results, "prdc_k3_k5", lambda: metrics.prdc(train_feats, test_feats, k_pr=3, k_dc=5))

    def parzen():
        unit = lambda x: data.scale_images(x, "unit").reshape(x.shape[0], -1)
        return metrics.parzen_evaluate(
            unit(train_x[:10000]), unit(train_x[50000:51000]), unit(test_x)
        )

    _timed(results, "parzen", parzen)

    for i, name in enumerate(["ring8", "grid25"]):
        centers, std = data.mixture_spec(name)
        key = jax.random.fold_in(jax.random.PRNGKey(args.seed), i)
        samples = data.sample_mixture(key, centers, std, 2500)
        _timed(results, name, lambda s=samples, c=centers, d=std: metrics.mixture_metrics(s, c, d))

    def stacked():
        x, modes = metrics.stacked_mnist(args.seed, test_x, test_y, 26000)
        out = metrics.stacked_mnist_modes(params, x, value_range="uint8")
        true = metrics.histogram_stats(modes, 1000)
        return {**out, "true_label_modes": true["covered"], "true_label_kl": true["kl"]}

    _timed(results, "stacked_mnist", stacked)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
