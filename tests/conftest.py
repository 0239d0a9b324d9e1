"""Fixtures of the suite's self-tests and unit tests (tests/selftest, tests/unit): the tiny and twin
models, the real dev set and tokenizer.  The options, markers and the subject under test live in
the package's pytest plugin (albert_ixrt/pytest_plugin.py); the acceptance modules use its
``albert_*`` fixtures.  No logic of its own: asset lookup lives in albert_ixrt.assets.  The tests' own
helpers in tests/support (``child_env``, ``trt_standin``) are importable from every test module.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from albert_ixrt import assets
from albert_ixrt.pytest_plugin import option, skip_or_fail

SUPPORT = str(Path(__file__).resolve().parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)


@pytest.fixture(scope="session")
def squad_path(request):
    try:
        return assets.squad_dev_path(option(request.config, "squad"), download=False)
    except assets.AssetMissingError as exc:
        skip_or_fail(request, str(exc), strict_option="--strict-assets")


@pytest.fixture(scope="session")
def tokenizer_path(request):
    try:
        return assets.tokenizer_path(option(request.config, "tokenizer"))
    except assets.AssetMissingError as exc:
        skip_or_fail(request, str(exc), strict_option="--strict-assets")


@pytest.fixture(scope="session")
def albert_tokenizer(tokenizer_path):
    from albert_ixrt.tokenizer import AlbertTokenizer

    return AlbertTokenizer(tokenizer_path)


@pytest.fixture(scope="session")
def dev_examples(squad_path):
    from albert_ixrt.squad.data import load_squad

    return load_squad(squad_path)


@pytest.fixture(scope="session")
def dev_features(squad_path, dev_examples, albert_tokenizer):
    """Features of the whole real dev set (the feature cache's; ~2 CPU-s to build once)."""
    from albert_ixrt.feature_cache import cached_features

    return cached_features(squad_path, albert_tokenizer, examples=dev_examples)


@pytest.fixture(scope="session")
def twin_config_path(request):
    """The albert-base config (architecture of madlag/albert-base-v2-squad) for the shape twin."""
    try:
        return assets.model_config_path()
    except assets.AssetMissingError as exc:
        skip_or_fail(request, str(exc), strict_option="--strict-assets")


@pytest.fixture(scope="session")
def tiny_model():
    from albert_ixrt.model import load_model

    return load_model("tiny")


@pytest.fixture(scope="session")
def twin_model(twin_config_path):
    from albert_ixrt.model import load_model

    return load_model(twin_config_path, random_weights=True)
