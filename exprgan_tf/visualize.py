"""Pictures: image grids (sample sheets, the paper's Fig. 6/7) and loss curves (Fig. 8).

Example:
    >>> import numpy as np
    >>> from exprgan_tf.visualize import image_grid
    >>> image_grid(np.zeros((2, 3, 8, 8, 3), np.uint8), pad=1).shape
    (19, 28, 3)
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw


def image_grid(images, pad: int = 2, background: int = 255, cell: int | None = None
               ) -> np.ndarray:
    """Tile uint8 images into one ``uint8`` picture with ``pad`` pixels of
    ``background`` between and around cells: the one grid of the package (sample
    sheets, the evaluation figures, ``exprgan-generate``'s photo grids).

    Args:
        images: ``[rows, cols, H, W, C]``; or, with ``cell``, a list of rows, each a
            list of ``[H, W, 3]`` images of any size.
        pad: pixels between and around the cells.
        background: grey level of the padding and of empty cells.
        cell: resize every image to fit a ``cell x cell`` square (aspect kept,
            centred); ``None`` tiles the images at their size.
    """
    if cell is not None:
        images = [[_fit(image, cell) for image in row] for row in images]
        cols = max(len(row) for row in images)
        blank = np.full((cell, cell, 3), background, np.uint8)
        images = np.stack([np.stack(row + [blank] * (cols - len(row))) for row in images])
    images = np.asarray(images)
    if images.ndim != 5 or images.dtype != np.uint8:
        raise ValueError("image_grid expects uint8 images [rows, cols, H, W, C]. Received: "
                         f"shape={images.shape}, dtype={images.dtype}")
    rows, cols, h, w, c = images.shape
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), background, np.uint8)
    for r in range(rows):
        for k in range(cols):
            y, x = pad + r * (h + pad), pad + k * (w + pad)
            out[y:y + h, x:x + w] = images[r, k]
    return out


def _fit(image, cell: int, background: int = 255) -> np.ndarray:
    """``image`` resized (bicubic, aspect kept) and centred in a ``cell x cell`` square."""
    h, w = image.shape[:2]
    k = cell / max(h, w)
    th, tw = max(1, int(round(h * k))), max(1, int(round(w * k)))
    out = np.full((cell, cell, 3), background, np.uint8)
    y, x = (cell - th) // 2, (cell - tw) // 2
    out[y:y + th, x:x + tw] = np.asarray(Image.fromarray(image).resize((tw, th), Image.BICUBIC))
    return out


def labelled_grid(images, row_labels=(), col_labels=(), pad: int = 2, cell: int | None = None,
                  label_width: int = 70, label_height: int = 14, corner: str = "") -> np.ndarray:
    """:func:`image_grid` with text labels left of each row and above each column.

    Args:
        images, pad, cell: as :func:`image_grid`.
        row_labels: one text per row, drawn in a ``label_width`` strip on the left.
        col_labels: one text per column, drawn in a ``label_height`` strip on top.
        corner: text in the top-left corner (what the row labels are).
    """
    grid = image_grid(images, pad, cell=cell)
    if cell is None:
        h, w = np.asarray(images).shape[2:4]
    else:
        h = w = cell
    left = label_width if row_labels else 0
    top = label_height if col_labels or corner else 0
    canvas = Image.new("RGB", (grid.shape[1] + left, grid.shape[0] + top), "white")
    canvas.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(canvas)
    if corner:
        draw.text((2, 1), corner, fill="black")
    for r, text in enumerate(row_labels):
        draw.text((2, top + pad + r * (h + pad) + h // 2 - 5), str(text), fill="black")
    for k, text in enumerate(col_labels):
        draw.text((left + pad + k * (w + pad) + 2, 1), str(text), fill="black")
    return np.asarray(canvas)


def save_png(array, path) -> str:
    """Write a uint8 ``[H, W, 3]`` array as PNG, creating the folder."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return os.fspath(path)


def read_history(path) -> list[dict]:
    """Rows of a ``history.csv`` written by the trainer, numbers parsed."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    parsed = []
    for row in rows:
        parsed.append({k: (float(v) if v not in ("", None) and k != "stage" else v)
                       for k, v in row.items()})
    return parsed


def plot_loss_curves(history_csv, out_png, title: str | None = None) -> str:
    """Plot every loss of every stage against the epoch (the paper's Fig. 8).

    One panel per stage; each loss is a line. Returns the PNG path. The figure is a
    plain ``matplotlib.figure.Figure`` rendered by the Agg canvas, without pyplot: the
    caller's matplotlib backend and open figures are left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_history(history_csv)
    if not rows:
        raise ValueError(f"{history_csv} has no epochs to plot.")
    by_stage = defaultdict(list)
    for row in rows:
        by_stage[str(row["stage"])].append(row)
    stages = sorted(by_stage)
    fig = Figure(figsize=(5.5 * len(stages), 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(stages), squeeze=False)
    skip = {"stage", "epoch", "global_step", "seconds"}
    for ax, stage in zip(axes[0], stages):
        data = by_stage[stage]
        epochs = [r["epoch"] for r in data]
        for key in data[0]:
            if key in skip or data[0][key] in ("", None):
                continue
            ax.plot(epochs, [r[key] for r in data], label=key, marker="." if len(data) < 30 else None)
        ax.set_title(f"stage {stage}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.fspath(out_png)) or ".", exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return os.fspath(out_png)
