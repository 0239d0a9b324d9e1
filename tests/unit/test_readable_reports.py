"""Reports a newcomer can read: the equivalence table's columns explained, a
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


def _record(*steps):
    return {"title": "t", "started": "now", "finished": "later", "writer": "albert-ixrt run", "files": [],
            "suite": {"version": "0.1.0", "commit": None}, "plan": "p",
            "subject": {"model": "m", "backend": "torch", "precision": "fp32", "named": True, "named_by": "--model"},
            "verdict": {"line": "NOT SIGNED OFF: m: x"},
            "steps": [{"name": n, "status": "passed", "seconds": 1.0, "reason": "", "items": [], "figures": {},
                       "detail": d} for n, d in steps]}


def test_report_md_explains_the_equivalence_columns_under_the_table():
    from albert_ixrt.acceptance.report_md import render_markdown

    item = [{"name": "fused", "status": "passed", "message": "PASS", "figures": {}}]
    rec = _record(("equivalence", {"table": "reference torch-fp32\nstage  prec ..."}))
    rec["steps"][0]["items"] = item
    md = render_markdown(rec)
    tail = md[md.index("stage  prec ..."):]
    assert "Columns:" in tail
    for line in table_legend():
        assert f"- {line}" in tail
    assert md.startswith("# albert-ixrt sign-off: t\n\n**NOT SIGNED OFF: m: x**")
    assert "Columns:" not in render_markdown(_record(("equivalence", {})))


def test_a_failing_threshold_reads_value_needs_threshold():
    from albert_ixrt.acceptance.checks import threshold_items
    from albert_ixrt.squad.metrics import SquadScores

    items = {i.name: i for i in threshold_items(SquadScores(75.0, 80.0, 72.69, 87.569, 10570, 10570, 10866), 81.0)}
    assert items["bytemlperf_exact_match"].message.startswith("FAIL: ByteMLPerf-compatible EM 72.69, needs >= 80.18 "
                                                               "(margin -7.490) over 10866 features")
    assert items["bytemlperf_f1"].message.startswith("FAIL: ByteMLPerf-compatible F1 87.569, needs >= 87.57")
    assert "ratio 0.9877, needs >= 0.99" in items["official_f1_ratio"].message
