"""Loads an experiment file's config the way `--config experiments/<name>.py` does."""

from pathlib import Path

from gan_jax.bench import load_config as load_experiment  # noqa: F401  (the one loader)

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
