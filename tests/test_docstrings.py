"""The examples in the package's docstrings run and print what they show.

Each module's ``>>>`` lines run with :mod:`doctest` in that module's namespace. An
example that needs a trained model, a download or minutes of work is marked
``# doctest: +SKIP`` where it stands.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import exprgan_tf


def _modules_with_examples():
    names = [exprgan_tf.__name__] + [
        m.name for m in pkgutil.walk_packages(exprgan_tf.__path__, exprgan_tf.__name__ + ".")]
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        with open(spec.origin, encoding="utf-8") as f:
            if ">>>" in f.read():
                found.append(name)
    return found


MODULES = _modules_with_examples()


def test_the_examples_are_found():
    assert "exprgan_tf.controller" in MODULES and len(MODULES) >= 30


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    with np.printoptions(precision=4, suppress=True, legacy="1.25"):
        for test in finder.find(module, name, globs=dict(vars(module))):
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
