"""Character-level recurrent networks: the two vanilla architectures of the chapter :ref:`ch-char-rnn`.

The alphabet is the space and the 26 lower-case letters, as in the text8 corpus. Both models read one character
per step and output logits over the alphabet for the next one:

- **Arch 1, hidden-state feedback** (:class:`HiddenFeedbackRNN`): :math:`h_t = f([x_tU \\,;\\, h_{t-1}W] + b)`,
  :math:`o_t = h_tV + c`. The hidden state carries the history. A custom cell inside ``keras.layers.RNN``.
- **Arch 2, output feedback** (:class:`OutputFeedbackRNN`): the previous *output* replaces the hidden state,
  :math:`h_t = \\tanh([x_tU \\,;\\, \\hat y_{t-1}W] + b)`. With teacher forcing, :math:`\\hat y_{t-1}` is the
  previous target, which for next-character prediction is the current input: the model is a bigram model. Fed
  back its own softmax output instead, it is a real recurrent network.

Training uses truncated back-propagation through time: the text is cut into ``batch_size`` parallel streams and
each stream into windows of ``num_unrollings`` characters; the state is carried from one window to the next, but
gradients stop at the window's start. Gradients are clipped by their global norm and the learning rate decays
exponentially.

References:
    Elman, J. L. (1990). Finding structure in time. *Cognitive Science* 14(2), 179–211.
    Williams, R. J. & Zipser, D. (1989). A learning algorithm for continually running fully recurrent neural
    networks. *Neural Computation* 1(2), 270–280 (teacher forcing).
    Pascanu, R., Mikolov, T. & Bengio, Y. (2013). On the difficulty of training recurrent neural networks. *ICML*.
    Goodfellow, I., Bengio, Y. & Courville, A. (2016). *Deep Learning*, chapter 10. MIT Press.
    Mahoney, M. (2006). The text8 corpus, http://mattmahoney.net/dc/textdata.html.
"""

from __future__ import annotations

import dataclasses
import math
import string
import zipfile
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mlbook.cache import evaluation_only
from mlbook.corpora import stdlib_text8
from mlbook.data import DownloadError, announce_fallback, download
from mlbook.distribute import clip_by_global_norm, scale_for_replicas, split_rows_across_replicas
from mlbook.profiles import resolve_profile

#: The model's alphabet: id 0 is the space, ids 1–26 are a–z.
ALPHABET = " " + string.ascii_lowercase
ALPHABET_SIZE = len(ALPHABET)
LN2 = math.log(2.0)

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_SHA256 = "a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232"
#: text8 is the first 10**8 bytes of a cleaned English Wikipedia dump (not 10 million, as the original said).
TEXT8_CHARS = 100_000_000

_CODE_OF_BYTE = np.full(256, 255, dtype=np.uint8)
_CODE_OF_BYTE[ord(" ")] = 0
_CODE_OF_BYTE[ord("a") : ord("z") + 1] = np.arange(1, 27)


# --------------------------------------------------------------------------------------------------------------
# Text, ids and batches
# --------------------------------------------------------------------------------------------------------------


def encode(text: str) -> np.ndarray:
    """Map a string over :data:`ALPHABET` to uint8 ids (space 0, a–z 1–26).

    Raises:
        ValueError: naming the first characters that are not in the alphabet (the original silently mapped them
            to the space).
    """
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    ids = _CODE_OF_BYTE[raw]
    if raw.size != len(text) or (ids == 255).any():
        bad = sorted({c for c in text if c not in ALPHABET})[:10]
        raise ValueError(f"expected text over the alphabet {ALPHABET!r}, got characters {bad}")
    return ids


def decode(ids: Sequence[int] | np.ndarray) -> str:
    """Map ids back to a string."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= ALPHABET_SIZE):
        raise ValueError(f"expected ids in [0, {ALPHABET_SIZE}), got values from {ids.min()} to {ids.max()}")
    return "".join(ALPHABET[i] for i in ids.ravel())


@dataclasses.dataclass(frozen=True)
class TextCorpus:
    """A corpus as ids, split into a training part and a held-out part, and where it came from."""

    train_ids: np.ndarray
    valid_ids: np.ndarray
    source: str
    description: str


def split_ids(ids: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last ``valid_fraction`` of the text (contiguous, so no window straddles the two parts)."""
    if not 0 < valid_fraction < 1:
        raise ValueError(f"expected 0 < valid_fraction < 1, got {valid_fraction}")
    cut = len(ids) - int(round(valid_fraction * len(ids)))
    return ids[:cut], ids[cut:]


def read_text8(path) -> str:
    """The text of ``text8.zip`` (one line of a–z and spaces).

    Raises:
        ValueError: if the archive has no ``text8`` member or the text is not 10**8 characters.
    """
    with zipfile.ZipFile(path) as archive:
        if "text8" not in archive.namelist():
            raise ValueError(f"{path}: expected a member 'text8', found {archive.namelist()}")
        text = archive.read("text8").decode("ascii")
    if len(text) != TEXT8_CHARS:
        raise ValueError(f"{path}: expected {TEXT8_CHARS:,} characters, got {len(text):,}")
    return text


def load_corpus(valid_fraction: float, profile: str | None = None) -> TextCorpus:
    """text8 in ``full`` (downloaded once; on failure, one line and the offline corpus), else the standard
    library's docstrings in text8's alphabet (:func:`mlbook.corpora.stdlib_text8`)."""
    profile = resolve_profile(profile)
    if profile == "full":
        try:
            ids = encode(read_text8(download(TEXT8_URL, "text8.zip", TEXT8_SHA256)))
            return TextCorpus(*split_ids(ids, valid_fraction), source="text8",
                              description=f"text8 ({len(ids):,} characters of English Wikipedia)")
        except (DownloadError, ValueError, zipfile.BadZipFile) as error:
            corpus = load_corpus(valid_fraction, profile="quick")
            announce_fallback("text8", str(error), corpus.description)
            return corpus
    ids = encode(stdlib_text8())
    return TextCorpus(*split_ids(ids, valid_fraction), source="stdlib-docstrings",
                      description=f"the Python standard library's docstrings in text8's alphabet "
                                  f"({len(ids):,} characters)")


class StreamWindows:
    """Truncated-BPTT batches: ``batch_size`` parallel streams over the text, read ``num_unrollings`` at a time.

    Stream ``b`` starts at ``b * stream_length`` (the original's *cursors*). Window ``k`` holds characters
    ``[k T, (k+1) T)`` of every stream as inputs and the characters one position later as targets, so window
    ``k + 1`` continues each row of window ``k`` exactly where it stopped and the state can be carried over.
    Windows are built on demand (text8 would need gigabytes at once).
    """

    def __init__(self, ids: np.ndarray, batch_size: int, num_unrollings: int) -> None:
        ids = np.asarray(ids)
        if batch_size < 1 or num_unrollings < 1:
            raise ValueError(f"expected positive batch_size and num_unrollings, got {batch_size}, {num_unrollings}")
        self.stream_length = (len(ids) - 1) // batch_size
        if self.stream_length < num_unrollings:
            raise ValueError(f"text of {len(ids)} characters is too short for {batch_size} streams of at least "
                             f"{num_unrollings + 1} characters")
        self.ids, self.batch_size, self.num_unrollings = ids, batch_size, num_unrollings
        self.cursors = np.arange(batch_size) * self.stream_length

    def __len__(self) -> int:
        return self.stream_length // self.num_unrollings

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range [0, {len(self)})")
        positions = self.cursors[:, None] + k * self.num_unrollings + np.arange(self.num_unrollings)
        return self.ids[positions].astype(np.int32), self.ids[positions + 1].astype(np.int32)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self[k] for k in range(len(self)))


# --------------------------------------------------------------------------------------------------------------
# Baselines: how many bits a model that ignores context (or uses one character of it) needs
# --------------------------------------------------------------------------------------------------------------


def ngram_bits(train_ids: np.ndarray, valid_ids: np.ndarray, order: int, pseudocount: float = 0.5) -> float:
    """Held-out bits per character of a counted unigram (``order=1``) or bigram (``order=2``) model.

    Probabilities are smoothed counts from the training text, :math:`(n + \\alpha) / (N + 27\\alpha)`.

    Implements: eq-rnn-bits
    """
    if order == 1:
        counts = np.bincount(train_ids, minlength=ALPHABET_SIZE) + pseudocount
        return float(-np.log2(counts / counts.sum())[valid_ids].mean())
    if order == 2:
        pairs = train_ids[:-1].astype(np.int64) * ALPHABET_SIZE + train_ids[1:]
        counts = np.bincount(pairs, minlength=ALPHABET_SIZE**2).reshape(ALPHABET_SIZE, ALPHABET_SIZE) + pseudocount
        table = counts / counts.sum(axis=1, keepdims=True)
        return float(-np.log2(table[valid_ids[:-1], valid_ids[1:]]).mean())
    raise ValueError(f"expected order 1 or 2, got {order}")


# --------------------------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------------------------


def _uniform_init() -> keras.initializers.Initializer:
    # The original's truncated_normal(-0.1, 0.1) passed the bounds as mean and stddev; this is what it meant.
    return keras.initializers.RandomUniform(-0.1, 0.1)


class HiddenFeedbackCell(keras.layers.Layer):
    """Arch 1's recurrence, one step: :math:`h_t = f([x_t U \\,;\\, h_{t-1} W] + b)`.

    ``U`` maps the one-hot input to ``num_nodes`` values and ``W`` maps the previous state to another
    ``num_nodes``; the two halves are concatenated, so the state has ``2 * num_nodes`` values.

    Implements: eq-rnn-arch1
    """

    def __init__(self, num_nodes: int, activation: str = "relu", **kwargs) -> None:
        super().__init__(**kwargs)
        if activation not in ("relu", "tanh"):
            raise ValueError(f"expected activation 'relu' or 'tanh', got {activation!r}")
        self.num_nodes, self.activation = num_nodes, activation
        self.state_size = 2 * num_nodes
        self.output_size = 2 * num_nodes

    def build(self, input_shape) -> None:
        self.U = self.add_weight(shape=(input_shape[-1], self.num_nodes), initializer=_uniform_init(), name="U")
        self.W = self.add_weight(shape=(2 * self.num_nodes, self.num_nodes), initializer=_uniform_init(), name="W")
        self.b = self.add_weight(shape=(2 * self.num_nodes,), initializer="zeros", name="b")

    def call(self, inputs, states):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        pre_activation = ops.concatenate([ops.matmul(inputs, self.U), ops.matmul(previous, self.W)], axis=-1) + self.b
        hidden = ops.relu(pre_activation) if self.activation == "relu" else ops.tanh(pre_activation)
        return hidden, [hidden]


class HiddenFeedbackRNN(keras.Model):
    """Arch 1: :class:`HiddenFeedbackCell` unrolled by ``keras.layers.RNN``, then :math:`o_t = h_t V + c`.

    ``call(ids, state)`` takes ``(batch, time)`` character ids and a ``(batch, 2 num_nodes)`` state, and returns
    ``(logits, final_state)``: logits of shape ``(batch, time, 27)`` for the *next* character at each step.

    Implements: eq-rnn-arch1
    """

    def __init__(self, num_nodes: int = 100, activation: str = "relu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_nodes = num_nodes
        self.cell = HiddenFeedbackCell(num_nodes, activation)
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, return_state=True)
        self.readout = keras.layers.Dense(ALPHABET_SIZE, kernel_initializer=_uniform_init(), name="V_c")

    @property
    def state_size(self) -> int:
        return 2 * self.num_nodes

    def call(self, ids, state, targets=None, training=False):
        hidden, final_state = self.rnn(ops.one_hot(ids, ALPHABET_SIZE), initial_state=[state], training=training)
        return self.readout(hidden), final_state


class OutputFeedbackCell(keras.layers.Layer):
    """Arch 2's step fed back its own prediction: :math:`h_t = \\tanh([x_t U \\,;\\, p_{t-1} W] + b)`,
    :math:`o_t = h_t V + c`, and the new state :math:`p_t = \\mathrm{softmax}(o_t)`.

    Implements: eq-rnn-arch2
    """

    def __init__(self, num_nodes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_nodes = num_nodes
        self.state_size = ALPHABET_SIZE
        self.output_size = ALPHABET_SIZE

    def build(self, input_shape) -> None:
        self.U = self.add_weight(shape=(ALPHABET_SIZE, self.num_nodes), initializer=_uniform_init(), name="U")
        self.W = self.add_weight(shape=(ALPHABET_SIZE, self.num_nodes), initializer=_uniform_init(), name="W")
        self.b = self.add_weight(shape=(2 * self.num_nodes,), initializer="zeros", name="b")
        self.V = self.add_weight(shape=(2 * self.num_nodes, ALPHABET_SIZE), initializer=_uniform_init(), name="V")
        self.c = self.add_weight(shape=(ALPHABET_SIZE,), initializer="zeros", name="c")

    def logits(self, inputs, fed_back):
        """:math:`o_t` from the one-hot input and the fed-back vector (any leading dimensions)."""
        hidden = ops.tanh(ops.concatenate([ops.matmul(inputs, self.U), ops.matmul(fed_back, self.W)], axis=-1)
                          + self.b)
        return ops.matmul(hidden, self.V) + self.c

    def call(self, inputs, states):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        logits = self.logits(inputs, previous)
        return logits, [ops.softmax(logits, axis=-1)]


class OutputFeedbackRNN(keras.Model):
    """Arch 2: the previous output, not a hidden state, is fed back. The state is that fed-back vector (27 values).

    - ``teacher_forcing=True`` (the original): the fed-back vector is the one-hot *previous target*,
      :math:`y_{t-1}`, given by ``targets`` in training. For next-character prediction :math:`y_{t-1} = x_t`, so
      with no targets (generation, or evaluation of what the model learnt) the current input is used, which is
      the same thing. Every step then depends on :math:`x_t` alone: no recurrence is left, and all steps are
      computed at once.
    - ``teacher_forcing=False``: the fed-back vector is the model's own previous distribution
      :math:`p_{t-1} = \\mathrm{softmax}(o_{t-1})`, unrolled by ``keras.layers.RNN`` and trained through time.
    """

    def __init__(self, num_nodes: int = 50, teacher_forcing: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_nodes, self.teacher_forcing = num_nodes, teacher_forcing
        self.cell = OutputFeedbackCell(num_nodes)
        if not teacher_forcing:
            self.rnn = keras.layers.RNN(self.cell, return_sequences=True, return_state=True)

    @property
    def state_size(self) -> int:
        return ALPHABET_SIZE

    def call(self, ids, state, targets=None, training=False):
        inputs = ops.one_hot(ids, ALPHABET_SIZE)
        if not self.teacher_forcing:
            return self.rnn(inputs, initial_state=[state], training=training)
        if targets is None:
            fed_back = inputs  # the previous output of next-character prediction *is* the current input
        else:
            fed_back = ops.concatenate([state[:, None, :], ops.one_hot(targets[:, :-1], ALPHABET_SIZE)], axis=1)
        if not self.cell.built:
            self.cell.build(inputs.shape)
        final = fed_back[:, -1, :] if targets is None else ops.one_hot(targets[:, -1], ALPHABET_SIZE)
        return self.cell.logits(inputs, fed_back), final


def teacher_forcing_signal(targets: np.ndarray, previous_target: np.ndarray | None = None) -> np.ndarray:
    """The ids that teacher forcing feeds back at each step: the target one step earlier.

    Args:
        targets: ``(batch, time)`` next-character ids.
        previous_target: ``(batch,)`` the last target of the previous window (``None`` for the first window,
            where the original fed zeros; this function then returns -1 there).
    """
    first = np.full(targets.shape[:1], -1) if previous_target is None else np.asarray(previous_target)
    return np.concatenate([first[:, None], targets[:, :-1]], axis=1)


def build_model(model: keras.Model, batch_size: int = 2) -> keras.Model:
    """Create the model's weights by calling it once on a dummy batch (the cache needs a built model)."""
    model(np.zeros((batch_size, 2), dtype=np.int32), ops.zeros((batch_size, model.state_size)))
    return model


# --------------------------------------------------------------------------------------------------------------
# Training: truncated back-propagation through time
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """One model's training run.

    Attributes:
        batch_size: parallel streams.
        num_unrollings: characters per window, i.e. how far back gradients flow.
        num_steps: optimiser steps (one window each).
        learning_rate, decay_steps, decay_rate: ``lr = learning_rate * decay_rate ** (step // decay_steps)``.
        clipnorm: gradients are rescaled so that their global norm is at most this.
        eval_every: steps between two held-out evaluations (and history entries).
    """

    batch_size: int
    num_unrollings: int
    num_steps: int
    learning_rate: float = 0.005
    decay_steps: int = 1_000
    decay_rate: float = 0.5
    clipnorm: float = 1.0
    eval_every: int = 250


def make_optimizer(cfg: TrainSettings) -> keras.optimizers.Optimizer:
    """Adam with a staircase exponential decay (the training step clips the gradients itself).

    Implements: eq-rnn-clip-decay
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, decay_steps=cfg.decay_steps, decay_rate=cfg.decay_rate, staircase=True
    )
    return keras.optimizers.Adam(schedule)


def sequence_loss(targets, logits):
    """Mean negative log-likelihood (cross-entropy) of the targets, in nats per character."""
    return ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, clipnorm: float) -> Callable:
    """A compiled step: forward over one window from ``state``, loss, gradients clipped to global norm
    ``clipnorm``, update.

    The returned state is a plain tensor: the next window starts from it, but no gradient flows back into this
    window (that is the truncation). Under a ``tf.distribute`` strategy each replica takes its share of the
    streams, and the step equals one device's on all of them.
    """
    strategy = tf.distribute.get_strategy()

    def replica_step(ids, targets, state):
        with tf.GradientTape() as tape:
            logits, final_state = model(ids, state, targets=targets, training=True)
            loss = sequence_loss(targets, logits)
            scaled_loss = scale_for_replicas(loss)
        gradients = tape.gradient(scaled_loss, model.trainable_variables)
        optimizer.apply(clip_by_global_norm(gradients, clipnorm), model.trainable_variables)
        return loss, final_state

    @tf.function
    def train_step(ids, targets, state):
        loss, final_state = strategy.run(replica_step, args=split_rows_across_replicas(strategy, ids, targets,
                                                                                      state))
        return strategy.reduce("MEAN", loss, axis=None), strategy.gather(final_state, axis=0)

    return train_step


def make_eval_step(model: keras.Model) -> Callable:
    @tf.function
    def eval_step(ids, targets, state):
        logits, final_state = model(ids, state, targets=targets)
        return sequence_loss(targets, logits), final_state

    return eval_step


def evaluate_bits(model: keras.Model, ids: np.ndarray, batch_size: int = 32, num_unrollings: int = 100,
                  carry_state: bool = True, eval_step: Callable | None = None) -> float:
    """Bits per character of ``model`` on ``ids``: the mean negative log2-likelihood of each next character.

    With ``carry_state=False`` every window starts from a zero state, as in the original's training loop. A text
    too short for ``batch_size`` streams of ``num_unrollings`` characters is read with fewer streams.
    """
    eval_step = eval_step or make_eval_step(model)
    batch_size = max(1, min(batch_size, (len(ids) - 1) // num_unrollings))
    windows = StreamWindows(ids, batch_size, num_unrollings)
    state = ops.zeros((batch_size, model.state_size))
    losses = []
    for inputs, targets in windows:
        if not carry_state:
            state = ops.zeros((batch_size, model.state_size))
        loss, state = eval_step(inputs, targets, state)
        losses.append(float(loss))
    return float(np.mean(losses)) / LN2


def train_char_model(model: keras.Model, corpus: TextCorpus, cfg: TrainSettings,
                     log: Callable[[str], None] | None = print) -> dict[str, list[float]]:
    """Train ``model`` by truncated BPTT on ``corpus.train_ids``; return the history.

    The state is carried from window to window and reset to zeros at the start of each pass over the text.

    Returns:
        Per evaluation: ``step``, ``chars_seen``, ``train_bits`` (mean over the steps since the last evaluation),
        ``valid_bits`` (held-out, state carried) and ``learning_rate``.
    """
    optimizer = make_optimizer(cfg)
    train_step, eval_step = make_train_step(model, optimizer, cfg.clipnorm), make_eval_step(model)
    windows = StreamWindows(corpus.train_ids, cfg.batch_size, cfg.num_unrollings)
    history: dict[str, list[float]] = {k: [] for k in ("step", "chars_seen", "train_bits", "valid_bits",
                                                          "learning_rate")}
    running: list[float] = []
    state = ops.zeros((cfg.batch_size, model.state_size))
    for step in range(cfg.num_steps):
        k = step % len(windows)
        if k == 0:
            state = ops.zeros((cfg.batch_size, model.state_size))
        loss, state = train_step(*windows[k], state)
        running.append(float(loss))
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.num_steps:
            valid = evaluate_bits(model, corpus.valid_ids, eval_step=eval_step)
            entry = {"step": step + 1, "chars_seen": (step + 1) * cfg.batch_size * cfg.num_unrollings,
                     "train_bits": float(np.mean(running)) / LN2, "valid_bits": valid,
                     "learning_rate": float(optimizer.learning_rate)}
            for key, value in entry.items():
                history[key].append(float(value))
            running = []
            if log is not None:
                log(f"step {step + 1:5d}  train {entry['train_bits']:.3f} bits/char  held-out {valid:.3f}  "
                    f"lr {entry['learning_rate']:.2g}")
    return history


# --------------------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in NumPy, shifted by the maximum so it never overflows.

    Implements: eq-cnn-softmax
    """
    logits = np.asarray(logits, dtype=np.float64)
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def temperature_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """:math:`p_i \\propto \\exp(o_i / \\tau)`; ``temperature=0`` puts all the mass on the arg-max.

    Implements: eq-rnn-temperature

    Raises:
        ValueError: for a negative temperature.
    """
    if temperature < 0:
        raise ValueError(f"expected a temperature >= 0, got {temperature}")
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return np.eye(logits.shape[-1])[np.argmax(logits, axis=-1)]
    return softmax(logits / temperature)


def original_sampling_probabilities(logits: np.ndarray) -> np.ndarray:
    """What the original's Arch 2 sampled from: ``softmax(softmax(logits))`` — the softmax applied twice.

    Kept only to show the bug: probabilities lie in [0, 1], so a second softmax makes any two characters' odds
    differ by at most a factor e, whatever the model learnt.
    """
    return softmax(softmax(logits))


def sample_ids(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``(n, 27)`` probabilities (inverse-CDF, vectorised)."""
    cumulative = np.cumsum(probabilities, axis=-1)
    draws = rng.random((probabilities.shape[0], 1)) * cumulative[:, -1:]
    return np.minimum((draws >= cumulative).sum(axis=-1), probabilities.shape[-1] - 1)


def generate(model: keras.Model, length: int, temperatures: Sequence[float], seed: int, prompt: str = " ",
             double_softmax: bool = False) -> list[str]:
    """Sample ``length`` characters after ``prompt``, one sequence per temperature, all in one batch.

    The prompt is fed through the model first to set the state. ``double_softmax=True`` samples from
    :func:`original_sampling_probabilities` instead (temperatures are then ignored), as the original did.
    """
    if not prompt:
        raise ValueError("expected a non-empty prompt (the first input character)")
    rng = np.random.default_rng(seed)
    rows = len(temperatures)
    step = tf.function(lambda ids, state: model(ids, state))
    prompt_ids = np.tile(encode(prompt).astype(np.int32), (rows, 1))
    logits, state = step(prompt_ids, ops.zeros((rows, model.state_size)))
    logits = np.asarray(logits)[:, -1]
    generated = np.zeros((rows, length), dtype=np.int32)
    for t in range(length):
        if double_softmax:
            probabilities = original_sampling_probabilities(logits)
            generated[:, t] = sample_ids(probabilities, rng)
        else:
            generated[:, t] = [sample_ids(temperature_probabilities(row[None], tau), rng)[0]
                               for row, tau in zip(logits, temperatures)]
        logits, state = step(generated[:, t : t + 1], state)
        logits = np.asarray(logits)[:, -1]
    return [decode(row) for row in generated]


def bits_per_character(model: keras.Model, texts: Sequence[str], prompt: str = " ") -> np.ndarray:
    """How surprising each text is to ``model``: its bits per character, read after ``prompt``.

    For a text :math:`c_1 \\dots c_N`, the mean of :math:`-\\log_2 p(c_t \\mid \\text{prompt}, c_1 \\dots c_{t-1})`
    over its characters, with :math:`p` the model's own distribution (temperature 1) and the state started from
    zeros, as :func:`generate` does: the bits per character of :func:`evaluate_bits`, for one text. For a sample that
    :func:`generate` drew, it is the sample's surprise to the model that wrote it, whatever the temperature it was
    drawn at.

    Returns:
        ``(len(texts),)`` bits per character.

    Raises:
        ValueError: for an empty prompt or text, or characters outside the alphabet.
    """
    if not prompt:
        raise ValueError("expected a non-empty prompt (the first input character)")
    bits = []
    for text in texts:
        if not text:
            raise ValueError("expected non-empty texts")
        ids = encode(prompt + text).astype(np.int32)[None]
        logits, _ = model(ids[:, :-1], ops.zeros((1, model.state_size)))
        logits = np.asarray(logits, dtype=np.float64)[0, len(prompt) - 1 :]  # the predictions of the text's characters
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        targets = ids[0, len(prompt) :]
        bits.append(-log_probabilities[np.arange(len(targets)), targets].mean() / LN2)
    return np.array(bits)


def state_gradient_norms(model: HiddenFeedbackRNN, ids: np.ndarray) -> np.ndarray:
    """:math:`\\lVert \\partial L_T / \\partial h_t \\rVert` for every step ``t`` of a window (batch mean).

    ``L_T`` is the loss at the window's last character only, so the norm at lag ``T - t`` measures how much the
    state ``T - t`` steps back can still change that prediction.

    Implements: eq-rnn-bptt

    Args:
        ids: ``(batch, T + 1)`` ids; the model reads the first ``T`` and predicts the last.
    """
    ids = np.asarray(ids, dtype=np.int32)
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise ValueError(f"expected ids of shape (batch, T + 1) with T >= 1, got {ids.shape}")
    inputs = ops.one_hot(ids[:, :-1], ALPHABET_SIZE)
    state = tf.zeros((ids.shape[0], model.state_size))
    with tf.GradientTape() as tape:
        states = []
        for t in range(inputs.shape[1]):
            tape.watch(state)
            states.append(state)
            state, _ = model.cell(inputs[:, t], [state])
        loss = sequence_loss(ids[:, -1:], model.readout(state)[:, None, :])
    gradients = tape.gradient(loss, states[1:] + [state])
    return np.array([float(tf.reduce_mean(tf.norm(g, axis=-1))) for g in gradients])


# --------------------------------------------------------------------------------------------------------------
# The chapter's settings
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CharRNNSettings:
    """Sizes of the chapter's runs (one instance per profile).

    ``hidden`` trains Arch 1, ``teacher`` Arch 2 with teacher forcing and ``free`` Arch 2 fed back its own
    output. The original used 100 nodes (a 200-value state), ReLU and 40 unrollings for Arch 1, and 50 tanh nodes
    with 20 unrollings for Arch 2. Arch 1 is sampled at ``temperatures`` for the chapter's table, and at
    ``explorer_temperatures`` for its temperature explorer.
    """

    hidden: TrainSettings
    teacher: TrainSettings
    free: TrainSettings
    hidden_nodes: int = 100
    hidden_activation: str = "relu"
    output_nodes: int = 50
    valid_fraction: float = 0.05
    sample_length: int = evaluation_only(200)
    temperatures: tuple[float, ...] = evaluation_only((0.0, 0.5, 0.8, 1.0))
    explorer_temperatures: tuple[float, ...] = evaluation_only((0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5))
    gradient_window: int = evaluation_only(40)


SETTINGS: dict[str, CharRNNSettings] = {
    "quick": CharRNNSettings(
        hidden=TrainSettings(batch_size=64, num_unrollings=20, num_steps=3_000, eval_every=300),
        teacher=TrainSettings(batch_size=64, num_unrollings=20, num_steps=300, decay_steps=100, eval_every=50),
        free=TrainSettings(batch_size=64, num_unrollings=20, num_steps=1_500, decay_steps=500, eval_every=150),
    ),
    "full": CharRNNSettings(
        hidden=TrainSettings(batch_size=128, num_unrollings=40, num_steps=60_000, learning_rate=0.002,
                             decay_steps=15_000, eval_every=2_000),
        teacher=TrainSettings(batch_size=128, num_unrollings=20, num_steps=5_000, decay_steps=1_500,
                              eval_every=500),
        free=TrainSettings(batch_size=128, num_unrollings=20, num_steps=20_000, decay_steps=5_000,
                           eval_every=2_000),
        valid_fraction=0.01,  # 1 M held-out characters of text8, scored at every evaluation
        sample_length=300,
    ),
}
