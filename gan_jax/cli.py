"""Command line: `gan-jax train --config experiments/<name>.py --workdir DIR [--config.k=v]`.

Only parses flags and hands over to the module that does the work.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train",)

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file with get_config(); override fields with --config.key=value."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config, metrics, samples.")
_OVERRIDE = flags.DEFINE_bool(
    "override_config", False, "On resume, use the given config instead of the workdir's."
)


def main(argv) -> None:
    command = argv[1] if len(argv) > 1 else None
    if command not in COMMANDS or len(argv) > 2:
        sys.exit(
            f"usage: gan-jax {{{','.join(COMMANDS)}}} --config FILE --workdir DIR; got {argv[1:]}"
        )
    if _CONFIG.value is None or not _WORKDIR.value:
        sys.exit("gan-jax train needs --config FILE (e.g. experiments/ring8.py) and --workdir DIR")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax and XLA are chatty at INFO
    from gan_jax import parallel, train  # imported late so that --help stays fast

    parallel.maybe_initialize_distributed()

    try:
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _OVERRIDE.value)
    except (ValueError, FloatingPointError) as err:
        sys.exit(f"error: {err}")


def run() -> None:
    try:  # a mistyped --config.key is reported as one line, not a traceback
        flags.FLAGS(sys.argv)
    except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as err:
        sys.exit(f"error: bad flag: {err}".replace("\\n", " "))
    app.run(main)
