import subprocess
import sys
from pathlib import Path

from gan_jax import cli

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
