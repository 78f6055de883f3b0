"""Goodfellow et al. 2014, MNIST: the paper's nets and optimiser (goodfeli/adversarial mnist.yaml).

G: z (100-d, U[-1, 1]) -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid, output bias from the pixel
marginals. D: maxout 240x5 -> maxout 240x5 -> 1, dropout keeping 0.8 of inputs, 0.5 of hidden.
SGD lr 0.1 decaying by 1.000004 per update down to 1e-6, momentum 0.5 -> 0.7 over epochs 1-250,
batch 100, train images 0-50000, non-saturating G loss, k = 1.

Run:
    python -m gan_jax train --config experiments/gan2014_mnist.py --workdir runs/gan2014 \
        --config.data.dir=../shared/data/mnist

Expect: recognisable digits in samples/ after about 5k steps (seed 0; at 15k steps:
docs/gan2014_mnist_step_15000.png, Parzen 75.1 +- 1.8); the paper reports a Parzen
log-likelihood of 225 +- 2 on the MNIST test set (Table 1) after far longer training. Some seeds
collapse early (D(G(z)) below 0.001 by step 3k, as seed 3 does): rerun with another --config.seed
(README, Training on MNIST).

What the authors' mnist.yaml and code (goodfeli/adversarial) say about length and the rest, read
on 2026-11-30: there is no epoch count and no termination criterion (a MonitorBased criterion on
valid_y_misclass is commented out), so their run went until stopped by hand, monitoring the
Parzen log-likelihood (Generator monitor_ll, sigma 0.2) of train, valid (train[50000:60000])
and test each epoch. Their schedule reaches momentum 0.7 at epoch 250 (125,000 updates) and the
lr floor 1e-6 only after about 2.9 million updates. Their update differs from Algorithm 1
(AdversaryCost2: D and G updated simultaneously from one shared sample, D's objective halved;
here `--config.train.update_rule=simultaneous --config.loss.d_objective_scale=0.5`), and their
Generator's default noise, which mnist.yaml keeps, is N(0, 1) (`--config.model.z_dist=normal`),
not U[-1, 1].
"""

from gan_jax.config import default_config, optimizer_config


def get_config():
    c = default_config()
    c.data.update(name="mnist", scale="unit", start=0, stop=50000)
    c.model.update(
        generator="gan2014",
        discriminator="gan2014",
        z_dim=100,
        z_dist="uniform",
        output_bias_from_data=True,
    )
    c.model.generator_kwargs = {}
    c.model.discriminator_kwargs = {}
    c.loss.name = "non_saturating"
    sgd = dict(
        name="sgd",
        lr=0.1,
        lr_decay=1.000004,
        min_lr=1e-6,
        momentum=0.5,
        final_momentum=0.7,
        momentum_start_epoch=1,
        momentum_saturate_epoch=250,
    )
    c.optim.g = optimizer_config(**sgd)
    c.optim.d = optimizer_config(**sgd)
    c.train.update(batch_size=100, num_steps=100_000, d_steps=1, scan_steps=100)
    c.train.update(log_every=500, sample_every=5000)
    return c
