"""The Keras-tutorial MLP GAN on MNIST: the first GAN many people meet.

G: 100 -> 256 -> 512 -> 1024 -> 784 tanh (ReLU hidden); D: 784 -> 512 -> 256 -> 1 (ReLU hidden);
data in [-1, 1]; Adam(2e-4, beta1 0.5) for both; batch 128; non-saturating loss. Trains on
MNIST train[0:50000], as Goodfellow et al. 2014 did, so that the Parzen sigma `gan-jax eval`
picks on train[50000:51000] is picked on images the run never saw. The README's keras row
(step 8,000) was made before, on train[0:60000], which holds those images: its Parzen figure
is not comparable with the 2014 row (`gan-jax eval` now refuses or leaves out such a figure).

Run:
    python -m gan_jax train --config experiments/keras_mlp_mnist.py --workdir runs/keras \
        --config.data.dir=../shared/data/mnist

Expect: blurry but recognisable digits in samples/ after about 5k steps.
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="mnist", scale="symmetric", start=0, stop=50000)
    c.model.update(generator="mlp", discriminator="mlp", z_dim=100, z_dist="normal")
    c.model.generator_kwargs = {"hidden": (256, 512, 1024), "output_activation": "tanh"}
    c.model.discriminator_kwargs = {"hidden": (512, 256)}
    c.loss.name = "non_saturating"
    c.optim.g = optimizer_config(name="adam", lr=2e-4, b1=0.5)
    c.optim.d = optimizer_config(name="adam", lr=2e-4, b1=0.5)
    c.train.update(batch_size=128, num_steps=20_000, scan_steps=100, log_every=500)
    c.train.sample_every = 2000
    return c
