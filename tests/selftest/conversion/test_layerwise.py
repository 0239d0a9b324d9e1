"""`albert-ixrt layerwise`: clean graphs name no layer; a fault planted inside layer k names layer k
and no earlier one, on every stage with its own precision (tiny model and albert-base twin)."""
from __future__ import annotations

import importlib.util
import json

import pytest

from albert_ixrt.cli import main
from albert_ixrt.compare import SquadFeeds
from albert_ixrt.config import STAGE_PRECISION
from albert_ixrt.errors import InputFileError
from albert_ixrt.export import stage_paths
from albert_ixrt.layerwise import layerwise, model_layers, row_names, torch_boundaries

from albert_ixrt.model import TINY_CONFIG
from layer_faults import plant_fault  # tests/selftest/conversion/layer_faults.py

TINY_VOCAB = TINY_CONFIG["vocab_size"]

pytestmark = pytest.mark.selftest

STAGES = ("exported", "simplified", "fused", "fp16", "trt_fp16")
#: Planted in the twin: every stage, first / middle / last layer between them (~0.4 s each).
TWIN_FAULTS = [("exported", 12), ("simplified", 5), ("fused", 1), ("fp16", 5), ("fp16", 12),
               ("trt_fp16", 1), ("trt_fp16", 12)]
#: "A few percent": measured on the twin, 5% moves the faulted layer's output 2x beyond the fp16
#: hidden-state tolerance (config.HIDDEN_STATE_TOLERANCES' reason).
FAULT_EPS = 0.05
#: The tiny model's FFN branch is small beside its residual (hidden 64, intermediate 128): scaled
#: by 5% it moves the layer output by ~2e-3, inside fp16 rounding (clean fp16: 3e-3), so its fp16
#: stages get a fault ten times larger.
TINY_FAULT_EPS = {"fp32": FAULT_EPS, "fp16": 0.5}


@pytest.fixture(scope="module")
def tiny_case(tiny_model, tiny_converted, short_features):
    """Two padded batches of 2 real dev features, and torch's boundaries on them."""
    feeds = list(SquadFeeds(short_features[:4], 2, vocab_size=TINY_VOCAB))
    return tiny_model, stage_paths(tiny_converted[1], tiny_converted[0]), feeds, torch_boundaries(tiny_model, feeds)


@pytest.fixture(scope="module")
def twin_case(twin_model, twin_converted, short_features):
    feeds = list(SquadFeeds(short_features[:4], 2))
    return twin_model, stage_paths(twin_converted[1], twin_converted[0]), feeds, torch_boundaries(twin_model, feeds)


def run_stage(case, stage, path=None):
    model, files, feeds, reference = case
    return layerwise(model, path or files[stage], feeds, precision=STAGE_PRECISION[stage], reference=reference,
                     label=stage)


def assert_names_layer(result, layer: int):
    assert result.first_over_tolerance == f"layer {layer}", result.table()
    names = [row.name for row in result.rows]
    assert not any(row.over_tolerance for row in result.rows[:names.index(f"layer {layer}")]), result.table()


@pytest.mark.parametrize("stage", STAGES)
def test_tiny_clean_stage_names_no_layer(tiny_case, stage):
    result = run_stage(tiny_case, stage)
    assert [row.name for row in result.rows] == row_names(model_layers(tiny_case[0])) == \
        ["embeddings", "layer 1", "layer 2", "start_logits", "end_logits"]
    assert result.first_over_tolerance is None, result.table()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("layer", [1, 2])
def test_tiny_planted_fault_names_its_layer(tiny_case, stage, layer, tmp_path):
    faulty = plant_fault(tiny_case[1][stage], tmp_path / "faulty.onnx", layer, TINY_FAULT_EPS[STAGE_PRECISION[stage]])
    assert_names_layer(run_stage(tiny_case, stage, faulty), layer)


@pytest.mark.parametrize("stage", STAGES)
def test_twin_clean_stage_names_no_layer(twin_case, stage):
    result = run_stage(twin_case, stage)
    assert [row.name for row in result.rows] == row_names(12)
    assert result.first_over_tolerance is None, result.table()
    assert result.precision == STAGE_PRECISION[stage]


@pytest.mark.parametrize("stage, layer", TWIN_FAULTS)
def test_twin_planted_fault_names_its_layer(twin_case, stage, layer, tmp_path):
    faulty = plant_fault(twin_case[1][stage], tmp_path / "faulty.onnx", layer, FAULT_EPS)
    assert_names_layer(run_stage(twin_case, stage, faulty), layer)


def test_a_graph_of_another_depth_is_refused_naming_the_file(tiny_model, twin_converted, short_features):
    out, manifest = twin_converted
    path = stage_paths(manifest, out)["simplified"]
    refusal = rf"{path.name}: has 25 LayerNorm-like nodes .* an ALBERT of 2 layers has 5"
    with pytest.raises(InputFileError, match=refusal):
        layerwise(tiny_model, path, SquadFeeds(short_features[:1], 1, vocab_size=TINY_VOCAB))


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def cli(capsys, *argv):
    rc = main(["layerwise", "--model", "tiny", "--features", "3", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_clean_graph_exit_0_table_and_json(tiny_converted, tmp_path, capsys):
    out, manifest = tiny_converted
    report = tmp_path / "lw.json"
    rc, stdout, err = cli(capsys, "--onnx", str(stage_paths(manifest, out)["fp16"]), "--json", str(report))
    assert rc == 0, err
    assert "first over tolerance: none" in stdout and "layer 2" in stdout
    d = json.loads(report.read_text())
    assert d["first_over_tolerance"] is None and d["precision"] == "fp16"  # read from the graph's weights
    assert [r["name"] for r in d["rows"]] == row_names(2)
    assert not list(tmp_path.glob("*.partial*")), "written atomically: no partial file left"


def test_cli_faulty_graph_exit_1_names_the_layer(tiny_converted, tmp_path, capsys):
    out, manifest = tiny_converted
    faulty = plant_fault(stage_paths(manifest, out)["simplified"], tmp_path / "faulty.onnx", 1, FAULT_EPS)
    rc, stdout, _ = cli(capsys, "--onnx", str(faulty), "--json", str(tmp_path / "lw.json"))
    assert rc == 1
    assert "first over tolerance: layer 1" in stdout
    assert json.loads((tmp_path / "lw.json").read_text())["first_over_tolerance"] == "layer 1"


def test_cli_faulty_fp16_graph_names_the_layer_with_fp16_tolerances(tiny_converted, tmp_path, capsys):
    """The precision (and so the tolerances) comes from the graph itself: a fault in layer 2 of the
    fp16 stage names layer 2 (with fp32 tolerances fp16 rounding would be flagged first)."""
    out, manifest = tiny_converted
    faulty = plant_fault(stage_paths(manifest, out)["fp16"], tmp_path / "faulty.onnx", 2, TINY_FAULT_EPS["fp16"])
    rc, stdout, _ = cli(capsys, "--onnx", str(faulty), "--json", str(tmp_path / "lw.json"))
    d = json.loads((tmp_path / "lw.json").read_text())
    assert (rc, d["precision"], d["first_over_tolerance"]) == (1, "fp16", "layer 2"), stdout


def test_run_drift_detail_judges_each_stage_with_its_own_precision(tiny_case, tmp_path):
    """What `run` reports for failing stages (layerwise.first_layers_over): a fault in layer k of an
    fp16 stage names layer k; the clean fp16 stage beside it names none."""
    from albert_ixrt.layerwise import first_layers_over

    model, files, feeds, _ = tiny_case
    faulty = plant_fault(files["fp16"], tmp_path / "faulty.onnx", 2, TINY_FAULT_EPS["fp16"])
    found = first_layers_over(model, {**files, "fp16": faulty}, feeds, ["fp16", "trt_fp16"])
    assert found == {"fp16": "layer 2", "trt_fp16": "none"}


@pytest.mark.parametrize("argv, needle", [
    (["--onnx", "missing.onnx"], "missing.onnx: file not found"),
    (["--onnx", "a.onnx", "--stage", "fused"], "not allowed with argument"),
    ([], "one of the arguments --onnx --stage is required"),
    (["--stage", "fused", "--precision", "int8"], "invalid choice: 'int8'"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.onnx").write_bytes(b"x")
    rc, _, err = cli(capsys, *argv, "--json", "lw.json")
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "lw.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here: the missing-TensorRT message cannot be shown")
@pytest.mark.parametrize("backend", ["tensorrt", "ixrt"])
def test_cli_tensorrt_without_tensorrt_is_one_line(tiny_converted, tmp_path, capsys, backend):
    out, manifest = tiny_converted
    rc, _, err = cli(capsys, "--onnx", str(stage_paths(manifest, out)["simplified"]), "--backend", backend,
                     "--json", str(tmp_path / "lw.json"))
    assert rc == 2 and f"backend '{backend}' unavailable" in err and len(err.strip().splitlines()) == 1, err


class GraphAsEngine:
    """Stands in for runners.trt_runner.TensorRTRunner where no TensorRT is: it 'builds' from the
    ONNX file it is given and runs that graph with onnxruntime, so the engine path's glue (the
    exposed graph, the profile covering every feed, the outputs asked for by name, precision and
    flavour passed on, the runner closed) is exercised both ways."""

    made: list = []

    def __init__(self, path, precision, flavour, profile):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.closed = False
        GraphAsEngine.made.append(dict(precision=precision, flavour=flavour, profile=profile, runner=self))

    def infer_outputs(self, feed, names):
        arrays = self.session.run(list(names), {i.name: feed[i.name] for i in self.session.get_inputs()})
        return dict(zip(names, arrays))

    def close(self):
        self.closed = True


@pytest.mark.parametrize("layer", [None, 2])
def test_engine_path_reads_every_boundary_from_the_engine(tiny_case, layer, tmp_path, monkeypatch):
    from albert_ixrt.runners import trt_runner

    GraphAsEngine.made = []
    monkeypatch.setattr(trt_runner, "TensorRTRunner", GraphAsEngine)
    model, files, feeds, reference = tiny_case
    path = files["simplified"] if layer is None else plant_fault(files["simplified"], tmp_path / "f.onnx", layer,
                                                                  FAULT_EPS)
    result = layerwise(model, path, feeds, precision="fp32", backend="ixrt", reference=reference)
    assert result.first_over_tolerance == (None if layer is None else f"layer {layer}"), result.table()
    (made,) = GraphAsEngine.made
    assert (made["precision"], made["flavour"], made["runner"].closed) == ("fp32", "ixrt", True)
    shapes = [f["input_ids"].shape for f in feeds]
    assert all(made["profile"].contains(b, s) for b, s in shapes)


def test_run_report_names_the_first_layer_of_a_failing_stage(tmp_path, monkeypatch, capsys):
    """`albert-ixrt run` whose fused stage has a fault in layer 1: report.md and report.json say so."""
    from albert_ixrt import export

    real_convert = export.convert

    def convert_with_fault(model, out_dir, **kw):
        manifest = real_convert(model, out_dir, **kw)
        fused = stage_paths(manifest, out_dir)["fused"]
        plant_fault(fused, fused, 1, FAULT_EPS)
        return manifest

    monkeypatch.setattr(export, "convert", convert_with_fault)
    monkeypatch.setattr("albert_ixrt.assets.CACHE_DIR", tmp_path / "cache")   # the fault never reaches the user cache
    out = tmp_path / "results"
    rc = main(["run", "--profile", "tiny", "--out", str(out), "--skip", "perf", "--quiet"])
    capsys.readouterr()
    assert rc == 1
    steps = {st["name"]: st for st in json.loads((out / "latest" / "report.json").read_text())["steps"]}
    assert steps["equivalence"]["status"] == "failed"
    assert steps["equivalence"]["detail"]["first_layer_over_tolerance"] == {"fused": "layer 1"}
    md = (out / "latest" / "report.md").read_text()
    assert "stage 'fused': first layer over tolerance: layer 1" in md
