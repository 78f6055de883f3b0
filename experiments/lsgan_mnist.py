"""LSGAN on MNIST (Mao et al. 2017): least-squares losses on D's raw output, DCGAN nets.

Loss (eq. 2): D minimises 1/2 E(D(x) - b)^2 + 1/2 E(D(G(z)) - a)^2, G minimises
1/2 E(D(G(z)) - c)^2, with the 0-1 coding a=0, b=c=1 (eq. 9); the Pearson chi^2 coding of eq. 8
is `--config.loss.lsgan_a=-1 --config.loss.lsgan_c=0`. The paper's optimiser: Adam(2e-4,
b1=0.5), batch 64. Nets (Radford et al. 2016): G z (100-d normal) -> 7x7x128 -> 14x14x64 ->
28x28x1 tanh with batch norm; D conv 64 -> conv 128 (batch norm) -> 1 raw output (no sigmoid).
Trains on MNIST train[0:50000], keeping train[50000:51000] for the Parzen sigma (the 2014
protocol).

Run (the README's row stopped at 3,000 steps: add --config.train.num_steps=3000):
    python -m gan_jax train --config experiments/lsgan_mnist.py --workdir runs/lsgan \
        --config.data.dir=../shared/data/mnist
    python -m gan_jax eval --workdir runs/lsgan --data_dir ../shared/data/mnist

Expect: recognisable digits in samples/ after a few thousand steps; in metrics.jsonl d_real and
d_fake are D's mean raw outputs and move towards each other (D* = (b p_data + a p_g) /
(p_data + p_g), eq. 4, is 1/2 everywhere once p_g = p_data). At 3,000 steps (13 min on a
busy 2-core CPU): Parzen 81.3 +- 1.5, classifier score 5.98, FD 88.53, all 10 classes.
About 3.3 it/s on one CPU core (`python -m gan_jax.bench --experiment lsgan_mnist`), so 30,000
steps take hours: a GPU run.
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="mnist", scale="symmetric", start=0, stop=50000)
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=100, z_dist="normal")
    c.model.generator_kwargs = {"base_features": 64, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"base_features": 64}
    c.loss.update(name="lsgan", lsgan_a=0.0, lsgan_b=1.0, lsgan_c=1.0)
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=64, num_steps=30_000, d_steps=1, scan_steps=50)
    c.train.update(log_every=500, sample_every=2500, checkpoint_every=2500)
    return c
