#!/usr/bin/env python
"""Obtain identity-network weights once and cache them for offline use.

The code is :mod:`exprgan_tf.cli.fetch_weights`; installed, the same tool is ``exprgan-fetch-weights``.
Run ``python scripts/fetch_weights.py --help`` for the options.
"""

import os
import sys

# Run from a checkout: use the package next to this folder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.cli.fetch_weights import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
