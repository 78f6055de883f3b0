"""Class-conditional GANs on MNIST: Mirza & Osindero 2014 (`:cgan`, the default) and AC-GAN
(Odena et al. 2017, `:acgan`).

cgan: G(z, y) and D(x, y), the one-hot label concatenated to z and to D's input. The paper's
optimiser: SGD, batch 100, learning rate 0.1 decayed by 1.00004 per update down to 1e-6,
momentum 0.5 rising to 0.7, dropout 0.5 in D; its nets are the 2014 ones (z 100-d uniform ->
ReLU MLP -> 784 sigmoid; maxout D). The paper's nets first map z and y through separate layers
(200 and 1000 ReLU units for G; maxout 240x5 and 50x5 for D) before joining them; here the
one-hot label simply joins the input of the 2014 nets.

acgan: G(z, y) and a D with two heads, a source logit and 10 class logits; both players add the
class cross-entropy on real and fake data (eq. 2: D maximises L_S + L_C, G maximises L_C - L_S).
DCGAN nets (Radford et al. 2016) with batch norm, Adam(2e-4, b1=0.5), batch 100, pixels in
[-1, 1].

Run:
    python -m gan_jax train --config experiments/conditional_mnist.py --workdir runs/cgan \
        --config.data.dir=../shared/data/mnist
    python -m gan_jax train --config experiments/conditional_mnist.py:acgan \
        --workdir runs/acgan --config.data.dir=../shared/data/mnist

Expect: in samples/step_*.png (10 columns) column c shows digit c, since an unlabelled call of a
conditional G uses y_i = i mod 10; `steps.sample_classes(state, key, classes, n, ...)` samples
given digits. For acgan, metrics.jsonl's d_class_loss falls well below log 10 = 2.3 as D learns
to classify real and fake digits. About 25 it/s (cgan) and 0.2 it/s (acgan, 4.6 s per step) on
a 2-core CPU.
"""

from gan_jax.config import default_config, optimizer_config


def get_config(variant: str = "cgan"):
    c = default_config()
    c.data.update(name="mnist", start=0, stop=50_000)
    c.model.update(z_dim=100, num_classes=10)
    if variant == "cgan":
        c.data.scale = "unit"
        c.model.update(generator="gan2014", discriminator="gan2014", z_dist="uniform")
        c.model.update(conditioning="concat", output_bias_from_data=True)
        c.model.generator_kwargs = {}
        c.model.discriminator_kwargs = {"input_keep": 1.0, "hidden_keep": 0.5}
        sgd = dict(
            name="sgd",
            lr=0.1,
            lr_decay=1.00004,
            min_lr=1e-6,
            momentum=0.5,
            final_momentum=0.7,
            momentum_start_epoch=1,
            momentum_saturate_epoch=250,
        )
        c.optim.g, c.optim.d = optimizer_config(**sgd), optimizer_config(**sgd)
        c.train.update(batch_size=100, num_steps=100_000, scan_steps=100)
    elif variant == "acgan":
        c.data.scale = "symmetric"
        c.model.update(generator="dcgan", discriminator="dcgan", z_dist="normal")
        c.model.conditioning = "acgan"
        c.model.generator_kwargs = {"base_features": 64, "output_activation": "tanh"}
        c.model.discriminator_kwargs = {"base_features": 64}
        c.loss.aux_weight = 1.0
        adam = dict(name="adam", lr=2e-4, b1=0.5, b2=0.999)
        c.optim.g, c.optim.d = optimizer_config(**adam), optimizer_config(**adam)
        c.train.update(batch_size=100, num_steps=30_000, scan_steps=50)
    else:
        raise ValueError(f"unknown variant {variant!r}; allowed: 'cgan', 'acgan'")
    c.loss.name = "non_saturating"
    c.train.update(log_every=500, sample_every=2500, checkpoint_every=2500)
    return c
