"""The acceptance thresholds on the subject under test: EM >= 80.18 and F1 >= 87.57
(ByteMLPerf-compatible, as the reference measured them) and official F1 >= 99% of the torch fp32
reference (MLPerf-style), on the whole SQuAD v1.1 dev set.

The runner under test is the session's (the plugin's ``albert_subject_runner``: no second build).
Runs only with real weights (``--model DIR`` or $ALBERT_IXRT_MODEL, or a hub id in the local cache)
or a known-answer model (``albert-ixrt known-answer``, judged exactly the same way: that is how the
verdict is shown both ways, tests/selftest/accuracy/test_known_answer.py); the tiny self-test model
and random-weight twins skip saying so (a failure under --strict-assets).
"""
import pytest

from albert_ixrt.pytest_plugin import ACCURACY_BATCH_SIZE, skip_or_fail
from albert_ixrt.verdicts import mlperf_ratio, reference_thresholds

pytestmark = [pytest.mark.accuracy, pytest.mark.slow, pytest.mark.usefixtures("albert_record_subject")]


@pytest.fixture(scope="module")
def judged_model(request, albert_subject_model):
    if albert_subject_model.weights not in ("real", "known-answer"):
        skip_or_fail(request, f"{albert_subject_model.name} has random weights: accuracy is judged only on real "
                              "weights or a known-answer model", strict_option="--strict-assets")
    return albert_subject_model


@pytest.fixture(scope="module")
def result_under_test(request, judged_model):
    """``steps.evaluate_step`` on the session's runner.  The session's artefacts are asked for only once
    the model is judged (as fixture arguments they would be built first, session scope before module
    scope: a whole-dev-set featurization before the skip)."""
    from albert_ixrt.steps import evaluate_step

    return evaluate_step(request.getfixturevalue("albert_subject_runner"),
                         request.getfixturevalue("albert_subject_loaded"),
                         request.getfixturevalue("albert_subject_data"), batch_size=ACCURACY_BATCH_SIZE, progress=False)


@pytest.fixture(scope="module")
def reference_result(request, albert_subject, judged_model, result_under_test):
    """torch fp32 on the same features (``steps.reference_evaluation``, as run's thresholds step); the
    result under test itself when that is what the subject is."""
    from albert_ixrt.steps import reference_evaluation

    if (albert_subject.backend, albert_subject.precision) == ("torch", "fp32"):
        return result_under_test
    data = request.getfixturevalue("albert_subject_data")
    return reference_evaluation(judged_model, data.examples, data.features, ACCURACY_BATCH_SIZE, False)()


def test_reference_thresholds_bytemlperf_compatible(result_under_test, record_property):
    s = result_under_test.scores
    record_property("bytemlperf_em", s.bytemlperf_exact_match)
    record_property("bytemlperf_f1", s.bytemlperf_f1)
    verdict = reference_thresholds(s)
    print(f"\n{result_under_test.model.get('label')} on {result_under_test.runner}: {verdict.message}")
    assert verdict.passed, verdict.message


def test_official_f1_within_one_percent_of_torch_fp32(result_under_test, reference_result, record_property):
    if result_under_test is reference_result:
        pytest.skip("the runner under test is the torch fp32 reference itself (pass --backend/--precision)")
    verdict = mlperf_ratio(result_under_test.scores.f1, reference_result.scores.f1)
    record_property("official_f1_ratio", verdict.detail["ratio"])
    print(f"\n{verdict.message}")
    assert verdict.passed, verdict.message
