"""Slow, direct re-statements of the objectives of shared/METHODS.md section 2: scalar loops in
float64 Python over tiny inputs, no vectorisation, no vtbench code (the alignment DPs are the
scalar oracles of tests/align/oracles.py)."""
from __future__ import annotations

import math

import numpy as np

from ..align.oracles import scalar_otam, scalar_s2dtw, scalar_soft_dtw

INF = math.inf


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def norm(a):
    return math.sqrt(dot(a, a))


def unit(a):
    n = norm(a)
    return [x / n for x in a]


def logsumexp(values):
    values = [v for v in values if v != -INF]
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def soft_dtw(C, gamma):
    """METHODS 1.1 by scalar loops (the alignment tests' oracle)."""
    return scalar_soft_dtw(np.asarray(C, dtype=float), gamma)


def otam(C, gamma):
    """METHODS 1.3 by scalar loops (the alignment tests' oracle)."""
    return scalar_otam(np.asarray(C, dtype=float), gamma)


def s2dtw(V, T, gamma=0.1, gs=0.1, tau=0.5):
    """METHODS 1.2 on L2-normalised V (n, d), T (m, d): base cost d = -<v_i, t_j>."""
    d = [[-dot(v, t) for t in T] for v in V]
    return scalar_s2dtw(np.asarray(d, dtype=float), gamma, gs, tau)


def infonce(V, T, tau=1.0):
    """L = CE(V T^T / tau) + CE(T V^T / tau) over pairs p = (V[p], T[p])."""
    P = len(V)
    v2t = sum(logsumexp([dot(V[p], T[q]) / tau for q in range(P)]) - dot(V[p], T[p]) / tau for p in range(P)) / P
    t2v = sum(logsumexp([dot(T[p], V[q]) / tau for q in range(P)]) - dot(T[p], V[p]) / tau for p in range(P)) / P
    return v2t + t2v


def milnce(V, bags):
    """V: clips (N, d); bags[i]: list of caption vectors of clip i."""
    N = len(V)
    total = 0.0
    for i in range(N):
        denominator = [dot(V[i], t) for j in range(N) for t in bags[j]]
        denominator += [dot(V[j], t) for j in range(N) for t in bags[i]]
        numerator = [dot(V[i], t) for t in bags[i]]
        total += logsumexp(denominator) - logsumexp(numerator)
    return total / N


def vt_twins(videos, texts, gamma=0.1, gs=0.1, tau=0.5, symmetric=False, temperature=1.0):
    """videos[b] (n_b, d), texts[b] (m_b, d), unnormalised; S2DTW computed pair by pair."""
    B = len(videos)
    V = [[unit(v) for v in video] for video in videos]
    T = [[unit(t) for t in text] for text in texts]
    s = [[-s2dtw(V[j], T[i], gamma, gs, tau) / temperature for i in range(B)] for j in range(B)]  # s[j][i] = s(V_j, T_i)
    t2v = sum(logsumexp([s[j][i] for j in range(B)]) - s[i][i] for i in range(B)) / B
    if not symmetric:
        return t2v
    v2t = sum(logsumexp([s[j][i] for i in range(B)]) - s[j][j] for j in range(B)) / B
    return (t2v + v2t) / 2


def cosine_cost(t, v, eps=0.01):
    return 1 - dot(t, v) / (norm(t) * norm(v) + eps)


def tempclr_align(texts, clips, orders, gamma=0.1, aligner="soft_dtw"):
    """One video: CE over the true order and ``orders`` (permutations of the sentence rows)."""
    n = len(texts)
    C = [[cosine_cost(texts[i], clips[j]) for j in range(n)] for i in range(n)]

    def distance(M):
        if aligner == "otam":
            return otam(M, gamma) + otam([list(col) for col in zip(*M)], gamma)
        return soft_dtw(M, gamma)

    logits = [-distance([C[p] for p in order]) for order in [list(range(n))] + [list(o) for o in orders]]
    return logsumexp(logits) - logits[0]
