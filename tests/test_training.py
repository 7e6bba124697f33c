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
