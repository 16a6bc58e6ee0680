"""Build hook: a wheel carries the shipped pretrained editors.

The pretrained editors live in ``checkpoints/pretrained-<preset>.npz``: the export
script writes them there and a source checkout (or an editable install) reads them
there. A wheel has no ``checkpoints/`` folder, so building one copies every
``checkpoints/pretrained-*.npz`` into the package as ``exprgan_tf/pretrained/``, where
``exprgan_tf.editor_io.pretrained_path`` looks first. Replacing the file in
``checkpoints/`` under the same name is all a new wheel needs. Everything else about
the package is in ``setup.cfg``.
"""

import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithPretrained(build_py):
    """``build_py`` that also copies ``checkpoints/pretrained-*.npz`` into the package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads checkpoints/ in place
        target = os.path.join(self.build_lib, "exprgan_tf", "pretrained")
        self.mkpath(target)
        for path in sorted(glob.glob(os.path.join(HERE, "checkpoints", "pretrained-*.npz"))):
            self.copy_file(path, os.path.join(target, os.path.basename(path)))


setup(cmdclass={"build_py": BuildPyWithPretrained})
