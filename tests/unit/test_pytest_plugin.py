"""The suite's pytest plugin (albert_ixrt/pytest_plugin.py): the subject under test is checked at
session start (usage error, exit 4, one line, in seconds), the options work under their namespaced
spellings and beside another plugin's ``--model``, acceptance tests record the subject in JUnit, and
the default subject's missing accuracy inputs skip (fail under --strict-assets)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.options import check_model_spec

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "albert_ixrt.pytest_plugin"


def _env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])}
    env.pop("ALBERT_IXRT_MODEL", None)
    return env


def _pytest(*args, cwd=ROOT, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=cwd, capture_output=True, text=True, env=_env(), timeout=timeout)


@pytest.mark.parametrize("args,needle", [
    (["--backend", "nosuch"], "--backend 'nosuch' is not a backend; choose one of torch, onnxruntime, tensorrt, ixrt"),
    (["--backend", "tensorrt", "--precision", "bf16"], "choose one of fp32, fp16"),
    (["--model", "missing.pt"], "--model missing.pt: TorchScript file not found"),
    (["--albert-model", "/nowhere/config.json", "--random-weights"], "model config not found"),
    (["--model", "/nowhere/albert-dir"], "not found; give a hub id"),
    (["--backend", "onnxruntime", "--device", "cuda:0"], "--device 'cuda:0' does not apply"),
])
def test_a_bad_subject_is_a_usage_error_before_any_test(args, needle):
    began = time.monotonic()
    p = _pytest("-m", "perf", *args, timeout=60)
    took = time.monotonic() - began
    assert p.returncode == 4, p.stdout + p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and needle in errors[0], p.stderr
    assert "passed" not in p.stdout and "collected" not in p.stdout
    assert took < 10, f"{took:.1f} s"


def test_the_good_subject_specs_pass(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    check_model_spec("--model", "tiny")
    check_model_spec("--model", str(tmp_path))                       # a model directory
    check_model_spec("--model", str(tmp_path / "m.pt"))
    check_model_spec("--model", str(tmp_path / "config.json"), random_weights=True)
    check_model_spec("--model", "madlag/albert-base-v2-squad")       # a hub id: reachability is the loader's
    with pytest.raises(AlbertIxrtError, match="holds no weights"):
        check_model_spec("--model", str(tmp_path / "config.json"))


PROBE_CONFTEST = '''
def pytest_addoption(parser):
    parser.addoption("--model", default="probe-default", help="another project's --model")


def pytest_configure(config):
    config.probe_model = config.getoption("--model")
'''
PROBE_TEST = '''
def test_probe(request):
    assert request.config.probe_model == "theirs"
    assert request.config.getoption("albert_model") == "tiny"
'''


def test_another_plugins_model_option_breaks_neither_side(tmp_path):
    """A conftest (or plugin) that defines --model keeps it; this plugin then answers to
    --albert-model only, and both values arrive where they belong."""
    (tmp_path / "conftest.py").write_text(PROBE_CONFTEST)
    (tmp_path / "test_probe.py").write_text(PROBE_TEST)
    p = _pytest("-p", PLUGIN, "--model", "theirs", "--albert-model", "tiny", "test_probe.py", cwd=tmp_path,
                timeout=120)
    assert p.returncode == 0 and "1 passed" in p.stdout, p.stdout + p.stderr
    # The planted-bad side: without the check, two definitions of --model make argparse refuse both.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "conftest.py").write_text(PROBE_CONFTEST + '''

def pytest_addoption_again(parser):
    pass
''')
    (bad / "plugin2.py").write_text('def pytest_addoption(parser):\n    parser.addoption("--model")\n')
    (bad / "test_probe.py").write_text("def test_probe():\n    pass\n")
    clash = _pytest("-p", "plugin2", "test_probe.py", cwd=bad, timeout=120)
    assert clash.returncode != 0 and "--model" in clash.stdout + clash.stderr


def test_registered_once_when_the_rootdir_conftest_also_asks(tmp_path):
    """-p albert_ixrt.pytest_plugin (as the entry point registers it: under the module's name) and the
    rootdir conftest's registration: one plugin, options defined once (no 'already added' error)."""
    p = _pytest("-p", PLUGIN, "--co", "tests/unit/test_metrics.py", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    twice = _pytest("-p", PLUGIN, "--trace-config", "--co", "tests/unit/test_metrics.py", timeout=120)
    registered = [line for line in twice.stdout.splitlines() if line.startswith("PLUGIN registered: <module 'albert")]
    assert registered == [f"PLUGIN registered: <module '{PLUGIN}' from '{ROOT / 'albert_ixrt' / 'pytest_plugin.py'}'>"]
    # and without -p: the rootdir conftest registers it, once, under the same name
    alone = _pytest("--trace-config", "--co", "tests/unit/test_metrics.py", timeout=120)
    assert [line for line in alone.stdout.splitlines() if line.startswith("PLUGIN registered: <module 'albert")] \
        == registered, alone.stdout[-3000:]


def test_options_work_from_outside_the_checkout(tmp_path):
    """`pytest <checkout>/tests/... --model ...` from another folder: the options, the subject and
    its JUnit properties (the acceptance tests record it)."""
    xml = tmp_path / "j.xml"
    target = ROOT / "tests" / "conversion" / "test_subject_conversion.py"
    p = _pytest(f"{target}::test_graph_checks[exported]", "--model", "tiny", "--backend", "onnxruntime",
                f"--junitxml={xml}", "-o", "junit_family=xunit1", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    props = {e.get("name"): e.get("value") for e in ET.parse(xml).iter("property")}
    assert props["subject_model"] == "tiny" and props["subject_weights"] == "random", props
    assert props["subject_backend"] == "onnxruntime" and props["subject_precision"] == "fp32", props
    assert props["subject_device"] == "auto" and "subject_engine" in props, props


def test_default_subject_skips_accuracy_with_its_reason_and_fails_when_strict():
    target = "tests/accuracy/test_thresholds.py::test_reference_thresholds_bytemlperf_compatible"
    loose = _pytest(target, "-rs")
    assert loose.returncode == 0 and "1 skipped" in loose.stdout and "tiny has random weights" in loose.stdout, \
        loose.stdout
    strict = _pytest(target, "--strict-assets")
    assert strict.returncode == 1 and "--strict-assets was given" in strict.stdout, strict.stdout
