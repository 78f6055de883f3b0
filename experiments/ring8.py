"""Ring of 8 Gaussians: the default demo, learnt in about a minute on a 2-core CPU.

Run:
    python -m gan_jax train --config experiments/ring8.py --workdir runs/ring8

Expect: samples/step_4000.png shows G's samples (green) on all 8 modes of the ring (black), with
D(x) close to 1/2 everywhere near the data; metrics.jsonl has d_loss near 2 log 2 = 1.39.
"""

from gan_jax.config import default_config


def get_config():
    return default_config()
