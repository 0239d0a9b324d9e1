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
