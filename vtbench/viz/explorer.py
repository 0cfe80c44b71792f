"""The alignment explorer: pick a model and a test video, move gamma, the smoothing gamma and the
skip cost, switch the kernel, and watch the cost, the expected alignment and the hard path update.

>>> explorer = AlignmentExplorer(ToySource())      # doctest: +SKIP
>>> explorer                                        # in a notebook: the widget  # doctest: +SKIP
>>> explorer.gamma.value = 1.0                      # what moving the slider does  # doctest: +SKIP

A *source* says what can be picked and builds the pair: ``source.models`` and ``source.videos``
(lists of names) and ``source.pair(model, video) -> Pair``. :class:`ToySource` serves the
constructed pairs of :mod:`vtbench.viz.toy`; :mod:`vtbench.viz.sources` serves test videos
embedded by trained or untrained models.

A selection or setting that cannot be drawn (a source that fails to build the pair, Drop-DTW on a
pair with more sentences than clips) is reported in the status line above the figure, which keeps
what it showed and says so; every later change retries the selection until it is drawn.
"""
from __future__ import annotations

import html
from functools import lru_cache

import ipywidgets as widgets
import plotly.graph_objects as go

from .alignments import KERNEL_NAMES, KERNEL_TITLES, Pair, align, check_kernel
from .interactive import alignment_figure, update_alignment_figure
from .toy import TOY_CASES, toy_pair

# which settings each kernel reads (the others are greyed out)
USES = {
    "dtw": set(),
    "soft_dtw": {"gamma"},
    "s2dtw": {"gamma", "smooth_gamma", "skip_cost"},
    "otam": {"gamma"},
    "drop_dtw": {"gamma", "skip_cost"},
}
# the sliders' ranges: (min, max); the two gammas move on a log scale, so they cannot reach 0
GAMMA_RANGE = (1e-3, 10.0)
SKIP_COST_RANGE = (-1.0, 2.0)
GAMMA_ZERO_HINT = ("; gamma = 0 is the hard limit, which the 'hard path' panel already shows "
                   "(kernel='dtw' draws plain DTW)")


class ToySource:
    """The constructed pairs (no model): ``models = ["constructed"]``, one video per case."""

    models = ["constructed"]
    videos = list(TOY_CASES)

    def pair(self, model: str, video: str) -> Pair:
        return toy_pair(video)


def check_slider_value(name: str, value: float, allowed: tuple[float, float], hint: str = "") -> float:
    """``value`` if its slider can show it; a slider would clamp it and display another value."""
    low, high = allowed
    if not low <= value <= high:  # also rejects NaN
        raise ValueError(f"{name} must be between {low:g} and {high:g}, the range of its slider, "
                         f"got {value!r}{hint if value == 0 else ''}")
    return float(value)


class AlignmentExplorer:
    """ipywidgets controls around a plotly FigureWidget (traces: cost, expected alignment, path).

    ``gamma`` and ``smooth_gamma`` must lie in GAMMA_RANGE and ``skip_cost`` in SKIP_COST_RANGE,
    the sliders' ranges (a ValueError names the one that does not). ``pair`` and ``alignment`` are
    what the figure shows: they lag behind the controls while a selection fails to draw. When the
    first video cannot be drawn, ``figure`` starts blank and is replaced at the first drawing.
    """

    def __init__(self, source, *, kernel: str = "s2dtw", gamma: float = 0.1, smooth_gamma: float = 0.1,
                 skip_cost: float = 0.5, model: str | None = None, video: str | None = None, height: int = 480,
                 width: int = 1000):
        gamma = check_slider_value("gamma", gamma, GAMMA_RANGE, GAMMA_ZERO_HINT)
        smooth_gamma = check_slider_value("smooth_gamma", smooth_gamma, GAMMA_RANGE)
        skip_cost = check_slider_value("skip_cost", skip_cost, SKIP_COST_RANGE)
        self.source = source
        self._pair = lru_cache(maxsize=32)(source.pair)
        self._height, self._width = height, width
        style = {"description_width": "initial"}
        self.model = widgets.Dropdown(options=list(source.models), value=model or source.models[0],
                                      description="model", style=style)
        self.video = widgets.Dropdown(options=list(source.videos), value=video or source.videos[0],
                                      description="video", style=style)
        self.kernel = widgets.Dropdown(options=[(KERNEL_TITLES[k], k) for k in KERNEL_NAMES],
                                       value=check_kernel(kernel), description="kernel", style=style)
        slider = dict(continuous_update=False, readout_format=".3g", style=style)
        log_range = dict(base=10, min=-3, max=1, step=0.05)  # 10**-3 .. 10**1: GAMMA_RANGE
        self.gamma = widgets.FloatLogSlider(value=gamma, description="gamma", **log_range, **slider)
        self.smooth_gamma = widgets.FloatLogSlider(value=smooth_gamma, description="smoothing gamma",
                                                   **log_range, **slider)
        self.skip_cost = widgets.FloatSlider(value=skip_cost, min=SKIP_COST_RANGE[0], max=SKIP_COST_RANGE[1],
                                             step=0.05, description="skip / drop cost", **slider)
        self.status = widgets.HTML()
        self.pair: Pair | None = None  # what the figure shows (None: nothing drawn yet)
        self.alignment = None
        self._selection_drawn = False  # False until the dropdowns' model and video are drawn
        self.figure = go.FigureWidget(layout=dict(height=height, width=width, title="no video drawn yet"))
        self.widget = widgets.VBox([
            widgets.HBox([self.model, self.video, self.kernel]),
            widgets.HBox([self.gamma, self.smooth_gamma, self.skip_cost]),
            self.status,
            self.figure,
        ])
        for control in (self.model, self.video):
            control.observe(self._on_pair, names="value")
        for control in (self.kernel, self.gamma, self.smooth_gamma, self.skip_cost):
            control.observe(self._on_settings, names="value")
        self._grey_out()
        self._redraw()

    @property
    def settings(self) -> dict:
        return {"gamma": self.gamma.value, "smooth_gamma": self.smooth_gamma.value, "skip_cost": self.skip_cost.value}

    def _grey_out(self):
        used = USES[self.kernel.value]
        for name in ("gamma", "smooth_gamma", "skip_cost"):
            getattr(self, name).disabled = name not in used

    def _report(self, error: Exception | None = None):
        if error is not None:
            wanted = f"video {self.video.value} (model {self.model.value}) with {KERNEL_TITLES[self.kernel.value]}"
            shown = ("nothing is drawn yet" if self.pair is None else
                     f"the figure still shows {self.pair.name}, {KERNEL_TITLES[self.alignment.kernel]}")
            self.status.value = (f"<b style='color:#b00'>cannot draw {html.escape(wanted)}: "
                                 f"{type(error).__name__}: {html.escape(str(error))}</b>"
                                 f"<br><small>{html.escape(shown)}</small>")
            return
        shape = tuple(self.pair.similarity.shape)
        self.status.value = (f"{self.pair.name}: {shape[0]} clips x {shape[1]} sentences; "
                             f"{KERNEL_TITLES[self.alignment.kernel]} value {self.alignment.value:.4f}"
                             + (f"<br><small>{self.pair.note}</small>" if self.pair.note else ""))

    def _redraw(self):
        """Draw the selected pair with the current settings, resetting labels and ground truth until
        the selection has been drawn once; on any error the figure keeps what it showed."""
        reset_pair = not self._selection_drawn
        try:  # a broken run or a kernel that rejects the pair must not kill the widget
            pair = self._pair(self.model.value, self.video.value) if reset_pair else self.pair
            alignment = align(pair, self.kernel.value, **self.settings)
            self._draw(pair, alignment, reset_pair)
        except Exception as error:
            self._report(error)
            return
        self.pair, self.alignment, self._selection_drawn = pair, alignment, True
        self._report()

    def _draw(self, pair: Pair, alignment, reset_pair: bool):
        if self.pair is None:  # the first drawing: a new FigureWidget, which carries its traces to the browser
            blank = self.figure
            self.figure = go.FigureWidget(alignment_figure(pair, alignment, height=self._height, width=self._width))
            self.widget.children = (*self.widget.children[:-1], self.figure)
            blank.close()
            return
        update_alignment_figure(self.figure, pair, alignment, reset_pair=reset_pair)

    def _on_settings(self, change=None):
        self._grey_out()
        self._redraw()

    def _on_pair(self, change=None):
        self._selection_drawn = False
        self._redraw()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
