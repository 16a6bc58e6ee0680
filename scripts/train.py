#!/usr/bin/env python
"""Train one stage of ExprGAN / the paper's model (stages 1, 2, 3 in one run directory).

The code is :mod:`exprgan_tf.cli.train`; installed, the same tool is ``exprgan-train``.
Run ``python scripts/train.py --help`` for the options.
"""

import os
import sys

# Run from a checkout: use the package next to this folder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
