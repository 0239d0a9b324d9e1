"""Self-test perf fixtures (the tiny model and the twin through the harness), and the guard against
pytest-xdist (as for the acceptance perf modules in tests/perf).

pytest-benchmark switches itself off when xdist distributes tests (parallel workers would time
each other), which would turn every timing here into noise or nothing.  So under ``-n N`` every
perf test is skipped with a reason that says so, and the run prints a warning; run them with
``-p no:xdist`` (or ``-n 0``).
"""
from __future__ import annotations

import os

import pytest

from albert_ixrt.pytest_plugin import option, perf_items, warn_perf_distributed

#: Real SQuAD questions featurized for the perf tests (about 0.5 s): enough for several batches.
PERF_EXAMPLES = 200


def pytest_configure(config):
    warn_perf_distributed(config, "tests/selftest/perf")


def pytest_collection_modifyitems(config, items):
    perf_items(config, items, os.path.dirname(__file__))


def strict_for(config, backend: str) -> bool:
    """Does --require-gpu make a missing ``backend`` a failure?  TensorRT and ixRT exclude each
    other (ixRT ships its own ``tensorrt`` module), so only the one asked for with --backend is
    required; NVIDIA TensorRT by default."""
    if not option(config, "require_gpu"):
        return False
    asked = option(config, "backend")
    other_vendor = "tensorrt" if asked == "ixrt" else "ixrt"
    return backend != other_vendor


@pytest.fixture
def require_backend(request):
    """``require_backend(exc)``: a missing backend skips with its one-line reason, or fails when
    --require-gpu asks for it (see ``strict_for``)."""
    def skip_or_fail(exc) -> None:
        if strict_for(request.config, exc.backend):
            pytest.fail(f"{exc.reason} (and --require-gpu was given)", pytrace=False)
        pytest.skip(exc.reason)
    return skip_or_fail


@pytest.fixture(scope="session")
def perf_features(dev_examples, albert_tokenizer):
    """Features of the first PERF_EXAMPLES real dev questions (file order)."""
    from albert_ixrt.squad.features import build_features

    return build_features(dev_examples[:PERF_EXAMPLES], albert_tokenizer)


@pytest.fixture(scope="session")
def tiny_vocab(tiny_model):
    return tiny_model.config["vocab_size"]


@pytest.fixture(scope="session")
def tiny_converted(tmp_path_factory, tiny_model):
    """The tiny model through the project's converter: (folder, manifest)."""
    from albert_ixrt import export

    out = tmp_path_factory.mktemp("tiny_onnx")
    return out, export.convert(tiny_model, out, progress=False)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_converted):
    """Stage name -> path of the tiny model's conversion."""
    from albert_ixrt import export

    out, manifest = tiny_converted
    return export.stage_paths(manifest, out)


@pytest.fixture(scope="session")
def engine_onnx(tiny_converted):
    """``engine_onnx(backend, precision)``: the graph an engine builds from (``engine_input.engine_graph``,
    the one decision run, bench, evaluate and layerwise use)."""
    from albert_ixrt.engine_input import engine_graph

    out, manifest = tiny_converted
    return lambda backend, precision: engine_graph(manifest, out, backend, precision)
