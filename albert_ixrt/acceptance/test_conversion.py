"""Conversion acceptance of the subject under test (--model / --backend / --precision; default: the
built-in tiny self-test): the graph checks of each converted stage; each stage and the runner under
test (an engine: the engine itself) against torch fp32 on real inputs (one short unpadded window, one
full-length window, a padded batch of 8), by the one rule (compare.element_check) within the
tolerance of its precision (config.TOLERANCES).  A failing stage names its first layer over tolerance.
With --onnx the stages are the user's file (item ``onnx``); with --engine, the plan (graph checks: item
``plan``) and the runner.
Each test asserts one item verdict of the acceptance session (built once per pytest run)."""
from __future__ import annotations

import pytest

from albert_ixrt.acceptance.plan import ONNX_ITEM, RUNNER_ITEM, STAGES

pytestmark = pytest.mark.conversion


@pytest.mark.albert_check("convert")
def test_graph_checks(albert_judge, albert_item):
    albert_judge()


@pytest.mark.albert_check("equivalence", *STAGES, ONNX_ITEM)
def test_stage_matches_torch_fp32(albert_judge, albert_item):
    albert_judge()


@pytest.mark.albert_check("equivalence", RUNNER_ITEM)
def test_runner_under_test_matches_torch_fp32(albert_judge, albert_item):
    albert_judge()
