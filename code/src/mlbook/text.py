"""Text datasets and text encodings for the Keras-workflow chapter.

One interface per dataset, whatever the source:

- :func:`load_imdb_like` — a binary task as word-index sequences: Keras's IMDB movie reviews in ``full``; in
  ``quick`` (and when the download fails) a real binary task on Python's standard-library docstrings: does a
  docstring come from the network-and-mail packages or not? No sentiment corpus ships with the toolchain.
- :func:`load_reuters_like` — 46 topics as word-index sequences: Keras's Reuters newswires in ``full``; offline, the
  docstrings of the 46 largest standard-library packages, labelled by package.
- :func:`load_news_like` — raw texts in 8 classes: the docstrings of the 8 largest packages, in both profiles (the
  original article's news data set was private).

Word-index sequences follow Keras's conventions: 0 is padding, small indices are reserved, and every index is
below ``num_words``. :func:`multi_hot` turns them into fixed-size vectors; :func:`tfidf_vectorizer` turns raw text
into tf-idf vectors with ``keras.layers.TextVectorization`` (the removed ``Tokenizer`` did both jobs in Keras 2).

References:
    Maas, A. L. et al. (2011). Learning word vectors for sentiment analysis. *ACL* (the IMDB data set).
    Lewis, D. D. (1997). Reuters-21578 text categorization collection (the Reuters newswires).
    Spärck Jones, K. (1972). A statistical interpretation of term specificity and its application in retrieval.
    *Journal of Documentation* 28(1), 11–21 (inverse document frequency).
    Chollet, F. (2017). *Deep Learning with Python*, chapter 3. Manning.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlbook.data import DownloadError, announce_fallback, download
from mlbook.profiles import resolve_profile

if TYPE_CHECKING:
    import keras

#: Size of the vocabulary, and so of a multi-hot or tf-idf vector, as in the original posts.
NUM_WORDS = 10_000

#: Standard-library packages that deal with the network, the web and mail: the positive class of the offline
#: binary task. Everything else in the standard library is the negative class.
NETWORK_PACKAGES: tuple[str, ...] = (
    "cgi", "email", "ftplib", "html", "http", "imaplib", "mailbox", "mailcap", "mimetypes", "nntplib", "poplib",
    "smtpd", "smtplib", "socket", "socketserver", "ssl", "telnetlib", "urllib", "webbrowser", "wsgiref", "xmlrpc",
)

IMDB_CLASS_NAMES = ("negative", "positive")
DOCSTRING_BINARY_CLASS_NAMES = ("other", "network & mail")


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    """Documents as lists of word indices (Keras's IMDB and Reuters format), integer labels, and their origin.

    Attributes:
        train_sequences, test_sequences: one list of word indices per document, every index in ``[0, num_words)``.
        y_train, y_test: integer labels in ``[0, len(class_names))``.
        num_words: the vocabulary size (the length of a multi-hot vector).
        class_names: a readable name per label.
        source: a short identifier (``"imdb"``, ``"reuters"``, ``"stdlib-docstrings"``).
        description: one sentence for the reader: what the data is and how large.
        train_texts, test_texts: the raw documents where the source has them (empty for Keras's data sets).
        vocabulary: the word of each index where known (empty for Keras's data sets).
    """

    train_sequences: list[list[int]]
    y_train: np.ndarray
    test_sequences: list[list[int]]
    y_test: np.ndarray
    num_words: int
    class_names: tuple[str, ...]
    source: str
    description: str
    train_texts: tuple[str, ...] = ()
    test_texts: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class TextDataset:
    """Raw documents with integer labels, split in two, and their origin."""

    train_texts: tuple[str, ...]
    y_train: np.ndarray
    test_texts: tuple[str, ...]
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --- encodings -------------------------------------------------------------------------------------------------


def multi_hot(sequences: Sequence[Sequence[int]], dimension: int = NUM_WORDS) -> np.ndarray:
    """Encode each sequence of word indices as a 0/1 vector with a 1 at every index that occurs in it.

    ``multi_hot([[3, 5]], 10)`` is ``[[0, 0, 0, 1, 0, 1, 0, 0, 0, 0]]``: word order and counts are lost.

    Args:
        sequences: ``n`` sequences of integer word indices.
        dimension: the vector length; every index must lie in ``[0, dimension)``.

    Returns:
        A float32 array of shape ``(n, dimension)``.

    Raises:
        ValueError: if ``dimension`` is not positive or an index lies outside ``[0, dimension)``.
    """
    if dimension < 1:
        raise ValueError(f"expected a positive dimension, got {dimension}")
    encoded = np.zeros((len(sequences), dimension), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        indices = np.asarray(sequence, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= dimension):
            raise ValueError(
                f"expected word indices in [0, {dimension}), got {indices.min()}..{indices.max()} in sequence {row}"
            )
        encoded[row, indices] = 1.0
    return encoded


def text_vectorizer(
    texts: Sequence[str], max_tokens: int = NUM_WORDS, output_mode: str = "int"
) -> keras.layers.TextVectorization:
    """A ``keras.layers.TextVectorization`` adapted to ``texts`` (its vocabulary comes from them only).

    Args:
        texts: the training documents; never the test documents, whose words must stay unseen.
        max_tokens: the vocabulary cap, counting the reserved entries (padding and ``[UNK]`` in ``"int"`` mode).
        output_mode: ``"int"`` for word-index sequences (ragged), ``"multi_hot"``, ``"count"`` or ``"tf_idf"``
            for fixed vectors of length exactly ``max_tokens``.

    Raises:
        ValueError: if ``texts`` is empty or ``max_tokens`` is too small to hold a word.
    """
    import keras

    if len(texts) == 0:
        raise ValueError("expected at least one training text to adapt the vocabulary, got none")
    if max_tokens < 3:
        raise ValueError(f"expected max_tokens >= 3 (two reserved entries and a word), got {max_tokens}")
    fixed_width = output_mode != "int"
    layer = keras.layers.TextVectorization(
        max_tokens=max_tokens, output_mode=output_mode, pad_to_max_tokens=fixed_width, ragged=not fixed_width
    )
    layer.adapt(np.asarray(texts, dtype=object), batch_size=256)
    return layer


def tfidf_vectorizer(texts: Sequence[str], max_tokens: int = NUM_WORDS) -> keras.layers.TextVectorization:
    """A TextVectorization layer that maps a text to its tf-idf vector of length ``max_tokens``.

    Each entry is the word's count in the document times ``log(1 + N / (1 + df))``, where ``df`` is the number of
    the ``N`` training documents that contain the word, so words found everywhere weigh little.

    Implements: eq-workflow-tfidf
    """
    return text_vectorizer(texts, max_tokens, output_mode="tf_idf")


def to_sequences(vectorizer: keras.layers.TextVectorization, texts: Sequence[str]) -> list[list[int]]:
    """Word-index sequences of ``texts`` from an ``"int"`` vectorizer (index 0 pads, 1 is ``[UNK]``)."""
    if len(texts) == 0:
        return []
    return vectorizer(np.asarray(texts, dtype=object)).to_list()


# --- the standard-library docstrings as labelled data ----------------------------------------------------------


def unique_documents(texts: Sequence[str], labels: Sequence[int]) -> tuple[list[str], np.ndarray]:
    """Keep the first copy of each text and drop texts found under two different labels.

    The standard library repeats some docstrings (a pure-Python twin of a C module, overridden methods). A copy in
    the training set and another in the test set would make the test score a memory test.
    """
    if len(texts) != len(labels):
        raise ValueError(f"expected one label per text, got {len(texts)} texts and {len(labels)} labels")
    labels_of: dict[str, set[int]] = {}
    for text, label in zip(texts, labels):
        labels_of.setdefault(text, set()).add(int(label))
    kept = [text for text, found in labels_of.items() if len(found) == 1]  # dicts keep first-seen order
    return kept, np.array([next(iter(labels_of[text])) for text in kept], dtype=np.int64)


def largest_packages(documents: Sequence[Any], count: int) -> tuple[str, ...]:
    """The ``count`` packages with the most documents, largest first (ties broken by name)."""
    sizes = Counter(doc.package for doc in documents)
    if count > len(sizes):
        raise ValueError(f"expected at most {len(sizes)} packages, got a request for {count}")
    return tuple(name for name, _ in sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:count])


def split_texts(
    texts: Sequence[str], labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[tuple[str, ...], np.ndarray, tuple[str, ...], np.ndarray]:
    """A stratified random split that keeps every text with its own label."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"expected 0 < test_fraction < 1, got {test_fraction}")
    train_texts, test_texts, y_train, y_test = train_test_split(
        list(texts), np.asarray(labels), test_size=test_fraction, random_state=seed, stratify=labels
    )
    return tuple(train_texts), y_train, tuple(test_texts), y_test


def docstrings_by_package(packages: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Standard-library docstrings of ``packages``, labelled by the package's position in ``packages``."""
    from mlbook.corpora import stdlib_docstrings

    label_of = {name: index for index, name in enumerate(packages)}
    chosen = [doc for doc in stdlib_docstrings() if doc.package in label_of]
    return unique_documents([doc.text for doc in chosen], [label_of[doc.package] for doc in chosen])


def docstring_binary_texts(seed: int = 0) -> tuple[list[str], np.ndarray]:
    """The offline binary task: network-and-mail docstrings (label 1) and as many others, drawn at random (0).

    The classes are balanced, like IMDB's, so that chance is 50%.
    """
    from mlbook.corpora import stdlib_docstrings

    documents = stdlib_docstrings()
    texts, labels = unique_documents(
        [doc.text for doc in documents], [int(doc.package in NETWORK_PACKAGES) for doc in documents]
    )
    positive = np.flatnonzero(labels == 1)
    negative = np.random.default_rng(seed).choice(np.flatnonzero(labels == 0), size=len(positive), replace=False)
    chosen = np.sort(np.concatenate([positive, negative]))
    return [texts[i] for i in chosen], labels[chosen]


def sequence_dataset_from_texts(
    texts: Sequence[str], labels: np.ndarray, class_names: tuple[str, ...], num_words: int, test_fraction: float,
    seed: int, description: str,
) -> SequenceDataset:
    """Split labelled texts, adapt a vocabulary of ``num_words`` on the training part and encode both parts."""
    train_texts, y_train, test_texts, y_test = split_texts(texts, labels, test_fraction, seed)
    vectorizer = text_vectorizer(train_texts, num_words, output_mode="int")
    return SequenceDataset(
        to_sequences(vectorizer, train_texts), y_train, to_sequences(vectorizer, test_texts), y_test,
        num_words=num_words, class_names=class_names, source="stdlib-docstrings", description=description,
        train_texts=train_texts, test_texts=test_texts,
        vocabulary=tuple(str(word) for word in vectorizer.get_vocabulary()),
    )


def load_docstring_binary(num_words: int = NUM_WORDS, test_fraction: float = 0.2, seed: int = 0) -> SequenceDataset:
    """The offline stand-in for IMDB: is a docstring from a network-and-mail package? (balanced, 2 classes)."""
    texts, labels = docstring_binary_texts(seed)
    description = (
        f"Python's standard-library docstrings, binary: {int(labels.sum()):,} from the network and mail packages "
        f"and {int((labels == 0).sum()):,} drawn from all the others"
    )
    return sequence_dataset_from_texts(
        texts, labels, DOCSTRING_BINARY_CLASS_NAMES, num_words, test_fraction, seed, description
    )


def load_docstring_topics(
    num_classes: int = 46, num_words: int = NUM_WORDS, test_fraction: float = 0.2, seed: int = 0
) -> SequenceDataset:
    """The offline stand-in for Reuters: docstrings of the ``num_classes`` largest packages, labelled by package."""
    from mlbook.corpora import stdlib_docstrings

    packages = largest_packages(stdlib_docstrings(), num_classes)
    texts, labels = docstrings_by_package(packages)
    description = (
        f"Python's standard-library docstrings from its {num_classes} largest packages ({len(texts):,} documents, "
        f"{np.bincount(labels).max()} in the largest class and {np.bincount(labels).min()} in the smallest)"
    )
    return sequence_dataset_from_texts(texts, labels, packages, num_words, test_fraction, seed, description)


def load_news_like(num_classes: int = 8, test_fraction: float = 0.2, seed: int = 0) -> TextDataset:
    """Raw docstrings of the ``num_classes`` largest standard-library packages, labelled by package.

    The original post classified a private file of news articles into 8 categories; no public copy exists, so
    both profiles use this real, offline corpus of the same shape.
    """
    from mlbook.corpora import stdlib_docstrings

    packages = largest_packages(stdlib_docstrings(), num_classes)
    texts, labels = docstrings_by_package(packages)
    train_texts, y_train, test_texts, y_test = split_texts(texts, labels, test_fraction, seed)
    description = (
        f"Python's standard-library docstrings from its {num_classes} largest packages "
        f"({len(texts):,} documents: {', '.join(packages)})"
    )
    return TextDataset(train_texts, y_train, test_texts, y_test, packages, "stdlib-docstrings", description)


# --- Keras's data sets: our download, Keras's encoding, an offline fallback --------------------------------------

KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
IMDB_URL = KERAS_DATASETS_URL + "imdb.npz"
IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
IMDB_KEYS = ("x_train", "y_train", "x_test", "y_test")
REUTERS_URL = KERAS_DATASETS_URL + "reuters.npz"
REUTERS_SHA256 = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
REUTERS_KEYS = ("x", "y")
#: The defaults of ``keras.datasets.imdb.load_data`` and ``keras.datasets.reuters.load_data``, which the readers
#: below reproduce: the shuffling seed, the reserved indices (0 pads, 1 starts a sequence, 2 replaces a word
#: outside the vocabulary), the offset of the first word, and Reuters' test fraction.
KERAS_SEED = 113
START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3
REUTERS_TEST_SPLIT = 0.2

#: Training sequences, training labels, test sequences, test labels.
SequenceSplits = tuple[list[list[int]], np.ndarray, list[list[int]], np.ndarray]


def read_keras_npz(path: str | os.PathLike, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Read the 1-D arrays ``keys`` of an ``.npz`` of ragged word-index sequences (Keras's IMDB and Reuters files).

    Arrays are paired in order, sequences then labels (``x_train`` with ``y_train``), and each pair must have
    one label per sequence.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a readable ``.npz``, lacks one of ``keys``, or an array has the wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    try:
        # The sequences are object arrays, stored as pickles. Unpickling is safe here because download() checked
        # the file's SHA-256 against the published digest before anything reads it.
        with np.load(path, allow_pickle=True) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error})") from error
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(f"{path} is missing arrays {missing}; expected {list(keys)}, found {sorted(arrays)}")
    for sequences_key, labels_key in zip(keys[::2], keys[1::2]):
        sequences, labels = arrays[sequences_key], arrays[labels_key]
        if sequences.ndim != 1 or labels.shape != (len(sequences),):
            raise ValueError(
                f"{path}: expected {sequences_key} as n sequences and {labels_key} of shape (n,), "
                f"got shapes {sequences.shape} and {labels.shape}"
            )
    return {key: arrays[key] for key in keys}


def shuffled(rng: np.random.RandomState, sequences: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequences and labels in one random order (drawn the way Keras's loaders draw it)."""
    order = np.arange(len(sequences))
    rng.shuffle(order)
    return sequences[order], labels[order]


def keras_word_indices(sequences: Sequence[Sequence[int]], num_words: int) -> list[list[int]]:
    """Keras's encoding of raw word ranks: a start index, every rank shifted by :data:`INDEX_FROM`, and every
    index at or above ``num_words`` (the start index included) replaced by :data:`OOV_CHAR`."""
    if num_words < 1:
        raise ValueError(f"expected a positive num_words, got {num_words}")
    return [
        [index if index < num_words else OOV_CHAR for index in [START_CHAR, *(int(w) + INDEX_FROM for w in s)]]
        for s in sequences
    ]


def read_imdb_npz(path: str | os.PathLike, num_words: int) -> SequenceSplits:
    """``imdb.npz`` as ``keras.datasets.imdb.load_data(num_words=num_words)`` returns it, as lists and int64 labels:
    training then test set, each shuffled with one generator seeded :data:`KERAS_SEED`."""
    arrays = read_keras_npz(path, IMDB_KEYS)
    rng = np.random.RandomState(KERAS_SEED)
    x_train, y_train = shuffled(rng, arrays["x_train"], arrays["y_train"])
    x_test, y_test = shuffled(rng, arrays["x_test"], arrays["y_test"])
    return (keras_word_indices(x_train, num_words), y_train.astype(np.int64),
            keras_word_indices(x_test, num_words), y_test.astype(np.int64))


def read_reuters_npz(path: str | os.PathLike, num_words: int, test_split: float = REUTERS_TEST_SPLIT) -> SequenceSplits:
    """``reuters.npz`` as ``keras.datasets.reuters.load_data(num_words=num_words)`` returns it: all wires shuffled
    with seed :data:`KERAS_SEED`, the last ``test_split`` of them as the test set."""
    if not 0.0 <= test_split <= 1.0:
        raise ValueError(f"expected 0 <= test_split <= 1, got {test_split}")
    arrays = read_keras_npz(path, REUTERS_KEYS)
    sequences, labels = shuffled(np.random.RandomState(KERAS_SEED), arrays["x"], arrays["y"])
    encoded, labels = keras_word_indices(sequences, num_words), labels.astype(np.int64)
    cut = int(len(encoded) * (1 - test_split))
    return encoded[:cut], labels[:cut], encoded[cut:], labels[cut:]


def load_imdb(num_words: int = NUM_WORDS) -> SequenceDataset:
    """Keras's IMDB reviews (25,000 + 25,000, labels 0 negative and 1 positive), downloaded once.

    Raises:
        DownloadError: offline (``MLBOOK_OFFLINE``), network failure or checksum mismatch.
        ValueError: if the downloaded file does not hold IMDB's arrays.
    """
    x_train, y_train, x_test, y_test = read_imdb_npz(download(IMDB_URL, "imdb.npz", IMDB_SHA256), num_words)
    return SequenceDataset(
        x_train, y_train, x_test, y_test, num_words=num_words, class_names=IMDB_CLASS_NAMES, source="imdb",
        description=f"IMDB movie reviews ({len(x_train):,} training and {len(x_test):,} test reviews)",
    )


def load_reuters(num_words: int = NUM_WORDS) -> SequenceDataset:
    """Keras's Reuters newswires (8,982 + 2,246 in 46 topics), downloaded once.

    Raises:
        DownloadError: offline (``MLBOOK_OFFLINE``), network failure or checksum mismatch.
        ValueError: if the downloaded file does not hold Reuters' arrays.
    """
    import keras

    path = download(REUTERS_URL, "reuters.npz", REUTERS_SHA256)
    x_train, y_train, x_test, y_test = read_reuters_npz(path, num_words)
    return SequenceDataset(
        x_train, y_train, x_test, y_test, num_words=num_words,
        class_names=tuple(keras.datasets.reuters.get_label_names()), source="reuters",
        description=f"Reuters newswires ({len(x_train):,} training and {len(x_test):,} test wires, 46 topics)",
    )


def _real_or_offline(
    profile: str | None,
    wanted: str,
    load_real: Callable[[], SequenceDataset],
    load_offline: Callable[[], SequenceDataset],
) -> SequenceDataset:
    profile = resolve_profile(profile)
    if profile == "full":
        try:
            return load_real()
        except (DownloadError, ValueError) as error:
            fallback = load_offline()
            announce_fallback(wanted, str(error), fallback.description)
            return fallback
    return load_offline()


def load_imdb_like(profile: str | None = None, num_words: int = NUM_WORDS, seed: int = 0) -> SequenceDataset:
    """A balanced binary task as word-index sequences: IMDB in ``full``, the docstring task offline."""
    return _real_or_offline(
        profile, "IMDB", lambda: load_imdb(num_words), lambda: load_docstring_binary(num_words, seed=seed)
    )


def load_reuters_like(profile: str | None = None, num_words: int = NUM_WORDS, seed: int = 0) -> SequenceDataset:
    """46 topics as word-index sequences: Reuters in ``full``, docstrings of 46 packages offline."""
    return _real_or_offline(
        profile, "Reuters", lambda: load_reuters(num_words), lambda: load_docstring_topics(46, num_words, seed=seed)
    )
