"""pytest layer: options, markers and the session fixtures that build each artefact once.

No logic of its own: asset lookup lives in albert_ixrt.assets, everything else in the package.
"""
from __future__ import annotations

import os

import pytest

from albert_ixrt import assets

MARKERS = {
    "conversion": "torch -> ONNX -> onnxsim -> fused -> fp16 equivalence and graph checks",
    "perf": "throughput and latency (pytest-benchmark)",
    "accuracy": "SQuAD v1.1 dev-set accuracy (oracle and thresholds)",
    "gpu": "needs a CUDA GPU (skips without one unless --require-gpu)",
    "slow": "minutes, not seconds, on a 2-core CPU",
}


def pytest_addoption(parser):
    g = parser.getgroup("albert-ixrt")
    g.addoption("--model", default=None, help="model: hub id, HF directory, TorchScript .pt, or config.json "
                "(with --random-weights); default: $ALBERT_IXRT_MODEL, else the real hub model if cached")
    g.addoption("--random-weights", action="store_true", help="allow the seeded random-weight shape twin")
    g.addoption("--squad", default=None, help="SQuAD v1.1 dev JSON (default: $ALBERT_IXRT_SQUAD or ../shared/data)")
    g.addoption("--tokenizer", default=None, help="spiece.model or model dir (default: $ALBERT_IXRT_TOKENIZER "
                "or ../shared/data/albert-base-v2)")
    g.addoption("--backend", default="torch", help="runner under test for accuracy/perf (torch, onnxruntime, "
                "tensorrt, ixrt)")
    g.addoption("--precision", default="fp32", help="precision of the runner under test")
    g.addoption("--strict-assets", action="store_true", help="fail instead of skipping when real weights or "
                "data are missing (nightly CI)")
    g.addoption("--require-gpu", action="store_true", help="fail instead of skipping when a GPU, TensorRT or "
                "another asked-for backend is missing")


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    # Under pytest-xdist with several GPUs, each worker gets one (before anything touches CUDA).
    from albert_ixrt.parallel import pin_worker_gpu

    pin_worker_gpu(os.environ.get("PYTEST_XDIST_WORKER"))


def skip_or_fail(request, reason: str, *, strict_option: str) -> None:
    """Skip with ``reason``; fail instead when the user asked for strictness with ``strict_option``."""
    if request.config.getoption(strict_option):
        pytest.fail(f"{reason} (and {strict_option} was given)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def squad_path(request):
    try:
        return assets.squad_dev_path(request.config.getoption("--squad"), download=False)
    except assets.AssetMissingError as exc:
        skip_or_fail(request, str(exc), strict_option="--strict-assets")


@pytest.fixture(scope="session")
def tokenizer_path(request):
    try:
        return assets.tokenizer_path(request.config.getoption("--tokenizer"))
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


@pytest.fixture(scope="session")
def real_model(request):
    """The real fine-tuned model (or a known-answer model, which the accuracy suite judges the same
    way), or a skip (a failure under --strict-assets) saying what is missing."""
    from albert_ixrt.model import load_model

    spec = request.config.getoption("--model") or os.environ.get("ALBERT_IXRT_MODEL")
    try:
        model = load_model(spec or assets.DEFAULT_MODEL_ID, offline=None if spec else True)
    except assets.AssetMissingError as exc:
        skip_or_fail(request, f"real weights not found: {exc}", strict_option="--strict-assets")
    if model.weights not in ("real", "known-answer"):
        skip_or_fail(request, f"{model.name} has random weights", strict_option="--strict-assets")
    return model
