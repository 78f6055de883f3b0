"""Trains the MNIST classifier used by the evaluation metrics and writes its weights.

Run from the repository root:

    .venv/bin/python experiments/mnist_classifier.py --data_dir ../shared/data/mnist

It trains `gan_jax.classifier.MnistCNN` on the 60k MNIST training images (8 epochs of batches
of 128, Adam with cosine decay from 1e-3, random shifts of up to 2 pixels, dropout 0.25 on the
features), prints the test accuracy after every epoch and writes
`gan_jax/assets/mnist_classifier.msgpack` (exits 1 if the test accuracy is below 99.3%).
The run is deterministic given --seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gan_jax import classifier, data  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared/data/mnist"))
    parser.add_argument("--out", default=str(classifier.WEIGHTS_PATH))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--max_shift", type=int, default=2)
    parser.add_argument("--min_accuracy", type=float, default=0.993)
    args = parser.parse_args(argv)

    x_train, y_train = data.load_mnist_idx(args.data_dir, "train")
    x_test, y_test = data.load_mnist_idx(args.data_dir, "test")
    x_train = data.scale_images(x_train, "unit")
    x_test = data.scale_images(x_test, "unit")

    start = time.time()

    def on_epoch(epoch, params, loss):
        acc = classifier.accuracy(params, x_test, y_test)
        print(
            f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f} test_acc {acc:.4f}"
            f" elapsed {time.time() - start:.0f}s",
            flush=True,
        )

    params = classifier.train_classifier(
        x_train,
        y_train,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_shift=args.max_shift,
        on_epoch=on_epoch,
    )
    train_s = time.time() - start
    test_acc = classifier.accuracy(params, x_test, y_test)
    n_bytes = classifier.save_classifier(params, args.out)
    result = {
        "test_accuracy": test_acc,
        "train_wall_s": round(train_s, 1),
        "params": classifier.num_params(params),
        "weights": args.out,
        "bytes": n_bytes,
    }
    print(json.dumps(result))
    if test_acc < args.min_accuracy:
        print(f"test accuracy {test_acc:.4f} < required {args.min_accuracy}", file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
