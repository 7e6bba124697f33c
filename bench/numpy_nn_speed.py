"""The NumPy network's vectorised gradient against its per-example loop, at several numbers of examples.

Usage: .venv/bin/python bench/numpy_nn_speed.py
"""

from __future__ import annotations

import numpy as np

from mlbook.numpy_nn import NeuralNetwork, time_gradients

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    network = NeuralNetwork((2, 16, 1), ["tanh", "sigmoid"], seed=0)
    print(f"{'examples':>9s} {'loop s':>9s} {'vectorised s':>13s} {'speed-up':>9s}")
    for num_examples in (4, 64, 1024):
        inputs, targets = rng.normal(size=(num_examples, 2)), rng.uniform(size=(num_examples, 1))
        timing = time_gradients(network, inputs, targets)
        print(f"{num_examples:9d} {timing['loop_s']:9.4f} {timing['vectorised_s']:13.5f} {timing['speedup']:9.1f}")
