#!/usr/bin/env python
"""Write the built-in face set to disk in the Oulu-CASIA layout.

The code is :mod:`exprgan_tf.cli.prepare_data`; installed, the same tool is ``exprgan-prepare-data``.
Run ``python scripts/prepare_data.py --help`` for the options.
"""

import os
import sys

# Run from a checkout: use the package next to this folder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.cli.prepare_data import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
