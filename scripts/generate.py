#!/usr/bin/env python
"""Change the facial expression of a face in a photo.

The code is :mod:`exprgan_tf.cli.generate`; installed, the same tool is ``exprgan-generate``.
Run ``python scripts/generate.py --help`` for the options.
"""

import os
import sys

# Run from a checkout: use the package next to this folder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from exprgan_tf.cli.generate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
