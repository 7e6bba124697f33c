"""The ``full`` profile, exercised without a network on small files in the real data sets' formats.

The tests write ``mnist.npz``, ``imdb.npz``, ``reuters.npz``, ``text8.zip`` and an ``img_align_celeba/`` folder into
the data folder (``MLBOOK_DATA``, a temporary folder per test), point the loaders' SHA-256 constants at the written
files, and keep ``MLBOOK_OFFLINE=1``: a loader that tried the network would fall back and fail the test.

The loader tests check that each ``*_like("full")`` returns the real data, read correctly. The smoke tests run each
chapter's ``full`` path at toy size: the real loader, the model of the chapter's ``SETTINGS["full"]``, and one
training step (epochs or steps cut with ``dataclasses.replace``; sizes of the model are left alone).
"""

from __future__ import annotations

import dataclasses
import importlib
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from mlbook import augment, autoencoder, charrnn, cnn, data, extractors, gan, inception, style, text, vae, workflow
from mlbook.profiles import select

#: A small vocabulary for the reader tests, so that some words fall outside it and become OOV_CHAR.
SMALL_NUM_WORDS = 30
#: Ten training images per digit: the augmentation chapter's few-labels experiment draws ten per class.
NUM_MNIST_TRAIN, NUM_MNIST_TEST = 100, 20
NUM_FACES = 12
#: CelebA's aligned faces are 178 wide and 218 high.
CELEBA_HEIGHT, CELEBA_WIDTH = 218, 178


# --- writing real-format files -----------------------------------------------------------------------------------


def ragged(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """A 1-D object array of Python int lists: how Keras's IMDB and Reuters files store their documents."""
    array = np.empty(len(sequences), dtype=object)
    array[:] = [list(map(int, s)) for s in sequences]
    return array


def random_documents(rng: np.random.Generator, count: int, max_rank: int) -> np.ndarray:
    """``count`` documents of 1–20 word ranks in ``[1, max_rank]``, ragged."""
    return ragged([rng.integers(1, max_rank + 1, size=rng.integers(1, 21)) for _ in range(count)])


def write_imdb_npz(path: Path, num_train: int = 24, num_test: int = 16, max_rank: int = 60) -> Path:
    """An ``imdb.npz`` in Keras's layout: ``x_train``, ``y_train``, ``x_test``, ``y_test``, labels 0 and 1."""
    rng = np.random.default_rng(1)
    np.savez(path, x_train=random_documents(rng, num_train, max_rank), y_train=np.arange(num_train) % 2,
             x_test=random_documents(rng, num_test, max_rank), y_test=np.arange(num_test) % 2)
    return path


def write_reuters_npz(path: Path, count: int = 60, max_rank: int = 60) -> Path:
    """A ``reuters.npz`` in Keras's layout: ``x`` and ``y`` (46 topics), split by the reader."""
    rng = np.random.default_rng(2)
    np.savez(path, x=random_documents(rng, count, max_rank), y=np.arange(count) % 46)
    return path


def write_mnist_npz(path: Path) -> Path:
    """An ``mnist.npz``: uint8 images of shape (n, 28, 28) and labels 0–9, every digit in both parts."""
    rng = np.random.default_rng(3)
    np.savez(path, x_train=rng.integers(0, 256, (NUM_MNIST_TRAIN, 28, 28), dtype=np.uint8),
             y_train=np.arange(NUM_MNIST_TRAIN) % 10,
             x_test=rng.integers(0, 256, (NUM_MNIST_TEST, 28, 28), dtype=np.uint8),
             y_test=np.arange(NUM_MNIST_TEST) % 10)
    return path


def text8_like(num_chars: int) -> str:
    """``num_chars`` characters of words over text8's alphabet, different from one end to the other."""
    rng = np.random.default_rng(4)
    words = ["anarchism", "originated", "as", "a", "term", "of", "abuse", "first", "used", "against", "early"]
    text = " ".join(words[i] for i in rng.integers(0, len(words), size=num_chars // 3))
    return (" " + text)[:num_chars]


def write_text8_zip(path: Path, content: str) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("text8", content)
    return path


def face_colours(count: int) -> np.ndarray:
    """One plain RGB colour per face (plain, so that JPEG and resizing keep it)."""
    return np.random.default_rng(5).integers(20, 236, size=(count, 3)).astype(np.uint8)


def write_celeba_folder(folder: Path, colours: np.ndarray) -> Path:
    """An ``img_align_celeba/`` folder of 178×218 JPEGs named like CelebA's (``000001.jpg``...)."""
    folder.mkdir(parents=True)
    for index, colour in enumerate(colours, start=1):
        pixels = np.broadcast_to(colour, (CELEBA_HEIGHT, CELEBA_WIDTH, 3)).copy()
        Image.fromarray(pixels).save(folder / f"{index:06d}.jpg", quality=95)
    return folder


@pytest.fixture
def place(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[Path], Path], str, object, str], Path]:
    """Write a file into the data folder with ``write(path)`` and set ``module.<constant>`` to its SHA-256, so
    that :func:`mlbook.data.download` accepts it as already downloaded."""

    def place_file(write: Callable[[Path], Path], filename: str, module: object, constant: str) -> Path:
        folder = data.data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = write(folder / filename)
        monkeypatch.setattr(module, constant, data.file_digest(path))
        return path

    return place_file


@pytest.fixture
def full(monkeypatch: pytest.MonkeyPatch) -> None:
    """``MLBOOK_PROFILE=full``; conftest keeps ``MLBOOK_OFFLINE=1``, so nothing can be downloaded."""
    monkeypatch.setenv("MLBOOK_PROFILE", "full")


@pytest.fixture
def mnist_file(place) -> Path:
    return place(write_mnist_npz, "mnist.npz", data, "MNIST_SHA256")


@pytest.fixture
def imdb_file(place) -> Path:
    return place(write_imdb_npz, "imdb.npz", text, "IMDB_SHA256")


@pytest.fixture
def reuters_file(place) -> Path:
    return place(write_reuters_npz, "reuters.npz", text, "REUTERS_SHA256")


@pytest.fixture
def text8_file(place, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A ``text8.zip`` long enough for the full settings' windows (1% held out: 32 streams of 101 characters),
    with the length check pointed at its length instead of the real 100,000,000."""
    content = text8_like(400_000)
    monkeypatch.setattr(charrnn, "TEXT8_CHARS", len(content))
    return place(lambda path: write_text8_zip(path, content), "text8.zip", charrnn, "TEXT8_SHA256"), content


@pytest.fixture
def celeba_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, np.ndarray]:
    colours = face_colours(NUM_FACES)
    folder = write_celeba_folder(tmp_path / "img_align_celeba", colours)
    monkeypatch.setenv(gan.CELEBA_ENV_VAR, str(folder))
    return folder, colours


def assert_no_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    assert "[mlbook.data]" not in capsys.readouterr().out


# --- our IMDB and Reuters readers against Keras's ------------------------------------------------------------


@pytest.mark.parametrize(("name", "write", "read"), [
    ("imdb", write_imdb_npz, text.read_imdb_npz),
    ("reuters", write_reuters_npz, text.read_reuters_npz),
])
def test_our_reader_returns_what_keras_load_data_returns(tmp_path, monkeypatch, name, write, read):
    path = write(tmp_path / f"{name}.npz")
    keras_module = importlib.import_module(f"keras.src.datasets.{name}")
    monkeypatch.setattr(keras_module, "get_file", lambda *args, **kwargs: str(path))
    (keras_x_train, keras_y_train), (keras_x_test, keras_y_test) = keras_module.load_data(num_words=SMALL_NUM_WORDS)
    x_train, y_train, x_test, y_test = read(path, SMALL_NUM_WORDS)
    assert x_train == [list(s) for s in keras_x_train] and x_test == [list(s) for s in keras_x_test]
    np.testing.assert_array_equal(y_train, keras_y_train)
    np.testing.assert_array_equal(y_test, keras_y_test)
    flat = [index for s in x_train + x_test for index in s]
    assert text.OOV_CHAR in flat and max(flat) == SMALL_NUM_WORDS - 1  # the vocabulary cut did something


def test_keras_npz_reader_names_a_missing_file_missing_arrays_and_mismatched_lengths(tmp_path):
    with pytest.raises(FileNotFoundError, match="imdb.npz"):
        text.read_imdb_npz(tmp_path / "imdb.npz", 100)
    np.savez(tmp_path / "reuters.npz", x=ragged([[1, 2]]))
    with pytest.raises(ValueError, match=r"missing arrays \['y'\]"):
        text.read_reuters_npz(tmp_path / "reuters.npz", 100)
    np.savez(tmp_path / "short.npz", x=ragged([[1, 2], [3]]), y=np.array([0]))
    with pytest.raises(ValueError, match=r"expected x as n sequences and y of shape \(n,\), got shapes \(2,\) and"):
        text.read_reuters_npz(tmp_path / "short.npz", 100)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        text.read_reuters_npz(tmp_path / "text.npz", 100)


# --- the real loaders, on files in the real formats ------------------------------------------------------------


def test_load_mnist_like_full_reads_mnist_npz(full, mnist_file, capsys):
    dataset = data.load_mnist_like()
    assert dataset.source == "mnist" and dataset.x_train.shape == (NUM_MNIST_TRAIN, 28, 28, 1)
    with np.load(mnist_file) as written:
        np.testing.assert_allclose(dataset.x_test[..., 0], written["x_test"] / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(dataset.y_train, written["y_train"])
    assert_no_fallback(capsys)


def test_load_imdb_like_full_reads_imdb_npz(full, imdb_file, capsys):
    dataset = text.load_imdb_like(num_words=SMALL_NUM_WORDS)
    assert dataset.source == "imdb" and (len(dataset.train_sequences), len(dataset.test_sequences)) == (24, 16)
    x_train, y_train, *_ = text.read_imdb_npz(imdb_file, SMALL_NUM_WORDS)
    assert dataset.train_sequences == x_train and dataset.y_train.tolist() == y_train.tolist()
    assert all(s[0] == text.START_CHAR for s in dataset.train_sequences)
    assert_no_fallback(capsys)


def test_load_reuters_like_full_reads_reuters_npz_and_keeps_a_fifth_for_testing(full, reuters_file, capsys):
    dataset = text.load_reuters_like(num_words=SMALL_NUM_WORDS)
    assert dataset.source == "reuters" and dataset.num_classes == 46
    assert (len(dataset.train_sequences), len(dataset.test_sequences)) == (48, 12)
    with np.load(reuters_file, allow_pickle=True) as written:
        assert sorted(dataset.y_train.tolist() + dataset.y_test.tolist()) == sorted(written["y"].tolist())
    assert_no_fallback(capsys)


def test_load_corpus_full_reads_text8_and_holds_out_its_end(full, text8_file, capsys):
    _, content = text8_file
    corpus = charrnn.load_corpus(0.01)
    assert corpus.source == "text8"
    cut = len(content) - round(0.01 * len(content))
    np.testing.assert_array_equal(corpus.train_ids, charrnn.encode(content[:cut]))
    np.testing.assert_array_equal(corpus.valid_ids, charrnn.encode(content[cut:]))
    assert_no_fallback(capsys)


def test_read_text8_refuses_a_text_of_the_wrong_length(tmp_path):
    path = write_text8_zip(tmp_path / "text8.zip", "too short")
    with pytest.raises(ValueError, match="expected 100,000,000 characters, got 9"):
        charrnn.read_text8(path)


def test_load_gan_images_full_reads_the_celeba_folder(full, celeba_folder, capsys):
    _, colours = celeba_folder
    cfg = select(gan.SETTINGS)
    faces = gan.load_gan_images(cfg)
    assert faces.source == "celeba" and faces.image_shape == (cfg.face_side, cfg.face_side, 3)
    assert len(faces.x_train) + len(faces.x_test) == NUM_FACES
    # files are read in name order and the first 5% (at least one) are the test set
    mean_colours = np.concatenate([faces.x_test, faces.x_train]).mean(axis=(1, 2))
    np.testing.assert_allclose(mean_colours, colours / 255.0, atol=3 / 255)
    assert_no_fallback(capsys)


def test_vgg19_preprocessing_matches_keras_preprocess_input():
    """Our layer takes RGB images in [0, 1]; Keras's ``preprocess_input`` takes RGB in 0–255 and returns BGR minus
    the ImageNet mean. The weights were trained on the latter, so any difference changes every feature."""
    images = np.random.default_rng(6).random((2, 5, 7, 3)).astype(np.float32)
    ours = extractors.vgg19_feature_model(weights=None).get_layer("vgg_preprocess")(images)
    expected = keras.applications.vgg19.preprocess_input(images * 255.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, atol=1e-3)


# --- each chapter's full path at toy size ------------------------------------------------------------------------


def test_cnn_mnist_full_trains_the_full_model_one_step_on_mnist(full, mnist_file):
    dataset, cfg = data.load_mnist_like(), select(cnn.SETTINGS)
    assert dataset.source == "mnist"
    rung = cnn.Rung("smoke", "adam", True, cfg.dropout_rate, num_steps=1)
    result = cnn.run_rung(rung, dataset, dataclasses.replace(cfg, batch_size=8, log_every=1), seed=0)
    assert result.history["step"] == [1] and np.isfinite(result.test_loss)
    assert result.model.count_params() > cfg.dense_units * 7 * 7 * cfg.num_filters  # the 1,024-unit dense layer


def test_inception_full_trains_the_posts_widths_with_the_gap_head_one_epoch_on_mnist(full, mnist_file):
    """The gap head only: the flatten head's fc1 has 140 M weights (1.7 GB with Adam's state), too much for a
    smoke test on a 2-core machine; its sizes are the same ``cfg.sizes``."""
    dataset, cfg = data.load_mnist_like(), select(inception.SETTINGS)
    cfg = dataclasses.replace(cfg, gap=dataclasses.replace(cfg.gap, num_epochs=1))
    trained = inception.train_inception_net(dataset, cfg, "gap", seed=0)
    assert dataset.source == "mnist" and cfg.sizes == inception.ORIGINAL_SIZES
    assert len(trained.history["loss"]) == 1 and np.isfinite(trained.history["val_loss"][0])


def test_augmentation_full_runs_the_few_labels_experiment_one_epoch_on_mnist(full, mnist_file):
    dataset, cfg = data.load_mnist_like(), select(augment.SETTINGS)
    result = augment.run_few_labels(dataset, dataclasses.replace(cfg, num_epochs=1, repeats=1), seed=0)
    assert dataset.source == "mnist" and set(result.accuracy) == {"plain", "augmented"}
    assert all(0.0 <= accuracy <= 1.0 for accuracy in result.accuracy.values())
    assert all(len(history["loss"]) == 1 for history in result.history.values())


def test_autoencoders_full_train_both_models_one_epoch_on_mnist(full, mnist_file):
    dataset, cfg = data.load_mnist_like(), select(autoencoder.SETTINGS)
    cfg = dataclasses.replace(cfg, dense_num_epochs=1, conv_num_epochs=1)
    for kind in ("dense", "conv"):
        trained = autoencoder.train_or_load(kind, dataset, cfg, seed=0)
        assert not trained.from_cache and len(trained.history["loss"]) == 1
        assert np.isfinite(trained.history["val_loss"][0])


def test_vae_full_trains_one_epoch_on_mnist(full, mnist_file):
    dataset, cfg = data.load_mnist_like(), select(vae.SETTINGS)
    trained = vae.train_or_load_vae(dataset, dataclasses.replace(cfg, num_epochs=1), seed=0)
    assert dataset.source == "mnist" and len(trained.history["loss"]) == 1
    assert np.isfinite(trained.history["val_loss"][0])
    assert trained.model.encoder.count_params() > 784 * cfg.intermediate_dim


def test_keras_workflow_full_fits_the_binary_classifier_one_epoch_on_imdb(full, imdb_file):
    cfg = select(workflow.SETTINGS)
    reviews = text.load_imdb_like(num_words=cfg.num_words)
    assert reviews.source == "imdb" and reviews.num_words == 10_000
    model = workflow.dense_classifier(cfg.num_words, cfg.binary_hidden, 2, name="binary")
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(text.multi_hot(reviews.train_sequences), reviews.y_train, epochs=1,
                        batch_size=cfg.binary_batch_size, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_keras_workflow_full_runs_the_bottleneck_experiment_one_epoch_on_reuters(full, reuters_file):
    cfg = select(workflow.SETTINGS)
    wires = text.load_reuters_like(num_words=cfg.num_words)
    assert wires.source == "reuters" and wires.num_classes == 46
    x_train, x_test = text.multi_hot(wires.train_sequences), text.multi_hot(wires.test_sequences)
    runs = workflow.bottleneck_experiment(
        x_train, wires.y_train, (x_test, wires.y_test), wires.num_classes, cfg.reuters_hidden, cfg.bottleneck_width,
        num_epochs=1, batch_size=cfg.reuters_batch_size, config={"data": wires.source}, seed=0)
    assert set(runs) == {"baseline", "bottleneck"}
    assert all(len(run.history["val_accuracy"]) == 1 for run in runs.values())


def test_gan_full_trains_the_full_dcgan_one_step_on_celeba(full, celeba_folder):
    cfg = select(gan.SETTINGS)
    faces = gan.load_gan_images(cfg)
    assert faces.source == "celeba"
    trained = gan.train_dcgan(faces.x_train, dataclasses.replace(cfg, num_epochs=1, batch_size=8,
                                                                num_fixed_samples=2))
    assert len(trained.history["d_loss"]) == 1 and np.isfinite(trained.history["g_loss"][0])
    assert trained.epoch_samples.shape == (2, 2, 64, 64, 3)  # before and after the epoch
    assert trained.gan.generator.input_shape == (None, cfg.latent_dim)


def test_char_rnn_full_trains_all_three_full_models_one_step_on_text8(full, text8_file):
    cfg = select(charrnn.SETTINGS)
    corpus = charrnn.load_corpus(cfg.valid_fraction)
    assert corpus.source == "text8"
    models = [(charrnn.HiddenFeedbackRNN(cfg.hidden_nodes, cfg.hidden_activation), cfg.hidden),
              (charrnn.OutputFeedbackRNN(cfg.output_nodes, teacher_forcing=True), cfg.teacher),
              (charrnn.OutputFeedbackRNN(cfg.output_nodes, teacher_forcing=False), cfg.free)]
    for model, train_cfg in models:
        history = charrnn.train_char_model(model, corpus, dataclasses.replace(train_cfg, num_steps=1, eval_every=1),
                                           log=None)
        assert history["step"] == [1.0] and 0 < history["valid_bits"][0] < 10


def test_style_transfer_full_builds_vgg19_and_takes_one_adam_step(full, monkeypatch):
    """VGG19's ImageNet weights (80 MB) are too big to write here: the full path runs with random weights
    (``download_vgg19_weights`` returns ``None``, which ``vgg19_feature_model`` reads as "no weights"), on 32×32
    images instead of the profile's 384×384."""
    monkeypatch.setattr(extractors, "download_vgg19_weights", lambda: None)
    cfg = select(style.SETTINGS)
    extractor = style.load_extractor(cfg)
    assert extractor.name == "vgg19" and len(extractor.layers) == 16
    rng = np.random.default_rng(7)
    content, style_image, initial = (rng.random((32, 32, 3)).astype(np.float32) for _ in range(3))
    objective = style.StyleObjective(extractor, content_image=content, style_image=style_image)
    result = style.optimise_adam(objective, initial, num_steps=1, learning_rate=cfg.adam_learning_rate)
    assert len(result.history["total"]) == 2 and np.isfinite(result.history["total"]).all()
    assert not np.allclose(result.image, initial)
