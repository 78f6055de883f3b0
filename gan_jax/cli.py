"""Command line. Only parses flags and hands over to the module that does the work.

gan-jax train --config experiments/<name>.py[:VARIANT] --workdir DIR [--config.key=value ...]
gan-jax sweep --config experiments/<name>.py[:VARIANT] --workdir DIR [--sweep key=v1,v2,...]
              [--seeds S]
gan-jax eval --workdir DIR [--metrics parzen,fd,...] [--num_samples N] [--data_dir DIR]
gan-jax sample --workdir DIR --num N [--seed S] --out FILE.npz|FILE.txt|OUTDIR/
gan-jax figures --workdir DIR [--out OUTDIR] [--data_dir DIR] [--seed S]
gan-jax curve --workdir DIR [DIR ...] --metrics NAME[,...] [--out FILE.png] [--steps_per_epoch N]
              [--reference Y [--reference_label TEXT]] [--log_y]

The commands are argparse subcommands, built with absl's `argparse_flags` so that absl runs
`main` and its own flags (--verbosity, ...) keep working; `gan-jax --help` lists the commands
and `gan-jax COMMAND --help` a command's flags. The experiment config is an ml_collections
config file: `--config FILE` and any number of `--config.key=value` overrides, which argparse
leaves to `ml_collections.config_flags`.
"""

from __future__ import annotations

import argparse
import json
import sys

from absl import app, flags, logging
from absl.flags import argparse_flags
from ml_collections import config_flags

from gan_jax import alarm, curves, evaluate, figures, parallel, sample, sweep, train
from gan_jax.config import default_config, load_experiment_file
from gan_jax.workdir_lock import WorkdirBusyError


def run_train(args: argparse.Namespace) -> None:
    """`gan-jax train`: train (or resume) one run in --workdir."""
    parallel.maybe_initialize_distributed()
    train.train_and_evaluate(args.config, args.workdir, args.override_config)


def run_sweep(args: argparse.Namespace) -> None:
    """`gan-jax sweep`: train the grid x seeds; raises ValueError when there is nothing to sweep."""
    parallel.maybe_initialize_distributed()
    grid = sweep.command_grid(args.config_file, args.sweep or [])
    if not grid and args.seeds == 1:
        raise ValueError(
            "nothing to sweep: pass --sweep KEY=V1,V2,... or --seeds S > 1, or give the"
            " experiment file a get_sweep()"
        )
    members = sweep.run_sweep(args.config, grid, args.seeds, args.workdir)
    failed = [m.index for m in members if m.status != "ok"]
    print(json.dumps({"members": len(members), "failed": failed, "workdir": args.workdir}))


def run_eval(args: argparse.Namespace) -> None:
    """`gan-jax eval`: score the newest checkpoint, print and write eval.json."""
    record = evaluate.evaluate(args.workdir, args.metrics, args.num_samples, args.data_dir)
    print(json.dumps(record, indent=2))


def run_sample(args: argparse.Namespace) -> None:
    """`gan-jax sample`: write --num samples of the newest checkpoint to --out."""
    record = sample.sample(args.workdir, args.num, args.seed, args.out)
    print(json.dumps(record))


def run_figures(args: argparse.Namespace) -> None:
    """`gan-jax figures`: the 2014 paper's Figures 2 and 3 for the newest checkpoint."""
    record = figures.figures(args.workdir, args.out, args.data_dir, args.seed)
    print(json.dumps(record))


def run_curve(args: argparse.Namespace) -> None:
    """`gan-jax curve`: plot and summarise metrics against steps for one or more workdirs."""
    record = curves.curve(
        args.workdir,
        [name.strip() for name in args.metrics.split(",") if name.strip()],
        args.out,
        args.steps_per_epoch,
        args.reference,
        args.reference_label,
        args.log_y,
    )
    print(json.dumps(record, indent=2))


def _default_list(defaults: dict) -> str:
    return "; ".join(f"{name}: {value or 'none'}" for name, value in defaults.items())


def add_config_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The required `--config FILE[:VARIANT]` of the commands that build a config; its
    `--config.key=value` overrides are parsed by `load_config`."""
    parser.add_argument("--config", required=True, metavar="FILE[:VARIANT]", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `gan-jax COMMAND [flags]`; each command's handler is `args.run`."""
    parser = argparse_flags.ArgumentParser(
        prog="gan-jax",
        description="Train and evaluate GANs (JAX). 'gan-jax COMMAND --help' lists its flags.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    train_parser = commands.add_parser(
        "train",
        help="train a GAN from an experiment config, resuming the workdir's newest checkpoint",
        description="Train a GAN from an experiment config into --workdir; running it again on"
        " the same workdir resumes from its newest checkpoint.",
        allow_abbrev=False,
    )
    add_config_argument(
        train_parser,
        "experiment file with get_config() (e.g. experiments/ring8.py); override any field"
        " with --config.key=value after it (e.g. --config.train.num_steps=8000). Required.",
    )
    train_parser.add_argument(
        "--workdir", required=True, help="directory for config, metrics, samples. Required."
    )
    train_parser.add_argument(
        "--override_config",
        action="store_true",
        help="on resume, use the given config instead of the workdir's config.json"
        " (default: the workdir's wins)",
    )
    train_parser.set_defaults(run=run_train)

    sweep_parser = commands.add_parser(
        "sweep",
        help="train many members of one experiment at once: a grid of hyperparameters x seeds",
        description="Train one member per (grid point, seed), sharded over every device, into"
        " --workdir: sweep.json, results.csv, results.md and members/<i>/ (an ordinary"
        " workdir per member). The grid is the experiment's get_sweep() (if any) with --sweep"
        " flags added or overriding; members get seeds config.seed + 0..S-1. Any config key"
        " but seed can be swept: members that differ only in numbers"
        f" ({', '.join(sweep.SWEEPABLE)}) share one compiled program; other keys (nets, loss,"
        " batch size, ...) split the members into groups, one program each, run one after"
        " another. Rerunning the same command resumes the newest checkpoints.",
        allow_abbrev=False,
    )
    add_config_argument(
        sweep_parser,
        "experiment file with get_config() (and optionally get_sweep()); override any"
        " field with --config.key=value after it. Required.",
    )
    sweep_parser.add_argument(
        "--workdir", required=True, help="directory for the sweep's outputs. Required."
    )
    sweep_parser.add_argument(
        "--sweep",
        action="append",
        metavar="KEY=V1,V2,...",
        help="a swept config key and its values (repeatable; the members are the product)",
    )
    sweep_parser.add_argument(
        "--seeds", type=int, default=1, metavar="S", help="seeds per grid point (default: 1)"
    )
    sweep_parser.set_defaults(run=run_sweep)

    eval_parser = commands.add_parser(
        "eval",
        help="evaluate the newest checkpoint of a workdir and write eval.json",
        description="Evaluate the newest checkpoint in --workdir with its own config; the"
        " results are printed and written to WORKDIR/eval.json.",
        allow_abbrev=False,
    )
    eval_parser.add_argument(
        "--workdir", required=True, help="a training workdir (gan-jax train). Required."
    )
    eval_parser.add_argument(
        "--metrics",
        help="comma-separated metric names (default: the dataset's own; "
        f"{_default_list(evaluate.DEFAULT_METRICS)})",
    )
    eval_parser.add_argument(
        "--num_samples",
        type=int,
        metavar="N",
        help="number of generated samples (default: by dataset; "
        f"{_default_list(evaluate.DEFAULT_NUM_SAMPLES)}; others: 10000)",
    )
    eval_parser.add_argument(
        "--data_dir",
        metavar="DIR",
        help="MNIST IDX directory (default: the workdir's config.data.dir)",
    )
    eval_parser.set_defaults(run=run_eval)

    sample_parser = commands.add_parser(
        "sample",
        help="write N samples of a workdir's newest checkpoint to a .npz or a directory",
        description="Write --num samples of the newest checkpoint in --workdir, latent codes"
        " drawn from --seed (the same seed gives the same samples), for outside tools. FILE.npz"
        " holds x (N, *data shape; [0, 1] or [-1, 1] as data.scale, any value for the toys),"
        " y (labels i mod K, conditional G only), value_range, step and seed; for text x is G's"
        " softmax (N, L, V) and tokens its argmax. OUTDIR/ gets one PNG per sample for images"
        " (and labels.csv), samples.csv for the toys, samples.txt for text. FILE.txt (text"
        " runs): one sample per line, decoded by the workdir's vocab.json.",
        allow_abbrev=False,
    )
    sample_parser.add_argument(
        "--workdir", required=True, help="a training workdir (gan-jax train). Required."
    )
    sample_parser.add_argument(
        "--num", required=True, type=int, metavar="N", help="number of samples. Required."
    )
    sample_parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the latent codes (default: 0)"
    )
    sample_parser.add_argument(
        "--out",
        required=True,
        metavar="FILE.npz|FILE.txt|OUTDIR/",
        help="a .npz file, a .txt file (text runs), or a new or empty directory (a path ending"
        " in '/'). Required.",
    )
    sample_parser.set_defaults(run=run_sample)

    figures_parser = commands.add_parser(
        "figures",
        help="write Figures 2 and 3 of Goodfellow et al. 2014 for a workdir's newest checkpoint",
        description="Write PNGs of the newest checkpoint in --workdir (image data only):"
        " neighbours_pixel.png and neighbours_features.png, samples each beside its nearest"
        " training example in pixel L2 and in the MNIST classifier's feature space (the"
        " 2014 paper's Fig. 2); interpolation.png, rows of G along straight lines in z (its"
        " Fig. 3); interpolation_classes.png, rows of one z across the classes, for a"
        " conditional G.",
        allow_abbrev=False,
    )
    figures_parser.add_argument(
        "--workdir", required=True, help="a training workdir (gan-jax train). Required."
    )
    figures_parser.add_argument(
        "--out", metavar="OUTDIR", help="directory for the PNGs (default: WORKDIR/figures)"
    )
    figures_parser.add_argument(
        "--data_dir",
        metavar="DIR",
        help="directory of the training data (default: the workdir's config.data.dir)",
    )
    figures_parser.add_argument(
        "--seed",
        type=int,
        default=figures.FIGURE_SEED,
        metavar="S",
        help=f"seed of the samples and latent codes (default: {figures.FIGURE_SEED})",
    )
    figures_parser.set_defaults(run=run_figures)

    curve_parser = commands.add_parser(
        "curve",
        help="plot logged metrics of a workdir against steps (e.g. the Parzen log-likelihood)",
        description="Plot each named metric of --workdir's metrics.jsonl against the steps"
        " where it was logged (error bars from NAME_stderr where logged) into a PNG, and print"
        " each metric's lowest, highest and last point as JSON.",
        allow_abbrev=False,
    )
    curve_parser.add_argument(
        "--workdir",
        required=True,
        nargs="+",
        metavar="DIR",
        help="one or more training workdirs (gan-jax train, or a sweep's DIR/members/<i>);"
        " several add their mean and std. Required.",
    )
    curve_parser.add_argument(
        "--metrics",
        required=True,
        metavar="NAME[,NAME...]",
        help="metric names of metrics.jsonl, e.g. parzen_ll or d_errors_ema. Required.",
    )
    curve_parser.add_argument(
        "--out", metavar="FILE.png", help="the PNG (default: first WORKDIR/curve_<names>.png)"
    )
    curve_parser.add_argument(
        "--steps_per_epoch",
        type=int,
        metavar="N",
        help="plot against epochs, N training steps each (default: against steps)",
    )
    curve_parser.add_argument(
        "--reference", type=float, metavar="Y", help="a horizontal line at Y (a paper's figure)"
    )
    curve_parser.add_argument(
        "--reference_label", default="reference", help="the legend of --reference"
    )
    curve_parser.add_argument(
        "--log_y", action="store_true", help="log-scaled values (all must be > 0)"
    )
    curve_parser.set_defaults(run=run_curve)
    return parser


def main(args: argparse.Namespace) -> None:
    """Runs the chosen subcommand; a bad input or a stopped run exits 1 with a one-line error."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax and XLA are chatty at INFO
    try:
        args.run(args)
    except (ValueError, FloatingPointError, WorkdirBusyError, alarm.CollapseAlarmError) as err:
        sys.exit(f"error: {err}")


def experiment_config(argv):
    """The config of the experiment file that `--config FILE[:VARIANT]` names in argv, or the
    default config when there is none or it cannot be read."""
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


def load_config(config_file: str, overrides: list[str]):
    """The ConfigDict of `--config config_file` with the `--config.key=value` overrides applied
    by ml_collections' config_flags; a bad key or value exits with one line naming it."""
    argv = ["gan-jax", f"--config={config_file}", *overrides]
    flag_values = flags.FlagValues()  # the config's own, so the overrides meet no other flags
    config = config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
    try:
        positional = flag_values(argv)[1:]
    except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as err:
        message = unknown_config_key(argv)
        sys.exit(f"error: bad flag: {message or err}".replace("\\n", " "))
    if positional:
        sys.exit(f"error: unrecognized arguments: {' '.join(positional)}")
    return config.value


def parse_flags(argv: list[str]) -> argparse.Namespace:
    """The parsed command line, `args.config` being the ConfigDict with the overrides applied.
    argparse leaves the `--config.key=value` overrides to config_flags (in their order), which
    also reports any other flag that neither knows."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv[1:])
    if args.run in (run_train, run_sweep):
        args.config_file = args.config
        args.config = load_config(args.config, rest)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


def run() -> None:
    """The `gan-jax` console script."""
    if sys.argv[1:2] == ["sweep"]:  # before anything starts JAX's backends
        parallel.one_cpu_device_per_core()
    app.run(main, flags_parser=parse_flags)
