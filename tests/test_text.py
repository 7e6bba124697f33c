"""Tests of mlbook.text: multi-hot and tf-idf encodings, the offline docstring data sets, and Keras's data sets'
encoding and their offline fallback. tests/test_full_profile.py reads real-format files."""

from __future__ import annotations

import numpy as np
import pytest

from mlbook import text

CORPUS = (
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the bird sang",
)


# ---- encodings ----------------------------------------------------------------------------------------------


def test_multi_hot_of_3_and_5_has_ones_at_3_and_5_only():
    encoded = text.multi_hot([[3, 5]], dimension=10)
    np.testing.assert_array_equal(encoded, [[0, 0, 0, 1, 0, 1, 0, 0, 0, 0]])
    assert encoded.dtype == np.float32


def test_multi_hot_ignores_order_and_repeats_and_encodes_empty_documents_as_zeros():
    encoded = text.multi_hot([[5, 3, 3, 5], [], [0]], dimension=6)
    np.testing.assert_array_equal(encoded, [[0, 0, 0, 1, 0, 1], [0] * 6, [1, 0, 0, 0, 0, 0]])


def test_multi_hot_names_the_bad_index():
    with pytest.raises(ValueError, match=r"expected word indices in \[0, 10\), got 3..12 in sequence 1"):
        text.multi_hot([[1], [3, 12]], dimension=10)


def test_tfidf_vectorizer_output_has_exactly_max_tokens_columns_and_a_capped_vocabulary():
    small = text.tfidf_vectorizer(CORPUS, max_tokens=50)  # fewer words than 50: padded to 50 columns
    assert small(np.array(CORPUS, dtype=object)).shape == (4, 50)
    capped = text.tfidf_vectorizer(CORPUS, max_tokens=5)  # more words than 5: only the most frequent are kept
    vectors = capped(np.array(CORPUS, dtype=object)).numpy()
    assert vectors.shape == (4, 5) and len(capped.get_vocabulary()) == 5
    assert capped.get_vocabulary()[1] == "the"  # index 0 is [UNK]; "the" is the most frequent word


@pytest.mark.equation("eq-workflow-tfidf")
def test_tfidf_weights_a_rare_word_more_than_a_common_one():
    vectorizer = text.tfidf_vectorizer(CORPUS, max_tokens=50)
    vocabulary = vectorizer.get_vocabulary()
    vector = vectorizer(np.array(["the bird"], dtype=object)).numpy()[0]
    # "the" is in 3 of 4 documents, "bird" in 1: idf = log(1 + 4/4) < log(1 + 4/2).
    assert vector[vocabulary.index("bird")] == pytest.approx(np.log(1 + 4 / 2), rel=1e-6)  # float32 rounding
    assert vector[vocabulary.index("the")] == pytest.approx(np.log(1 + 4 / 4), rel=1e-6)


def test_int_vectorizer_maps_unseen_words_to_unk_and_stays_below_max_tokens():
    vectorizer = text.text_vectorizer(CORPUS, max_tokens=6)
    sequences = text.to_sequences(vectorizer, ["the cat flew", "zebra"])
    assert sequences[1] == [1]  # 1 is [UNK]
    assert len(sequences[0]) == 3 and max(max(s) for s in sequences) < 6


def test_text_vectorizer_rejects_empty_training_texts():
    with pytest.raises(ValueError, match="at least one training text"):
        text.text_vectorizer([], max_tokens=10)


# ---- labelled docstrings ------------------------------------------------------------------------------------


def test_unique_documents_keeps_first_copies_and_drops_conflicting_labels():
    texts, labels = text.unique_documents(["a", "b", "a", "c", "b"], [0, 1, 0, 2, 3])
    assert texts == ["a", "c"] and labels.tolist() == [0, 2]  # "b" came with labels 1 and 3


def test_split_keeps_every_text_with_its_own_label():
    # Notes on the original: its split took the texts of rows [:9000] and the labels of rows [9000:].
    texts = [f"document of class {i % 3} number {i}" for i in range(60)]
    labels = np.arange(60) % 3
    train_texts, y_train, test_texts, y_test = text.split_texts(texts, labels, test_fraction=0.25, seed=0)
    for part_texts, part_labels in ((train_texts, y_train), (test_texts, y_test)):
        assert [int(t.split()[3]) for t in part_texts] == part_labels.tolist()
    assert not set(train_texts) & set(test_texts) and len(test_texts) == 15


def test_load_imdb_like_quick_is_a_balanced_binary_docstring_task():
    data = text.load_imdb_like("quick", num_words=2_000)
    assert data.source == "stdlib-docstrings" and data.class_names == text.DOCSTRING_BINARY_CLASS_NAMES
    counts = np.bincount(np.concatenate([data.y_train, data.y_test]))
    assert counts[0] == counts[1] > 500  # balanced, and hundreds of real documents per class
    assert max(max(s, default=0) for s in data.train_sequences + data.test_sequences) < 2_000
    assert not set(data.train_texts) & set(data.test_texts)  # no document on both sides of the split
    assert len(data.train_sequences) == len(data.y_train) == len(data.train_texts)


def test_load_reuters_like_quick_has_46_topics_all_seen_in_training():
    data = text.load_reuters_like("quick")
    assert data.num_classes == 46 and set(np.unique(data.y_train)) == set(range(46))
    assert data.class_names[0] == "tkinter"  # the largest package of the standard library


def test_load_news_like_has_8_classes_and_raw_texts():
    data = text.load_news_like()
    assert data.num_classes == 8 and isinstance(data.train_texts[0], str)
    assert set(np.unique(data.y_test)) == set(range(8))


# ---- Keras's data sets: encoding and fallback --------------------------------------------------------------


def test_full_profile_offline_falls_back_with_one_line(capsys):
    data = text.load_imdb_like("full", num_words=1_000)  # conftest sets MLBOOK_OFFLINE=1
    assert data.source == "stdlib-docstrings"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[mlbook.data] IMDB unavailable (MLBOOK_OFFLINE is set)")


def test_keras_word_indices_start_shift_and_replace_words_outside_the_vocabulary():
    # ranks 1, 5 and 40 become 4, 8 and 43; 43 is not below num_words=10, so it becomes OOV_CHAR (2)
    assert text.keras_word_indices([[1, 5, 40], []], num_words=10) == [[1, 4, 8, 2], [1]]
    assert text.keras_word_indices([[5]], num_words=1) == [[2, 2]]  # Keras replaces the start index too
