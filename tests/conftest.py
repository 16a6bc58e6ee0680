"""Fixtures every test module may use. The helpers behind them live in ``helpers.py``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The package first, as every command of it does: on x86 it turns oneDNN on unless
# TF_ENABLE_ONEDNN_OPTS is set, so the suite runs with the users' default (run it with
# TF_ENABLE_ONEDNN_OPTS=0 and =1 to cover both kernel sets).
import exprgan_tf  # noqa: E402,F401

import pytest  # noqa: E402

import helpers  # noqa: E402


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(preset="proposed-small", extra=())``: a preset at 32x32 with a few
    filters per layer (:data:`helpers.TINY`)."""
    return helpers.tiny_config


@pytest.fixture(scope="session")
def tiny_data():
    """``tiny_data(n=24, seed=0)``: ``(images uint8 [n, 32, 32, 3], labels [n])``."""
    return helpers.tiny_data
