"""The kernel benchmark runs end to end (tiny sizes) and writes a Markdown table in which every
peer that ran agrees with vtbench; its re-statement of the published S2DTW pipeline is exact."""
import pytest
import torch

from vtbench import bench
from vtbench.align import s2dtw, soft_dtw
from vtbench.align.backends import cpu


@pytest.mark.slow
def test_bench_kernels_quick_writes_an_agreeing_table(tmp_path, capsys):
    out = tmp_path / "bench.md"
    assert bench.main(["kernels", "--quick", "--repeat", "1", "--threads", "1", "--out", str(out)]) == 0
    table = out.read_text()
    assert table == capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith(("| soft-DTW", "| VT-TWINS"))]
    assert len(rows) == 14  # two soft-DTW sizes x 5 implementations, the loss x 4
    try:
        cpu.extension()
        compiled = True
    except RuntimeError:  # no compiler here: the cpu backend's rows fail, and say so
        compiled = False
    for row in rows:
        implementation = row.split("|")[2]
        if "vtbench" in implementation and (compiled or "cpu backend" not in implementation):
            assert "reference" in row or "yes (" in row, row  # vtbench's own rows never fail
        else:
            assert "yes (" in row or "failed" in row, row  # a peer may be missing


def test_published_pipeline_restated_equals_vtbench_s2dtw():
    cost = torch.randn(6, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.3
    with_torch_dp = bench.published_s2dtw(cost, value_of=lambda grid: soft_dtw(grid, bench.GAMMA, backend="torch"))
    torch.testing.assert_close(with_torch_dp, s2dtw(cost, **bench.S2DTW_ARGS, backend="torch"))


def test_small_times_and_ratios_keep_their_digits():
    """A memory-bandwidth bound of microseconds next to a kernel of milliseconds must read as such."""
    rows = [bench.Row("w", "vtbench", ms=38.04, reference=True), bench.Row("w", "bound", ms=0.0026),
            bench.Row("w", "peer", ms=190.0)]
    lines = bench.markdown(rows, torch.device("cpu"), 1).splitlines()
    assert "| w | vtbench | 38.0 | 1.0 |" in lines[4]
    assert "| w | bound | 0.0026 | 6.8e-05 |" in lines[5]
    assert "| w | peer | 190.0 | 5.0 |" in lines[6]


def test_the_note_explains_a_bound_s_ratio_only_when_the_table_has_one():
    rows = [bench.Row("w", "vtbench", ms=2.0, reference=True), bench.Row("w", "peer", ms=4.0)]
    assert "a bound's" not in bench.markdown(rows, torch.device("cpu"), 1)
    rows.append(bench.Row("w", f"{bench.BOUND} (12 bytes per cell)", ms=0.04))
    assert "a bound's 0.02: vtbench takes 50 times the bound" in bench.markdown(rows, torch.device("cpu"), 1)


def test_a_row_cut_short_by_the_time_budget_says_how_many_runs_it_had():
    rows = [bench.Row("w", "vtbench", ms=2.0, reference=True, runs=5), bench.Row("w", "slow peer", ms=9e3, runs=3)]
    lines = bench.markdown(rows, torch.device("cpu"), 5).splitlines()
    assert "| w | vtbench | 2.0 | 1.0 |" in lines[4] and "| w | slow peer | 9000.0 (3 runs) | 4500.0 |" in lines[5]
    assert [bench._number(x) for x in (0.996, 0.994, 0.0026, 12.34)] == ["1.0", "0.99", "0.0026", "12.3"]


@pytest.mark.parametrize("args, message", [(["--threads", "-1"], "--threads must be >= 1"),
                                           (["--threads", "0"], "--threads must be >= 1"),
                                           (["--out", "."], "--out . is a folder")])
def test_bad_command_lines_are_errors_before_anything_runs(args, message, capsys):
    with pytest.raises(SystemExit):
        bench.main(["kernels", *args])
    assert message in capsys.readouterr().err


def test_triton_configs_needs_a_gpu_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        bench.main(["triton-configs"])
    assert "triton-configs needs --device cuda" in capsys.readouterr().err


def test_agreement_sees_a_nan_anywhere_and_a_wrong_shape_fails_only_its_row():
    reference = (torch.tensor([1.0, 2.0]), torch.ones(2, 3))
    nan_gradient = torch.ones(2, 3)
    nan_gradient[1, 2] = float("nan")
    cases = {"a NaN in the second output": (torch.tensor([1.0, 2.0]), nan_gradient),  # (max() skipped it)
             "another shape": (torch.tensor([1.0, 2.0, 3.0]), torch.ones(2, 3)),
             "an output missing": (torch.tensor([1.0, 2.0]),)}
    agrees = {}
    for name, output in cases.items():
        row = bench.Row("w", name)
        bench.measure(row, lambda output=output: (lambda: output), torch.device("cpu"), 1, reference, 1e-3)
        agrees[name] = row.agrees
    assert agrees == {"a NaN in the second output": "NO (nan)",
                      "another shape": "failed: ValueError an output of shape (3,) where the reference's is (2,)",
                      "an output missing": agrees["an output missing"]}
    assert agrees["an output missing"].startswith("failed: ValueError zip()")


def test_when_vtbench_s_row_fails_the_next_row_that_runs_is_the_reference():
    def fails():
        raise RuntimeError("no C++ compiler")

    rows = []
    value = torch.tensor([1.0])
    bench._workload(rows, "w", [("vtbench, cpu backend", fails), ("vtbench, torch backend", lambda: (lambda: (value,))),
                                ("a peer", lambda: (lambda: (value * (1 + 1e-6),)))], torch.device("cpu"), 1)
    assert [(r.reference, r.agrees) for r in rows] == [
        (False, "failed: RuntimeError no C++ compiler"), (True, "reference (the rows above failed)"), (False, "yes (1e-06)")]
    assert "| w | a peer |" in bench.markdown(rows, torch.device("cpu"), 1) and rows[2].ms is not None
