"""The rarely_visited rules on small hand-made beats: busy, quiet, and a low patch among neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beatmap.flags import (
    poisson_low,
    rarely_by_empirical_bayes,
    rarely_by_neighbours,
    rarely_by_poisson,
    typical_visits,
)

FRACTION, CONFIDENCE, GATE = 0.75, 0.99, 0.1


def exact_poisson_low(k: int, rate: float) -> float:
    return sum(math.exp(-rate) * rate**i / math.factorial(i) for i in range(k + 1))


def line_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocks 0..n-1 in a row, each the neighbour of the next."""
    return np.arange(n - 1), np.arange(1, n)


@pytest.mark.parametrize(("k", "rate"), [(0, 3.0), (5, 2.5), (17, 30.0), (40, 30.0)])
def test_poisson_low_is_the_poisson_distribution_function(k, rate):
    assert poisson_low(np.array([k]), np.array([rate]))[0] == pytest.approx(exact_poisson_low(k, rate), rel=1e-9)


def test_typical_is_the_median_of_each_beat():
    typical = typical_visits(np.array([1, 5, 9, 100, 2, 4]), np.array(["a", "a", "a", "b", "b", "b"]))
    assert typical.tolist() == [5, 5, 5, 4, 4, 4]


def test_busy_beat_flags_exactly_the_counts_too_low_for_three_quarters_of_typical():
    visits = np.array([40] * 60 + list(range(1, 40)))
    beats = np.array(["B"] * len(visits))
    typical = typical_visits(visits, beats)
    flagged, p = rarely_by_poisson(visits, typical, fraction=FRACTION, confidence=CONFIDENCE)
    expected = [exact_poisson_low(int(v), FRACTION * t) < 1 - CONFIDENCE for v, t in zip(visits, typical, strict=True)]
    assert flagged.tolist() == expected
    assert flagged[visits == 10].all() and not flagged[visits == 30].any()
    assert p[visits == 10][0] == pytest.approx(exact_poisson_low(10, FRACTION * typical[0]), rel=1e-9)


def test_quiet_beat_has_no_flag_from_any_rule():
    visits = np.array([4, 3, 5, 4, 1, 2, 6, 3, 5, 1])
    beats = np.array(["quiet"] * len(visits))
    typical = typical_visits(visits, beats)
    assert not rarely_by_poisson(visits, typical, fraction=FRACTION, confidence=CONFIDENCE)[0].any()
    assert not rarely_by_neighbours(
        visits, typical, line_pairs(len(visits)), fraction=FRACTION, confidence=CONFIDENCE, gate=GATE
    )[0].any()
    assert not rarely_by_empirical_bayes(visits, typical, beats, fraction=FRACTION, confidence=CONFIDENCE)[0].any()


def test_blocks_without_visits_are_never_rarely_visited():
    visits = np.array([0, 30, 30, 30, 30])
    typical = typical_visits(visits, np.array(["B"] * 5))
    assert not rarely_by_poisson(visits, typical, fraction=FRACTION, confidence=CONFIDENCE)[0][0]
    assert not rarely_by_neighbours(
        visits, typical, line_pairs(5), fraction=FRACTION, confidence=CONFIDENCE, gate=GATE
    )[0][0]


def test_a_low_block_joined_to_a_flagged_one_is_flagged_and_a_lone_one_is_not():
    # Typical 40: 8 visits is flagged by the test alone; 21 (p about 0.05) is not, on its own.
    visits = np.array([40, 40, 8, 21, 40, 40, 40, 21, 40, 40, 40, 40])
    beats = np.array(["B"] * len(visits))
    typical = typical_visits(visits, beats)
    alone = rarely_by_poisson(visits, typical, fraction=FRACTION, confidence=CONFIDENCE)[0]
    assert np.flatnonzero(alone).tolist() == [2]
    flagged, p = rarely_by_neighbours(
        visits, typical, line_pairs(len(visits)), fraction=FRACTION, confidence=CONFIDENCE, gate=GATE
    )
    assert np.flatnonzero(flagged).tolist() == [2, 3]  # block 7 has the same count but normal neighbours
    assert p[3] == pytest.approx(p[7])


def test_joining_needs_every_block_on_the_way_to_be_low():
    # 3 is low but reaches the flagged block 0 only through block 1, which is normal.
    visits = np.array([8, 40, 40, 21, 40, 40, 40])
    typical = typical_visits(visits, np.array(["B"] * len(visits)))
    pairs = (np.array([0, 1, 2, 3, 4, 5]), np.array([1, 3, 3, 4, 5, 6]))
    flagged = rarely_by_neighbours(visits, typical, pairs, fraction=FRACTION, confidence=CONFIDENCE, gate=GATE)[0]
    assert np.flatnonzero(flagged).tolist() == [0]


def test_a_looser_gate_joins_more():
    visits = np.array([40, 8, 23, 40, 40, 40, 40])
    typical = typical_visits(visits, np.array(["B"] * len(visits)))
    pairs = line_pairs(len(visits))
    strict = rarely_by_neighbours(visits, typical, pairs, fraction=FRACTION, confidence=CONFIDENCE, gate=0.1)[0]
    loose = rarely_by_neighbours(visits, typical, pairs, fraction=FRACTION, confidence=CONFIDENCE, gate=0.2)[0]
    assert np.flatnonzero(strict).tolist() == [1] and np.flatnonzero(loose).tolist() == [1, 2]


def test_empirical_bayes_flags_the_clearly_low_block_of_a_busy_beat():
    visits = np.array([38, 42, 40, 36, 44, 41, 39, 6, 27])
    beats = np.array(["B"] * len(visits))
    flagged, p = rarely_by_empirical_bayes(
        visits, typical_visits(visits, beats), beats, fraction=FRACTION, confidence=CONFIDENCE
    )
    assert np.flatnonzero(flagged).tolist() == [7]
    assert p[7] < 1 - CONFIDENCE < p[8]
