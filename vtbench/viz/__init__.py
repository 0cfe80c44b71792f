"""Figures and widgets: matplotlib heatmaps, plotly heatmaps with the ground truth overlaid, the
alignment explorer, and constructed weakly aligned pairs to look at.

* :mod:`.alignments`: :class:`Pair` (a similarity matrix and its ground truth) and :func:`align`
  (any kernel's value, expected alignment and hard path on it);
* :mod:`.toy`: constructed pairs: aligned, irrelevant clips, unnarrated step, irrelevant sentence,
  swapped steps;
* :mod:`.heatmaps`: matplotlib panels side by side; :mod:`.interactive`: plotly figures and HTML;
* :mod:`.explorer`: the ipywidgets explorer; :mod:`.sources`: pairs from models and test videos;
* :mod:`.tables`: fixed-format text tables.
"""
from .alignments import (KERNEL_NAMES, KERNEL_TITLES, Alignment, Pair, align, alignment_settings, path_accuracy,
                         sentence_recall, truth_mass)
from .heatmaps import draw_heatmap, plot_alignments, plot_case_grid, plot_sweep, save_figure
from .interactive import alignment_figure, save_html, update_alignment_figure
from .tables import format_table, kernel_table
from .toy import TOY_CASES, toy_pair, toy_pairs

__all__ = [
    "KERNEL_NAMES", "KERNEL_TITLES", "TOY_CASES", "Alignment", "Pair", "align", "alignment_figure", "alignment_settings",
    "draw_heatmap", "format_table", "kernel_table", "path_accuracy", "plot_alignments", "plot_case_grid",
    "plot_sweep", "save_figure", "save_html", "sentence_recall", "toy_pair", "toy_pairs",
    "truth_mass", "update_alignment_figure",
]
