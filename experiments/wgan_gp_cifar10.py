"""WGAN-GP with ResNets on CIFAR-10 (Gulrajani et al. 2017, Sec. 6 and appendix).

Nets (`resnet_nets.ResNetGenerator` / `ResNetDiscriminator`, igul222/improved_wgan_training
gan_cifar_resnet.py): G z (128-d normal) -> dense 4x4x128 -> 3 residual up-blocks of 128
features (batch norm) -> BN-ReLU-conv3x3 -> 32x32x3 tanh; critic: 4 residual blocks of 128
features (the first two halving the size, no normalisation), ReLU, mean over positions, one
linear output. About 1.2M G and 1.05M critic parameters. WGAN loss with the gradient penalty
(lambda = 10, Algorithm 1), n_critic = 5, Adam(2e-4, b1=0, b2=0.9), critic batch 64, 100,000
G steps. Pixels in [-1, 1]; the 50,000 training images of `tfds:cifar10`.

Not as the authors' code: their G takes batches of 128 (twice the critic's), their learning
rate falls linearly to 0 over the 100,000 steps, and they add U[0, 1/128] dequantisation noise
to real images; here one batch size, a constant rate and plain pixels.

Run (an accelerator):
    python -m gan_jax train --config experiments/wgan_gp_cifar10.py --workdir runs/wgan_gp_cifar10
    python -m gan_jax sample --workdir runs/wgan_gp_cifar10 --num 50000 --seed 0 \
        --out runs/wgan_gp_cifar10/samples/

Expect: Table 3 of the paper, unsupervised CIFAR-10: Inception score 7.86 +- 0.07 (8.42 +- 0.10
for their conditional AC-GAN version); Fig. 3 shows the score rising over the run. -d_loss (the
critic's Wasserstein estimate) should fall steadily after the first few thousand steps.
Here, only a smoke test (tests/image_experiments_test.py).
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="tfds:cifar10", scale="symmetric", start=0, stop=None)
    c.model.update(generator="resnet", discriminator="resnet", z_dim=128, z_dist="normal")
    c.model.generator_kwargs = {"base_features": 128, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"features": 128, "pooling": "mean", "output_bias": True}
    c.loss.update(name="wgan", penalty="gp", penalty_weight=10.0)
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.0, b2=0.9)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.0, b2=0.9)
    c.train.update(batch_size=64, num_steps=100_000, d_steps=5, scan_steps=100)
    c.train.update(log_every=1000, sample_every=5000, checkpoint_every=5000)
    return c
