import numpy as np
import pytest

from mlbook.training import EpochLine, format_metrics


def test_format_metrics_is_sorted_and_short():
    assert format_metrics({"val_loss": 0.23456789, "loss": 1.0}) == "loss 1 · val_loss 0.2346"


def test_epoch_line_prints_one_line_per_chosen_epoch(capsys):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2)), np.zeros((8, 1))
    model.fit(x, y, epochs=5, verbose=0, callbacks=[EpochLine(every=2)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]  # every 2nd, and always the last
    assert all("loss" in line and line.endswith("s)") for line in lines)
    with pytest.raises(ValueError, match="positive integer"):
        EpochLine(every=0)


def test_steps_per_execution_trains_the_same_weights():
    """Several steps per call of the compiled train function, including a last partial group, give the same
    weights and per-epoch losses as one step per call."""
    import keras

    from mlbook.training import STEPS_PER_EXECUTION

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(5 * STEPS_PER_EXECUTION * 4 + 3, 6)).astype("float32")  # not a multiple of 8 batches
    targets = inputs @ rng.normal(size=(6, 1)).astype("float32")

    def train(steps_per_execution: int) -> tuple[list[float], list[np.ndarray]]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", steps_per_execution=steps_per_execution)
        history = model.fit(inputs, targets, batch_size=4, epochs=2, shuffle=True, verbose=0)
        return history.history["loss"], model.get_weights()

    (losses_one, weights_one), (losses_many, weights_many) = train(1), train(STEPS_PER_EXECUTION)
    assert STEPS_PER_EXECUTION > 1
    np.testing.assert_allclose(losses_many, losses_one, rtol=1e-5)
    for one, many in zip(weights_one, weights_many):
        np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-6)
