"""DCGAN on Stacked MNIST: the 1000-mode collapse benchmark (Metz et al. 2017, Sec. 3.4; VEEGAN,
Srivastava et al. 2017; PacGAN, Lin et al. 2018).

Data: 60,000 images [28, 28, 3] whose channels are three uniformly drawn MNIST training digits
(`data.name='stacked_mnist'`, one fixed draw), pixels in [-1, 1]; the mode of an image is its
three digits, 1000 in all. Nets (Radford et al. 2016): G z (100-d normal) -> 7x7x128 -> 14x14x64
-> 28x28x3 tanh with batch norm + ReLU; D 28x28x3 -> conv 64 (stride 2, LeakyReLU 0.2) -> conv
128 (stride 2, batch norm) -> 1 logit. Non-saturating loss, Adam(2e-4, b1=0.5), batch 64, k=1.

Run:
    python -m gan_jax train --config experiments/stacked_mnist_dcgan.py \
        --workdir runs/stacked_dcgan --config.data.dir=../shared/data/mnist

Expect: colour digit triples in samples/ within a few thousand steps. Count modes with
`gan_jax.metrics.stacked_mnist_modes` on 26,000 samples (each channel classified by the MNIST
CNN): VEEGAN's Table 2 reports about 99 of 1000 modes (KL 3.4) for its DCGAN, so expect far from
all 1000 modes; a perfect generator covers 1000 with KL near 0. About 0.45 it/s (2.2 s per
step) on a 2-core CPU: a GPU run.
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="stacked_mnist", scale="symmetric", start=0, stop=None, stacked_size=60_000)
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=100, z_dist="normal")
    c.model.generator_kwargs = {"base_features": 64, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"base_features": 64}
    c.loss.name = "non_saturating"
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=64, num_steps=50_000, d_steps=1, scan_steps=50)
    c.train.update(log_every=500, sample_every=2500, checkpoint_every=2500)
    return c
