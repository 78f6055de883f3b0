"""Metrics of generated text: n-gram Jensen-Shannon divergences and word-list shares.

`ngram_js` is the figure the WGAN-GP language model reports (Gulrajani et al. 2017, Sec. 5.2):
the JS divergence between the distributions of character n-grams (n = 1..4) in generated
sequences and in real ones, as `language_helpers.NgramLanguageModel.js_with` computes it in the
authors' code (igul222/improved_wgan_training): n-grams counted within each sequence (padding
included), probabilities = counts / total, JS in bits (their natural-log value over log 2), so
0 for equal distributions and 1 (= log 2 nats) for n-grams that never coincide.

Sequences are int token ids [N, L]; a generator's softmax rows [N, L, V] are first decoded by
argmax, as the authors decode their samples.
"""

from __future__ import annotations

import numpy as np

from gan_jax import text_data

NGRAM_ORDERS = (1, 2, 3, 4)


def as_tokens(x) -> np.ndarray:
    """int [N, L] token ids from token ids [N, L] or probability rows [N, L, V] (argmax)."""
    x = np.asarray(x)
    if x.ndim == 3:
        return np.argmax(x, axis=-1)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(
            f"sequences of shape {x.shape} and dtype {x.dtype}; expected int token ids [N, L] or"
            " probabilities [N, L, V]"
        )
    return x


def ngrams(tokens_NxL, n: int) -> np.ndarray:
    """int64 [N * (L - n + 1), n]: every run of n consecutive tokens within each sequence."""
    tokens_NxL = as_tokens(tokens_NxL).astype(np.int64)
    if not 1 <= n <= tokens_NxL.shape[1]:
        raise ValueError(f"n = {n}; expected 1 <= n <= L = {tokens_NxL.shape[1]}")
    windows = np.lib.stride_tricks.sliding_window_view(tokens_NxL, n, axis=1)
    return windows.reshape(-1, n)


def js_divergence_bits(p_counts, q_counts) -> float:
    """JS(P, Q) in bits of two count vectors over the same outcomes: 0.5 KL(P || M) +
    0.5 KL(Q || M), M = (P + Q) / 2, each KL summed where its distribution is > 0."""
    p = np.asarray(p_counts, np.float64) / np.sum(p_counts)
    q = np.asarray(q_counts, np.float64) / np.sum(q_counts)
    m = 0.5 * (p + q)
    kl_pm = np.sum(p[p > 0] * np.log(p[p > 0] / m[p > 0]))
    kl_qm = np.sum(q[q > 0] * np.log(q[q > 0] / m[q > 0]))
    return float(0.5 * (kl_pm + kl_qm) / np.log(2.0))


def ngram_js(samples, reference, n: int) -> float:
    """JS divergence in bits between the n-gram distributions of two sets of sequences
    (token ids [N, L] / [M, L], or probabilities [N, L, V]); the authors' `js_with`."""
    grams_s, grams_r = ngrams(samples, n), ngrams(reference, n)
    _, inverse = np.unique(np.concatenate([grams_s, grams_r]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    size = int(inverse.max()) + 1
    counts_s = np.bincount(inverse[: len(grams_s)], minlength=size)
    counts_r = np.bincount(inverse[len(grams_s) :], minlength=size)
    return js_divergence_bits(counts_s, counts_r)


def ngram_js_all(samples, reference, orders=NGRAM_ORDERS) -> dict[str, float]:
    """{'js1': ..., 'js4': ...}: `ngram_js` for each n, the curves the authors log."""
    return {f"js{n}": ngram_js(samples, reference, n) for n in orders}


def words(tokens, pad: int = text_data.PAD) -> list[tuple[int, ...]]:
    """Each sequence ([N, L] ids or [N, L, V] probabilities) as a tuple of ids less its
    trailing padding: a word of a word list."""
    return [tuple(text_data.without_padding(row)) for row in as_tokens(tokens).tolist()]


def word_shares(samples, word_list, train, pad: int = text_data.PAD) -> dict[str, float]:
    """For sequences that are words padded at the end: `words_in_list`, the share of generated
    words (`samples`) that are in `word_list` [M, L], and `words_novel`, the share that are
    not in the training split `train` [K, L] (novelty)."""
    generated = words(samples, pad)
    listed, trained = set(words(word_list, pad)), set(words(train, pad))
    return {
        "words_in_list": float(np.mean([g in listed for g in generated])),
        "words_novel": float(np.mean([g not in trained for g in generated])),
    }
