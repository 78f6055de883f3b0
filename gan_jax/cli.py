"""Command line. Only parses flags and hands over to the module that does the work.

gan-jax train --config experiments/<name>.py --workdir DIR [--config.key=value ...]
gan-jax eval --workdir DIR [--metrics parzen,fd,...] [--num_samples N] [--data_dir DIR]
"""

from __future__ import annotations

import json
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax.workdir_lock import WorkdirBusyError

COMMANDS = ("train", "eval")

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file with get_config(); override fields with --config.key=value."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config, metrics, samples.")
_OVERRIDE = flags.DEFINE_bool(
    "override_config", False, "On resume, use the given config instead of the workdir's."
)
_METRICS = flags.DEFINE_string(
    "metrics", None, "eval: comma-separated metric names (default: all that fit the data)."
)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "eval: number of generated samples.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "eval: MNIST IDX directory (default: config's).")


def main(argv) -> None:
    command = argv[1] if len(argv) > 1 else None
    if command not in COMMANDS or len(argv) > 2:
        sys.exit(f"usage: gan-jax {{{','.join(COMMANDS)}}} --workdir DIR ...; got {argv[1:]}")
    if not _WORKDIR.value:
        sys.exit(f"gan-jax {command} needs --workdir DIR")
    if command == "train" and _CONFIG.value is None:
        sys.exit("gan-jax train needs --config FILE (e.g. experiments/ring8.py)")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax and XLA are chatty at INFO
    from gan_jax import evaluate, parallel, train  # imported late so that --help stays fast

    try:
        if command == "train":
            parallel.maybe_initialize_distributed()
            train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _OVERRIDE.value)
        else:
            record = evaluate.evaluate(
                _WORKDIR.value, _METRICS.value, _NUM_SAMPLES.value, _DATA_DIR.value
            )
            print(json.dumps(record, indent=2))
    except (ValueError, FloatingPointError, WorkdirBusyError) as err:
        sys.exit(f"error: {err}")


def experiment_config(argv):
    """The config of the experiment file that `--config FILE[:VARIANT]` names in argv, or the
    default config when there is none or it cannot be read."""
    from gan_jax.config import default_config, load_experiment_file

    values = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    values += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    if values:
        path, _, variant = values[0].partition(":")
        try:
            return load_experiment_file(path, variant)
        except Exception:  # the flags parser reports a bad file itself
            pass
    return default_config()


def unknown_config_key(argv) -> str | None:
    """'config.a.b is not a config key; config.a has: [...]' for the first such override, the
    keys being those of the experiment's config."""
    config = experiment_config(argv)
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        node, path = config, "config"
        for name in arg[2:].split("=", 1)[0].split(".")[1:]:
            if not hasattr(node, "keys"):
                break
            if name not in node:
                return f"{path}.{name} is not a config key; {path} has: {sorted(node.keys())}"
            node, path = node[name], f"{path}.{name}"
    return None


def parse_flags(argv):
    try:  # a mistyped --config.key is reported as one line, not a traceback
        return flags.FLAGS(argv)
    except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as err:
        message = unknown_config_key(argv)
        sys.exit(f"error: bad flag: {message or err}".replace("\\n", " "))


def run() -> None:
    app.run(main, flags_parser=parse_flags)
