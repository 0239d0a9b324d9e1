"""perf_report's "vs reference" column compares only like with like, and the throughput plot's
log axis has a labelled tick at or below its lowest point."""
from __future__ import annotations

import math

import pytest

from albert_ixrt.bench import BenchResult, LatencyStats
from albert_ixrt.report import (ReportRow, decade_limits, markdown_table, reference_row, throughput_figure,
                                vs_reference)


def _result(device="NVIDIA H100", batch=16, seq=384, bps=40.0, model="/models/albert", weights="real"):
    lat = LatencyStats(1e3 / bps, 1e3 / bps, 1.1e3 / bps, 1.2e3 / bps, 0.9e3 / bps, 1.3e3 / bps, 1.0)
    return BenchResult(backend="tensorrt", precision="fp16", device=device, batch_size=batch, seq_len=seq,
                       transfer="device_only", iterations=10, seconds=1.0, batches_per_s=bps,
                       sequences_per_s=batch * bps, latency=lat, throughput_method="x", stopped_by="count",
                       weights=weights, model=model)


def test_ratio_only_for_albert_base_on_an_accelerator_at_the_reference_shape():
    ratio, why = vs_reference(_result(bps=50.99 * 2))
    assert ratio == pytest.approx(2.0) and why == ""
    # the random-weight shape twin costs what the real model costs: its speed compares
    assert vs_reference(_result(weights="random", model="/d/config.json"))[0] == pytest.approx(40 / 50.99)
    assert vs_reference(_result(device="cpu", bps=0.1)) == (None, "n/a (CPU; reference is an Iluvatar MR-V100)")
    assert vs_reference(_result(batch=1)) == (None, "n/a (batch 1; reference is batch 16)")
    assert vs_reference(_result(seq=128)) == (None, "n/a (seq 128; reference is seq 384)")
    assert vs_reference(_result(model="tiny", weights="random")) == (None, "n/a (tiny model, not ALBERT base)")


def test_table_cells_never_show_a_misleading_ratio_or_a_blank():
    rows = [ReportRow("m", 16, "fp32", 0.08, "-", "-", 1.3, 0.08, 384, "with_copies", "torch", "cpu", "random",
                      *vs_reference(_result(device="cpu", bps=0.08))[:1], False,
                      vs_reference(_result(device="cpu", bps=0.08))[1]),
            ReportRow("m", 1, "fp16", 300.0, "-", "-", 300.0, 300.0, 384, "device_only", "tensorrt", "H100", "real",
                      *vs_reference(_result(batch=1))[:1], False, vs_reference(_result(batch=1))[1]),
            reference_row()]
    cells = [line.rstrip(" |").rsplit("| ", 1)[1] for line in markdown_table(rows).splitlines()[2:]]
    assert cells == ["n/a (CPU; reference is an Iluvatar MR-V100)", "n/a (batch 1; reference is batch 16)", "1.00x"]


def test_decade_limits_enclose_the_data():
    assert decade_limits([2.6, 3.6, 815.8]) == (1.0, 1000.0)
    assert decade_limits([0.15, 12.0]) == (0.1, 100.0)
    assert decade_limits([10.0, 100.0]) == (10.0, 100.0)
    assert decade_limits([5.0]) == (1.0, 10.0)
    with pytest.raises(ValueError):
        decade_limits([0.0, 1.0])


def _labelled_y_ticks(ax):
    lo, hi = ax.get_ylim()
    return [t for t in ax.get_yticks() if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]


def test_lowest_point_sits_on_or_above_a_labelled_tick():
    import matplotlib.pyplot as plt

    rows = [ReportRow("m", b, "fp32", q, "-", "-", q * b, q, 384, "with_copies", "torch", "cpu", "random")
            for b, q in ((1, 2.6), (4, 0.9), (16, 0.2))] + [reference_row()]
    fig = throughput_figure(rows)
    try:
        ax = fig.axes[0]
        ticks = _labelled_y_ticks(ax)
        ys = [r.sequences_per_s for r in rows]
        assert min(ticks) <= min(ys) and max(ticks) >= max(ys), (ticks, ys)
        assert all(math.isclose(math.log10(t), round(math.log10(t))) for t in ticks)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "4", "16"]
    finally:
        plt.close(fig)


def test_matplotlib_defaults_would_leave_the_lowest_point_unlabelled():
    """The planted-bad side: the automatic limits of the same data put the lowest point under the
    lowest labelled decade, which is what decade_limits corrects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.set_yscale("log")
        ax.plot([1, 4, 16, 16], [2.6, 3.6, 3.2, 815.8])
        fig.canvas.draw()
        assert min(_labelled_y_ticks(ax)) > 2.6
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------
# The plot says on the image what a line is not, and why it is empty
# --------------------------------------------------------------------------------------------
def _figure_texts(rows, notes=()):
    import matplotlib.pyplot as plt

    from albert_ixrt.report import rows_for, Inputs
    from albert_ixrt.bench import BenchReport
    from pathlib import Path

    fig = throughput_figure(rows_for(Inputs([(Path("b.json"), BenchReport(rows, {}, {}))] if rows else [], [])),
                            notes)
    try:
        ax = fig.axes[0]
        return [t.get_text() for t in ax.get_legend().get_texts()], [t.get_text() for t in ax.texts]
    finally:
        plt.close(fig)


def test_plot_legend_says_which_lines_are_not_comparable_with_the_reference():
    tiny = [_result(device="cpu", batch=b, model="tiny", weights="random") for b in (1, 16)]
    twin_cpu = [_result(device="cpu", batch=b, model="/d/config.json", weights="random") for b in (1, 16)]
    twin_gpu = [_result(batch=b, model="/d/config.json", weights="random") for b in (1, 16)]
    real_gpu = [_result(batch=b) for b in (1, 16)]
    legend, texts = _figure_texts(tiny + twin_cpu + twin_gpu + real_gpu)
    by_model = {line.split(" ")[0]: line for line in legend}
    assert "(self-test model, not ALBERT base; not comparable with the reference)" in by_model["tiny"]
    twin = [line for line in legend if line.startswith("d [random weights]")]
    assert len(twin) == 1   # CPU and GPU rows share a key: the GPU batch-16 row makes the line comparable
    assert "random weights: speed only" in twin[0]
    assert "\n" not in by_model["/models/albert"]                 # like for like: no caveat
    assert texts == []                                             # not empty: no box
    (ref,) = [line for line in legend if line.startswith("reference")]
    assert "50.99 batches/s at batch 16 = 816 seq/s" in ref and "BatchSize 1 reading would be 50.99 seq/s" in ref
    assert "DeepSparkInference ALBERT README's BatchSize 1 reading" in ref and "seed" not in ref
    legend, _ = _figure_texts(twin_cpu)
    assert "random weights: speed only; CPU; reference is an Iluvatar MR-V100; not comparable" in legend[0]


def test_an_empty_plot_says_why():
    note = ("No throughput rows from this run: its bench step was skipped (--skip bench); only the reference row "
            "is shown.")
    _, texts = _figure_texts([], [note])
    assert [t.replace("\n", " ") for t in texts] == [note]
    _, texts = _figure_texts([])
    assert "no benchmark results" in texts[0].replace("\n", " ")


def test_perf_report_says_how_the_reference_row_is_read(tmp_path):
    from albert_ixrt.bench import BenchReport
    from albert_ixrt.report import write_report

    BenchReport([_result()], {}, {}).write(tmp_path / "bench.json")
    md = write_report(tmp_path)["markdown"].read_text()
    line = next(line for line in md.splitlines() if line.startswith("How the reference row is read"))
    assert "50.99 batches/s at batch 16 (= 816 sequences/s)" in line
    assert "the DeepSparkInference ALBERT README's table lists BatchSize 1" in line and "50.99 sequences/s" in line
    assert "seed" not in line
