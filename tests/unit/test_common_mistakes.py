"""What a newcomer trips over in the second hour: each mistake gets one
line naming the cause (exit 2), each check shown with the input that passes beside the one refused."""
from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ixrt.cli import main
from child_env import child_env

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
MINIMAL = FIXTURES / "squad" / "minimal_v1.1.json"   # one question, id "q1", gold "Some"


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"albert-ixrt {command}: error: ") and "Traceback" not in err
    return line


# --- the version, and the module run as a program ----------------------------------------------
def test_version_option_prints_the_package_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"albert-ixrt {version('albert-ixrt')}"


def test_python_dash_m_albert_ixrt_is_the_command_line():
    p = subprocess.run([sys.executable, "-m", "albert_ixrt", "--version"], capture_output=True, text=True,
                       timeout=60, env=child_env())
    assert p.returncode == 0 and p.stdout.startswith("albert-ixrt "), p.stderr
    p = subprocess.run([sys.executable, "-m", "albert_ixrt", "frobnicate"], capture_output=True, text=True,
                       timeout=60, env=child_env())
    assert p.returncode == 2 and "invalid choice: 'frobnicate'" in p.stderr


@pytest.mark.parametrize("argv, needle", [
    (["--device", "gpu"], "--device 'gpu' does not apply to backend torch; choose one of auto, cpu, cuda, cuda:N"),
    (["--backend", "onnxruntime", "--device", "cuda:1"], "--device 'cuda:1' does not apply to backend onnxruntime"),
    (["--backend", "tensorrt", "--precision", "fp16", "--device", "cpu"], "(it runs on its GPU)"),
])
def test_evaluate_refuses_a_device_as_bench_does(argv, needle, tmp_path, capsys):
    """Before: `evaluate --device gpu` featurized the data, then torch raised a traceback; an
    onnxruntime --device was silently ignored.  Now refused in one line before any work."""
    out = tmp_path / "out"
    assert main(["evaluate", "--model", "tiny", "--squad", str(MINIMAL), "--quiet", "--out", str(out), *argv]) == 2
    assert needle in _one_error_line(capsys, "evaluate")
    assert not (out / "metrics.json").exists()
    # bench says the same about the same device
    assert main(["bench", "--model", "tiny", *argv]) == 2
    assert needle in _one_error_line(capsys, "bench")


def test_evaluate_takes_a_device_the_backend_has(tmp_path, capsys):
    assert main(["evaluate", "--model", "tiny", "--squad", str(MINIMAL), "--quiet", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["runner"]["device"] == "cpu"


def _predictions(tmp_path, doc) -> str:
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_score_with_no_matching_question_id_names_the_likely_cause(tmp_path, capsys):
    """Before: every question scored 0 and score printed {"exact_match": 0.0, "f1": 0.0}, exit 0."""
    preds = _predictions(tmp_path, {"5733be284776f41900661182": "Saint Bernadette Soubirous"})
    assert main(["score", "--squad", str(MINIMAL), "--predictions", preds]) == 2
    line = _one_error_line(capsys, "score")
    assert f"none of the 1 question ids in {preds} is in {MINIMAL} (1 questions)" in line
    assert "another dev set" in line
    assert capsys.readouterr().out == ""


def test_score_with_a_matching_question_id_scores_it(tmp_path, capsys):
    preds = _predictions(tmp_path, {"q1": "Some", "elsewhere": "x"})
    assert main(["score", "--squad", str(MINIMAL), "--predictions", preds]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"exact_match": 100.0, "f1": 100.0}
    assert "1 predictions name question ids not in" in out.err


def test_a_gzip_squad_file_is_named_as_such(tmp_path, capsys):
    """Before: "not valid UTF-8 (byte 1)" — true, but not what a user who downloaded a .gz needs."""
    packed = tmp_path / "dev-v1.1.json.gz"
    packed.write_bytes(gzip.compress(MINIMAL.read_bytes()))
    assert main(["score", "--squad", str(packed), "--predictions", _predictions(tmp_path, {"q1": "Some"})]) == 2
    line = _one_error_line(capsys, "score")
    assert f"{packed}: is gzip-compressed, not JSON: decompress it first (gunzip -k {packed})" in line
    plain = tmp_path / "dev-v1.1.json"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    assert main(["score", "--squad", str(plain), "--predictions", str(tmp_path / "predictions.json")]) == 0


# --- small things a reader notices ------------------------------------------------------------
def test_a_json_error_says_at_once(tmp_path, capsys):
    """json's "Unterminated string starting at" came out as "... starting at at line 1"."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": "unterminated', encoding="utf-8")
    assert main(["score", "--squad", str(bad), "--predictions", str(bad)]) == 2
    line = _one_error_line(capsys, "score")
    assert line.endswith(f"{bad}: not valid JSON (Unterminated string starting at line 1, column 10)")
    assert "at at" not in line
    bad.write_text("{", encoding="utf-8")   # a message without a trailing "at" keeps its words
    assert main(["score", "--squad", str(bad), "--predictions", str(bad)]) == 2
    assert "(Expecting property name enclosed in double quotes at line 1, column 2)" in _one_error_line(capsys,
                                                                                                         "score")


@pytest.mark.parametrize("argv", [["bench", "--batch-size", "1,16"], ["bench", "--seq-len", "128,384"]])
def test_a_comma_separated_list_gets_the_spaces_hint(argv, capsys):
    assert main(argv) == 2
    line = _one_error_line(capsys, argv[0])
    values = argv[-1].replace(",", " ").split()
    assert f"give several values separated by spaces, not commas: {' '.join(values)}" in line


def test_a_space_separated_list_is_taken():
    from albert_ixrt.cli import build_parser

    args = build_parser().parse_args(["bench", "--batch-size", "1", "16", "--seq-len", "128", "384"])
    assert (args.batch_size, args.seq_len) == ([1, 16], [128, 384])


def test_non_ascii_paths_are_printed_as_they_are(tmp_path, capsys):
    """Before: evaluate's last line said "/tmp/r\\u00e9sultats/predictions.json"."""
    out = tmp_path / "résultats_日本"
    assert main(["evaluate", "--model", "tiny", "--squad", str(MINIMAL), "--quiet", "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert str(out / "predictions.json") in last and "\\u" not in last
    assert json.loads(last)["metrics"] == str(out / "metrics.json")


def test_quantisation_pre_processing_advice_is_silenced_and_nothing_else(caplog):
    from albert_ixrt.runners.ort_runner import PREPROCESS_ADVICE, _without_preprocess_advice

    advice = "Please consider to run pre-processing before quantization. Refer to example: ..."
    with caplog.at_level(logging.WARNING), _without_preprocess_advice():
        logging.warning(advice)                        # onnxruntime logs it on the root logger
        logging.warning("a real problem")
    assert PREPROCESS_ADVICE in advice
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        logging.warning(advice)                        # outside quantisation the filter is gone
    assert [r.getMessage() for r in caplog.records] == [advice]


def test_loadgen_quick_mode_is_not_worded_as_a_contradiction():
    from albert_ixrt.loadgen import LoadgenResult

    def head(valid, mode):
        return LoadgenResult("Offline", valid, 1.0, {}, 1, 1, mode=mode).console_lines()[0]

    assert "not meant to be VALID" not in head(True, "quick")
    assert head(True, "quick") == "Offline: LoadGen says VALID (a quick run; --mlperf-valid runs by MLPerf's rules)"
    assert head(False, "quick") == ("Offline: LoadGen says INVALID (expected of a quick run, which is too short "
                                    "for MLPerf's rules; --mlperf-valid runs by them)")
    assert head(False, "mlperf") == "Offline: LoadGen says INVALID (MLPerf rules)"
    assert head(True, "mlperf") == "Offline: LoadGen says VALID (MLPerf rules)"
