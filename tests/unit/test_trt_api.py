"""TensorRT API conformance on CPU, against the REAL bindings of TensorRT 8.6, 10.13 and 11.4.

* The committed member lists (fixtures/tensorrt_api/*.json, from which the fakes in trt_fakes.py
  are derived) equal what the real bindings expose: the wheels are fetched from the package
  index into ~/.cache/albert_ixrt/trt-bindings, imported in a subprocess over stand-in native
  libraries compiled here, and introspected (nothing is executed through the stand-ins).
  Offline this skips with the reason; --strict-assets makes it fail.
* Every TensorRT attribute the engine / runner / graph-check code names (trt_api.USED_API) exists
  in each generation or sits behind a capability that is off there; and the code names no
  TensorRT member outside that list (AST scan).
* The capability object decides per generation as documented (typing, flags, I/O).
"""
from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from albert_ixrt import trt_api
from albert_ixrt.onnx_graph import make_model
from albert_ixrt.trt_api import REMOVED_IN_11, USED_API, TrtApi
from albert_ixrt.trt_bindings import RELEASES, BindingsUnavailable, dump_members, fixture_path, load_fixture
from trt_fakes import LABELS, make_fake_trt, member_lists

PACKAGE = Path(trt_api.__file__).resolve().parent
#: The files whose TensorRT use the list must cover.
TRT_CODE = [PACKAGE / "engine.py", PACKAGE / "engine_plan.py", PACKAGE / "runners" / "trt_runner.py", PACKAGE / "trt_api.py",
            PACKAGE / "graph_checks.py"]
#: Attribute names that are also TensorRT member names but are read, in TRT_CODE, on objects that
#: are not TensorRT's (checked by reading the code; each with the object it is read on).
NOT_TENSORRT = {
    "append": "Python lists",
    "dims": "onnx TensorProto.dims (graph_float_share)",
    "dtype": "torch tensors / numpy dtypes",
    "kind": "numpy dtypes' kind (plan.qa_io_problem)",
    "max_seq_length": "config.SquadSettings",
    "name": "onnx nodes / values and enum members' .name",
    "node": "onnx GraphProto.node",
    "numpy": "torch Tensor.numpy()",
    "pop": "Python sets (plan.plan_precision)",
    "shape": "torch tensors / numpy arrays / onnx tensor types",
    "type": "onnx ValueInfoProto.type (graph_checks)",
    "update": "Python dicts (GraphReport.to_dict)",
}
GENERATIONS = (*LABELS, "trt8-bindings")


def _exists(members: dict, dotted: str) -> bool:
    head, _, tail = dotted.partition(".")
    if not tail:
        return head in members["classes"] or head in members["enums"] or head in members["functions"] \
            or head in members["values"]
    if head in members["enums"]:
        return tail in members["enums"][head]
    return tail in members["classes"].get(head, ())


# --------------------------------------------------------------------------------------------
# The real bindings
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def live_members(request):
    """label -> (member lists of the real bindings, seconds to fetch + import), or a skip."""
    cache: dict = {}

    def get(label):
        if label not in cache:
            try:
                cache[label] = dump_members(RELEASES[label])
            except (BindingsUnavailable, OSError, subprocess.SubprocessError) as exc:
                cache[label] = exc
        if isinstance(cache[label], Exception):
            reason = f"real TensorRT bindings not available here: {cache[label]}"
            if request.config.getoption("--strict-assets"):
                pytest.fail(f"{reason} (and --strict-assets was given)", pytrace=False)
            pytest.skip(reason)
        return cache[label]
    return get


def test_the_member_lists_cache_lives_under_the_package_cache_unless_named(tmp_path):
    """$ALBERT_IXRT_CACHE (config.CACHE_DIR) holds trt-bindings/, as the README says, not ~/.cache regardless;
    $ALBERT_IXRT_TRT_BINDINGS, more specific, still names a folder of its own."""
    import sys

    from child_env import child_env

    root = Path(__file__).resolve().parents[2]
    probe = ("import os; from albert_ixrt.trt_bindings import bindings_cache; print(bindings_cache()); "
             f"os.environ['ALBERT_IXRT_TRT_BINDINGS'] = {str(tmp_path / 'own')!r}; print(bindings_cache())")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                       env=child_env(ALBERT_IXRT_CACHE=str(tmp_path / "cache"), ALBERT_IXRT_TRT_BINDINGS=None,
                                     PYTHONPATH=str(root)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [str(tmp_path / "cache" / "trt-bindings"), str(tmp_path / "own")]


def test_every_committed_member_list_is_one_the_fakes_use():
    """No stale or missing file in fixtures/tensorrt_api: exactly one member list per generation."""
    committed = sorted(p.name for p in fixture_path("trt8").parent.glob("*.json"))
    assert committed == ["trt10.json", "trt11.json", "trt8.json"]
    assert committed == sorted(fixture_path(label).name for label in LABELS)


@pytest.mark.parametrize("label", LABELS)
def test_committed_member_lists_match_the_real_bindings(label, live_members):
    live, seconds = live_members(label)
    committed = load_fixture(label)
    assert live["version"] == RELEASES[label].version
    for part in ("classes", "enums", "functions", "values", "signatures"):
        assert live[part] == committed[part], f"{label} {part} differ: regenerate with " \
                                              "python -m albert_ixrt.trt_bindings --write fixtures/tensorrt_api"
    assert seconds < 120


def test_strongly_typed_values_of_the_real_enums(live_members):
    """The flag bit differs between generations, hence ``1 << int(...)``, never a constant."""
    flags = {label: live_members(label)[0]["enums"]["NetworkDefinitionCreationFlag"] for label in LABELS}
    assert "STRONGLY_TYPED" not in flags["trt8"] and flags["trt8"]["EXPLICIT_BATCH"] == 0
    assert flags["trt10"]["STRONGLY_TYPED"] == 1 and flags["trt10"]["EXPLICIT_BATCH"] == 0
    assert flags["trt11"]["STRONGLY_TYPED"] == 0 and "EXPLICIT_BATCH" not in flags["trt11"]


# --------------------------------------------------------------------------------------------
# Every attribute the code names: present, or capability-guarded
# --------------------------------------------------------------------------------------------
def conformance_problems(members: dict, api: TrtApi, used: dict = USED_API) -> list[str]:
    problems = []
    for path, guard in used.items():
        if _exists(members, path):
            continue
        if guard is None:
            problems.append(f"{path} is used unguarded but missing in TensorRT {members['version']}")
        elif getattr(api, guard):
            problems.append(f"{path} is missing in TensorRT {members['version']} but its guard {guard} is on")
    return problems


@pytest.mark.parametrize("label", GENERATIONS)
def test_every_used_attribute_exists_or_is_guarded(label):
    members = member_lists(label)
    api = TrtApi.detect(make_fake_trt(label))
    assert conformance_problems(members, api) == []
    assert api.unavailable_reason() is None


def test_conformance_check_catches_an_unguarded_removed_api():
    """Planted bad: BuilderFlag.FP16 used without a guard fails on 11.4, passes on 10.13."""
    planted = {**USED_API, "BuilderFlag.FP16": None, "Builder.platform_has_fast_fp16": None}
    problems = conformance_problems(member_lists("trt11"), TrtApi.detect(make_fake_trt("trt11")), planted)
    assert any(p.startswith("BuilderFlag.FP16 is used unguarded") for p in problems)
    assert any(p.startswith("Builder.platform_has_fast_fp16") for p in problems)
    assert conformance_problems(member_lists("trt10"), TrtApi.detect(make_fake_trt("trt10")), planted) == []


def arity(signature: str) -> tuple[int, int]:
    """(required, total) positional parameters, ``self`` excluded, of a pybind11 signature line."""
    inner = signature[signature.index("(") + 1:]
    params, depth, cur = [], 0, ""
    for ch in inner:
        if ch in "([<":
            depth += 1
        elif ch in ")]>":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            params.append(cur.strip())
            cur = ""
        else:
            cur += ch
    params += [cur.strip()] if cur.strip() else []
    params = [p for p in params if not p.startswith("self")]
    return sum("=" not in p for p in params), len(params)


def test_arity_parser():
    assert arity("f(self: A, a: List[int], b: Tuple[int, int] = (1, 2)) -> None") == (1, 2)
    assert arity("g(self: A, s: E = <E.STATIC: 0>) -> X") == (0, 1) and arity("h(self: A) -> B") == (0, 0)
    # planted bad: a three-argument set_shape would not fit TensorRT's four-argument one
    (real,) = load_fixture("trt10")["signatures"]["IOptimizationProfile.set_shape"]
    assert arity(real) == (4, 4)


@pytest.mark.parametrize("label", LABELS)
def test_fake_methods_take_the_arguments_the_real_ones_take(label):
    """The fakes' methods accept no call the real overloads would refuse: a call the code makes
    with a wrong argument count fails on the fake as it would on the GPU machine."""
    import inspect

    signatures = load_fixture(label)["signatures"]
    fake, checked = make_fake_trt(label), 0
    for path, sigs in signatures.items():
        head, _, method = path.partition(".")
        if not sigs or not method:
            continue
        impl = next(c for c in type.__getattribute__(getattr(fake, head), "__mro__") if method in vars(c))
        params = list(inspect.signature(vars(impl)[method]).parameters.values())[1:]
        lo, hi = sum(p.default is p.empty for p in params), len(params)
        assert any(r_lo <= lo and hi <= r_hi for r_lo, r_hi in map(arity, sigs)), (path, (lo, hi), sigs)
        checked += 1
    assert checked >= 20


def test_removed_in_11_is_what_the_real_lists_say():
    """The APIs TensorRT 11 removed: present in 10.13, absent in 11.4, never used unguarded."""
    m10, m11 = load_fixture("trt10"), load_fixture("trt11")
    for path in REMOVED_IN_11:
        assert _exists(m10, path) and not _exists(m11, path), path
        assert USED_API.get(path, "unused") is not None, f"{path} used without a capability guard"


def tensorrt_names_in_code(sources: dict[str, str], members_list: list[dict]) -> set[str]:
    """Attribute names read in ``sources`` that are TensorRT names in any generation, less the
    project's own (``self.x`` it assigns, methods it defines)."""
    trt_names = set()
    for m in members_list:
        trt_names |= set(m["classes"]) | set(m["enums"]) | set(m["functions"])
        for v in (*m["classes"].values(), *m["enums"].values()):
            trt_names |= set(v)
    found, own = set(), set()
    for text in sources.values():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    for t in ast.walk(target):
                        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                            own.add(t.attr)
            if isinstance(node, ast.Attribute):
                found.add(node.attr)
    return (found & trt_names) - own


def _used_names() -> set[str]:
    return {part for path in USED_API for part in path.split(".")}


def test_code_names_no_tensorrt_attribute_outside_the_list():
    sources = {str(p): p.read_text(encoding="utf-8") for p in TRT_CODE}
    stray = tensorrt_names_in_code(sources, [load_fixture(label) for label in LABELS]) - _used_names()
    assert stray <= set(NOT_TENSORRT), f"TensorRT names used but not in trt_api.USED_API: {stray - set(NOT_TENSORRT)}"


def test_the_scan_catches_a_stray_tensorrt_call():
    """Planted bad: code calling builder.platform_has_fast_fp16 / engine.device_memory_size."""
    bad = "def f(builder, engine):\n    return builder.platform_has_fast_fp16, engine.device_memory_size\n"
    stray = tensorrt_names_in_code({"bad.py": bad}, [load_fixture("trt10")]) - _used_names() - set(NOT_TENSORRT)
    assert stray == {"platform_has_fast_fp16", "device_memory_size"}


# --------------------------------------------------------------------------------------------
# The capability object, per generation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label, typing, flags, io, stage", [
    ("trt8", "weak", 1 << 0, "tensor_address", "simplified"),          # EXPLICIT_BATCH = 0
    ("trt8-bindings", "weak", 1 << 0, "bindings", "simplified"),
    ("trt10", "strong", 1 << 1, "tensor_address", "trt_fp16"),         # STRONGLY_TYPED = 1
    ("trt11", "strong", 1 << 0, "tensor_address", "trt_fp16"),         # STRONGLY_TYPED = 0
    ("10.13-weak", "weak", 1 << 0, "tensor_address", "simplified"),    # 10.13 without STRONGLY_TYPED
    ("ixrt", "weak", 1 << 0, "tensor_address", "simplified"),          # has STRONGLY_TYPED, weak by default
])
def test_capabilities_per_generation(label, typing, flags, io, stage):
    from albert_ixrt.engine_input import engine_input

    flavour = "ixrt" if label == "ixrt" else "tensorrt"
    api = TrtApi.detect(make_fake_trt(label), flavour)
    assert (api.typing, api.network_flags, api.io) == (typing, flags, io)
    assert engine_input(flavour, "fp16", strongly_typed=api.typing == "strong") == stage
    assert engine_input(flavour, "fp32", strongly_typed=api.typing == "strong") == "simplified"


def test_a_module_with_neither_fp16_flag_nor_strong_typing_is_strong():
    """11.x semantics (no weak-typing flags): strongly typed even without the STRONGLY_TYPED flag."""
    api = TrtApi.detect(make_fake_trt("trt11", remove={"NetworkDefinitionCreationFlag": {"STRONGLY_TYPED"}}))
    assert api.typing == "strong" and api.network_flags == 0


@pytest.mark.parametrize("typing, precision, stage", [
    ("strong", "fp16", "trt_fp16"), ("strong", "fp32", "simplified"), ("weak", "fp16", "simplified"),
    ("weak", "fp32", "simplified"), (None, "fp16", "simplified")])
def test_pipeline_picks_the_graph_by_typing(typing, precision, stage):
    from albert_ixrt.engine_input import engine_stage

    manifest = {"stages": {"simplified": {}, "trt_fp16": {}}}
    assert engine_stage(manifest, "/out", "tensorrt", precision, typing) == stage


def test_pipeline_without_the_trt_fp16_stage_is_one_clear_error():
    from albert_ixrt.errors import AlbertIxrtError
    from albert_ixrt.engine_input import engine_stage

    with pytest.raises(AlbertIxrtError, match=r"manifest\.json: no 'trt_fp16' stage"):
        engine_stage({"stages": {"simplified": {}}}, "/out", "tensorrt", "fp16", "strong")
    assert engine_stage({"stages": {"simplified": {}}}, "/out", "tensorrt", "fp16", "weak") == "simplified"


def _weights_graph(path, dtypes):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones((n,), dtype=d), f"w{i}") for i, (n, d) in enumerate(dtypes)]
    graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("w0", 1, None)], inits)
    onnx.save(make_model(graph, 17), str(path))
    return path


def test_graph_precision_by_weight_share(tmp_path):
    import numpy as np

    from albert_ixrt.trt_api import PrecisionMismatch, check_engine_precision, graph_float_share, graph_precision

    fp16 = _weights_graph(tmp_path / "a.onnx", [(990, np.float16), (10, np.float32)])   # LayerNorm kept fp32
    mixed = _weights_graph(tmp_path / "b.onnx", [(100, np.float16), (900, np.float32)])
    fp32 = _weights_graph(tmp_path / "c.onnx", [(1000, np.float32), (5, np.int64)])      # ints do not count
    assert graph_float_share(fp16) == {"fp16_elements": 990, "fp32_elements": 10, "fp16_share": 0.99}
    assert [graph_precision(p) for p in (fp16, mixed, fp32)] == ["fp16", "mixed", "fp32"]
    strong, weak = TrtApi.detect(make_fake_trt("trt11")), TrtApi.detect(make_fake_trt("trt8"))
    check_engine_precision(strong, fp16, "fp16")
    check_engine_precision(weak, fp32, "fp16")                 # weak typing: the flag decides
    for precision in ("fp16", "fp32"):                          # mixed: neither label is true
        with pytest.raises(PrecisionMismatch, match="graph is mixed"):
            check_engine_precision(strong, mixed, precision, "11.4.0.106")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx")
    from albert_ixrt.errors import InputFileError
    with pytest.raises(InputFileError, match="junk.onnx.*not a readable ONNX model"):
        graph_float_share(tmp_path / "junk.onnx")


def _fill_graph(path, elem):
    """A graph without float weights whose float values come from a ConstantOfShape fill (what a
    known-answer lookup table exports to): int64 tables, logits filled in ``elem``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    fill = numpy_helper.from_array(np.array([10.0], dtype=np.float16 if elem == TensorProto.FLOAT16 else np.float32))
    nodes = [helper.make_node("Shape", ["ids"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["y"], value=fill)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "n"])],
                              [helper.make_tensor_value_info("y", elem, ["b", "n"])],
                              [numpy_helper.from_array(np.arange(8, dtype=np.int64), "table")])
    onnx.save(make_model(graph, 17), str(path))
    return path


def test_a_graph_without_float_weights_shows_its_type_through_its_fill_values(tmp_path):
    """A strongly typed fp16 build of an int64 lookup table is fp16 when its logits are filled in fp16,
    fp32 when filled in fp32 (counting weights alone, both would read as fp32)."""
    from onnx import TensorProto

    from albert_ixrt.trt_api import graph_float_share, graph_precision

    half, full = _fill_graph(tmp_path / "h.onnx", TensorProto.FLOAT16), _fill_graph(tmp_path / "f.onnx", TensorProto.FLOAT)
    assert graph_float_share(half) == {"fp16_elements": 1, "fp32_elements": 0, "fp16_share": 1.0}
    assert (graph_precision(half), graph_precision(full)) == ("fp16", "fp32")


# --------------------------------------------------------------------------------------------
# Graph checks per generation (opset ceiling, the parser's own op support)
# --------------------------------------------------------------------------------------------
def _qa_graph(op="Identity", opset=17):
    from onnx import TensorProto, helper

    dims = ["batch", "sequence"]
    nodes = [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
             helper.make_node(op, ["f"], ["start_logits"]), helper.make_node("Identity", ["f"], ["end_logits"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
                     for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("start_logits", "end_logits")])
    return make_model(graph, opset)


@pytest.mark.parametrize("label, generation, ceiling", [("trt8", 8, 17), ("trt8-bindings", 8, 17),
                                                        ("trt10", 10, 20), ("trt11", 11, 24)])  # 11.4: 24
def test_opset_ceiling_per_generation(label, generation, ceiling):
    from albert_ixrt.graph_checks import check_graph

    fake = make_fake_trt(label)
    at = check_graph(_qa_graph(opset=ceiling), target="tensorrt", trt=fake)
    assert at.trt_generation == generation and not any("above" in p for p in at.problems), at.problems
    over = check_graph(_qa_graph(opset=ceiling + 1), target="tensorrt", trt=fake)
    assert any(p.startswith(f"opset {ceiling + 1} is above {ceiling}, the highest TensorRT {generation}.x")
               for p in over.problems), over.problems


def test_op_support_comes_from_the_parser_when_one_can_be_made():
    """The fake parser (derived from 11.4's OnnxParser) rejects Unique and takes everything else."""
    from albert_ixrt.graph_checks import check_graph

    fake = make_fake_trt("trt11")
    unique = check_graph(_qa_graph("Unique"), target="tensorrt", trt=fake)
    assert unique.unsupported_trt_ops == {"Unique": 1} and "supports_operator" in unique.trt_op_source
    det = _qa_graph("Det")                                            # not in operators.md's list
    assert check_graph(det, target="tensorrt", trt=fake).unsupported_trt_ops == {}
    assert check_graph(det, target="tensorrt", trt_generation=11).unsupported_trt_ops == {"Det": 1}


def test_without_a_gpu_the_parser_falls_back_to_the_list(monkeypatch):
    from albert_ixrt.graph_checks import check_graph

    fake = make_fake_trt("trt10")

    def no_gpu(self, logger):
        raise RuntimeError("CUDA initialization failure with error: 35")
    monkeypatch.setattr(fake.Builder, "__init__", no_gpu)
    report = check_graph(_qa_graph("Det"), target="tensorrt", trt=fake)
    assert report.unsupported_trt_ops == {"Det": 1} and report.trt_op_source.startswith("onnx-tensorrt")


def api_table(labels=GENERATIONS) -> list[dict]:
    """For each attribute the code names: present (+) or absent (-) per generation, and its guard."""
    lists = {label: member_lists(label) for label in labels}
    return [{"attribute": path, **{label: "+" if _exists(lists[label], path) else "-" for label in labels},
             "guard": guard or "always"} for path, guard in USED_API.items()]


def test_api_table_has_a_row_per_used_attribute():
    table = api_table()
    assert len(table) == len(USED_API)
    row = next(r for r in table if r["attribute"] == "BuilderFlag.FP16")
    assert (row["trt8"], row["trt10"], row["trt11"], row["guard"]) == ("+", "+", "-", "uses_fp16_flag")


if __name__ == "__main__":  # print the per-version API table (for reports)
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    rows = api_table()
    cols = ["attribute", *GENERATIONS, "guard"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    print(json.dumps({label: load_fixture(label)["enums"]["NetworkDefinitionCreationFlag"] for label in LABELS}))
