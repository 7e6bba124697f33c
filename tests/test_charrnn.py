"""Tests of mlbook.charrnn: the alphabet, the truncated-BPTT batches, both architectures' equations, training on
a repetitive string, sampling, and one regression test per item of the chapter's "Notes on the original"."""

from __future__ import annotations

import math
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from mlbook import charrnn as cr
from mlbook.profiles import PROFILES, select

#: A repetitive text whose next character depends on more than the current one ("t" is followed by "h", " " or
#: "a"), so a bigram model cannot predict it but a model with memory can.
REPEATED = "the cat sat on the mat " * 200


def numpy_step_arch1(cell: cr.HiddenFeedbackCell, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    U, W, b = (np.asarray(v) for v in (cell.U, cell.W, cell.b))
    return np.maximum(0.0, np.concatenate([x @ U, h @ W], axis=-1) + b)


# ---- text and batches ----------------------------------------------------------------------------------------


def test_encode_decode_round_trip():
    ids = cr.encode("hello world")
    assert ids.dtype == np.uint8 and ids.tolist() == [8, 5, 12, 12, 15, 0, 23, 15, 18, 12, 4]
    assert cr.decode(ids) == "hello world"


@pytest.mark.parametrize("text", ["Hello", "a,b", "café"])
def test_encode_names_characters_outside_the_alphabet(text):
    """The original's ``char2id`` silently mapped unknown characters to the space."""
    with pytest.raises(ValueError, match="expected text over the alphabet"):
        cr.encode(text)


def test_windows_targets_are_the_inputs_shifted_by_one():
    """Regression: the original's Arch 2 loop filled ``batchx`` and ``batchy`` but appended a stale ``batch`` to
    both mega-batches, so inputs and labels were one and the same (unrelated) matrix."""
    ids = cr.encode("the quick brown fox jumps over the lazy dog " * 5)
    windows = cr.StreamWindows(ids, batch_size=4, num_unrollings=6)
    for inputs, targets in windows:
        assert inputs.shape == targets.shape == (4, 6)
        np.testing.assert_array_equal(targets[:, :-1], inputs[:, 1:])
        assert not np.array_equal(inputs, targets)


def test_consecutive_windows_continue_each_stream():
    ids = np.arange(103) % 27
    windows = cr.StreamWindows(ids.astype(np.uint8), batch_size=3, num_unrollings=5)
    assert windows.stream_length == 34 and len(windows) == 6
    rows = np.concatenate([inputs for inputs, _ in windows], axis=1)  # (3, 30): the streams read in order
    for b in range(3):
        np.testing.assert_array_equal(rows[b], ids[34 * b : 34 * b + 30])


def test_windows_reject_text_too_short():
    with pytest.raises(ValueError, match="too short"):
        cr.StreamWindows(np.zeros(10, dtype=np.uint8), batch_size=4, num_unrollings=5)


def test_split_ids_holds_out_the_end():
    train, valid = cr.split_ids(np.arange(100), 0.1)
    np.testing.assert_array_equal(valid, np.arange(90, 100))
    assert len(train) == 90


@pytest.mark.equation("eq-rnn-bits")
def test_ngram_bits_hand_computed():
    ids = cr.encode("ab" * 500)
    # Unigram: a and b are equally frequent, so about 1 bit; the pseudocount moves mass to 25 unseen characters:
    # p = (500 + 0.5) / (1000 + 27 * 0.5), so -log2 p = 1.0187.
    assert cr.ngram_bits(ids, ids, order=1) == pytest.approx(-math.log2(500.5 / 1013.5), rel=1e-12)
    # Bigram: after a always b, so p = (n + 0.5) / (n + 13.5) with n ≈ 500 and about 0.04 bits.
    assert cr.ngram_bits(ids, ids, order=2) < 0.05


# ---- the architectures ---------------------------------------------------------------------------------------


@pytest.mark.equation("eq-rnn-arch1")
def test_hidden_feedback_cell_matches_its_equation():
    cell = cr.HiddenFeedbackCell(4)
    x = np.eye(cr.ALPHABET_SIZE, dtype=np.float32)[[3, 0]]
    h = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    output, (state,) = cell(x, [h])
    # Float32 matrix products of a few terms: agreement to 1e-6 is round-off, any wrong term is off by ~0.1.
    np.testing.assert_allclose(np.asarray(output), numpy_step_arch1(cell, x, h), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(output), np.asarray(state))
    assert cell.state_size == 8  # the concatenation doubles num_nodes


@pytest.mark.equation("eq-rnn-arch2")
def test_output_feedback_cell_matches_its_equation():
    cell = cr.OutputFeedbackCell(5)
    x = np.eye(cr.ALPHABET_SIZE, dtype=np.float32)[[1, 2]]
    p = cr.softmax(np.random.default_rng(1).normal(size=(2, cr.ALPHABET_SIZE))).astype(np.float32)
    logits, (new_state,) = cell(x, [p])
    U, W, b, V, c = (np.asarray(v) for v in (cell.U, cell.W, cell.b, cell.V, cell.c))
    expected = np.tanh(np.concatenate([x @ U, p @ W], axis=-1) + b) @ V + c
    np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-6)  # float32 round-off, as above
    np.testing.assert_allclose(np.asarray(new_state), cr.softmax(expected), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [lambda: cr.HiddenFeedbackRNN(8), lambda: cr.OutputFeedbackRNN(6, True), lambda: cr.OutputFeedbackRNN(6, False)],
    ids=["arch1", "arch2-teacher", "arch2-free"],
)
def test_model_shapes(make):
    model = cr.build_model(make())
    ids = np.zeros((3, 7), dtype=np.int32)
    logits, state = model(ids, ops.zeros((3, model.state_size)))
    assert tuple(logits.shape) == (3, 7, cr.ALPHABET_SIZE)
    assert tuple(state.shape) == (3, model.state_size)


def test_state_carried_between_windows_equals_one_long_window():
    """Regression: the original's Arch 1 put the zero state in ``feed_dict`` at step 0 only and never fed back
    the returned state, so every window restarted from zeros. Carrying the state makes two windows read as one."""
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(8))
    ids = np.random.default_rng(0).integers(0, 27, size=(2, 12)).astype(np.int32)
    zeros = ops.zeros((2, model.state_size))
    whole, _ = model(ids, zeros)
    first, state = model(ids[:, :5], zeros)
    second, _ = model(ids[:, 5:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), np.asarray(whole), atol=1e-6)
    restarted, _ = model(ids[:, 5:], zeros)
    assert np.abs(np.asarray(restarted) - np.asarray(second)).max() > 1e-3  # the state matters


def test_teacher_forcing_feeds_back_the_current_input():
    """Regression (why Arch 2 could only be a bigram model): teacher forcing feeds back y_{t-1}, and for
    next-character prediction y_{t-1} = x_t, the current input."""
    ids = cr.encode("teacher forcing duplicates the input " * 4)
    windows = cr.StreamWindows(ids, batch_size=2, num_unrollings=8)
    previous = None
    for k, (inputs, targets) in enumerate(windows):
        signal = cr.teacher_forcing_signal(targets, previous)
        if k == 0:
            np.testing.assert_array_equal(signal[:, 1:], inputs[:, 1:])  # the first step has no previous target
        else:
            np.testing.assert_array_equal(signal, inputs)
        previous = targets[:, -1]


def test_teacher_forced_model_gives_the_same_logits_with_or_without_targets():
    model = cr.build_model(cr.OutputFeedbackRNN(6, teacher_forcing=True))
    ids = cr.encode("a bigram model in disguise").astype(np.int32)[None]
    inputs, targets = ids[:, :-1], ids[:, 1:]
    state = ops.one_hot(inputs[:, 0], cr.ALPHABET_SIZE)  # the target before the first step is the first input
    with_targets, _ = model(inputs, state, targets=targets)
    without, _ = model(inputs, state)
    np.testing.assert_array_equal(np.asarray(with_targets), np.asarray(without))


# ---- training ------------------------------------------------------------------------------------------------


def repeated_corpus() -> cr.TextCorpus:
    ids = cr.encode(REPEATED)
    return cr.TextCorpus(ids[:4000], ids[4000:], source="test", description="a repeated sentence")


def test_arch1_loss_on_a_repetitive_string_falls_near_zero():
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(32))
    cfg = cr.TrainSettings(batch_size=8, num_unrollings=20, num_steps=300, learning_rate=0.01, decay_steps=100,
                           decay_rate=0.7, eval_every=100)
    history = cr.train_char_model(model, repeated_corpus(), cfg, log=None)
    # The sentence is deterministic once a few characters are known; only the first steps of each held-out
    # stream are uncertain. From 4.75 bits (uniform) training reaches ~0.02; 0.1 leaves room for seeds/CPUs.
    assert history["valid_bits"][-1] < 0.1
    assert history["step"] == [100.0, 200.0, 300.0]


def test_teacher_forced_arch2_cannot_beat_the_bigram_model():
    keras.utils.set_random_seed(0)
    corpus = repeated_corpus()
    model = cr.build_model(cr.OutputFeedbackRNN(16, teacher_forcing=True))
    cfg = cr.TrainSettings(batch_size=8, num_unrollings=20, num_steps=200, learning_rate=0.02, eval_every=200)
    history = cr.train_char_model(model, corpus, cfg, log=None)
    bigram = cr.ngram_bits(corpus.train_ids, corpus.valid_ids, order=2)
    # It learns the bigram statistics (within 0.1 bit) but nothing more: a model that sees only x_t cannot do
    # better than the true conditional distribution of the next character given x_t, which the counts estimate.
    assert bigram - 0.05 < history["valid_bits"][-1] < bigram + 0.1
    assert bigram > 0.3  # and that bound is far from zero on this text


@pytest.mark.equation("eq-rnn-clip-decay")
def test_optimizer_decays_in_steps():
    cfg = cr.TrainSettings(batch_size=1, num_unrollings=1, num_steps=1, learning_rate=0.01, decay_steps=10,
                           decay_rate=0.5, clipnorm=2.0)
    schedule = cr.make_optimizer(cfg)._learning_rate
    assert [float(schedule(step)) for step in (0, 9, 10, 25)] == pytest.approx([0.01, 0.01, 0.005, 0.0025])


def test_train_step_clips_the_gradient_to_the_global_norm():
    """With plain gradient descent at learning rate 1, a clipped step moves the weights by exactly ``clipnorm``
    (global norm over all weights); an unclipped one by the gradient's larger norm."""
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int32)

    def step_norm(clipnorm: float) -> float:
        keras.utils.set_random_seed(0)
        model = cr.build_model(cr.HiddenFeedbackRNN(6))
        before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        cr.make_train_step(model, keras.optimizers.SGD(learning_rate=1.0), clipnorm)(
            ids[:, :-1], ids[:, 1:], ops.zeros((2, model.state_size)))
        moves = [keras.ops.convert_to_numpy(w) - b for w, b in zip(model.trainable_weights, before)]
        return float(np.sqrt(sum(np.sum(m.astype(np.float64) ** 2) for m in moves)))

    unclipped = step_norm(1e6)
    assert unclipped > 0.1
    assert step_norm(0.1) == pytest.approx(0.1, rel=1e-4)


@pytest.mark.equation("eq-rnn-bptt")
def test_state_gradient_norm_of_the_last_state_matches_the_hand_computation():
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(6))
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int32)
    norms = cr.state_gradient_norms(model, ids)
    assert norms.shape == (3,)
    # dL/dh_T = (softmax(o_T) - onehot(y)) V^T / batch, for the mean loss over the batch.
    h = np.zeros((2, 12), dtype=np.float32)
    for t in range(3):
        h = numpy_step_arch1(model.cell, np.eye(27, dtype=np.float32)[ids[:, t]], h)
    V, c = (np.asarray(v) for v in model.readout.weights)
    grad = (cr.softmax(h @ V + c) - np.eye(27)[ids[:, -1]]) @ V.T / 2
    # float32 forward pass against a float64 hand computation: 1e-5 relative is round-off.
    assert norms[-1] == pytest.approx(np.linalg.norm(grad, axis=1).mean(), rel=1e-5)


@pytest.mark.equation("eq-rnn-bptt")
def test_state_gradients_further_back_are_the_product_of_the_step_jacobians():
    """∂L_T/∂h_t = ∂L_T/∂h_T Π ∂h_s/∂h_{s−1}: for Arch 1's ReLU step, ∂h_s/∂h_{s−1} multiplies by W on the half of
    the pre-activation that h_{s−1} feeds, where that half is positive. By hand, in float64, for every t."""
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(6))
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int32)
    U, W, b = (np.asarray(v, dtype=np.float64) for v in (model.cell.U, model.cell.W, model.cell.b))
    V, c = (np.asarray(v, dtype=np.float64) for v in model.readout.weights)
    states, pre_activations = [np.zeros((2, 12))], []
    for t in range(3):
        pre_activations.append(np.concatenate([np.eye(27)[ids[:, t]] @ U, states[-1] @ W], axis=-1) + b)
        states.append(np.maximum(pre_activations[-1], 0.0))
    gradient = (cr.softmax(states[-1] @ V + c) - np.eye(27)[ids[:, -1]]) @ V.T / 2  # ∂L_T/∂h_T, batch mean
    gradients = [gradient]
    for step in (2, 1):  # h_step feeds the second half of the pre-activation of step + 1
        gradient = (gradients[0] * (pre_activations[step] > 0))[:, 6:] @ W.T
        gradients.insert(0, gradient)
    expected = [np.linalg.norm(g, axis=1).mean() for g in gradients]
    # float32 forward and backward passes against float64: 1e-4 relative is round-off
    np.testing.assert_allclose(cr.state_gradient_norms(model, ids), expected, rtol=1e-4)


# ---- sampling ------------------------------------------------------------------------------------------------


@pytest.mark.equation("eq-rnn-temperature", "eq-cnn-softmax")
def test_temperature_divides_the_logits_before_the_softmax():
    """Logits log(1, 4, 9): the softmax gives (1, 4, 9)/14, and τ = 2 gives exp(o/2) ∝ (1, 2, 3), so (1, 2, 3)/6."""
    logits = np.log(np.array([[1.0, 4.0, 9.0]]))
    np.testing.assert_allclose(cr.softmax(logits), [[1 / 14, 4 / 14, 9 / 14]], rtol=1e-12)
    np.testing.assert_allclose(cr.temperature_probabilities(logits, 2.0), [[1 / 6, 2 / 6, 3 / 6]], rtol=1e-12)
    np.testing.assert_allclose(cr.softmax(logits + 1000.0), cr.softmax(logits), rtol=1e-12)  # shifted: no overflow


def test_temperature_zero_is_greedy():
    logits = np.random.default_rng(0).normal(size=(50, 27))
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(cr.sample_ids(cr.temperature_probabilities(logits, 0.0), rng), logits.argmax(1))
    # As the temperature goes to 0 the distribution concentrates on the arg-max: with logit gaps of at least
    # ~1e-3 here, tau = 1e-6 makes every other probability below exp(-1000).
    np.testing.assert_array_equal(cr.sample_ids(cr.temperature_probabilities(logits, 1e-6), rng), logits.argmax(1))


def test_temperature_one_samples_the_model_distribution():
    logits = np.log(np.array([[0.1, 0.2, 0.7]]))
    probabilities = cr.temperature_probabilities(np.repeat(logits, 100_000, axis=0), 1.0)
    draws = cr.sample_ids(probabilities, np.random.default_rng(0))
    # Binomial standard error <= 0.0016 for 1e5 draws; 0.01 is over six of them.
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / draws.size, [0.1, 0.2, 0.7], atol=0.01)


def test_higher_temperature_flattens_the_distribution():
    logits = np.array([[2.0, 1.0, 0.0]])
    entropies = [-(p * np.log(p)).sum() for p in (cr.temperature_probabilities(logits, t)[0] for t in (0.5, 1, 2))]
    assert entropies[0] < entropies[1] < entropies[2]


def test_sampling_applies_the_softmax_once():
    """Regression: the original sampled Arch 2 from ``softmax(softmax(logits))``. Probabilities lie in [0, 1], so
    the second softmax leaves odds of at most e : 1 between characters — near-uniform gibberish."""
    confident = np.full((1, 27), -10.0)
    confident[0, 5] = 10.0  # the model is sure the next character is "e"
    np.testing.assert_allclose(cr.temperature_probabilities(confident, 1.0), cr.softmax(confident), rtol=1e-12)
    assert cr.temperature_probabilities(confident, 1.0)[0, 5] > 0.999
    doubled = cr.original_sampling_probabilities(confident)[0]
    assert doubled.max() / doubled.min() <= math.e + 1e-9
    assert doubled[5] < 0.1  # "e" gets under 10% instead of 99.9%


def test_generate_returns_one_string_per_temperature():
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(8))
    samples = cr.generate(model, 30, [0.0, 1.0], seed=0, prompt="the ")
    assert len(samples) == 2 and all(len(s) == 30 and set(s) <= set(cr.ALPHABET) for s in samples)
    assert cr.generate(model, 30, [0.0], seed=5, prompt="the ")[0] == samples[0]  # greedy ignores the seed


def test_bits_per_character_is_the_mean_surprise_of_each_character_step_by_step():
    """The definition, computed the way generate() samples: one character at a time from the prompt's state, each
    character's probability at temperature 1."""
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(8))
    prompt, texts = "the ", ["cat sat", "zzzz q"]
    bits = cr.bits_per_character(model, texts, prompt=prompt)
    for text, found in zip(texts, bits):
        logits, state = model(cr.encode(prompt).astype(np.int32)[None], ops.zeros((1, model.state_size)))
        surprise = []
        for character in text:
            p = cr.temperature_probabilities(np.asarray(logits)[:, -1], 1.0)[0]
            surprise.append(-np.log2(p[cr.ALPHABET.index(character)]))
            logits, state = model(np.array([[cr.ALPHABET.index(character)]], dtype=np.int32), state)
        np.testing.assert_allclose(found, np.mean(surprise), rtol=1e-5)
    with pytest.raises(ValueError, match="non-empty"):
        cr.bits_per_character(model, [""])
    with pytest.raises(ValueError, match="prompt"):
        cr.bits_per_character(model, ["abc"], prompt="")


def test_a_greedy_sample_surprises_its_model_less_than_a_hot_one():
    keras.utils.set_random_seed(0)
    model = cr.build_model(cr.HiddenFeedbackRNN(8))
    samples = cr.generate(model, 200, [0.0, 2.0], seed=0, prompt="the ")
    greedy, hot = cr.bits_per_character(model, samples, prompt="the ")
    assert greedy < hot


# ---- data ----------------------------------------------------------------------------------------------------


def test_read_text8_checks_the_archive(tmp_path):
    path = tmp_path / "text8.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("text8", " anarchism originated")
    with pytest.raises(ValueError, match="expected 100,000,000 characters"):
        cr.read_text8(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other", "x")
    with pytest.raises(ValueError, match="member 'text8'"):
        cr.read_text8(path)


def test_full_profile_falls_back_offline_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cr, "stdlib_text8", lambda: "a small offline corpus " * 10)
    corpus = cr.load_corpus(0.1, profile="full")  # MLBOOK_OFFLINE=1 in every test
    assert corpus.source == "stdlib-docstrings"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "text8 unavailable" in lines[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_settings_exist_for_every_profile(profile):
    cfg = select(cr.SETTINGS, profile)
    assert cfg.hidden.num_steps >= cfg.hidden.eval_every
    assert cfg.hidden_activation in ("relu", "tanh")


def test_concatenation_makes_half_the_state_memoryless():
    """The original's note: with [xU ; hW] the first num_nodes units of h_t depend on x_t alone and the other
    num_nodes on h_{t-1} alone, unlike the usual sum xU + hW, where every unit sees both. (The post's claim that
    a large enough V recovers the sum does not hold: V acts after the non-linearity.)"""
    cell = cr.HiddenFeedbackCell(4)
    x = np.eye(cr.ALPHABET_SIZE, dtype=np.float32)[[7]]
    rng = np.random.default_rng(0)
    first, _ = cell(x, [rng.normal(size=(1, 8)).astype(np.float32)])
    second, _ = cell(x, [rng.normal(size=(1, 8)).astype(np.float32)])
    np.testing.assert_array_equal(np.asarray(first)[:, :4], np.asarray(second)[:, :4])  # same input half
    other_input, _ = cell(np.eye(cr.ALPHABET_SIZE, dtype=np.float32)[[8]], [np.zeros((1, 8), np.float32)])
    same_input, _ = cell(x, [np.zeros((1, 8), np.float32)])
    np.testing.assert_array_equal(np.asarray(other_input)[:, 4:], np.asarray(same_input)[:, 4:])  # same memory half
