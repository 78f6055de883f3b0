"""WGAN-GP on MNIST (Gulrajani et al. 2017): a critic with a gradient penalty, no batch norm.

Algorithm 1 of the paper: lambda = 10 on random interpolates of real and fake data
(`penalties.gradient_penalty`), n_critic = 5 critic updates per G update, Adam(1e-4, b1=0,
b2=0.9); the MNIST code's batch 50 and 200,000 G updates. Nets after the paper's MNIST code
(DIM = 64, 5x5 kernels): G z (128-d normal) -> 7x7x128 -> 14x14x64 -> 28x28x1 sigmoid, no batch
norm; critic conv 64 -> conv 128 (stride 2, LeakyReLU) -> 1 raw output, no batch norm (the
penalty is per example, which batch norm would break). Pixels in [0, 1]. The paper's critic has
a third conv layer and its G crops 8x8 to 7x7; this one grows 7 -> 14 -> 28 directly.
Trains on MNIST train[0:50000], keeping train[50000:51000] for the Parzen sigma (the 2014
protocol).

Run:
    python -m gan_jax train --config experiments/wgan_gp_mnist.py --workdir runs/wgan_gp \
        --config.data.dir=../shared/data/mnist

Expect: -d_loss (the critic's estimate of the Wasserstein distance, d_real - d_fake) falls
steadily and d_penalty stays small (measured: 3.96, 2.75, 2.36, 2.27 at G steps 500 to 2,000;
penalty 0.038 -> 0.017). About 0.5 G steps/s (5 critic steps each, with a double backward
pass) on one CPU core: a run stopped at 2,000 G steps (`--config.train.num_steps=2000`, 60 min
on a busy 2-core CPU) shows digit-like strokes (docs/wgan_gp_mnist_step_2000.png) and scores, by
`gan-jax eval`, Parzen 80.0 +- 1.4, classifier score 5.80, FD 99.7, 10 classes. The paper's
200,000 G steps are a GPU run.
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="mnist", scale="unit", start=0, stop=50000)
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=128, z_dist="normal")
    c.model.generator_kwargs = {
        "base_features": 64,
        "kernel_size": 5,
        "use_batch_norm": False,
        "output_activation": "sigmoid",
    }
    c.model.discriminator_kwargs = {"base_features": 64, "kernel_size": 5, "use_batch_norm": False}
    c.loss.update(name="wgan", penalty="gp", penalty_weight=10.0)
    c.optim.g = optimizer_config(name="adam", lr=1e-4, b1=0.0, b2=0.9)
    c.optim.d = optimizer_config(name="adam", lr=1e-4, b1=0.0, b2=0.9)
    c.train.update(batch_size=50, num_steps=200_000, d_steps=5, scan_steps=50)
    c.train.update(log_every=500, sample_every=5000, checkpoint_every=5000)
    return c
