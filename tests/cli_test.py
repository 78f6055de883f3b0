import subprocess
import sys
from pathlib import Path

import pytest

from gan_jax import cli
from gan_jax.config import load_experiment_file

REPO = Path(__file__).resolve().parents[1]


def test_unknown_config_key_names_the_key_and_the_allowed_ones():
    message = cli.unknown_config_key(["gan-jax", "train", "--config.train.batch_sizee=3"])
    assert message.startswith("config.train.batch_sizee is not a config key;")
    assert "'batch_size'" in message and "'d_steps'" in message
    assert "config has: [" in cli.unknown_config_key(["--config.trian.batch_size=3"])
    assert cli.unknown_config_key(["--config.train.batch_size=3", "--workdir=x"]) is None
    # The keys listed are the named experiment's, variant included, not the default config's.
    experiment = f"{REPO / 'experiments' / 'stacked_mnist_dcgan.py'}:r1"
    argv = ["--config", experiment, "--config.model.x.y=1"]
    assert cli.unknown_config_key(argv).startswith("config.model.x is not a config key")
    argv[-1] = "--config.model.discriminator_kwargs.use_batch_norm=False"
    assert "discriminator_kwargs has: ['base_features']" in cli.unknown_config_key(argv)


def test_a_mistyped_config_key_stops_with_one_line_before_any_work(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gan_jax", "train", "--config", "experiments/ring8.py"]
        + [f"--workdir={tmp_path / 'run'}", "--config.train.bach_size=3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: bad flag: config.train.bach_size is not a config key; config.train has: ["
        )
    )
    assert not (tmp_path / "run").exists()


def run_cli(monkeypatch, capsys, *argv):
    """(exit status, stdout, stderr) of `gan-jax ARGV` run through absl's app.run in-process;
    only commands that exit during parsing belong here."""
    monkeypatch.setattr(sys, "argv", ["gan-jax", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_help_lists_the_commands_one_line_each():
    proc = subprocess.run(
        [sys.executable, "-m", "gan_jax", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    for command in ("train", "sweep", "eval", "sample"):
        line = next(line for line in lines if line.strip().startswith(command + " "))
        assert len(line.split()) > 3, line  # the command and its one-line description


def test_each_command_lists_its_flags_with_defaults(monkeypatch, capsys):
    status, out, _ = run_cli(monkeypatch, capsys, "eval", "--help")
    assert status == 0
    assert "usage: gan-jax eval" in out
    for flag in ("--workdir", "--metrics", "--num_samples N", "--data_dir DIR"):
        assert flag in out
    flat = " ".join(out.split())
    assert "stacked_mnist: 26000; others: 10000)" in flat
    assert "mnist: parzen,score,fd,kid,pr,dc,classes;" in flat
    status, out, _ = run_cli(monkeypatch, capsys, "train", "--help")
    assert status == 0
    assert "usage: gan-jax train" in out
    for flag in ("--config FILE[:VARIANT]", "--workdir", "--override_config", "--config.key=value"):
        assert flag in out
    status, out, _ = run_cli(monkeypatch, capsys, "sample", "--help")
    assert status == 0
    assert "usage: gan-jax sample" in out
    for flag in (
        "--workdir",
        "--num N",
        "--seed S",
        "--out FILE.npz|FILE.txt|OUTDIR/",
        "(default: 0)",
    ):
        assert flag in out


def test_an_unknown_or_missing_command_is_named_with_the_commands(monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "trian", "--workdir=x")
    assert status == 2
    assert (
        "invalid choice: 'trian' (choose from 'train', 'sweep', 'eval', 'sample', 'figures',"
        " 'curve')" in err
    )
    status, _, err = run_cli(monkeypatch, capsys)
    assert status == 2 and "required: COMMAND" in err
    status, _, err = run_cli(monkeypatch, capsys, "eval", "--workdir=x", "--num_samples=many")
    assert status == 2 and "argument --num_samples: invalid int value: 'many'" in err
    status, _, err = run_cli(monkeypatch, capsys, "eval", "--workdir=x", "--config.seed=1")
    assert status == 2 and "unrecognized arguments: --config.seed=1" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "--workdir=x")
    assert status == 2 and "required: --config" in err
    status, _, err = run_cli(monkeypatch, capsys, "sample", "--workdir=x")
    assert status == 2 and "required: --num, --out" in err


def test_config_overrides_reach_the_config_and_flags_reach_the_command():
    experiment = f"{REPO / 'experiments' / 'stacked_mnist_dcgan.py'}:r1"
    args = cli.parse_flags(
        ["gan-jax", "train", "--config", experiment, "--config.train.num_steps=77"]
        + ["--config.loss.name", "hinge", "--workdir", "w", "--config.model.spectral_norm"]
        + ["--override_config"]
    )
    expected = load_experiment_file(str(REPO / "experiments" / "stacked_mnist_dcgan.py"), "r1")
    expected.train.num_steps, expected.loss.name, expected.model.spectral_norm = 77, "hinge", True
    assert args.config.to_dict() == expected.to_dict()
    assert args.run is cli.run_train and args.workdir == "w" and args.override_config
    args = cli.parse_flags(["gan-jax", "eval", "--workdir=w", "--num_samples", "5"])
    assert args.run is cli.run_eval and args.num_samples == 5
    assert (args.metrics, args.data_dir) == (None, None)
    args = cli.parse_flags(["gan-jax", "sample", "--workdir=w", "--num=5", "--out", "o.npz"])
    assert args.run is cli.run_sample and (args.num, args.seed, args.out) == (5, 0, "o.npz")
