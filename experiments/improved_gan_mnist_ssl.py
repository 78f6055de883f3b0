"""Semi-supervised MNIST with a GAN (Salimans et al. 2016, Sec. 5, Table 1): feature matching,
a K+1-class D, 100 labelled examples.

The authors' setting (openai/improved-gan mnist_svhn_cifar10/train_mnist_feature_matching.py):
- D: the authors' net (dense_nets.ImprovedGANMNISTDiscriminator: Gaussian noise 0.3 on the input,
  1000-500-250-250-250 weight-normalised ReLU layers each followed by noise 0.5, 10 class
  logits; data-dependent init on the first 500 training images); D(x) = Z / (Z + 1) with
  Z = sum_k exp l_k, the fake class's logit fixed at 0 (net_parts.semi_supervised_head).
- D's loss: the cross-entropy of the class logits on a labelled batch (L_supervised, weight
  `loss.aux_weight` = 1) plus 1/2 [-E log D(x) - E log(1 - D(G(z)))] on an unlabelled and a
  generated batch (L_unsupervised, `loss.name='minimax'` with `loss.d_objective_scale` = 0.5).
- G: the authors' net (dense_nets.ImprovedGANMNISTGenerator: z_100 -> 500 -> 500 softplus with
  batch norm -> 784 sigmoid, weight-normalised output), trained by feature matching on D's last
  hidden layer (`loss.g_objective='feature_matching'`), on real batches of its own stream;
  the squared differences of the feature means are averaged over the 250 features, as theirs
  (`loss.feature_matching_reduction='mean'`).
- Adam(0.003, beta1 = 0.5) for both, with the authors' epsilon: 1e-8 inside the square root of
  the second moment (`eps_root`), none outside (`eps`); batches of 100 (labelled, unlabelled
  and generated), 300 epochs of the 60,000 training images = 180,000 iterations; all 60,000
  images unlabelled, `data.labels_per_class` x 10 of them labelled, drawn by the run's key.
- The test error (out of 10,000) is D's, with an exponential moving average of its params
  (decay 0.9999, `train.d_ema_decay`; bias-corrected, see gan_jax.averaging), evaluated each
  epoch (`eval.metrics='d_error'`: d_errors_ema and, with the raw params, d_errors).

Variants: get_config('100') (default: 10 per class), '20', '50', '200' total labels.

Run (one labelled subset; checkpoints every 10 epochs, rerun the same command to resume):
    python -m gan_jax train --config experiments/improved_gan_mnist_ssl.py --workdir runs/ssl100 \
        --config.data.dir=../shared/data/mnist

Three labelled subsets (seeds) as one sweep:
    python -m gan_jax sweep --config experiments/improved_gan_mnist_ssl.py --workdir runs/ssl \
        --seeds 3 --config.data.dir=../shared/data/mnist

Expect (the paper's Table 1, 100 labels): 93 +- 6.5 test errors after the 300 epochs; each
epoch's figure is in the workdir's metrics.jsonl (d_errors_ema). 20, 50 and 200 labels: 1677 +-
452, 221 +- 136, 90 +- 4.2 errors. Measured with this file on the 2-core CPU: seed 0, 123
errors after 300 epochs (raw D 130; the average's lowest 118, at epoch 246); seeds 1 and 2
(one sweep, `--config.seed=1 --seeds 2`) 82 and 88 (raw D 85 and 98), so 97.7 +- 18.1 over the
three labelled subsets (std over seeds, ddof 0).
"""

from gan_jax.config import default_config, optimizer_config

EPOCH = 600  # iterations per pass over the 60,000 training images at batch 100
VARIANTS = ("100", "20", "50", "200")  # total labelled examples, 10 classes


def get_config(variant: str = "100"):
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not allowed; expected one of {VARIANTS}")
    c = default_config()
    c.data.update(name="mnist", scale="unit", labels_per_class=int(variant) // 10)
    c.model.update(generator="improved_gan_mnist", discriminator="improved_gan_mnist", z_dim=100)
    c.model.update(z_dist="uniform")
    c.model.generator_kwargs = {}
    c.model.discriminator_kwargs = {"num_classes": 10, "data_init": True}
    c.loss.update(name="minimax", d_objective_scale=0.5, aux_weight=1.0)
    c.loss.update(
        g_objective="feature_matching", feature_layer=-1, feature_matching_reduction="mean"
    )
    # The authors' nn.adam_updates: m_hat / sqrt(v_hat + 1e-8), their epsilon inside the root.
    adam = dict(name="adam", lr=0.003, b1=0.5, b2=0.999, eps=0.0, eps_root=1e-8)
    c.optim.g = optimizer_config(**adam)
    c.optim.d = optimizer_config(**adam)
    c.train.update(batch_size=100, num_steps=300 * EPOCH, scan_steps=100, d_ema_decay=0.9999)
    c.train.update(log_every=EPOCH, sample_every=30 * EPOCH, checkpoint_every=10 * EPOCH)
    c.train.num_samples = 100
    c.eval.update(every=EPOCH, metrics="d_error", num_samples=100)
    return c
