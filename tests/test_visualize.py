"""The one image grid: tiling, letterboxed cells of any size, labels."""

import numpy as np
import pytest

from exprgan_tf.visualize import image_grid, labelled_grid


def test_image_grid_tiles_cells_with_padding():
    images = np.arange(2 * 3, dtype=np.uint8).reshape(2, 3, 1, 1, 1) * np.ones(
        (1, 1, 4, 5, 3), np.uint8)
    grid = image_grid(images, pad=1, background=200)
    assert grid.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    assert grid[0, 0, 0] == 200 and grid[1 + 5, 1 + 2 * 6, 0] == 5  # row 1, column 2
    with pytest.raises(ValueError, match=r"uint8 images \[rows, cols, H, W, C\]. Received: "
                                         r"shape=\(3, 4, 5, 3\)"):
        image_grid(images[0])


def test_cells_of_any_size_are_letterboxed_and_rows_may_be_short():
    wide = np.zeros((10, 20, 3), np.uint8)          # fits 8 x 16 in a 16-pixel cell
    tall = np.full((30, 15, 3), 9, np.uint8)        # fits 16 x 8
    grid = image_grid([[wide, tall], [tall]], pad=2, cell=16)
    assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3)
    first = grid[2:18, 2:18, 0]
    assert (first[4:12] == 0).all() and (first[:4] == 255).all() and (first[12:] == 255).all()
    second = grid[2:18, 20:36, 0]
    assert (second[:, 4:12] == 9).all() and (second[:, :4] == 255).all()
    assert (grid[20:36, 20:36] == 255).all()        # the short row's empty cell


def test_labelled_grid_adds_the_label_strips():
    images = np.zeros((2, 3, 8, 8, 3), np.uint8)
    assert labelled_grid(images, ["a", "b"], ["x", "y", "z"], pad=1).shape == (
        14 + 2 * 9 + 1, 70 + 3 * 9 + 1, 3)
    out = labelled_grid([[np.zeros((4, 4, 3), np.uint8)]], ["0.5"], ["input"], cell=8,
                        label_width=48, label_height=18, corner="intensity")
    assert out.shape == (18 + 8 + 2 * 2, 48 + 8 + 2 * 2, 3)
    assert (out[18 + 2:18 + 10, 48 + 2:48 + 10] == 0).all()  # 4 px scaled up to the 8-px cell
