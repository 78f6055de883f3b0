"""Text GAN plumbing: one-hot batches, G's softmax, the vocabulary round trip, n-gram JS."""

import collections
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import data, data_sources, models, sample, text_data, text_metrics, train
from gan_jax.config import default_config, validate


def text_config(path, **data_options):
    c = default_config()
    c.data.update(name="text", dir=str(path), seq_len=8, vocab_size=12, heldout_fraction=0.25)
    c.data.update(**data_options)
    c.model.update(generator="text_resnet", discriminator="text_resnet", z_dim=4)
    c.model.generator_kwargs = {"dim": 8, "num_blocks": 1}
    c.model.discriminator_kwargs = {"dim": 8, "num_blocks": 1}
    c.loss.update(name="wgan", penalty="gp", penalty_weight=10.0)
    return c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("the cat sat\non the mat\n\nzebra\nthe end of a longer line\n" * 3)
    return path


def test_token_batches_are_one_hot_rows_of_the_drawn_examples():
    tokens = np.random.default_rng(0).integers(0, 7, (20, 5)).astype(np.int32)
    dataset = data.make_token_dataset(tokens, 7)
    x_b, _ = data.batch_from_dataset(dataset, jax.random.PRNGKey(3), 2, 4)
    assert x_b.shape == (4, 5, 7) and x_b.dtype == jnp.float32
    drawn = np.asarray(x_b).argmax(-1)
    # Each row is exactly the identity's row of its token, and a row of the token table.
    np.testing.assert_array_equal(np.asarray(x_b), np.eye(7, dtype=np.float32)[drawn])
    assert all(any((row == t).all() for t in tokens) for row in drawn)
    with pytest.raises(data_sources.DataError, match=r"in \[0, 6\)"):
        data.make_token_dataset(tokens, 6)


def test_generator_emits_a_softmax_over_the_vocabulary_and_the_critic_reads_it():
    c = default_config()
    c.model.update(generator="text_resnet", discriminator="text_resnet", z_dim=4)
    c.model.generator_kwargs = {"dim": 8, "num_blocks": 2}
    c.model.discriminator_kwargs = {"dim": 8, "num_blocks": 2}
    g, d = models.make_generator(c.model, (6, 5)), models.make_discriminator(c.model)
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 4))
    g_params = g.init(jax.random.PRNGKey(1), z)
    x = g.apply(g_params, z)
    assert x.shape == (3, 6, 5)
    np.testing.assert_allclose(np.asarray(x.sum(-1)), 1.0, atol=1e-6)
    assert np.all(np.asarray(x) > 0)
    d_params = d.init(jax.random.PRNGKey(2), x)
    assert d.apply(d_params, x).shape == (3,)
    # Rows are independent: one row's critic value ignores the other rows.
    other = x.at[1:].set(jax.nn.one_hot(jnp.zeros((2, 6), int), 5))
    np.testing.assert_allclose(d.apply(d_params, other)[0], d.apply(d_params, x)[0], rtol=1e-6)


def test_vocabulary_round_trip_through_the_workdir(corpus, tmp_path):
    c = text_config(corpus)
    validate(c)
    text = text_data.load_text(c.data)
    vocab = text.vocab
    # The most frequent characters of the training split, UNK and PAD reserved.
    assert vocab.size == c.data.vocab_size and vocab.chars[0] in " et"
    assert data.data_shape(c.data) == (8, vocab.size)
    text_data.keep_vocab(str(tmp_path), vocab)
    again = text_data.read_vocab(str(tmp_path))
    assert again == vocab
    lines = ["the cat ", "on the mat", "zebra"]
    points = text_data.line_codepoints(lines, 8)
    decoded = again.decode(vocab.encode(points), strip_padding=True)
    kept = set(vocab.chars)
    expected = ["".join(ch if ch in kept else text_data.UNK_TEXT for ch in s[:8]) for s in lines]
    assert decoded == expected
    # A resumed run whose data now gives another vocabulary stops with a clear error.
    other = text_data.Vocabulary(vocab.chars[::-1])
    with pytest.raises(data_sources.DataError, match="differs"):
        text_data.keep_vocab(str(tmp_path), other)


def test_text_dataset_and_validation(corpus):
    c = text_config(corpus, text_mode="windows")
    dataset = data.load_dataset(c.data)
    text = text_data.load_text(c.data)
    assert dataset.vocab_size == text.vocab.size and dataset.x.dtype == jnp.int32
    n = len(text.train) + len(text.heldout)
    assert len(text.heldout) == round(0.25 * n) and dataset.x.shape == (len(text.train), 8)
    c.model.generator = "mlp"
    with pytest.raises(ValueError, match="model.generator"):
        validate(c)
    c = text_config(corpus, text_mode="sentences")
    with pytest.raises(ValueError, match="data.text_mode"):
        validate(c)
    c = default_config()  # the text G's softmax is for text alone
    c.model.generator_kwargs = {"output_activation": "softmax"}
    with pytest.raises(ValueError, match="output_activation = 'softmax'"):
        validate(c)
    c.model.update(generator="text_resnet", generator_kwargs={})
    with pytest.raises(ValueError, match="model.generator = 'text_resnet'"):
        validate(c)


def test_lm1b_fails_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data_sources, "_tfds_reachable", lambda timeout_s=3.0: False)
    c = text_config("", name="tfds:lm1b")
    validate(c)
    with pytest.raises(data_sources.DataError, match="'lm1b'.*data.name=text"):
        data.load_dataset(c.data)


def reference_js_bits(samples, reference, n):
    """JS in bits from n-gram dictionaries, written out as the authors' js_with reads."""

    def distribution(rows):
        counts = collections.Counter(
            tuple(row[i : i + n]) for row in rows.tolist() for i in range(len(row) - n + 1)
        )
        total = sum(counts.values())
        return {g: c / total for g, c in counts.items()}

    p, q = distribution(reference), distribution(samples)
    js = 0.0
    for mine, other in ((p, q), (q, p)):
        for gram, pi in mine.items():
            js += 0.5 * pi * math.log(pi / (0.5 * pi + 0.5 * other.get(gram, 0.0)))
    return js / math.log(2)


def test_ngram_js_matches_a_plain_reference():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (50, 9))
    b = np.minimum(rng.integers(0, 6, (40, 9)), 4)
    for n in text_metrics.NGRAM_ORDERS:
        assert text_metrics.ngram_js(b, a, n) == pytest.approx(reference_js_bits(b, a, n), 1e-12)
        assert text_metrics.ngram_js(a, a[::-1], n) == pytest.approx(0.0, abs=1e-12)
        # Disjoint vocabularies: JS = log 2 nats, 1 bit.
        assert text_metrics.ngram_js(a, a + 10, n) == pytest.approx(1.0, abs=1e-12)
    probs = np.eye(6)[b]  # G's softmax rows decode by argmax
    assert text_metrics.ngram_js_all(probs, a) == text_metrics.ngram_js_all(b, a)


def test_word_shares():
    pad = text_data.PAD
    word_list = np.array([[5, 6, pad], [7, pad, pad], [5, 5, 5]])
    train = word_list[:2]
    samples = np.array([[5, 6, pad], [5, 5, 5], [6, pad, pad], [7, pad, pad]])
    shares = text_metrics.word_shares(samples, word_list, train)
    assert shares == {"words_in_list": 0.75, "words_novel": 0.5}


def test_a_text_run_resumes_exactly_and_its_samples_decode_through_the_saved_vocabulary(
    corpus, tmp_path
):
    own_corpus = tmp_path / "corpus.txt"  # removed below: sampling needs only the workdir
    own_corpus.write_text(corpus.read_text())

    def run(num_steps, workdir):
        c = text_config(own_corpus, cache_dir=str(tmp_path / "cache"))
        c.train.update(batch_size=8, num_steps=num_steps, scan_steps=2, log_every=2)
        c.train.update(sample_every=2, checkpoint_every=2)
        return train.train_and_evaluate(c, str(workdir))

    straight = run(4, tmp_path / "straight")
    run(2, tmp_path / "resumed")
    resumed = run(4, tmp_path / "resumed")
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    workdir = str(tmp_path / "resumed")
    logged = (tmp_path / "resumed" / "samples" / "step_4.txt").read_text().splitlines()
    assert len(logged) == 100 and all(len(line) == 8 for line in logged)
    # gan-jax sample: the .npz's tokens are the argmax of its softmax x; FILE.txt and
    # OUTDIR/samples.txt decode them with the workdir's vocab.json, one sample per line.
    os.remove(own_corpus)
    sample.sample(workdir, 5, 3, str(tmp_path / "s.npz"))
    sample.sample(workdir, 5, 3, str(tmp_path / "s.txt"))
    record = sample.sample(workdir, 5, 3, str(tmp_path / "dir") + "/")
    saved = np.load(tmp_path / "s.npz")
    assert saved["x"].shape == (5, 8, 12) and record["format"] == "txt"
    np.testing.assert_allclose(saved["x"].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(saved["tokens"], saved["x"].argmax(-1))
    vocab = text_data.read_vocab(workdir)
    expected = vocab.decode(saved["tokens"])
    assert (tmp_path / "s.txt").read_text(encoding="utf-8").splitlines() == expected
    assert (tmp_path / "dir" / "samples.txt").read_text(encoding="utf-8").splitlines() == expected
    os.remove(os.path.join(workdir, text_data.VOCAB_FILE))
    with pytest.raises(data_sources.DataError, match="has no vocab.json"):
        sample.sample(workdir, 5, 3, str(tmp_path / "again.txt"))


def test_text_is_encoded_once_then_read_from_the_disk_cache(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\non the mat\nzebra\n" * 4)
    c = text_config(corpus, cache_dir=str(tmp_path / "cache"))
    text_data._load_text.cache_clear()  # the in-process copy would hide the disk's
    first = text_data.load_text(c.data)
    assert len(os.listdir(tmp_path / "cache")) == 1

    def no_reading(print_):
        raise AssertionError("read the source despite a cache entry")

    monkeypatch.setattr(text_data, "read_source", no_reading)
    text_data._load_text.cache_clear()
    again = text_data.load_text(c.data)
    assert again.vocab == first.vocab
    np.testing.assert_array_equal(again.train, first.train)
    np.testing.assert_array_equal(again.heldout, first.heldout)
    # Another option or a changed file is another entry, read from the source.
    for change in ("option", "file"):
        if change == "option":
            other = text_config(corpus, cache_dir=str(tmp_path / "cache"), seq_len=6)
        else:
            corpus.write_text("a new line\n" * 5)
            other = c
        with pytest.raises(AssertionError, match="read the source"):
            text_data.load_text(other.data)
    text_data._load_text.cache_clear()
