"""The pretrained model shipped in checkpoints/ (see checkpoints/README.md): it is found
without arguments, fits the size budget, and behaves like the trained model it is."""

import os

import numpy as np
import pytest

from exprgan_tf import data
from exprgan_tf.editor import find_checkpoint, load_editor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "checkpoints", "pretrained-proposed-small.npz")


@pytest.fixture(scope="module")
def editor():
    return load_editor(SHIPPED)


@pytest.fixture(scope="module")
def faces():
    images, labels, _ = data.load_split(None, "test", 64)
    return images[::18][:8], labels[::18][:8]  # one face of each held-out subject


def test_shipped_model_is_found_by_default_and_small(monkeypatch):
    monkeypatch.delenv("EXPRGAN_TF_CHECKPOINT", raising=False)
    assert os.path.getsize(SHIPPED) <= 25 * 2 ** 20
    found = find_checkpoint()
    # a local run dir sorts after it ("pretrained-..." < "proposed-small")
    assert os.path.abspath(found) == SHIPPED


def test_shipped_model_keeps_the_person_and_changes_the_expression(editor, faces):
    x, y = faces
    ones = np.ones(len(x), np.float32)
    real = x.astype(np.float32) / 127.5 - 1
    own = editor.predict([x, y, ones], verbose=0)
    assert own.shape == x.shape and own.dtype == np.float32
    # Measured on the shipped file: 0.177 against the input, 0.307 against the other
    # subjects' faces - it carries skin tone and lighting, not a sharp likeness.
    l1_own = np.abs(own - real).mean()
    l1_other = np.mean([np.abs(own - np.roll(real, k, 0)).mean() for k in range(1, 8)])
    assert l1_own < 0.22 and l1_own < 0.75 * l1_other, (l1_own, l1_other)
    edits = np.stack([editor.predict([x, np.full(len(x), e), ones], verbose=0)
                      for e in range(6)])
    # every pair of expressions gives different faces (measured: min 0.061 mean |diff|) ...
    pairs = [np.abs(edits[a] - edits[b]).mean() for a in range(6) for b in range(a + 1, 6)]
    assert min(pairs) > 0.04, pairs
    # ... most of all around the mouth: happiness vs surprise (measured 0.174 there,
    # 0.101 over the whole image)
    mouth = np.abs(edits[3][:, 40:56, 20:44] - edits[5][:, 40:56, 20:44]).mean()
    whole = np.abs(edits[3] - edits[5]).mean()
    assert mouth > 0.12 and mouth > 1.3 * whole, (mouth, whole)
