"""The alignment explorer: pick a model and a test video, move gamma, the smoothing gamma and the
skip cost, switch the kernel, and watch the cost, the expected alignment and the hard path update.

>>> explorer = AlignmentExplorer(ToySource())      # doctest: +SKIP
>>> explorer                                        # in a notebook: the widget  # doctest: +SKIP
>>> explorer.gamma.value = 1.0                      # what moving the slider does  # doctest: +SKIP

A *source* says what can be picked and builds the pair: ``source.models`` and ``source.videos``
(lists of names) and ``source.pair(model, video) -> Pair``. :class:`ToySource` serves the
constructed pairs of :mod:`vtbench.viz.toy`; :mod:`vtbench.viz.sources` serves test videos
embedded by trained or untrained models.
"""
from __future__ import annotations

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


class ToySource:
    """The constructed pairs (no model): ``models = ["constructed"]``, one video per case."""

    models = ["constructed"]
    videos = list(TOY_CASES)

    def pair(self, model: str, video: str) -> Pair:
        return toy_pair(video)


class AlignmentExplorer:
    """ipywidgets controls around a plotly FigureWidget (traces: cost, expected alignment, path)."""

    def __init__(self, source, *, kernel: str = "s2dtw", gamma: float = 0.1, smooth_gamma: float = 0.1,
                 skip_cost: float = 0.5, model: str | None = None, video: str | None = None, height: int = 480,
                 width: int = 1000):
        self.source = source
        self._pair = lru_cache(maxsize=32)(source.pair)
        style = {"description_width": "initial"}
        self.model = widgets.Dropdown(options=list(source.models), value=model or source.models[0],
                                      description="model", style=style)
        self.video = widgets.Dropdown(options=list(source.videos), value=video or source.videos[0],
                                      description="video", style=style)
        self.kernel = widgets.Dropdown(options=[(KERNEL_TITLES[k], k) for k in KERNEL_NAMES],
                                       value=check_kernel(kernel), description="kernel", style=style)
        slider = dict(continuous_update=False, readout_format=".3g", style=style)
        self.gamma = widgets.FloatLogSlider(value=gamma, base=10, min=-3, max=1, step=0.05, description="gamma", **slider)
        self.smooth_gamma = widgets.FloatLogSlider(value=smooth_gamma, base=10, min=-3, max=1, step=0.05,
                                                   description="smoothing gamma", **slider)
        self.skip_cost = widgets.FloatSlider(value=skip_cost, min=-1.0, max=2.0, step=0.05,
                                             description="skip / drop cost", **slider)
        self.status = widgets.HTML()
        self.pair = self._pair(self.model.value, self.video.value)
        self.alignment = align(self.pair, kernel, gamma, smooth_gamma, skip_cost)
        self.figure = go.FigureWidget(alignment_figure(self.pair, self.alignment, height=height, width=width))
        for control in (self.model, self.video):
            control.observe(self._on_pair, names="value")
        for control in (self.kernel, self.gamma, self.smooth_gamma, self.skip_cost):
            control.observe(self._on_settings, names="value")
        self._grey_out()
        self._report()
        self.widget = widgets.VBox([
            widgets.HBox([self.model, self.video, self.kernel]),
            widgets.HBox([self.gamma, self.smooth_gamma, self.skip_cost]),
            self.status,
            self.figure,
        ])

    @property
    def settings(self) -> dict:
        return {"gamma": self.gamma.value, "smooth_gamma": self.smooth_gamma.value, "skip_cost": self.skip_cost.value}

    def _grey_out(self):
        used = USES[self.kernel.value]
        for name in ("gamma", "smooth_gamma", "skip_cost"):
            getattr(self, name).disabled = name not in used

    def _report(self, error: Exception | None = None):
        if error is not None:
            self.status.value = f"<b style='color:#b00'>{type(error).__name__}: {error}</b>"
            return
        shape = tuple(self.pair.similarity.shape)
        self.status.value = (f"{self.pair.name}: {shape[0]} clips x {shape[1]} sentences; "
                             f"{KERNEL_TITLES[self.kernel.value]} value {self.alignment.value:.4f}"
                             + (f"<br><small>{self.pair.note}</small>" if self.pair.note else ""))

    def _redraw(self, reset_pair: bool):
        try:
            self.alignment = align(self.pair, self.kernel.value, **self.settings)
        except ValueError as error:  # e.g. Drop-DTW with more sentences than clips
            self._report(error)
            return
        update_alignment_figure(self.figure, self.pair, self.alignment, reset_pair=reset_pair)
        self._report()

    def _on_settings(self, change=None):
        self._grey_out()
        self._redraw(reset_pair=False)

    def _on_pair(self, change=None):
        try:
            self.pair = self._pair(self.model.value, self.video.value)
        except Exception as error:  # a broken run must not kill the widget
            self._report(error)
            return
        self._redraw(reset_pair=True)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
