import numpy as np
import pytest

from mlbook.training import EpochLine, classification_accuracy, format_metrics, predict_in_batches


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


def test_predict_in_batches_matches_one_call_and_handles_several_outputs():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    inputs = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    # batches of 3, 3 and 1 run the same float32 kernels as one call of 7: round-off only
    whole = keras.ops.convert_to_numpy(model(inputs))
    batched = predict_in_batches(model, inputs, batch_size=3)
    assert isinstance(batched, np.ndarray)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    assert classification_accuracy(model, inputs, whole.argmax(axis=1), batch_size=3) == 1.0
    two_inputs = keras.Input((2,))
    two_outputs = keras.Model(two_inputs, [two_inputs * 2.0, two_inputs + 1.0])
    doubled, shifted = predict_in_batches(two_outputs, np.ones((5, 2), dtype=np.float32), batch_size=2)
    np.testing.assert_array_equal(doubled, 2.0)
    np.testing.assert_array_equal(shifted, 2.0)
    with pytest.raises(ValueError, match="positive batch_size"):
        predict_in_batches(model, inputs, batch_size=0)
    with pytest.raises(ValueError, match=r"some inputs, got 500 and \(0, 4\)"):
        predict_in_batches(model, inputs[:0])


def test_predict_in_batches_runs_dropout_in_inference_mode():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.9)])
    inputs = np.ones((6, 4), dtype=np.float32)
    np.testing.assert_array_equal(predict_in_batches(model, inputs, batch_size=4), inputs)
