"""albert_ixrt.history: records from real sources, the series key, and the append-only JSON-lines store."""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone

import pytest

from albert_ixrt.cli import main
from albert_ixrt.errors import InputFileError
from albert_ixrt.runs import parse_started
from albert_ixrt.history import (ACCURACY_METRICS, parse_time, append_records, group_series, load_history, records_from,
                                 series_id)

from history_nights import FIXTURES, PERF_JSON, REPORT_V2, RUN_V1, benchmark_nights, commit, report_nights


def test_the_fixtures_are_the_shapes_their_readme_says():
    """perf_tiny_cpu.json: pytest-benchmark's own output with raw rounds; report_schema2_h200.json: schema 2;
    run_v1/report.json: the schema-less record beside the bench.json it lists."""
    perf = json.loads((FIXTURES / "perf_tiny_cpu.json").read_text(encoding="utf-8"))
    assert perf["version"] and perf["commit_info"]["id"] and all(b["stats"]["data"] for b in perf["benchmarks"])
    assert json.loads((FIXTURES / "report_schema2_h200.json").read_text(encoding="utf-8"))["schema"] == 2
    old = json.loads((FIXTURES / "run_v1" / "report.json").read_text(encoding="utf-8"))
    assert "schema" not in old and "bench.json" in old["files"] and (FIXTURES / "run_v1" / "bench.json").is_file()


def test_a_real_pytest_benchmark_json_gives_one_record_per_subject_with_its_raw_rounds():
    real = json.loads(PERF_JSON.read_text(encoding="utf-8"))
    records = records_from(PERF_JSON)
    assert [r["source"]["entry"] for r in records] == [b["name"] for b in real["benchmarks"]]
    for r, b in zip(records, real["benchmarks"]):
        assert r["key"]["harness"] == "pytest-benchmark"
        assert (r["key"]["model"], r["key"]["backend"], r["key"]["precision"]) == ("tiny", "torch", "fp32")
        assert (r["key"]["device"], r["key"]["device_name"]) == ("cpu", real["machine_info"]["cpu"]["brand_raw"])
        assert (r["key"]["batch_size"], r["key"]["seq_len"]) == (b["extra_info"]["batch_size"], 384)
        assert r["perf"]["samples_s"] == b["stats"]["data"] and len(r["perf"]["samples_s"]) >= 3
        assert r["perf"]["sequences_per_s"] == b["extra_info"]["sequences_per_s"]
        assert r["commit"] == real["commit_info"]["id"] and r["time"].startswith(real["datetime"][:19])
        assert r["accuracy"] is None
    assert len({r["series"] for r in records}) == len(records)


def test_a_schema_2_report_keys_its_gpu_stack_and_keeps_both_accuracy_metrics_labelled():
    records = records_from(REPORT_V2)
    assert [r["subject"] for r in records] == ["16x384 padded to 384", "1x384 padded to 384"]
    key = records[0]["key"]
    assert (key["device"], key["device_name"], key["driver"], key["runtime"]) == \
           ("cuda", "NVIDIA H200", "570.86", "TensorRT 10.13.3.9")
    assert key["model"] == "albert-base-v2-squad" and key["weights_sha256"].startswith("5d2c1f0e")
    assert records[0]["accuracy"]["exact_match"] == 83.1 and records[0]["accuracy"]["bytemlperf_f1"] == 87.9
    assert records[1]["accuracy"] is None                      # accuracy once per run: the evaluated batch x seq
    assert set(ACCURACY_METRICS.values()) == {"EM (official)", "F1 (official)", "EM (ByteMLPerf-compatible)",
                                              "F1 (ByteMLPerf-compatible)"}
    assert records[0]["commit"] == json.loads(REPORT_V2.read_text())["suite"]["commit"]


def test_an_old_run_folder_is_read_directly_and_through_its_latest_entry(tmp_path):
    direct = records_from(RUN_V1)
    assert [r["subject"] for r in direct] == ["1x384 with_copies", "16x384 with_copies"]
    assert direct[0]["key"]["harness"] == "albert-ixrt run" and direct[0]["key"]["weights"] == "random"
    assert direct[0]["accuracy"]["f1"] > 0 and direct[0]["commit"] is None
    assert direct[0]["time"] == "2026-12-02T11:51:00+00:00"     # the old "%Y-%m-%d %H:%M:%S UTC" spelling
    shutil.copytree(RUN_V1, tmp_path / "runs" / "night-1")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "latest").symlink_to(tmp_path / "runs" / "night-1")
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "latest").write_text("../runs/night-1\n")
    (tmp_path / "no-links").mkdir()                   # where links cannot be made, results_dir writes LATEST
    (tmp_path / "no-links" / "LATEST").write_text("../runs/night-1\n")
    for folder in ("linked", "named", "no-links"):
        assert [r["series"] for r in records_from(tmp_path / folder)] == [r["series"] for r in direct]


def test_an_old_record_in_this_hosts_zone_lands_on_the_night_the_run_list_gives_it(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        moment = parse_time("2026-12-02 00:30:00 CET", "report.json")   # f22ec55 wrote local time
        assert moment == parse_started("2026-12-02 00:30:00 CET") == \
            datetime(2026, 12, 1, 23, 30, tzinfo=timezone.utc)
        with pytest.raises(InputFileError, match="neither ISO 8601"):
            parse_time("2026-12-02 00:30:00 PST", "report.json")          # a zone this host cannot place
    finally:
        monkeypatch.undo()
        time.tzset()


def test_what_is_not_a_source_is_refused_in_one_line(tmp_path):
    (tmp_path / "other.json").write_text('{"rows": []}')
    (tmp_path / "broken.json").write_text('{"benchmarks": [')
    (tmp_path / "empty").mkdir()
    for path, words in ((tmp_path / "other.json", "neither a pytest-benchmark JSON"),
                        (tmp_path / "broken.json", "not valid JSON"),
                        (tmp_path / "empty", "not a run folder"), (tmp_path / "missing.json", "not found")):
        with pytest.raises(InputFileError) as exc:
            records_from(path)
        assert str(exc.value).startswith(str(path)) and words in str(exc.value) and "\n" not in str(exc.value)


def test_another_gpu_or_tensorrt_starts_another_series_but_a_card_index_does_not(tmp_path):
    base = records_from(report_nights(tmp_path / "a", [1.0])[0])[0]
    other = {"gpu": {"gpu": "NVIDIA H100 80GB HBM3"}, "runtime": {"runtime": "TensorRT 10.9.0.34"},
             "driver": {"driver": "580.65"}, "index": {"device": "cuda:1"}}
    ids = {name: records_from(report_nights(tmp_path / name, [1.0], subject=change)[0])[0]["series"]
           for name, change in other.items()}
    assert ids["gpu"] != base["series"] and ids["runtime"] != base["series"] and ids["driver"] != base["series"]
    assert ids["index"] == base["series"]                     # cuda:1 under CUDA_VISIBLE_DEVICES is the same card kind
    assert series_id(base["key"]) == base["series"]


def test_adding_the_same_source_twice_adds_nothing(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    nights = benchmark_nights(tmp_path / "n", [1.0, 1.01])
    assert main(["history", "add", "--history", str(history), *map(str, nights)]) == 0
    first = history.read_bytes()
    assert len(first.splitlines()) == 4
    copy = tmp_path / "renamed.json"
    shutil.copy(nights[0], copy)                               # the same content under another name
    assert main(["history", "add", "--history", str(history), str(nights[1]), str(copy)]) == 0
    assert history.read_bytes() == first
    assert "4 already there, not added again" in capsys.readouterr().out


def test_new_lines_go_after_the_old_ones_which_stay_byte_identical(tmp_path):
    history = tmp_path / "history.jsonl"
    nights = benchmark_nights(tmp_path / "n", [1.0, 1.0, 1.0])
    append_records(history, records_from(nights[0]))
    before = history.read_bytes()
    added, known = append_records(history, records_from(nights[1]) + records_from(nights[2]))
    after = history.read_bytes()
    assert (len(added), known) == (4, 0) and after.startswith(before) and after.endswith(b"\n")
    assert [r["commit"] for r in load_history(history)] == [commit(0)] * 2 + [commit(1)] * 2 + [commit(2)] * 2


@pytest.mark.parametrize("damage, at_end", [(b'{"history_schema": 1, "seri\n', False), (b"not json\n", False),
                                            (b'{"history_schema": 1}\n', False), (b'{"history_schema": 1', True)])
def test_a_damaged_line_is_refused_by_number_and_the_file_is_unchanged(tmp_path, capsys, damage, at_end):
    """A cut JSON line, text, a record without its fields (line 2 of 3), or a last line without its end."""
    history = tmp_path / "history.jsonl"
    nights = benchmark_nights(tmp_path / "n", [1.0, 1.0])
    append_records(history, records_from(nights[0]))
    first, second = history.read_bytes().splitlines(keepends=True)
    damaged, line = (first + second + damage, 3) if at_end else (first + damage + second, 2)
    history.write_bytes(damaged)
    for argv in (["history", "add", "--history", str(history), str(nights[1])],
                 ["history", "check", "--history", str(history)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{history}: line {line}:" in err and err.count("\n") == 1, err
        assert history.read_bytes() == damaged


@pytest.mark.parametrize("schema", [1, 99])
def test_a_record_of_a_newer_history_schema_is_refused_by_its_line(tmp_path, schema):
    history = tmp_path / "history.jsonl"
    append_records(history, records_from(benchmark_nights(tmp_path / "n", [1.0])[0]))
    newer = {**load_history(history)[0], "history_schema": schema, "night": "another"}
    with history.open("a", encoding="utf-8") as f:
        f.write(json.dumps(newer) + "\n")
    if schema == 1:
        assert len(load_history(history)) == 3
    else:
        with pytest.raises(InputFileError, match="line 3: history_schema 99 is newer than this albert-ixrt reads"):
            load_history(history)


def test_a_write_that_fails_part_way_is_cut_back_to_the_old_length(tmp_path, monkeypatch):
    history = tmp_path / "history.jsonl"
    nights = benchmark_nights(tmp_path / "n", [1.0, 1.0])
    append_records(history, records_from(nights[0]))
    before = history.read_bytes()
    real_write = os.write

    def half_then_full_disk(fd, data):
        if len(data) > 10:
            real_write(fd, bytes(data[:len(data) // 2]))
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(OSError):
        append_records(history, records_from(nights[1]))
    assert history.read_bytes() == before


def test_records_of_one_night_and_commit_are_pooled_into_one_night(tmp_path):
    a, b = benchmark_nights(tmp_path / "gpu0", [1.0]), benchmark_nights(tmp_path / "gpu1", [1.02])
    b_data = json.loads(b[0].read_text())
    b_data["datetime"] = b_data["datetime"].replace("02:00", "02:30")   # the second GPU's session ends later
    b[0].write_text(json.dumps(b_data))
    series = group_series(records_from(a[0]) + records_from(b[0]))
    assert [len(s.nights) for s in series] == [1, 1]
    assert len(series[0].nights[0].samples_s) == 2 * len(json.loads(a[0].read_text())["benchmarks"][0]["stats"]["data"])
    apart = group_series(records_from(a[0]) + records_from(b[0], night="another night"))
    assert [len(s.nights) for s in apart] == [2, 2]
