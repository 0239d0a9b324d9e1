"""The pytest door (albert_ixrt/pytest_plugin.py + acceptance/door.py): the subject checked before
collection (usage error, exit 4, one line, in seconds, also for what a CI line gets wrong: an empty
--model or $ALBERT_IXRT_MODEL, a backend or device that is not there); options under their namespaced
spellings and beside another plugin's --model; the acceptance package run by name from any folder; JUnit
properties naming the subject resolved and hashed; the verdict line and the sign-off record."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from albert_ixrt.errors import AlbertIxrtError
from albert_ixrt.options import check_model_spec
from albert_ixrt.pytest_plugin import join_list_values
from child_env import child_env

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "albert_ixrt.pytest_plugin"


def _env(**more) -> dict:
    """The child's environment: no PYTEST_* of this run (an xdist worker's would leak), offline, this checkout
    first, no model named unless ``more`` names one."""
    return child_env(**{"HF_HUB_OFFLINE": "1", "ALBERT_IXRT_MODEL": None, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]), **more})


def _pytest(*args, cwd=ROOT, timeout=300, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=cwd, capture_output=True, text=True, env=env or _env(), timeout=timeout)


def test_a_record_folder_that_cannot_take_the_record_is_a_usage_error_before_any_test(tmp_path):
    """--albert-report is checked as run checks --out, before collection: a user's own ``latest`` there would
    otherwise refuse the record only at the end of the run."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "latest").write_text("my notes\n")
    p = _pytest("--pyargs", "albert_ixrt.acceptance", "-m", "conversion", "--collect-only",
                f"--albert-report={tmp_path / 'mine'}", cwd=tmp_path, timeout=120)
    assert p.returncode == 4, p.stdout + p.stderr
    assert "--albert-report" in p.stderr and "is not a link that an albert-ixrt run made" in p.stderr
    assert (tmp_path / "mine" / "latest").read_text() == "my notes\n"
    # the other way (a folder that takes the record): the sign-off record test below writes one there


@pytest.mark.parametrize("args,env,needle", [
    (["--backend", "nosuch"], {}, "argument --backend: invalid choice: 'nosuch'"),
    (["--backend", "tensorrt", "--precision", "bf16"], {}, "choose one of fp32, fp16"),
    (["--model", "missing.pt"], {}, "--model missing.pt: TorchScript file not found"),
    (["--albert-model", "/nowhere/config.json", "--random-weights"], {}, "model config not found"),
    (["--model", "/nowhere/albert-dir"], {}, "not found; give a hub id"),
    (["--model", "models/typo"], {}, "not a hub id in the local Hugging Face cache (offline"),
    (["--backend", "onnxruntime", "--device", "cuda:0"], {}, "--device 'cuda:0' does not apply"),
    (["--model="], {}, "is empty (an unset variable in the command line?)"),
    ([], {"ALBERT_IXRT_MODEL": ""}, "$ALBERT_IXRT_MODEL is set but empty"),
    (["--backend", "tensorrt"], {}, "cannot be judged here: TensorRT"),
    (["--device", "cuda"], {}, "cannot be judged here: device 'cuda' requested but torch sees no CUDA GPU"),
])
def test_a_subject_that_cannot_be_judged_is_a_usage_error_before_any_test(args, env, needle):
    began = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = _pytest("-m", "perf", *args, timeout=120, env=_env(**env))
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    took = (ended.ru_utime - began.ru_utime) + (ended.ru_stime - began.ru_stime)   # CPU seconds: load-proof
    assert p.returncode == 4, p.stdout + p.stderr
    errors = [line for line in p.stderr.splitlines() if needle in line]
    assert len(errors) == 1 and "error" in errors[0].lower(), p.stderr
    assert "passed" not in p.stdout and "collected" not in p.stdout
    assert took < 15, f"{took:.1f} CPU-s"    # no model loads (a CUDA check imports torch: ~3 CPU-s)


def test_model_folders_without_weights_are_refused_naming_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlbertIxrtError, match="no config.json in this folder .it is empty."):
        check_model_spec("--model", str(tmp_path / "empty"))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text("{}")
    with pytest.raises(AlbertIxrtError, match="has config.json but no weights .looked for model.safetensors, "
                                              "model.safetensors.index.json, pytorch_model.bin, "
                                              "pytorch_model.bin.index.json"):
        check_model_spec("--model", str(tmp_path / "cfg"))
    check_model_spec("--model", str(tmp_path / "cfg"), random_weights=True)
    (tmp_path / "cfg" / "model.safetensors.index.json").write_text("{}")
    check_model_spec("--model", str(tmp_path / "cfg"))               # a sharded checkpoint's index


def test_the_good_subject_specs_pass(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    check_model_spec("--model", "tiny")
    check_model_spec("--model", str(tmp_path / "m.pt"))
    check_model_spec("--model", str(tmp_path / "config.json"), random_weights=True)
    check_model_spec("--model", "madlag/albert-base-v2-squad")       # a hub id: reachability is the plan's
    with pytest.raises(AlbertIxrtError, match="holds no weights"):
        check_model_spec("--model", str(tmp_path / "config.json"))


def test_a_list_option_never_eats_the_test_path_after_it():
    args = ["--perf-batch-sizes", "1", "16", "tests/x.py", "--albert-perf-batch-sizes", "4,8", "-q"]
    join_list_values(args)
    assert args == ["--perf-batch-sizes=1,16", "tests/x.py", "--albert-perf-batch-sizes=4,8", "-q"]


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
    """A conftest (or plugin) that defines --model keeps it; this plugin then answers to --albert-model
    only, and both values arrive where they belong."""
    (tmp_path / "conftest.py").write_text(PROBE_CONFTEST)
    (tmp_path / "test_probe.py").write_text(PROBE_TEST)
    p = _pytest("-p", PLUGIN, "--model", "theirs", "--albert-model", "tiny", "test_probe.py", cwd=tmp_path,
                timeout=120)
    assert p.returncode == 0 and "1 passed" in p.stdout, p.stdout + p.stderr
    # The planted-bad side: two definitions of --model with nobody checking make argparse refuse both.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "conftest.py").write_text(PROBE_CONFTEST)
    (bad / "plugin2.py").write_text('def pytest_addoption(parser):\n    parser.addoption("--model")\n')
    (bad / "test_probe.py").write_text("def test_probe():\n    pass\n")
    clash = _pytest("-p", "plugin2", "test_probe.py", cwd=bad, timeout=120)
    assert clash.returncode != 0 and "--model" in clash.stdout + clash.stderr


def test_registered_once_when_the_rootdir_conftest_also_asks():
    p = _pytest("-p", PLUGIN, "--co", "tests/unit/test_metrics.py", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    twice = _pytest("-p", PLUGIN, "--trace-config", "--co", "tests/unit/test_metrics.py", timeout=120)
    registered = [line for line in twice.stdout.splitlines() if line.startswith("PLUGIN registered: <module 'albert")]
    assert registered == [f"PLUGIN registered: <module '{PLUGIN}' from '{ROOT / 'albert_ixrt' / 'pytest_plugin.py'}'>"]
    alone = _pytest("--trace-config", "--co", "tests/unit/test_metrics.py", timeout=120)
    assert [line for line in alone.stdout.splitlines() if line.startswith("PLUGIN registered: <module 'albert")] \
        == registered, alone.stdout[-3000:]


def test_the_acceptance_package_runs_by_name_from_any_folder_with_its_record(tmp_path):
    """From a folder outside the checkout: `--pyargs albert_ixrt.acceptance -m conversion --model tiny`
    passes, names the subject in each JUnit testcase (resolved, hashed, the device used) and writes the
    same sign-off record run writes (--albert-report)."""
    xml, record = tmp_path / "j.xml", tmp_path / "signoff"
    p = _pytest("--pyargs", "albert_ixrt.acceptance", "-m", "conversion", "--model", "tiny", "-k", "exported",
                f"--junitxml={xml}", "-o", "junit_family=xunit1", f"--albert-report={record}", cwd=tmp_path)
    assert p.returncode == 0 and "2 passed" in p.stdout, p.stdout + p.stderr
    assert "NOT SIGNED OFF: the built-in tiny self-test model on torch fp32: self-test only" in p.stdout
    cases = list(ET.parse(xml).iter("testcase"))
    props = {e.get("name"): e.get("value") for e in cases[0].iter("property")}
    assert props["subject_model"] == "tiny" and props["subject_weights"] == "random", props
    assert len(props["subject_weights_sha256"]) == 64 and len(props["subject_squad_sha256"]) == 64, props
    assert props["subject_device"] == "cpu" and props["subject_suite_version"], props
    assert props["albert_status"] == "passed" and props["albert_message"].startswith("PASS"), props
    rec = json.loads((record / "latest" / "report.json").read_text())
    assert rec["writer"] == "albert-ixrt pytest" and rec["schema"] == 2
    assert rec["verdict"]["status"] == "NOT SIGNED OFF" and (record / "latest" / "report.md").is_file()


def test_the_default_subject_is_the_self_test_and_accuracy_is_not_judged(tmp_path):
    p = _pytest("--pyargs", "albert_ixrt.acceptance", "-m", "accuracy", "-rs", cwd=tmp_path)
    assert p.returncode == 0 and "3 skipped" in p.stdout, p.stdout
    assert "random weights: accuracy is judged only on real weights" in p.stdout
    assert ("NOT SIGNED OFF: the built-in tiny self-test model on torch fp32: self-test only: the built-in tiny "
            "random-weight model (no subject named: --model or $ALBERT_IXRT_MODEL)") in p.stdout
    assert "PASSED" not in p.stdout
    header = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs",
                             "albert_ixrt.acceptance", "--co"], cwd=tmp_path, capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert "albert-ixrt: no subject named (--model or $ALBERT_IXRT_MODEL): the built-in tiny self-test; nothing " \
           "will be signed off" in header.stdout, header.stdout[:2000]
