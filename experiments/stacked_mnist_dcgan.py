"""DCGAN on Stacked MNIST: the 1000-mode collapse benchmark (Metz et al. 2017, Sec. 3.4; VEEGAN,
Srivastava et al. 2017; PacGAN, Lin et al. 2018).

Data: 60,000 images [28, 28, 3] whose channels are three uniformly drawn MNIST training digits
(`data.name='stacked_mnist'`, one fixed draw), pixels in [-1, 1]; the mode of an image is its
three digits, 1000 in all. Nets (Radford et al. 2016): G z (100-d normal) -> 7x7x128 -> 14x14x64
-> 28x28x3 tanh with batch norm + ReLU; D 28x28x3 -> conv 64 (stride 2, LeakyReLU 0.2) -> conv
128 (stride 2, batch norm) -> 1 logit. Non-saturating loss, Adam(2e-4, b1=0.5), batch 64, k=1.

Run (`:r1` for the R1 variant; the CPU runs below stopped at 3,000 of the 50,000 steps):
    python -m gan_jax train --config experiments/stacked_mnist_dcgan.py \
        --workdir runs/stacked_plain --config.data.dir=../shared/data/mnist \
        --config.train.num_steps=3000 --config.train.checkpoint_every=1000
    python -m gan_jax eval --workdir runs/stacked_plain   # 26,000 samples -> eval.json

The eval counts modes among 26,000 samples (each channel classified by the MNIST CNN) and the KL
of their histogram to uniform; 26,000 real images (stacked test digits) give 1000 modes, KL 0.025.
VEEGAN's Table 2 reports about 99 modes (KL 3.4) for its DCGAN.
Expect (3,000 steps, 18 min each on one CPU core): plain 966 modes, KL 0.77; R1 921 modes, KL
0.81 (docs/stacked_mnist_dcgan_step_3000.png, ..._r1_step_3000.png). The channels are still
blurry digits at 3,000 steps, and a blurry channel gets an arbitrary class, which inflates the
mode count: read KL with it.
"""

from gan_jax.config import default_config, optimizer_config

VARIANTS = ("plain", "r1")


def get_config(variant: str = "plain"):
    """'plain' as above; 'r1' adds R1 (Mescheder et al. 2018, gamma = 10: weight gamma / 2 = 5),
    lazily on every 4th D update (times 4), R1 being the penalty that captured the most modes
    in experiments/toy_mode_coverage.py."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {list(VARIANTS)}")
    c = default_config()
    c.data.update(name="stacked_mnist", scale="symmetric", start=0, stop=None, stacked_size=60_000)
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=100, z_dist="normal")
    c.model.generator_kwargs = {"base_features": 64, "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"base_features": 64}
    c.loss.name = "non_saturating"
    if variant == "r1":
        c.loss.update(penalty="r1", penalty_weight=5.0, penalty_every=4)
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=64, num_steps=50_000, d_steps=1, scan_steps=50)
    c.train.update(log_every=500, sample_every=2500, checkpoint_every=2500)
    return c
