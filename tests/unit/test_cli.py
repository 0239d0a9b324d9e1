"""The command-line contract other checks depend on."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ixrt.cli import main
from child_env import child_env

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_features_prints_examples_and_features(squad_path, tokenizer_path, capsys, tmp_path):
    # A 3-article slice of the dev set keeps this fast; the full count is checked in tests/accuracy.
    doc = json.loads(squad_path.read_text(encoding="utf-8"))
    doc["data"] = doc["data"][:1]
    small = tmp_path / "one_article.json"
    small.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["features", "--squad", str(small), "--tokenizer", str(tokenizer_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["examples"] == sum(len(p["qas"]) for p in doc["data"][0]["paragraphs"])
    assert out["features"] >= out["examples"]
    assert main(["features", "--squad", str(small), "--tokenizer", str(tokenizer_path), "--max-seq-length", "64",
                 "--doc-stride", "32", "--max-query-length", "16"]) == 0
    assert json.loads(capsys.readouterr().out)["features"] > out["features"]


def test_evaluate_on_the_shape_twin_writes_labelled_files(twin_config_path, squad_path, tmp_path, capsys):
    rc = main(["evaluate", "--model", str(twin_config_path), "--random-weights", "--squad", str(squad_path),
               "--backend", "torch", "--precision", "fp32", "--batch-size", "4", "--limit", "3",
               "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.startswith("random weights:")
    assert "official SQuAD v1.1" in out and "ByteMLPerf-compatible" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"]["weights"] == "random" and metrics["scores"]["questions"] == 3
    assert len(json.loads((tmp_path / "predictions.json").read_text())) == 3


def test_errors_are_one_line_without_traceback(tmp_path):
    env = child_env(HF_HUB_OFFLINE="1")
    cases = [
        (["score", "--squad", str(tmp_path / "missing.json"), "--predictions", "x"], "missing.json: file not found"),
        (["evaluate", "--model", "/nope/config.json", "--out", str(tmp_path)], "model config not found"),
        (["evaluate", "--model", "madlag/albert-base-v2-squad", "--out", str(tmp_path), "--limit", "1"],
         "`hf download madlag/albert-base-v2-squad --local-dir DIR`"),   # current huggingface_hub CLI
    ]
    for argv, needle in cases:
        p = subprocess.run([sys.executable, "-m", "albert_ixrt.cli", *argv], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 2, p.stderr
        assert needle in p.stderr and "Traceback" not in p.stderr
        assert "huggingface-cli" not in p.stderr   # removed from huggingface_hub; `hf` replaces it
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.parametrize("command", [
    ["features"],
    ["evaluate", "--model", "tiny", "--quiet", "--out", "{out}"],
    ["run", "--profile", "tiny", "--quiet", "--out", "{out}"],
    ["score", "--predictions", str(FIXTURES / "predictions" / "v2.0_unanswerable.json")],
])
def test_squad_v2_is_refused_by_every_command_that_reads_squad(command, tmp_path, capsys):
    """One line naming the file and its first unanswerable question, exit 2, before any scoring."""
    squad = FIXTURES / "squad" / "v2.0_unanswerable.json"
    argv = [a.format(out=tmp_path / "out") for a in command] + ["--squad", str(squad)]
    assert main(argv) == 2
    out = capsys.readouterr()
    (line,) = out.err.strip().splitlines()
    assert line.startswith(f"albert-ixrt {command[0]}: error: {squad}: ") and "'v2-impossible'" in line
    assert "PASSED" not in out.out and "exact_match" not in out.out
    assert not (tmp_path / "out" / "metrics.json").exists() and not (tmp_path / "out" / "report.md").exists()


def test_a_v1_fixture_of_the_same_shape_is_accepted(tmp_path, tokenizer_path, capsys):
    """The refusal's other side: the same commands take a small v1.1 file."""
    squad = str(FIXTURES / "squad" / "edge_answers.json")
    assert main(["features", "--squad", squad, "--tokenizer", str(tokenizer_path)]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 4
    assert main(["evaluate", "--model", "tiny", "--quiet", "--squad", squad, "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["scores"]["questions"] == 4


@pytest.mark.slow
def test_run_tiny_profile_end_to_end(tmp_path):
    p = subprocess.run([sys.executable, "-m", "albert_ixrt.cli", "run", "--profile", "tiny", "--out", str(tmp_path),
                        "--quiet"], capture_output=True, text=True, timeout=120, env=child_env())
    assert p.returncode == 0, p.stderr
    assert "self-test" in p.stdout and "official SQuAD v1.1" in p.stdout
    assert p.stdout.rstrip().splitlines()[-2].startswith("NOT SIGNED OFF: the built-in tiny self-test model")
    run = tmp_path / "latest"  # the run's own dated folder
    for name in ("report.md", "report.json", "predictions.json", "metrics.json", "equivalence.json", "bench.json",
                 "perf_report.md", "perf_report.json", "throughput.png", "onnx/manifest.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["load", "features", "convert", "equivalence", "evaluate",
                                                    "thresholds", "perf"]
    thresholds = report["steps"][5]
    assert thresholds["status"] == "not judged" and "random weights" in thresholds["reason"]
    assert report["passed"] is False and report["verdict"]["status"] == "NOT SIGNED OFF"


def test_run_fails_when_a_stage_is_not_equivalent(tmp_path, monkeypatch, capsys):
    """Tolerances of zero make every ONNX stage 'different': the run must say FAILED and exit 1."""
    from albert_ixrt import compare
    from albert_ixrt.config import Tolerance

    monkeypatch.setattr(compare, "TOLERANCES", {k: Tolerance(0.0, 0.0, "test: nothing passes")
                                                for k in compare.TOLERANCES})
    assert main(["run", "--profile", "tiny", "--out", str(tmp_path), "--quiet", "--skip", "perf"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: the built-in tiny self-test model on torch fp32: " in out
    assert "conversion exported: stage 'exported'" in out
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert report["verdict"]["status"] == "FAILED"
    assert "| equivalence | failed |" in (tmp_path / "latest" / "report.md").read_text()
