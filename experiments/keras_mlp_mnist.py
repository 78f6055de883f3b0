"""The Keras-tutorial MLP GAN on MNIST: the first GAN many people meet.

G: 100 -> 256 -> 512 -> 1024 -> 784 tanh (ReLU hidden); D: 784 -> 512 -> 256 -> 1 (ReLU hidden);
data in [-1, 1]; Adam(2e-4, beta1 0.5) for both; batch 128; non-saturating loss. Trains on
MNIST train[0:50000], as Goodfellow et al. 2014 did, so that the Parzen sigma `gan-jax eval`
picks on train[50000:51000] is picked on images the run never saw (`gan-jax eval` refuses or
leaves out a Parzen figure of a run that trained on them).

Run:
    python -m gan_jax train --config experiments/keras_mlp_mnist.py --workdir runs/keras \
        --config.data.dir=../shared/data/mnist

Expect: blurry but recognisable digits in samples/ after about 4k steps; at 8,000 steps (3 min
on a busy 2-core CPU; docs/keras_mlp_mnist_step_8000.png) `gan-jax eval` gives Parzen
-68.9 +- 1.5, classifier score 3.85, FD 257.6, 9 classes (README, Evaluation).
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
