#!/usr/bin/env python
"""Evaluate trained models the way the paper's Table I does (+ identity and truth).

The code is :mod:`exprgan_tf.cli.evaluate`; installed, the same tool is ``exprgan-evaluate``.
Run ``python scripts/evaluate.py --help`` for the options.
"""

import os
import sys

# Run from a checkout: use the package next to this folder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
