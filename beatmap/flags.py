"""The ``rarely_visited`` rules: which visited blocks get clearly fewer visits than their beat's typical block.

Pure functions on arrays of visit counts, aligned to their input.  A block's
*typical* is the median visit count of its beat's blocks (robust to the
neglected blocks themselves).  Three rules (``rarely_rule`` in the settings):

``poisson``
    A block is flagged when its count is improbably low for a block visited
    at ``rarely_fraction`` of typical: ``P(X <= visits | rate = rarely_fraction
    x typical) < 1 - rarely_confidence`` (exact one-sided Poisson test).
``neighbours``
    The ``poisson`` test, then strength borrowed from neighbours of the same
    beat (blocks that touch or face each other across a street; never across
    a beat edge): a block with weaker evidence of its own (the same test
    below ``rarely_neighbour_gate``) is flagged too when it is joined to a
    flagged block through neighbours that are all at least that low.  A
    neglected zone is found as a whole, including blocks only partly inside
    it, while a lone low count among normal neighbours still needs the
    block's own evidence.
``empirical_bayes``
    Gamma-Poisson: the beat's blocks give a gamma prior for block rates
    (method of moments around the typical block); a block is flagged when
    its posterior probability of a rate below ``rarely_fraction`` of typical
    exceeds ``rarely_confidence``.

Every rule leaves blocks without a visit alone (they are ``unvisited`` or
``enforcement_only``).  ``bench/flags.py`` measures them on planted neglect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import gammainc, pdtr


def typical_visits(visits: np.ndarray | pd.Series, beats: np.ndarray | pd.Series) -> np.ndarray:
    """The median visit count of each block's beat, aligned to ``visits``."""
    frame = pd.DataFrame({"visits": np.asarray(visits, dtype=float), "beat": np.asarray(beats, dtype=object)})
    return frame.groupby("beat", sort=False)["visits"].transform("median").to_numpy(dtype=float)


def poisson_low(visits: np.ndarray | pd.Series, rate: np.ndarray | pd.Series) -> np.ndarray:
    """``P(X <= visits)`` for ``X`` Poisson with mean ``rate`` (a rate of 0 counts as tiny)."""
    return np.asarray(pdtr(np.asarray(visits, dtype=float), np.clip(np.asarray(rate, dtype=float), 1e-12, None)))


def rarely_by_poisson(
    visits: np.ndarray | pd.Series,
    typical: np.ndarray | pd.Series,
    *,
    fraction: float,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks whose count is improbably low for a block at ``fraction`` of typical.

    Returns
    -------
    flagged : ndarray of bool
        Visited blocks with ``P(X <= visits | fraction x typical) < 1 - confidence``.
    p_value : ndarray of float
        That probability, per block.
    """
    count = np.asarray(visits, dtype=float)
    p_value = poisson_low(count, fraction * np.asarray(typical, dtype=float))
    return (count > 0) & (p_value < 1 - confidence), p_value


def rarely_by_neighbours(
    visits: np.ndarray | pd.Series,
    typical: np.ndarray | pd.Series,
    neighbours: tuple[np.ndarray, np.ndarray],
    *,
    fraction: float,
    confidence: float,
    gate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The Poisson rule, extended to low blocks joined to a flagged one.

    A block the Poisson rule flags is certain enough on its own.  A block
    whose own evidence is weaker (``P(X <= visits | fraction x typical)``
    below ``gate``) is flagged too when it is joined to such a block
    through neighbours of the same beat that are all at least that low: a
    neglected zone is found as a whole, including blocks only partly inside
    it, while a low count among normal neighbours still needs the block's
    own evidence.

    Parameters
    ----------
    visits, typical : array
        Per block.
    neighbours : tuple of two int arrays
        Pairs ``(i, j)`` of positions of neighbouring blocks of one beat (see
        :func:`beatmap.areas.block_neighbours`).
    fraction, confidence : float
        As for :func:`rarely_by_poisson`.
    gate : float
        The weaker evidence a block joined to a flagged one needs (at least
        ``1 - confidence``).

    Returns
    -------
    flagged : ndarray of bool
    p_value : ndarray of float
        The block's own ``P(X <= visits | fraction x typical)``.
    """
    count = np.asarray(visits, dtype=float)
    strict, own_p = rarely_by_poisson(count, typical, fraction=fraction, confidence=confidence)
    low = (count > 0) & (own_p < max(gate, 1 - confidence))
    left, right = (np.asarray(a, dtype=np.int64) for a in neighbours)
    joined = low[left] & low[right]
    graph = coo_matrix((np.ones(int(joined.sum())), (left[joined], right[joined])), shape=(len(count), len(count)))
    _, piece = connected_components(graph, directed=False)
    seeded = np.zeros(int(piece.max(initial=0)) + 1, dtype=bool)
    seeded[piece[strict]] = True
    return strict | (low & seeded[piece]), own_p


def rarely_by_empirical_bayes(
    visits: np.ndarray | pd.Series,
    typical: np.ndarray | pd.Series,
    beats: np.ndarray | pd.Series,
    *,
    fraction: float,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks whose posterior rate is below ``fraction`` of typical with probability over ``confidence``.

    The prior of a beat's block rates is a gamma with the typical block's
    count as its mean and the between-block variance of the beat's counts
    (their variance less the Poisson part, at least 1% of the squared mean).

    Returns
    -------
    flagged : ndarray of bool
    p_value : ndarray of float
        The posterior probability that the rate is at least ``fraction`` of typical.
    """
    count = np.asarray(visits, dtype=float)
    mean = np.clip(np.asarray(typical, dtype=float), 1e-9, None)
    frame = pd.DataFrame({"visits": count, "beat": np.asarray(beats, dtype=object)})
    spread = frame.groupby("beat", sort=False)["visits"].transform("var").fillna(0.0).to_numpy(dtype=float)
    between = np.maximum(spread - mean, 0.01 * mean**2)
    shape, rate = mean**2 / between, mean / between
    below = gammainc(shape + count, (rate + 1) * fraction * mean)
    return (count > 0) & (below > confidence), 1 - below
