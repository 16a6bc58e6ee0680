"""Where faces change with expression: the map of the built-in posed partners and the
[0, 1] mask the editor pastes G's face through (``model.edit_regions``)."""

import numpy as np
import pytest

from exprgan_tf.data.regions import expression_regions, regions_from_map

# every 36th training face (36 faces, 180 partner renders): seconds, not a minute
EVERY = 36


def test_regions_cover_brows_eyes_and_mouth_and_nothing_else():
    r = expression_regions(64, 90, every=EVERY)
    assert r.shape == (64, 64) and r.dtype == np.float32
    assert r.min() >= 0.0 and r.max() <= 1.0 and r.max() > 0.99
    np.testing.assert_allclose(r, r[:, ::-1], atol=1e-6)      # training flips faces
    rows = r.mean(axis=1)
    # hair and forehead (top fifth), and the border columns, never change
    assert rows[:13].max() < 0.01 and r[:, :6].max() < 0.01
    # the mouth (rows 44-50) and the brows/eyes (rows 20-30) do
    assert r[44:51, 26:38].mean() > 0.6 and r[20:31, 16:48].max() > 0.9
    # a share of the face, not all of it
    assert 0.1 < r.mean() < 0.4


def test_a_lower_percentile_gives_g_more_of_the_face_and_sizes_agree():
    r90 = expression_regions(64, 90, every=EVERY)
    r75 = expression_regions(64, 75, every=EVERY)
    assert r75.mean() > r90.mean() + 0.05 and np.all(r75 >= r90 - 1e-6)
    r32, r128 = expression_regions(32, 90, every=EVERY), expression_regions(128, 90, every=EVERY)
    assert r32.shape == (32, 32) and r128.shape == (128, 128)
    assert abs(r32.mean() - r90.mean()) < 0.02 and abs(r128.mean() - r90.mean()) < 0.02


@pytest.mark.parametrize("call, message", [
    (lambda: expression_regions(64, 50, every=EVERY), r"percentile must be in \(50, 100\]"),
    (lambda: expression_regions(64, 90, every=0), "every must be a positive integer"),
    (lambda: expression_regions(0, 90, every=EVERY), "image_size must be a positive integer"),
    (lambda: regions_from_map(np.ones((4, 4))), "the map is flat above its median"),
])
def test_bad_arguments_say_what_is_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
