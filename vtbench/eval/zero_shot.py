"""Zero-shot classification from text prompts (METHODS.md section 3): every class is described by a
prompt, embedded by the text encoder; a clip takes the class of the most similar prompt,

    y_hat = argmax_c cos(clip, prompt_c).

For narrated digits the classes are the ten digits and the prompts the ten digit words.
"""
from __future__ import annotations

import torch

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def zero_shot_predictions(clip_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """clip_emb (N, d), class_emb (C, d) -> predicted class (N,) by argmax cosine similarity."""
    if clip_emb.dim() != 2 or class_emb.dim() != 2 or clip_emb.shape[1] != class_emb.shape[1]:
        raise ValueError(f"need clip_emb (N, d) and class_emb (C, d), "
                         f"got {tuple(clip_emb.shape)} and {tuple(class_emb.shape)}")
    unit = torch.nn.functional.normalize
    sim = unit(clip_emb.double(), dim=-1) @ unit(class_emb.double(), dim=-1).T  # (N, C)
    return sim.argmax(dim=1)


def zero_shot_accuracy(clip_emb: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor) -> dict:
    """Accuracy and per-class accuracy (the mean of which is ``balanced_accuracy``) of zero-shot
    classification; labels (N,) in 0..C-1.

    >>> zero_shot_accuracy(torch.eye(3), torch.tensor([0, 1, 2]), torch.eye(3))["accuracy"]
    1.0
    """
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.numel() == 0:
        raise ValueError("no clips to classify")
    if labels.shape != clip_emb.shape[:1]:
        raise ValueError(f"{clip_emb.shape[0]} clips but labels of shape {tuple(labels.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= class_emb.shape[0]:
        raise ValueError(f"labels must lie in 0..{class_emb.shape[0] - 1}")
    pred = zero_shot_predictions(clip_emb, class_emb)
    correct = (pred.cpu() == labels).double()
    per_class = {int(c): float(correct[labels == c].mean()) for c in labels.unique()}
    return {"accuracy": float(correct.mean()), "balanced_accuracy": sum(per_class.values()) / len(per_class),
            "per_class": {str(c): a for c, a in per_class.items()}, "n_clips": int(labels.numel()),
            "chance": 1.0 / class_emb.shape[0]}
