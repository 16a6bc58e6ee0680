"""benchmarks/expression_features.py: the two distances it tables."""

import numpy as np

from helpers import load_benchmark

bench = load_benchmark("expression_features")


def test_distances_are_the_mean_map_difference_and_the_pixel_l1_in_0_1_units():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    b = rng.integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    diff = np.abs(a.astype(float) - b.astype(float))
    # a "network" whose two maps are the image in G's units and its double
    d = bench.distances(lambda x: [x, 2 * x], a, b)
    np.testing.assert_allclose(d["features"], 1.5 * diff.mean() / 127.5, rtol=1e-5)
    np.testing.assert_allclose(d["l1"], diff.mean() / 255.0, rtol=1e-12)
    assert bench.distances(lambda x: x, a, a) == {"features": 0.0, "l1": 0.0}

