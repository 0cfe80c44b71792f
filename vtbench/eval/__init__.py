"""Evaluation protocols of METHODS.md section 3, as pure functions (never importing the trainer)."""
from .retrieval import rank_metrics, ranks_of_diagonal, ranks_of_group, similarity_matrix, text_to_clip_metrics

__all__ = ["rank_metrics", "ranks_of_diagonal", "ranks_of_group", "similarity_matrix", "text_to_clip_metrics"]
