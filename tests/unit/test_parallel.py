"""GPU pinning of xdist workers and sharded evaluation (identical to a single run)."""
import json

import pytest

from albert_ixrt.cli import main
from albert_ixrt.parallel import gpu_for_worker, parse_shard, pin_worker_gpu, shard, visible_gpus, worker_index


def test_worker_index_and_round_robin():
    assert worker_index("gw0") == 0 and worker_index("gw11") == 11
    assert worker_index("master") is None and worker_index(None) is None
    gpus = ["0", "1", "2"]
    assert [gpu_for_worker(f"gw{i}", gpus) for i in range(5)] == ["0", "1", "2", "0", "1"]
    assert gpu_for_worker("gw3", []) is None and gpu_for_worker(None, gpus) is None


def test_pinning_respects_an_existing_visible_list():
    env = {"CUDA_VISIBLE_DEVICES": "4,6"}
    assert visible_gpus(env) == ["4", "6"]
    assert pin_worker_gpu("gw1", env) == "6" and env["CUDA_VISIBLE_DEVICES"] == "6"
    env = {"CUDA_VISIBLE_DEVICES": "-1"}
    assert pin_worker_gpu("gw0", env) is None and env["CUDA_VISIBLE_DEVICES"] == "-1"


def test_shards_are_contiguous_disjoint_and_complete():
    items = list(range(103))
    parts = [shard(items, i, 4) for i in range(4)]
    assert sum(parts, []) == items and max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parse_shard("2/4") == (1, 4)
    for bad in ("0/4", "5/4", "x", "", "1/0"):
        with pytest.raises(ValueError, match="I/N"):
            parse_shard(bad)


def test_sharded_evaluation_merges_to_the_single_run(squad_path, tmp_path, capsys):
    # On the CPU on every machine: this checks the split and the merge, and GPU kernels chosen per
    # batch shape could flip a near-tie of the tiny random model's logits between the two runs.
    common = ["--model", "tiny", "--squad", str(squad_path), "--batch-size", "4", "--limit", "40", "--quiet",
              "--device", "cpu"]
    assert main(["evaluate", *common, "--out", str(tmp_path / "single")]) == 0
    for i in (1, 2, 3):
        assert main(["evaluate", *common, "--shard", f"{i}/3", "--out", str(tmp_path / f"s{i}")]) == 0
    assert main(["merge", *(str(tmp_path / f"s{i}") for i in (1, 2, 3)), "--squad", str(squad_path),
                 "--limit", "40", "--out", str(tmp_path / "merged")]) == 0
    capsys.readouterr()
    single = json.loads((tmp_path / "single" / "predictions.json").read_text())
    merged = json.loads((tmp_path / "merged" / "predictions.json").read_text())
    assert merged == single and len(single) == 40
    m1 = json.loads((tmp_path / "single" / "metrics.json").read_text())["scores"]
    m2 = json.loads((tmp_path / "merged" / "metrics.json").read_text())["scores"]
    for key in ("exact_match", "f1", "bytemlperf_exact_match", "bytemlperf_f1", "features", "questions"):
        assert m1[key] == pytest.approx(m2[key], abs=1e-9)
    # An incomplete set of shards is refused, naming the problem.
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--squad", str(squad_path),
                 "--out", str(tmp_path / "bad")]) == 2
    assert "expected every shard of one I/N split" in capsys.readouterr().err
