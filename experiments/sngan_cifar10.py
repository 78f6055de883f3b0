"""SN-GAN with ResNets on CIFAR-10 (Miyato et al. 2018, Sec. 4 and appendix): hinge loss,
spectral norm on every layer of D.

Nets (`resnet_nets.ResNetGenerator` / `ResNetDiscriminator`, the authors' pfnet-research/
sngan_projection gen_models/resnet_32.py and dis_models/snresnet_32.py with 0 classes): G z
(128-d normal) -> dense 4x4x256 -> 3 residual up-blocks of 256 features (batch norm) ->
BN-ReLU-conv3x3 -> 32x32x3 tanh; D: 4 residual blocks of 128 features (the first two halving
the size), ReLU, sum over positions, a linear output without bias; every D weight divided by
its largest singular value (one power iteration per step, eq. 8). About 4.3M G and 1.05M D
parameters. Hinge loss (eq. 16-17), n_dis = 5, Adam(2e-4, b1=0, b2=0.9) (the paper's setting
for the ResNets), D batch 64, 50,000 G steps (configs/sn_cifar10_unconditional.yml). Pixels in
[-1, 1]; the 50,000 training images of `tfds:cifar10`.

Not as the authors' code: their G takes batches of 128 and their learning rate falls linearly
to 0 over the 50,000 steps; here one batch size and a constant rate.

Run (an accelerator):
    python -m gan_jax train --config experiments/sngan_cifar10.py --workdir runs/sngan_cifar10
    python -m gan_jax sample --workdir runs/sngan_cifar10 --num 50000 --seed 0 \
        --out runs/sngan_cifar10/samples/

Expect: Table 2 of the paper, CIFAR-10, SN-GANs with the ResNets: Inception score 8.22 +- 0.05,
FID 21.7 +- 0.21 (the same table's WGAN-GP ResNet: 7.86 +- 0.08).
Here, only a smoke test (tests/image_experiments_test.py).
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="tfds:cifar10", scale="symmetric", start=0, stop=None)
    c.model.update(generator="resnet", discriminator="resnet", z_dim=128, z_dist="normal")
    c.model.spectral_norm = True
    c.model.generator_kwargs = {"base_features": 256, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"features": 128, "pooling": "sum", "output_bias": False}
    c.loss.name = "hinge"
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.0, b2=0.9)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.0, b2=0.9)
    c.train.update(batch_size=64, num_steps=50_000, d_steps=5, scan_steps=100)
    c.train.update(log_every=1000, sample_every=5000, checkpoint_every=5000)
    return c
