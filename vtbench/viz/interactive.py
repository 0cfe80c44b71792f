"""Plotly heatmaps of a pair's cost, a kernel's expected alignment and its hard path, with the
ground-truth steps drawn over them, for HTML export and for the explorer's FigureWidget.

The figure has three heatmap traces (0: cost, 1: expected alignment, 2: hard path) on three
subplots sharing the clip axis; :func:`update_alignment_figure` rewrites them in place, which is
what the explorer's callbacks do.
"""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from ..io import atomic_write
from .alignments import KERNEL_TITLES, Alignment, Pair, path_accuracy
from .heatmaps import PATH_COLOUR, TRUTH_COLOUR, truth_runs

PANELS = ("cost 1 - cos", "expected alignment", "hard path")


def truth_shapes(pair: Pair, panels: int = len(PANELS)) -> list[dict]:
    """One rectangle per run of ground-truth clips of a sentence, on every panel."""
    if pair.truth is None:
        return []
    shapes = []
    for k in range(panels):
        suffix = "" if k == 0 else str(k + 1)
        for j, first, last in truth_runs(pair.truth):
            shapes.append(dict(type="rect", xref=f"x{suffix}", yref=f"y{suffix}", x0=j - 0.5, x1=j + 0.5,
                               y0=first - 0.5, y1=last + 0.5, line=dict(color=TRUTH_COLOUR, width=2),
                               fillcolor="rgba(0,0,0,0)", name="ground truth"))
    return shapes


def _axis_text(pair: Pair):
    n, m = pair.similarity.shape
    rows = pair.row_labels or [f"clip {i}" for i in range(n)]
    cols = pair.col_labels or [f"sentence {j}" for j in range(m)]
    return rows, cols


def _title(pair: Pair, alignment: Alignment) -> str:
    accuracy = path_accuracy(alignment.path, pair.truth)
    scored = "" if accuracy != accuracy else f", path precision {accuracy:.2f}"
    return f"{pair.name}: {KERNEL_TITLES[alignment.kernel]}, value {alignment.value:.3f}{scored}"


def alignment_figure(pair: Pair, alignment: Alignment, *, height: int = 460, width: int | None = None) -> go.Figure:
    """Cost, expected alignment and hard path of ``alignment`` on ``pair``, ground truth outlined."""
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, subplot_titles=PANELS, horizontal_spacing=0.07)
    # each colour bar just right of its own panel
    colour_bars = [dict(x=fig.layout[axis].domain[1] + 0.005, xanchor="left", len=0.8, thickness=10)
                   for axis in ("xaxis", "xaxis2")] + [None]
    scales = ("Magma_r", "Blues", [[0, "#ffffff"], [1, PATH_COLOUR]])
    # fixed scales: the cost's 1 - cos over its whole range 0..2, as in plot_case_grid, so that
    # switching pairs or models shows a flat cost as flat rather than stretched over the colours
    for k, (scale, bar) in enumerate(zip(scales, colour_bars)):
        fig.add_trace(go.Heatmap(colorscale=scale, showscale=bar is not None, colorbar=bar, zmin=0,
                                 zmax=1 if k else 2, hovertemplate="clip %{y}<br>sentence %{x}<br>%{z:.3f}"
                                 "<extra></extra>", name=PANELS[k]), row=1, col=k + 1)
    fig.update_yaxes(autorange="reversed", title_text="clip (time)", row=1, col=1)
    fig.update_xaxes(title_text="sentence")
    fig.update_layout(height=height, width=width, margin=dict(l=60, r=20, t=70, b=60), template="plotly_white")
    update_alignment_figure(fig, pair, alignment, reset_pair=True)
    return fig


def update_alignment_figure(fig: go.Figure, pair: Pair, alignment: Alignment, *, reset_pair: bool = True) -> None:
    """Rewrite the three heatmaps (and, with ``reset_pair``, the labels and ground truth) in place;
    on a FigureWidget this is one message to the browser."""
    rows, cols = _axis_text(pair)
    matrices = (pair.cost, alignment.expected, alignment.path)
    with fig.batch_update():
        for trace, matrix in zip(fig.data, matrices):
            trace.z = matrix.detach().cpu().double().numpy().round(4).tolist()
            if reset_pair:
                trace.x, trace.y = list(range(len(cols))), list(range(len(rows)))
        if reset_pair:
            fig.layout.shapes = truth_shapes(pair)
            for k in range(3):
                axis = "xaxis" if k == 0 else f"xaxis{k + 1}"
                fig.layout[axis].update(tickmode="array", tickvals=list(range(len(cols))), ticktext=cols)
            fig.layout.yaxis.update(tickmode="array", tickvals=list(range(len(rows))), ticktext=rows)
        fig.layout.title = dict(text=_title(pair, alignment), x=0.01, font=dict(size=14))


def save_html(fig: go.Figure, path: str | Path) -> Path:
    """Write ``fig`` as HTML that loads plotly.min.js from its own folder (written there once), so
    every figure in figures/ shares one copy; both atomically (as plotly's write_html would, but
    a failed write leaves the previous file)."""
    path = Path(path)
    html = fig.to_html(include_plotlyjs="directory", full_html=True)
    atomic_write(path, lambda f: f.write(html.encode("utf-8")))
    bundle = path.parent / "plotly.min.js"
    if not bundle.exists():
        atomic_write(bundle, lambda f: f.write(plotly.offline.get_plotlyjs().encode("utf-8")))
    return path
