"""Character-level text for a GAN on discrete sequences (Gulrajani et al. 2017, Sec. 5.2).

A text source becomes fixed-length examples of L = `data.seq_len` characters, encoded as int32
token ids [N, L] with a vocabulary built from the training split: the most frequent characters
plus an unknown symbol, as the authors' `language_helpers.load_dataset` builds its charmap
(igul222/improved_wgan_training). The step one-hot encodes each batch (`data.Dataset`), G
emits a softmax over the vocabulary per position, and samples decode back to text through the
vocabulary saved in the workdir (`keep_vocab`), so that a run's samples read the same later.

Sources (`data.name`): 'text', a UTF-8 file or a folder of files read in sorted order
(`data.dir`), and 'tfds:lm1b', the Billion Word benchmark the paper trained on, through TFDS with
the offline check of `data_sources`. `data.text_mode` makes examples of 'lines' (one example per
line, cut to L and padded, as the authors' loader does) or 'windows' (the text with each run of
whitespace made one space, cut into consecutive windows of L characters). Examples [start:stop]
are read; a fixed random `data.heldout_fraction` of them is held out for the n-gram metrics
(`text_metrics`), and the rest is the training split.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re

import numpy as np

from gan_jax import data_cache, data_sources
from gan_jax.data_sources import DataError

TEXT_SOURCES = ("text",)  # data.name values that read data.dir as text
TFDS_TEXT_FEATURES = {"lm1b": "text"}  # TFDS text sets and the feature holding their text
TEXT_MODES = ("lines", "windows")
UNK, PAD = 0, 1  # reserved ids: a character outside the vocabulary, padding after a line
RESERVED = 2
# How the reserved ids print in decoded samples: the replacement character, and the authors'
# padding character (their loader pads lines with '`').
UNK_TEXT, PAD_TEXT = "\ufffd", "`"
HELDOUT_SEED = 0  # the held-out examples are one fixed draw for every run of a source
CACHE_VERSION = 1  # bump when reading, the vocabulary or the encoding changes the token ids
VOCAB_FILE = "vocab.json"
TFDS_LOCAL_HINT = (
    "save the sentences one per line in a text file and pass --config.data.name=text"
    " --config.data.dir=FILE"
)


def is_text(name: str) -> bool:
    """Whether `name` is a text data.name: 'text' or 'tfds:<a TFDS text set>'."""
    tfds_name = name.removeprefix(data_sources.TFDS_PREFIX)
    return name in TEXT_SOURCES or (name != tfds_name and tfds_name in TFDS_TEXT_FEATURES)


# ----------------------------------------------------------------------------- vocabulary


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Token ids: UNK = 0, PAD = 1, then `chars[i]` = id i + 2 (most frequent first)."""

    chars: tuple[str, ...]

    @property
    def size(self) -> int:
        """V, the number of token ids (the one-hot width)."""
        return RESERVED + len(self.chars)

    def encode(self, codepoints_NxL: np.ndarray) -> np.ndarray:
        """int32 token ids [N, L] of Unicode code points [N, L] (0: padding): characters outside
        the vocabulary become UNK."""
        known = np.array(sorted(ord(c) for c in self.chars), np.uint32)
        if not len(known):
            return np.where(codepoints_NxL == 0, PAD, UNK).astype(np.int32)
        ids_by_rank = np.array([self.chars.index(chr(c)) + RESERVED for c in known], np.int32)
        rank = np.minimum(np.searchsorted(known, codepoints_NxL), len(known) - 1)
        tokens = np.where(known[rank] == codepoints_NxL, ids_by_rank[rank], UNK)
        return np.where(codepoints_NxL == 0, PAD, tokens).astype(np.int32)

    def decode(self, tokens_NxL, strip_padding: bool = False) -> list[str]:
        """One string per row of token ids [N, L] (UNK as UNK_TEXT, PAD as PAD_TEXT); with
        `strip_padding` the trailing PADs are dropped (a word of a word list). Raises DataError
        for ids outside [0, V)."""
        tokens_NxL = np.asarray(tokens_NxL)
        if tokens_NxL.size and (tokens_NxL.min() < 0 or tokens_NxL.max() >= self.size):
            raise DataError(
                f"token ids span [{tokens_NxL.min()}, {tokens_NxL.max()}]; this vocabulary"
                f" has ids in [0, {self.size})"
            )
        table = [UNK_TEXT, PAD_TEXT, *self.chars]
        rows = tokens_NxL.tolist()
        rows = [without_padding(row) for row in rows] if strip_padding else rows
        return ["".join(table[t] for t in row) for row in rows]

    def to_json(self) -> str:
        """The vocabulary as JSON (reserved ids and the characters in id order), for vocab.json."""
        return json.dumps({"unk": UNK, "pad": PAD, "chars": list(self.chars)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """The vocabulary `to_json` wrote; DataError for another layout of reserved ids."""
        saved = json.loads(text)
        if saved.get("unk") != UNK or saved.get("pad") != PAD:
            raise DataError(
                f"vocabulary with unk={saved.get('unk')}, pad={saved.get('pad')};"
                f" expected unk={UNK}, pad={PAD}"
            )
        return cls(tuple(saved["chars"]))


def without_padding(row: list[int], pad: int = PAD) -> list[int]:
    """A row of token ids less its trailing `pad` ids."""
    end = len(row)
    while end and row[end - 1] == pad:
        end -= 1
    return row[:end]


def build_vocabulary(codepoints_NxL: np.ndarray, vocab_size: int) -> Vocabulary:
    """The `vocab_size` - 2 most frequent characters of code points [N, L] (0 is padding and
    not counted), ties broken by code point; the authors' charmap keeps the `max_vocab_size` - 1
    most common characters after 'unk' (their padding character is one of them, ours a
    reserved id). Raises DataError for vocab_size < 3."""
    if vocab_size < RESERVED + 1:
        raise DataError(f"vocab_size={vocab_size}: expected >= {RESERVED + 1} (UNK, PAD, a char)")
    values, counts = np.unique(codepoints_NxL[codepoints_NxL != 0], return_counts=True)
    order = np.lexsort((values, -counts))[: vocab_size - RESERVED]
    return Vocabulary(tuple(chr(int(c)) for c in values[order]))


# ----------------------------------------------------------------------------- examples


def line_codepoints(lines: list[str], seq_len: int) -> np.ndarray:
    """uint32 code points [N, L] of lines cut to L characters, padded with 0 (as the authors'
    loader cuts at max_length and pads). NUL characters are dropped, as 0 marks padding."""
    cut = [line.replace("\x00", "")[:seq_len] for line in lines]
    return np.array(cut, dtype=f"<U{seq_len}").view(np.uint32).reshape(len(cut), seq_len)


def window_codepoints(text: str, seq_len: int) -> np.ndarray:
    """uint32 code points [N, L] of `text` with each run of whitespace made one space, cut into
    consecutive windows of L characters (a last partial window dropped)."""
    flat = re.sub(r"\s+", " ", text.replace("\x00", "")).strip()
    points = np.frombuffer(flat.encode("utf-32-le"), np.uint32)
    n = len(points) // seq_len
    return points[: n * seq_len].reshape(n, seq_len).copy()


def text_files(path: str) -> list[str]:
    """The files `data.dir` names: itself, or a folder's files (sorted, each file once when
    links point at it). Raises DataError for a missing path or an empty folder."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise DataError(
            f"data.dir={path!r} does not exist; data.name='text' needs a UTF-8 text file or a"
            " folder of them"
        )
    files, seen = [], set()
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and os.path.realpath(full) not in seen:
            seen.add(os.path.realpath(full))
            files.append(full)
    if not files:
        raise DataError(f"data.dir={path!r} is an empty folder; expected text files in it")
    return files


def read_text(path: str) -> str:
    """The files of `text_files(path)` decoded as UTF-8 (bad bytes as U+FFFD), one after
    another, each ending in a newline."""
    parts = []
    for file in text_files(path):
        with open(file, encoding="utf-8", errors="replace") as f:
            parts.append(f.read().rstrip("\n") + "\n")
    return "".join(parts)


def source_lines(name: str, path: str, start: int, stop: int | None) -> list[str]:
    """Lines [start:stop] of a source: the non-empty lines of the file(s) at `path`, or the
    sentences of a TFDS text set (read up to `stop` only)."""
    if name in TEXT_SOURCES:
        lines = [line for line in read_text(path).split("\n") if line.strip()]
        return lines[start:stop]
    tfds_name = name.removeprefix(data_sources.TFDS_PREFIX)
    data_sources.check_tfds_available(tfds_name, TFDS_LOCAL_HINT)  # before TFDS's import
    builder = data_sources.tfds_builder(tfds_name)
    split = f"train[{start}:{'' if stop is None else stop}]"
    examples = data_sources.tfds_examples(builder, split)
    feature = TFDS_TEXT_FEATURES[tfds_name]
    texts = examples[feature] if isinstance(examples, dict) else [e[feature] for e in examples]
    return [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else str(t) for t in texts]


def split_heldout(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of n examples, both in order: round(fraction * n) rows
    (at least 1 when fraction > 0) drawn without replacement from a fixed seed."""
    held = min(max(round(fraction * n), 1 if fraction > 0 else 0), n - 1)
    is_held = np.zeros(n, bool)
    is_held[np.random.default_rng(HELDOUT_SEED).permutation(n)[:held]] = True
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


@dataclasses.dataclass(frozen=True)
class TextData:
    """A text source's examples as token ids: `train` int32 [N, L], `heldout` int32 [M, L]."""

    train: np.ndarray
    heldout: np.ndarray
    vocab: Vocabulary


def make_text_data(codepoints_NxL: np.ndarray, vocab_size: int, heldout_fraction: float):
    """`TextData` of examples as code points [N, L]: the held-out split drawn, the vocabulary
    built from the training split alone. Raises DataError for fewer than 2 examples."""
    n = codepoints_NxL.shape[0]
    if n < 2:
        raise DataError(f"the text source has {n} examples; expected at least 2")
    train_rows, held_rows = split_heldout(n, heldout_fraction)
    vocab = build_vocabulary(codepoints_NxL[train_rows], vocab_size)
    tokens = vocab.encode(codepoints_NxL)
    return TextData(tokens[train_rows], tokens[held_rows], vocab)


def fingerprint(data_config) -> dict:
    """What the config's text depends on, the key of its disk cache entry (`data_cache`): the
    source (its files' sizes and modification times, or the TFDS set's prepared copies) and
    every data option that changes the token ids. Lists the files only; raises DataError for
    a missing or empty path."""
    name, path = data_config.name, data_config.get("dir", "")
    if name in TEXT_SOURCES:
        if not path:
            raise DataError("data.name='text' reads data.dir, which is empty; pass a text file")
        root = path if os.path.isdir(path) else os.path.dirname(path)
        files = data_cache.file_stamps(text_files(path), root)
    else:
        files = data_cache.tfds_stamps(name.removeprefix(data_sources.TFDS_PREFIX))
    return {
        "version": CACHE_VERSION,
        "source": name,
        "path": os.path.abspath(path) if path else "",
        "files": files,
        "seq_len": data_config.seq_len,
        "text_mode": data_config.text_mode,
        "vocab_size": data_config.vocab_size,
        "heldout_fraction": data_config.heldout_fraction,
        "start": data_config.get("start", 0),
        "stop": data_config.get("stop"),
    }


def load_text(data_config) -> TextData:
    """The config's text as `TextData`: read and encoded once, then from the disk cache
    (`data.cache_dir`, as image sets; an entry per `fingerprint`), and once per process from
    memory (`data_shape`, the dataset and the evaluator all ask for it).

    Raises DataError for a missing path, an empty source, a bad text_mode or an unreachable
    TFDS set."""
    if data_config.text_mode not in TEXT_MODES:
        raise DataError(f"data.text_mode={data_config.text_mode!r}; allowed: {TEXT_MODES}")
    print_ = json.dumps(fingerprint(data_config), sort_keys=True)
    return _load_text(print_, data_config.get("cache_dir", ""))


@functools.lru_cache(maxsize=4)
def _load_text(print_json: str, cache_dir: str) -> TextData:
    print_ = json.loads(print_json)
    entry = data_cache.entry_dir(cache_dir, print_)
    cached = data_cache.load_arrays(entry, ("train", "heldout"))
    if cached is not None:
        arrays, meta = cached
        return TextData(arrays["train"], arrays["heldout"], Vocabulary.from_json(meta["vocab"]))
    text = read_source(print_)
    meta = {"fingerprint": print_, "vocab": text.vocab.to_json(), "shape": list(text.train.shape)}
    data_cache.store_arrays(entry, {"train": text.train, "heldout": text.heldout}, meta)
    return text


def read_source(print_: dict) -> TextData:
    """The text a `fingerprint` describes, read and encoded (no cache)."""
    name, path, start, stop = print_["source"], print_["path"], print_["start"], print_["stop"]
    if print_["text_mode"] == "lines":
        points = line_codepoints(source_lines(name, path, start, stop), print_["seq_len"])
    else:
        text = "\n".join(source_lines(name, path, 0, None)) if name not in TEXT_SOURCES else None
        points = window_codepoints(text if text is not None else read_text(path), print_["seq_len"])
        points = points[start:stop]
    return make_text_data(points, print_["vocab_size"], print_["heldout_fraction"])


def sequence_shape(data_config) -> tuple[int, int]:
    """(L, V): one example's one-hot shape."""
    return (data_config.seq_len, load_text(data_config).vocab.size)


# ----------------------------------------------------------------------------- the workdir's copy


def read_vocab(workdir: str) -> Vocabulary | None:
    """The vocabulary a run saved in its workdir, None when it saved none."""
    path = os.path.join(workdir, VOCAB_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return Vocabulary.from_json(f.read())


def check_vocab(workdir: str, vocab: Vocabulary) -> None:
    """Raises DataError when the workdir saved a vocabulary other than `vocab`, the one the
    data gives now (the source or its options changed, and the checkpoint's token ids would
    mean other characters)."""
    saved = read_vocab(workdir)
    if saved is not None and saved != vocab:
        raise DataError(
            f"the text data now gives a vocabulary of {vocab.size} ids that differs from the"
            f" {saved.size} in {os.path.join(workdir, VOCAB_FILE)}; the run's token ids would"
            " change meaning. Train with the source and data options the run started with"
        )


def keep_vocab(workdir: str, vocab: Vocabulary) -> None:
    """Saves `vocab` as the workdir's vocab.json, after `check_vocab` (on resume)."""
    check_vocab(workdir, vocab)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, VOCAB_FILE), "w", encoding="utf-8") as f:
        f.write(vocab.to_json() + "\n")


def workdir_vocab(workdir: str) -> Vocabulary:
    """The vocabulary of a text run's workdir; DataError when it saved none."""
    vocab = read_vocab(workdir)
    if vocab is None:
        raise DataError(f"{workdir!r} has no {VOCAB_FILE} to decode text samples with")
    return vocab


def sample_lines(vocab: Vocabulary, probs_NxLxV) -> str:
    """G's samples (softmax rows [N, L, V]) decoded by argmax, as the authors decode theirs:
    one sample per line (a decoded newline becomes a space), each line ending in a newline."""
    lines = vocab.decode(np.argmax(probs_NxLxV, axis=-1))
    return "".join(line.replace("\n", " ") + "\n" for line in lines)


def write_samples(workdir: str, step: int, probs_NxLxV) -> str:
    """Writes `samples/step_<step>.txt`: `sample_lines` through the workdir's vocab.json.
    Raises DataError when the workdir has no vocabulary."""
    vocab = workdir_vocab(workdir)
    path = os.path.join(workdir, "samples", f"step_{step}.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(sample_lines(vocab, probs_NxLxV))
    return path
