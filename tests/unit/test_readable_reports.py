"""Reports a newcomer can read (issue 17 item 9): the equivalence table's columns explained, a
failing figure beside what it needs, and where the time went with the run's own numbers."""
from __future__ import annotations

from albert_ixrt.compare import TABLE_COLUMNS, TABLE_LEGEND, EquivalenceResult, table_legend


def test_every_equivalence_column_has_a_legend_line_and_no_line_is_stale():
    table_head = EquivalenceResult("torch-fp32", "random", []).table().splitlines()[1]
    for column in TABLE_COLUMNS:
        assert column in table_head
    assert list(TABLE_LEGEND) == list(TABLE_COLUMNS)
    lines = table_legend()
    assert [line.split(": ", 1)[0] for line in lines] == list(TABLE_COLUMNS)
    assert all(len(line.split(": ", 1)[1]) > 10 for line in lines)


def _report(*steps):
    return {"title": "t", "label": "l", "started": "now", "seconds": 1.0, "files": [], "passed": True,
            "steps": [{"name": n, "status": "ok", "seconds": 1.0, "detail": d} for n, d in steps]}


def test_report_md_explains_the_equivalence_columns_under_the_table():
    from albert_ixrt.run_report import render_markdown

    md = render_markdown(_report(("equivalence", {"table": "reference torch-fp32\nstage  prec ..."})))
    tail = md[md.index("stage  prec ..."):]
    assert "Columns:" in tail
    for line in table_legend():
        assert f"- {line}" in tail
    assert "Columns:" not in render_markdown(_report(("equivalence", {"reason": "asked with --skip"})))


def test_a_failing_threshold_reads_value_needs_threshold():
    from albert_ixrt.run_report import step_note

    detail = {"measured": {"bytemlperf_exact_match": 72.69, "bytemlperf_f1": 87.569},
              "thresholds": {"bytemlperf_exact_match": 80.18, "bytemlperf_f1": 87.57},
              "mlperf": {"ratio": 0.98891, "threshold": 0.99}}
    note = step_note({"name": "thresholds", "detail": detail})
    assert note == ("ByteMLPerf-compatible EM 72.69, needs >= 80.18, ByteMLPerf-compatible F1 87.569, needs >= 87.57, "
                    "official F1 / torch fp32 0.9889, needs >= 0.99")
