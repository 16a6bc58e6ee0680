#!/usr/bin/env python
"""Export an expression editor as a SavedModel for TF Serving, or as a compact .npz.

The code is :mod:`exprgan_tf.cli.export`; installed, the same tool is ``exprgan-export``.
Run ``python scripts/export.py --help`` for the options.
"""

import os
import sys

# Run from a checkout: use the package next to this folder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from exprgan_tf.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
