"""The one verdict rule of both doors (acceptance.results.sign_off), every way it can go: SIGNED OFF only
when everything asked for was judged and passed; NOT SIGNED OFF (exit 0: a deliberate partial run) when
something asked for was not judged, never run, or the subject itself cannot be signed off; FAILED when any
check failed.  Never the word PASSED alone."""
from __future__ import annotations

from albert_ixrt.acceptance.results import (FAILED, NOT_JUDGED, PASSED, Checked, ItemResult, sign_off, step_reason,
                                            status_of)

ALL = ["conversion", "accuracy", "perf"]
GOOD = [Checked("conversion", "fused", PASSED), Checked("accuracy", "bytemlperf_f1", PASSED),
        Checked("perf", "b16x384", PASSED)]


def test_everything_asked_for_judged_and_passed_is_signed_off():
    v = sign_off(GOOD, subject="/models/m on tensorrt fp16", requested=ALL)
    assert v.status == "SIGNED OFF" and v.exit_ok
    assert v.line == ("SIGNED OFF: /models/m on tensorrt fp16: conversion and accuracy and perf, 3 checks judged "
                      "and passed")


def test_a_part_not_asked_for_is_named_in_the_sign_off():
    v = sign_off(GOOD[2:], subject="m", requested=["perf"])
    assert v.status == "SIGNED OFF" and "perf (conversion, accuracy not asked for)" in v.line


def test_one_failure_fails_the_whole_and_names_it():
    bad = GOOD + [Checked("conversion", "fp16", FAILED, "NaN in 981 values")]
    v = sign_off(bad, subject="m", requested=ALL)
    assert v.status == "FAILED" and not v.exit_ok and "conversion fp16: NaN in 981 values" in v.line


def test_not_judged_is_never_signed_off():
    partial = GOOD + [Checked("accuracy", "bytemlperf_exact_match", NOT_JUDGED, "--limit 20: ..."),
                      Checked("accuracy", "bytemlperf_f1", NOT_JUDGED, "--limit 20: ...")]
    v = sign_off(partial, subject="m", requested=ALL)
    assert v.status == "NOT SIGNED OFF" and v.exit_ok
    assert "accuracy bytemlperf_exact_match, bytemlperf_f1 not judged: --limit 20" in v.line
    assert "PASSED" not in v.line


def test_asked_for_but_never_run_and_subject_reasons_are_not_signed_off():
    v = sign_off(GOOD, subject="m", requested=ALL, missing=["perf b1x384"])
    assert v.status == "NOT SIGNED OFF" and "perf b1x384: asked for but not run" in v.line
    v = sign_off(GOOD, subject="tiny", requested=ALL, subject_reasons=["self-test only"])
    assert v.status == "NOT SIGNED OFF" and "self-test only" in v.line
    assert sign_off([], subject="m", requested=ALL).status == "NOT SIGNED OFF"   # nothing ran: nothing signed


def test_a_failure_outranks_everything_not_judged():
    mixed = [Checked("perf", "b1x384", NOT_JUDGED, "x"), Checked("perf", "b16x384", FAILED, "y")]
    assert sign_off(mixed, subject="m", requested=ALL, subject_reasons=["self-test only"]).status == "FAILED"


def test_a_steps_status_follows_its_items():
    items = [ItemResult("a", PASSED, ""), ItemResult("b", NOT_JUDGED, "")]
    assert status_of(items) == NOT_JUDGED
    assert status_of(items + [ItemResult("c", FAILED, "")]) == FAILED
    assert status_of(items[:1]) == PASSED and status_of([]) == NOT_JUDGED


def test_a_step_gives_the_reason_of_its_first_item_with_the_steps_own_status():
    items = [ItemResult("b1x384", PASSED, "PASS: fine"), ItemResult("b16x384", NOT_JUDGED, "no timings"),
             ItemResult("bucketed-128", FAILED, "FAIL: outputs over tolerance")]
    assert step_reason(items, status_of(items)) == "FAIL: outputs over tolerance"     # not the earlier not-judged
    assert step_reason(items[:2], status_of(items[:2])) == "no timings"
    assert step_reason(items[:1], status_of(items[:1])) == "" and step_reason([], NOT_JUDGED) == ""


def test_a_stage_left_out_of_both_conversion_steps_is_named_once():
    skipped = [Checked("conversion", name, NOT_JUDGED, "left out with --skip") for name in ("fused", "runner")]
    v = sign_off(GOOD + skipped + skipped[:1], subject="m", requested=ALL)   # "fused": graph check and equivalence
    assert "conversion fused, runner not judged: left out with --skip" in v.line and v.line.count("fused") == 1
