"""DCGAN on CIFAR-10 (Radford et al. 2016): the all-convolutional G and D of Sec. 3 on 32x32x3.

Nets (`conv_nets.DCGANGenerator` / `DCGANDiscriminator`, sized from the data): G z (100-d, uniform
on [-1, 1]) -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3 tanh, 4x4 fractionally-strided convs,
batch norm + ReLU; D 32x32x3 -> conv 64 -> 128 -> 256 (4x4, stride 2, LeakyReLU 0.2, batch norm
but at the input layer) -> 1 logit. Weights N(0, 0.02), the non-saturating loss, Adam(2e-4,
b1=0.5), batch 128 (Sec. 4). Pixels in [-1, 1]; the 50,000 training images of `tfds:cifar10`.
The paper gives no step count for CIFAR-10; 100,000 G steps is the length of the comparisons
below.

Run (an accelerator; `tfds:cifar10` must be prepared in $TFDS_DATA_DIR or downloadable):
    python -m gan_jax train --config experiments/dcgan_cifar10.py --workdir runs/dcgan_cifar10
    python -m gan_jax sample --workdir runs/dcgan_cifar10 --num 50000 --seed 0 \
        --out runs/dcgan_cifar10/samples/
then an Inception score / FID tool on the PNG folder (README, Other image data).

Expect: the paper reports no Inception score; its CIFAR-10 figure is Table 1, 82.8% (+- 0.1%)
accuracy of an L2-SVM on D's features (trained on ImageNet-1k). For DCGAN trained on CIFAR-10,
Gulrajani et al. 2017 (Table 3) list an Inception score of 6.16 +- 0.07 (from Huang et al.
2017), against 11.24 +- 0.12 for the real data.
Here, only a smoke test (tests/image_experiments_test.py: a few steps on random 32x32x3 data).
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="tfds:cifar10", scale="symmetric", start=0, stop=None)
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=100, z_dist="uniform")
    c.model.generator_kwargs = {"base_features": 64, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"base_features": 64}
    c.loss.name = "non_saturating"
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=128, num_steps=100_000, d_steps=1, scan_steps=100)
    c.train.update(log_every=1000, sample_every=5000, checkpoint_every=5000)
    return c
