"""Pure D and G updates, in parts: `d_batch` (the real rows), `d_loss` (D's objective),
`d_step` (one D update on a batch), `g_step` (one G update) and `simultaneous_step` (one of
each from one shared sample, as the 2014 authors' code updates).

What shapes the program comes as the static keyword `spec` (spec.Spec); the numbers as the
`hparams.Hparams` argument, read at run time so vmapped members can differ. Randomness comes from
fold_in of the run's key with an update counter, never from Python-side state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gan_jax import averaging, data, models, net_parts, optim, penalties
from gan_jax.hparams import Hparams, gan_loss
from gan_jax.losses import class_cross_entropy, feature_matching
from gan_jax.net_parts import Z_DISTRIBUTIONS
from gan_jax.spec import Spec
from gan_jax.state import GANState, Player

DATA_STREAM, D_STREAM, G_STREAM = range(3)


def stream_key(rng, stream: int) -> jax.Array:
    """One of the run's independent key streams (data, D updates, G updates)."""
    return jax.random.split(rng, 3)[stream]


def sample_z(key, batch_size: int, z_dim: int, z_dist: str) -> jax.Array:
    """Latent codes z_BxZ: uniform on [-1, 1] (the 2014 paper) or standard normal."""
    if z_dist == "uniform":
        return jax.random.uniform(key, (batch_size, z_dim), minval=-1.0, maxval=1.0)
    if z_dist == "normal":
        return jax.random.normal(key, (batch_size, z_dim))
    raise ValueError(f"unknown z distribution {z_dist!r}; allowed: {Z_DISTRIBUTIONS}")


def shard(batch_size: int, axis_name: str | None):
    """(this device's first row in the global batch, rows per device); (0, B) off pmap."""
    if axis_name is None:
        return 0, batch_size
    local = batch_size // jax.lax.axis_size(axis_name)
    return jax.lax.axis_index(axis_name) * local, local


def local_rows(x_Bx, offset, local: int):
    """Rows offset .. offset + local - 1 of x [B, ...] (offset may be traced): one device's
    share of a global batch."""
    return jax.lax.dynamic_slice_in_dim(x_Bx, offset, local)


def apply_player(
    player: Player, params, *inputs, train: bool, key=None, example_ids=None, features=False
):
    """Runs a player's network with `params` on `inputs` (x, or x and labels y for a conditional
    net): (outputs, updated mutable collections); with `features`, outputs are (outputs, the
    hidden layers' outputs the net sows as 'features', first layer first).

    `example_ids` are the rows' places in the global batch. A net that takes them (the 2014 D)
    draws its dropout masks per row from them, so masks do not depend on how the batch is split
    across devices; any other net gets a different dropout key on each device.
    """
    variables = {"params": params, **player.model_state}
    kwargs = {}
    if example_ids is not None and models.takes_example_ids(player.apply_fn):
        kwargs["example_ids"] = example_ids
    elif key is not None and example_ids is not None:
        key = jax.random.fold_in(key, example_ids[0])
    rngs = {"dropout": key} if key is not None else {}
    mutable = (list(player.model_state) if train else []) + (["intermediates"] if features else [])
    if not mutable:
        out = player.apply_fn(variables, *inputs, train=train, rngs=rngs, **kwargs)
        return out, player.model_state
    out, collections = player.apply_fn(
        variables, *inputs, train=train, rngs=rngs, mutable=mutable, **kwargs
    )
    collections = dict(collections)
    if features:
        out = (out, net_parts.sown_features(collections.pop("intermediates", {})))
    return out, (collections if train else player.model_state)


def hidden_features(sown, layer: int):
    """The features_BxF of hidden layer `layer` of a D's sown ones (apply_player's `features`),
    each example's flattened. Raises ValueError for a layer the D does not have (config
    loss.feature_layer), when the step is traced, before any compute."""
    if not -len(sown) <= layer < len(sown):
        raise ValueError(
            f"config.loss.feature_layer = {layer} is not allowed; expected one of"
            f" -{len(sown)}..{len(sown) - 1} (this D sows {len(sown)} hidden layers)"
        )
    f = sown[layer]
    return f.reshape(f.shape[0], -1)


def split_outputs(outputs):
    """D's outputs as (logits, class_logits_BxK or None): an AC-GAN D returns both."""
    return outputs if isinstance(outputs, tuple) else (outputs, None)


def per_example(logits):
    """logits_B from a D's output: a PatchGAN's logits_BxPxP averaged over patches, which is the
    D whose input gradient the penalties measure (the losses average over patches too)."""
    return logits if logits.ndim == 1 else jnp.mean(logits.reshape(logits.shape[0], -1), axis=1)


def average_over_devices(tree, axis_name: str | None):
    """Mean over the pmap axis (identity off pmap): gradients, statistics, metrics."""
    return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def average_updates(grads, model_state, axis_name: str | None):
    """(grads, model_state) averaged over the pmap axis, except the collections that never
    change (a VBN G's reference z: equal on every device, and a float mean of equal values
    need not give the value back exactly)."""
    fixed = {k: v for k, v in model_state.items() if k in net_parts.FIXED_COLLECTIONS}
    moving = {k: v for k, v in model_state.items() if k not in net_parts.FIXED_COLLECTIONS}
    grads, moving = average_over_devices((grads, moving), axis_name)
    return grads, {**moving, **fixed}


def sample_labels(key, batch_size: int, num_classes: int) -> jax.Array:
    """Fake labels y_B, uniform over the K classes (drawn for the global batch, like z)."""
    return jax.random.randint(key, (batch_size,), 0, num_classes)


def label_key(key_z):
    """The fake labels' key, derived from z's so that unconditional runs keep their keys."""
    return jax.random.fold_in(key_z, 1)


def fake_inputs(key_z, batch_size, z_dim, z_dist, conditioning, num_classes, offset, local):
    """(G's inputs (z,) or (z, y), y or None) for this device's rows of a global fake batch."""
    z = local_rows(sample_z(key_z, batch_size, z_dim, z_dist), offset, local)
    if conditioning == "none":
        return (z,), None
    y = local_rows(sample_labels(label_key(key_z), batch_size, num_classes), offset, local)
    return (z, y), y


def generate(state: GANState, z_BxZ, y_B=None, *, train: bool = False, key=None):
    """G(z) (or G(z, y) for a conditional G) with the state's generator, inference mode unless
    `train`. A conditional G given no labels uses y_i = i mod K
    (`conditional_nets.default_labels`)."""
    inputs = (z_BxZ,) if y_B is None else (z_BxZ, y_B)
    return apply_player(state.g, state.g.params, *inputs, train=train, key=key)[0]


def sample_classes(state: GANState, key, classes, per_class: int, *, z_dim: int, z_dist: str):
    """A class-conditional sampler: `per_class` samples of each class in `classes`, class-major
    (rows c * per_class ... (c + 1) * per_class - 1 show classes[c]), and their labels."""
    y_N = jnp.repeat(jnp.asarray(classes, jnp.int32), per_class)
    z_NxZ = sample_z(key, y_N.shape[0], z_dim, z_dist)
    return generate(state, z_NxZ, y_N), y_N


def discriminate(state: GANState, x_Bx, y_B=None, *, train: bool = False, key=None):
    """D's logits for x (and labels y for a D(x, y)) with the state's discriminator, inference
    mode unless `train`; an AC-GAN D's class logits are dropped."""
    inputs = (x_Bx,) if y_B is None else (x_Bx, y_B)
    return split_outputs(apply_player(state.d, state.d.params, *inputs, train=train, key=key)[0])[0]


def discriminate_real_and_fake(
    player: Player, params, real_inputs, fake_inputs, *, key, real_ids, fake_ids, stacked=None
):
    """D's training-mode outputs on a real and a fake batch, and its new mutable collections.

    A D with batch statistics sees the batches in separate calls, as in the DCGAN code, so each
    is normalised with its own statistics (and the G step shows D a fake batch normalised the
    same way); its collections thread through both calls. A D whose rows are independent
    (`models.rows_independent`) and that has no mutable collections (a spectral-norm iterate
    moves once per call) by default (`stacked=None`) sees both batches stacked in one call: the
    same outputs, with twice the rows per matmul, which is faster.
    """
    if stacked is None:
        stacked = models.rows_independent(player.apply_fn) and not player.model_state
    if not stacked:
        real_out, model_state = apply_player(
            player, params, *real_inputs, train=True, key=key, example_ids=real_ids
        )
        fake_out, model_state = apply_player(
            player.replace(model_state=model_state),
            params,
            *fake_inputs,
            train=True,
            key=key,
            example_ids=fake_ids,
        )
        return real_out, fake_out, model_state
    inputs = [jnp.concatenate(pair) for pair in zip(real_inputs, fake_inputs, strict=True)]
    ids = jnp.concatenate([real_ids, fake_ids])
    out, model_state = apply_player(player, params, *inputs, train=True, key=key, example_ids=ids)
    rows = real_ids.shape[0]
    real_out = jax.tree.map(lambda o: o[:rows], out)
    fake_out = jax.tree.map(lambda o: o[rows:], out)
    return real_out, fake_out, model_state


def clip_params(params, bound: float):
    """WGAN's weight clipping to [-bound, bound] (Arjovsky et al. 2017, Algorithm 1)."""
    return jax.tree.map(lambda p: jnp.clip(p, -bound, bound), params)


def lazy_penalty(regulariser, params, d_updates, every: int):
    """A penalty computed only on every `every`-th D update, else 0 (lazy regularisation, Karras
    et al. 2020, StyleGAN2 Sec. 3.1). The caller scales it by `every` so that its average
    strength is unchanged. lax.cond keeps the step jit- and scan-friendly and skips the double
    backward pass on the other updates. It stays a cond under vmap only while `d_updates` is
    unbatched (shared by the members: see engine.member_axes); a batched one makes it a select
    that pays the penalty on every update."""
    if every == 1:
        return regulariser(params)
    return jax.lax.cond(
        d_updates % every == 0, regulariser, lambda _: jnp.zeros((), jnp.float32), params
    )


def d_batch(state: GANState, dataset, *, spec: Spec):
    """(x_real, y_real): this device's rows of real batch `state.d_updates` (D update i consumes
    real batch i, so a restored state draws the batches an unbroken run would). A
    semi-supervised run (`spec.labels_per_class`) appends labelled batch `state.d_updates`,
    (x_real, y_real, x_labelled, y_labelled) (data.labelled_batch)."""
    data_key = stream_key(state.rng, DATA_STREAM)
    offset, local = shard(spec.batch_size, spec.axis_name)
    rows_b = offset + jnp.arange(local)
    batch = data.real_batch(
        spec.data_name, dataset, data_key, state.d_updates, spec.batch_size, rows_b=rows_b
    )
    if not spec.labels_per_class:
        return batch
    labelled = data.labelled_batch(
        dataset, data_key, state.d_updates, spec.batch_size, spec.labels_per_class, rows_b
    )
    return (*batch, *labelled)


G_DATA_STREAM = 0x67646174  # folded into the data key for the real batches of G's updates


def g_batch(state: GANState, dataset, *, spec: Spec):
    """(x_real, y_real): this device's rows of the real batch of G update `state.step`, which
    feature matching compares G's samples with: a stream of its own, as the authors' code
    draws G's real batches from a second permutation of the data (trainx_unl2)."""
    key = jax.random.fold_in(stream_key(state.rng, DATA_STREAM), G_DATA_STREAM)
    offset, local = shard(spec.batch_size, spec.axis_name)
    rows_b = offset + jnp.arange(local)
    return data.real_batch(spec.data_name, dataset, key, state.step, spec.batch_size, rows_b)


def d_loss(params, state: GANState, batch, fake, keys, hparams: Hparams, *, spec: Spec):
    """D's objective at `params`: `d_objective_scale` x the loss on the real `batch` and the
    `fake` (x_fake, y_fake) batch, plus `aux_weight` x a class cross-entropy, plus
    `penalty_weight` x `penalty_every` x the (lazy) penalty, plus
    `historical_averaging_weight` x ||params - their past mean||^2 when D has that penalty.

    The class term is AC-GAN's on real and fake rows (Odena et al. 2017, eq. 2) or, in a
    semi-supervised run, the labelled rows' (Salimans et al. 2016, Sec. 5: L_supervised; the
    unsupervised part is the GAN loss of D(x) = Z(x) / (Z(x) + 1), whose logit log Z(x) the D
    returns). `keys` = (dropout key of D, the penalty's key). Returns (total, (model_state,
    real_logits, fake_logits, loss, aux, penalty)), `loss` unscaled.
    """
    (x_real, y_real, *labelled), (x_fake, y_fake), (key_d, key_penalty) = batch, fake, keys
    offset, local = shard(spec.batch_size, spec.axis_name)
    ids = offset + jnp.arange(local)
    loss = gan_loss(spec.loss, hparams)

    def d_inputs(x, y):
        return (x, y) if spec.conditioning == "concat" else (x,)

    def regulariser(params):
        # R2 looks at fakes, so it sees their labels; GP, DRAGAN and R1 look at (or interpolate
        # from) real data and see the real labels.
        y = y_fake if spec.penalty == "r2" else y_real

        def d_fn(x):
            out = apply_player(
                state.d, params, *d_inputs(x, y), train=True, key=key_d, example_ids=ids
            )[0]
            return per_example(split_outputs(out)[0])

        rows = penalties.Rows(offset, spec.batch_size, spec.axis_name)
        return penalties.penalty(spec.penalty, d_fn, x_real, x_fake, key_penalty, rows)

    real_out, fake_out, model_state = discriminate_real_and_fake(
        state.d,
        params,
        d_inputs(x_real, y_real),
        d_inputs(x_fake, y_fake),
        key=key_d,
        real_ids=ids,
        fake_ids=spec.batch_size + ids,
    )
    (real_logits, real_classes), (fake_logits, fake_classes) = map(
        split_outputs, (real_out, fake_out)
    )
    value = loss.d_loss(real_logits, fake_logits)
    aux = jnp.zeros((), jnp.float32)
    if spec.conditioning == "acgan":
        aux = class_cross_entropy(real_classes, y_real) + class_cross_entropy(fake_classes, y_fake)
    if labelled:
        x_labelled, y_labelled = labelled
        out, model_state = apply_player(
            state.d.replace(model_state=model_state),
            params,
            x_labelled,
            train=True,
            key=key_d,
            example_ids=2 * spec.batch_size + ids,
        )
        aux = class_cross_entropy(split_outputs(out)[1], y_labelled)
    reg = jnp.zeros((), jnp.float32)
    if spec.penalty != "none":
        reg = lazy_penalty(regulariser, params, state.d_updates, spec.penalty_every)
    total = (
        hparams.d_objective_scale * value
        + hparams.aux_weight * aux
        + hparams.penalty_weight * spec.penalty_every * reg
    )
    if spec.historical_averaging in ("d", "both"):
        history = penalties.historical_averaging(params, state.d.history)
        total = total + hparams.historical_averaging_weight * history
    return total, (model_state, real_logits, fake_logits, value, aux, reg)


def update_draws(state: GANState, spec: Spec, stream: int, counter, num_keys: int):
    """The random draws of one update: the key `stream` folded with `counter` (D updates count
    `state.d_updates`, G updates `state.step`) and split in `num_keys`, the first drawing z
    (and fake labels). Returns (this device's row ids in the global batch, G's inputs (z,) or
    (z, y), the fake labels y or None, the other num_keys - 1 keys)."""
    offset, local = shard(spec.batch_size, spec.axis_name)
    ids = offset + jnp.arange(local)
    key = jax.random.fold_in(stream_key(state.rng, stream), counter)
    key_z, *keys = jax.random.split(key, num_keys)
    g_inputs, y_fake = fake_inputs(
        key_z,
        spec.batch_size,
        spec.z_dim,
        spec.z_dist,
        spec.conditioning,
        spec.num_classes,
        offset,
        local,
    )
    return ids, g_inputs, y_fake, tuple(keys)


def d_update_draws(state: GANState, spec: Spec):
    """The draws of D update `state.d_updates`, shared by `d_step` and `simultaneous_step`:
    update_draws' with the keys (G's dropout, D's dropout, the penalty's)."""
    return update_draws(state, spec, D_STREAM, state.d_updates, 4)


def d_step(state: GANState, batch, hparams: Hparams, *, spec: Spec):
    """One D update on a real batch (x_real, y_real) and a fresh batch from G.

    `spec.batch_size` is the global batch; under pmap (`spec.axis_name`) `batch` holds this
    device's rows, and gradients are averaged across devices once, here. Whether D sees the real
    and the fake batch in one call or two is `discriminate_real_and_fake`'s choice; its mutable
    collections (batch statistics, spectral-norm iterates) come back as D's new state.
    `spec.conditioning`: 'concat' gives D and G the labels, 'acgan' gives G the labels and adds
    the class term (see `d_loss`). With `spec.clip_weights`, D's weights are clipped to
    [-hparams.clip_weights, hparams.clip_weights] after the update (WGAN).
    """
    ids, g_inputs, y_fake, (key_g, key_d, key_penalty) = d_update_draws(state, spec)
    # G's own batch statistics belong to the G step; here G only supplies samples.
    x_fake = apply_player(
        state.g, state.g.params, *g_inputs, train=True, key=key_g, example_ids=ids
    )
    x_fake = jax.lax.stop_gradient(x_fake[0])
    grads, (model_state, real_logits, fake_logits, value, aux, reg) = jax.grad(
        d_loss, has_aux=True
    )(
        state.d.params,
        state,
        batch,
        (x_fake, y_fake),
        (key_d, key_penalty),
        hparams,
        spec=spec,
    )
    grads, model_state = average_updates(grads, model_state, spec.axis_name)
    hyper = optim.hyperparams_at(spec.d_opt, hparams.d, state.d.opt_state.count)
    d = state.d.apply_gradients(grads, model_state, hyper)
    if spec.clip_weights:
        d = d.replace(params=clip_params(d.params, hparams.clip_weights))
    d = averaging.update(d, hparams.d_ema_decay)
    d_output = gan_loss(spec.loss, hparams).d_output
    metrics = {
        "d_loss": value,
        "d_penalty": reg,  # the unweighted penalty; 0 on the updates a lazy interval skips
        "d_real": jnp.mean(d_output(real_logits)),
        "d_fake": jnp.mean(d_output(fake_logits)),
    }
    if spec.conditioning == "acgan" or spec.labels_per_class:
        metrics["d_class_loss"] = aux
    metrics = average_over_devices(metrics, spec.axis_name)
    metrics["d_grad_norm"] = optax.tree.norm(grads)
    return state.replace(d=d, d_updates=state.d_updates + 1), metrics


def g_step(state: GANState, batch, hparams: Hparams, *, spec: Spec):
    """One G update against the current D; increments `state.step`. A conditional G draws
    uniform fake labels; with 'acgan' it also minimises `aux_weight` x D's class cross-entropy on
    its samples (Odena et al. 2017: G maximises L_C - L_S; L_C's real term does not involve G).

    With `spec.g_objective == 'feature_matching'`, G's loss is instead
    losses.feature_matching of D's hidden layer `spec.feature_layer` on the real `batch`
    (x_real, y_real) (`g_batch`; None otherwise) and on G's samples (Salimans et al. 2016,
    Sec. 3.1); under pmap the batch means are the global batch's. Historical averaging of G
    (`spec.historical_averaging` 'g' or 'both') adds its weighted penalty.
    """
    ids, g_inputs, y_fake, (key_g, key_d) = update_draws(state, spec, G_STREAM, state.step, 3)
    loss = gan_loss(spec.loss, hparams)
    matching = spec.g_objective == "feature_matching"
    f_real = None
    if matching:
        # D in training mode on real data, as on G's samples below (the authors' code too).
        real_inputs = batch[:2] if spec.conditioning == "concat" else batch[:1]
        (_, sown), _ = apply_player(
            state.d,
            state.d.params,
            *real_inputs,
            train=True,
            key=key_d,
            example_ids=spec.batch_size + ids,
            features=True,
        )
        f_real = average_over_devices(
            jnp.mean(hidden_features(sown, spec.feature_layer), 0), spec.axis_name
        )

    def loss_fn(params):
        x_fake, model_state = apply_player(
            state.g, params, *g_inputs, train=True, key=key_g, example_ids=ids
        )
        d_inputs = (x_fake, y_fake) if spec.conditioning == "concat" else (x_fake,)
        # D runs in training mode (dropout on, as in the 2014 code) but its statistics
        # belong to the D step, so its mutable collections are dropped.
        out = apply_player(
            state.d,
            state.d.params,
            *d_inputs,
            train=True,
            key=key_d,
            example_ids=ids,
            features=matching,
        )[0]
        if matching:
            out, sown = out
            f_fake = average_over_devices(
                jnp.mean(hidden_features(sown, spec.feature_layer), 0), spec.axis_name
            )
            # The means are already the global batch's: each passed as a batch of one row.
            value = feature_matching(
                f_real[None], f_fake[None], reduction=spec.feature_matching_reduction
            )
        fake_logits, fake_classes = split_outputs(out)
        if not matching:
            value = loss.g_loss(fake_logits)
        if spec.conditioning == "acgan":
            value = value + hparams.aux_weight * class_cross_entropy(fake_classes, y_fake)
        if spec.historical_averaging in ("g", "both"):
            history = penalties.historical_averaging(params, state.g.history)
            value = value + hparams.historical_averaging_weight * history
        return value, (model_state, fake_logits)

    (value, (model_state, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.g.params
    )
    grads, model_state = average_updates(grads, model_state, spec.axis_name)
    hyper = optim.hyperparams_at(spec.g_opt, hparams.g, state.g.opt_state.count)
    g = averaging.update(state.g.apply_gradients(grads, model_state, hyper))  # G keeps no EMA
    metrics = {"g_loss": value, "d_fake_for_g": jnp.mean(loss.d_output(fake_logits))}
    metrics = average_over_devices(metrics, spec.axis_name)
    metrics["g_grad_norm"] = optax.tree.norm(grads)
    return state.replace(g=g, step=state.step + 1), metrics


def simultaneous_step(state: GANState, batch, hparams: Hparams, *, spec: Spec):
    """One D and one G update from one shared sample, both gradients taken at the current
    params and applied together: the update of the 2014 authors' code (goodfeli/adversarial,
    AdversaryCost2.get_gradients: one S = G(z), D's objective on X and S, G's objective on D's
    outputs for that same S, dropout masks included), where Algorithm 1 alternates.

    The sample, keys and D's half are those of `d_step` on `state` (so D's new params equal
    `d_step`'s); G's loss is `gan_loss(spec.loss).g_loss` of the fake logits D produced in that
    same forward pass. Increments `state.d_updates` and `state.step`; metrics as d_step's and
    g_step's together (`d_fake_for_g` equals `d_fake` here: one pass).
    """
    ids, g_inputs, y_fake, (key_g, key_d, key_penalty) = d_update_draws(state, spec)
    loss = gan_loss(spec.loss, hparams)

    def objectives(g_params, d_params):
        x_fake, g_model_state = apply_player(
            state.g, g_params, *g_inputs, train=True, key=key_g, example_ids=ids
        )
        d_total, aux = d_loss(
            d_params, state, batch, (x_fake, y_fake), (key_d, key_penalty), hparams, spec=spec
        )
        return (d_total, loss.g_loss(aux[2])), (g_model_state, aux)

    (_, g_value), pullback, (g_model_state, aux) = jax.vjp(
        objectives, state.g.params, state.d.params, has_aux=True
    )
    one, zero = jnp.ones((), jnp.float32), jnp.zeros((), jnp.float32)
    _, d_grads = pullback((one, zero))  # D's objective, D's params
    g_grads, _ = pullback((zero, one))  # G's objective, G's params
    d_model_state, real_logits, fake_logits, value, _, reg = aux
    d_grads, d_model_state = average_updates(d_grads, d_model_state, spec.axis_name)
    g_grads, g_model_state = average_updates(g_grads, g_model_state, spec.axis_name)
    d_hyper = optim.hyperparams_at(spec.d_opt, hparams.d, state.d.opt_state.count)
    g_hyper = optim.hyperparams_at(spec.g_opt, hparams.g, state.g.opt_state.count)
    d = state.d.apply_gradients(d_grads, d_model_state, d_hyper)
    if spec.clip_weights:
        d = d.replace(params=clip_params(d.params, hparams.clip_weights))
    d = averaging.update(d, hparams.d_ema_decay)
    g = state.g.apply_gradients(g_grads, g_model_state, g_hyper)
    d_fake = jnp.mean(loss.d_output(fake_logits))
    metrics = {
        "d_loss": value,
        "d_penalty": reg,
        "d_real": jnp.mean(loss.d_output(real_logits)),
        "d_fake": d_fake,
        "g_loss": g_value,
        "d_fake_for_g": d_fake,
    }
    metrics = average_over_devices(metrics, spec.axis_name)
    metrics["d_grad_norm"] = optax.tree.norm(d_grads)
    metrics["g_grad_norm"] = optax.tree.norm(g_grads)
    new = state.replace(d=d, g=g, d_updates=state.d_updates + 1, step=state.step + 1)
    return new, metrics
