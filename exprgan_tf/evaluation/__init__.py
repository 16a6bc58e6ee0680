"""Evaluation: the paper's Table I (CNN expression classifier, PCA eigenfaces, FID) plus
identity, ground-truth and intensity scores; ``scripts/evaluate.py`` runs it all.

- :mod:`~exprgan_tf.evaluation.classifier` - the Fig. 4 CNN (train / save / load / score);
- :mod:`~exprgan_tf.evaluation.eigenfaces` - PCA + minimum-distance recognition;
- :mod:`~exprgan_tf.evaluation.fid` - InceptionV3 features and the Fréchet distance;
- :mod:`~exprgan_tf.evaluation.scores` - identity similarity, L1/SSIM against the true
  face, intensity faithfulness;
- :mod:`~exprgan_tf.evaluation.table` - the Markdown/CSV table writer;
- :mod:`~exprgan_tf.evaluation.protocol` - generation + scoring + figures for run dirs.

See docs/evaluation.md.

Example:
    >>> import numpy as np
    >>> from exprgan_tf.evaluation import frechet_distance
    >>> frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3))
    0.0
"""

from exprgan_tf.evaluation.eigenfaces import EigenfaceResult, eigenface_accuracy
from exprgan_tf.evaluation.fid import InceptionWeightsError, frechet_distance
from exprgan_tf.evaluation.table import Row, csv_table, markdown_table, write_table

__all__ = ["EigenfaceResult", "InceptionWeightsError", "Row", "csv_table",
           "eigenface_accuracy", "frechet_distance", "markdown_table", "write_table"]
