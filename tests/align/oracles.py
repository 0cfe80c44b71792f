"""Independent oracles: brute-force path enumeration and direct scalar re-statements of the
recursions in shared/METHODS.md section 1, written without the engine."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

INF = math.inf


def smin(values, gamma):
    values = [v for v in values if v != INF]
    if not values:
        return INF
    if gamma == 0:
        return min(values)
    low = min(values)
    return low - gamma * math.log(sum(math.exp(-(v - low) / gamma) for v in values))


@lru_cache(maxsize=None)
def monotone_paths(n, m):
    """Every path from (0, 0) to (n-1, m-1) with steps (1,0), (0,1), (1,1)."""
    if (n, m) == (1, 1):
        return (((0, 0),),)
    paths = []
    for di, dj in ((1, 0), (0, 1), (1, 1)):
        pn, pm = n - di, m - dj
        if pn >= 1 and pm >= 1:
            paths += [p + ((n - 1, m - 1),) for p in monotone_paths(pn, pm)]
    return tuple(paths)


def delannoy(a, b):
    return sum(math.comb(a, k) * math.comb(b, k) * 2**k for k in range(min(a, b) + 1))


def brute_soft_dtw(C, gamma):
    """smin over all monotone paths of the path costs, and the Gibbs expected alignment."""
    n, m = C.shape
    paths = monotone_paths(n, m)
    costs = np.array([sum(C[i, j] for i, j in p) for p in paths])
    value = smin(costs.tolist(), gamma)
    E = np.zeros_like(C, dtype=float)
    if gamma == 0:
        weights = (costs == costs.min()).astype(float)
        weights /= weights.sum()
    else:
        weights = np.exp(-(costs - value) / gamma)
    for w, p in zip(weights, paths):
        for i, j in p:
            E[i, j] += w
    return value, E


def scalar_soft_dtw(C, gamma):
    n, m = C.shape
    R = np.full((n + 1, m + 1), INF)
    R[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = C[i - 1, j - 1] + smin([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]], gamma)
    return R[n, m]


def scalar_otam(C, gamma):
    """METHODS.md 1.3 literally: pad a zero column on each side, first row accumulates, left pad
    column stays 0, vertical moves only in the first real column and the right pad column."""
    n, m = C.shape
    P = np.zeros((n, m + 2))
    P[:, 1:-1] = C
    R = np.zeros((n, m + 2))
    for j in range(1, m + 2):
        R[0, j] = P[0, j] + R[0, j - 1]
    for i in range(1, n):
        for j in range(1, m + 2):
            if j == 1 or j == m + 1:
                R[i, j] = P[i, j] + smin([R[i - 1, j - 1], R[i, j - 1], R[i - 1, j]], gamma)
            else:
                R[i, j] = P[i, j] + smin([R[i - 1, j - 1], R[i, j - 1]], gamma)
    return R[n - 1, m + 1]


def scalar_drop_dtw(C, drop, gamma):
    """METHODS.md 1.4 literally, with 1-based tables Dp (matched) and Dm (dropped)."""
    n, m = C.shape
    Dp = np.full((n + 1, m + 1), INF)
    Dm = np.full((n + 1, m + 1), INF)
    Dm[0, 0] = 0
    for j in range(1, m + 1):
        Dm[0, j] = sum(drop[:j])
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            Dp[i, j] = C[i - 1, j - 1] + smin([Dp[i - 1, j - 1], Dm[i - 1, j - 1], Dp[i, j - 1]], gamma)
            Dm[i, j] = drop[j - 1] + smin([Dp[i, j - 1], Dm[i, j - 1]], gamma)
    return smin([Dp[n, m], Dm[n, m]], gamma)


def scalar_s2dtw(d, gamma, smooth_gamma, skip_cost):
    """METHODS.md 1.2 literally: smoothing over existing neighbours, the interleaved grid, soft-DTW."""
    n, m = d.shape
    S = np.zeros_like(d)
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                neighbours = [0.0, 0.0, 0.0]
            else:
                neighbours = [d[i, j - 1]] if j > 0 else []
                neighbours += [d[i - 1, j]] if i > 0 else []
                neighbours += [d[i - 1, j - 1]] if i > 0 and j > 0 else []
            S[i, j] = d[i, j] + smin(neighbours, smooth_gamma)
    G = np.full((2 * n + 1, 2 * m + 1), skip_cost)
    for i in range(n):
        for j in range(m):
            G[2 * i + 1, 2 * j + 1] = S[i, j]
    return scalar_soft_dtw(G, gamma)
