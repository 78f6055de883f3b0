"""DCGAN on CelebA at 64x64 (Radford et al. 2016, Sec. 3 and Fig. 1's 64x64 G).

Data: `tfds:celeb_a` (162,770 training faces, 218x178), the central 178x178 square resized to
64x64 (`data.image_size=64`, PIL bilinear), pixels in [-1, 1]. Nets (`conv_nets.DCGANGenerator` /
`DCGANDiscriminator`, sized from the data): G z (100-d, uniform on [-1, 1]) -> 4x4x512 ->
8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 tanh (batch norm + ReLU); D the mirror image, 64 ->
128 -> 256 -> 512 features (LeakyReLU 0.2, batch norm but at the input) -> 1 logit. Weights
N(0, 0.02), the non-saturating loss, Adam(2e-4, b1=0.5), batch 128 (Sec. 4). The paper trains
on LSUN and its own face set, not CelebA; many DCGAN CelebA runs crop a central 108x108 first
(`data.image_size` crops the largest central square instead).

Run (an accelerator; `tfds:celeb_a` must be prepared in $TFDS_DATA_DIR, it cannot be downloaded
by TFDS without manual steps in some versions):
    python -m gan_jax train --config experiments/dcgan_celeba64.py --workdir runs/celeba64
    python -m gan_jax sample --workdir runs/celeba64 --num 50000 --seed 0 \
        --out runs/celeba64/samples/

Expect: faces within a few thousand steps; Heusel et al. 2017 (Table 1) report FID 21.4 for
DCGAN on CelebA 64x64 (12.5 with their two time-scale rule, TTUR).
Here, only a smoke test (tests/image_experiments_test.py: a few steps on random 64x64x3 data).
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="tfds:celeb_a", image_size=64, scale="symmetric", start=0, stop=None)
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=100, z_dist="uniform")
    c.model.generator_kwargs = {"base_features": 64, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"base_features": 64}
    c.loss.name = "non_saturating"
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=128, num_steps=50_000, d_steps=1, scan_steps=100)
    c.train.update(log_every=1000, sample_every=5000, checkpoint_every=5000)
    return c
