"""The acceptance plan and its option table: one table both doors read, every decision made once (the
subject and whether it was named, the data, the batches fed and the engine profile covering them, the
reference device, the steps), and a bad option refused in one line before anything loads."""
from __future__ import annotations

import argparse

import pytest

from albert_ixrt.acceptance.options import OPTIONS, PYTEST, RUN, Options, add_options
from albert_ixrt.acceptance.plan import SELF_TEST_MODEL, STAGES, make_plan
from albert_ixrt.engine import ShapeProfile
from albert_ixrt.errors import AlbertIxrtError


def run_options(*argv: str, environ=None) -> Options:
    parser = argparse.ArgumentParser()
    add_options(parser.add_argument, RUN)
    return Options.from_namespace(parser.parse_args(list(argv)), RUN, environ or {})


def test_both_doors_read_one_table_with_one_default_each():
    """run's argparse and pytest's addoption get the same options from the same table: same defaults,
    same types, same choices; only the door-specific ones differ (run: --out, --skip, ...)."""
    seen: dict[str, dict] = {}
    for door in (RUN, PYTEST):
        calls = []
        add_options(lambda *flags, **kw: calls.append((flags, kw)), door)
        seen[door] = {flags[0]: kw for flags, kw in calls}
    shared = set(seen[RUN]) & set(seen[PYTEST])
    assert {"--model", "--backend", "--precision", "--device", "--batch-size", "--limit", "--perf-batch-sizes",
            "--allow-skips", "--reference-device"} <= shared
    for flag in shared:
        assert seen[RUN][flag] == seen[PYTEST][flag], flag
    assert "--out" in seen[RUN] and "--out" not in seen[PYTEST]
    assert "--albert-report" in seen[PYTEST] and len(OPTIONS) == len({o.name for o in OPTIONS})


def test_no_subject_named_is_the_tiny_self_test_and_nothing_else():
    plan = make_plan(run_options())
    assert plan.subject.model == SELF_TEST_MODEL and not plan.subject.named and plan.data.sample
    named = make_plan(run_options("--model", "tiny"))
    assert named.subject.named_by == "--model" and named.subject.self_test
    by_backend = make_plan(run_options("--backend", "onnxruntime"))
    assert by_backend.subject.named_by == "--backend"        # a subject option names what is judged


def test_the_model_variable_names_the_subject_in_both_doors():
    for door in (RUN, PYTEST):
        options = Options.from_namespace(argparse.Namespace(), door, {"ALBERT_IXRT_MODEL": "tiny"})
        assert make_plan(options).subject.named_by == "$ALBERT_IXRT_MODEL"


@pytest.mark.parametrize("argv,environ,needle", [
    ((), {"ALBERT_IXRT_MODEL": ""}, "$ALBERT_IXRT_MODEL is set but empty"),
    (("--model", "models/typo.pt"), {}, "TorchScript file not found"),
    (("--backend", "tensorrt", "--precision", "bf16"), {}, "choose one of fp32, fp16"),
    (("--profile", "tiny", "--model", "tiny"), {}, "--profile tiny is the built-in self-test"),
    (("--random-weights",), {}, "the built-in tiny model has random weights already"),
])
def test_usage_errors_are_one_line_before_any_work(argv, environ, needle):
    with pytest.raises(AlbertIxrtError, match=None) as err:
        make_plan(run_options(*argv, environ=environ))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_an_empty_model_is_refused_while_parsing_and_by_the_plan():
    with pytest.raises(SystemExit):
        run_options("--model", "")
    with pytest.raises(AlbertIxrtError, match="--model is empty"):
        make_plan(Options(model=" "))


def test_a_relative_model_path_is_resolved(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    plan = make_plan(run_options("--model", "m", "--random-weights"))
    assert plan.subject.model == str(tmp_path / "m")


def test_the_engine_profile_covers_every_batch_the_session_feeds():
    """Evaluation (and its smaller last batch), the equivalence feeds, every perf batch and the bucketed
    batch: each shape the session can feed lies inside the one profile, decided before any build."""
    plan = make_plan(run_options("--backend", "tensorrt", "--precision", "fp16", "--batch-size", "24",
                                 "--perf-batch-sizes", "2", "32", "--allow-skips"))
    profile: ShapeProfile = plan.profile
    fed = {1, 8, 24, 2, 32, plan.feeds.bucket_batch, 7}          # 7: a last partial evaluation batch
    for batch in fed:
        for seq in (1, 100, plan.feeds.seq_len):
            profile.check(batch, seq)
    assert profile.max_batch == 32 and profile.min_batch == 1 and profile.max_seq == 384
    assert make_plan(run_options()).profile is None               # torch: no engine, no profile


def test_a_planted_profile_that_forgets_a_batch_is_caught():
    from albert_ixrt.engine import ShapeOutsideProfile

    plan = make_plan(run_options("--backend", "tensorrt", "--perf-batch-sizes", "64", "--allow-skips"))
    forgot = ShapeProfile.for_feeds([plan.feeds.eval_batch], plan.feeds.seq_len)
    with pytest.raises(ShapeOutsideProfile):
        for batch in plan.feeds.batches():
            forgot.check(batch, plan.feeds.seq_len)


def test_steps_and_items_come_from_the_plan():
    plan = make_plan(run_options("--perf-batch-sizes", "1,4", "--skip", "convert"))
    assert plan.step("convert").items == STAGES and plan.step("convert").skipped
    assert plan.step("equivalence").skipped and plan.step("equivalence").items[-1] == "runner"
    assert plan.step("perf").items[:2] == ("b1x384", "b4x384")
    assert "left out: convert" in plan.summary()


def test_list_options_take_spaces_or_commas_and_no_internal_names():
    assert run_options("--perf-batch-sizes", "1", "16").perf_batch_sizes == (1, 16)
    assert run_options("--perf-batch-sizes", "1,16,16").perf_batch_sizes == (1, 16)
    assert run_options("--bench-batch-sizes", "8").perf_batch_sizes == (8,)      # run's older spelling
    assert run_options().perf_batch_sizes == (1, 16)


def test_a_named_subject_whose_backend_is_missing_is_refused_unless_skips_are_allowed(monkeypatch):
    import albert_ixrt.engine as engine
    from albert_ixrt.errors import BackendUnavailable

    def missing(flavour):
        raise BackendUnavailable(flavour, "TensorRT is not importable here (planted)")

    monkeypatch.setattr(engine, "import_tensorrt", missing)
    with pytest.raises(AlbertIxrtError, match="cannot be judged here: TensorRT is not importable here"):
        make_plan(run_options("--backend", "tensorrt"))
    make_plan(run_options("--backend", "tensorrt", "--allow-skips"))


def test_every_option_has_help_and_a_door_that_offers_it():
    for opt in OPTIONS:
        assert opt.help and opt.doors and set(opt.doors) <= {RUN, PYTEST}, opt.name   # a misspelled door: nowhere
