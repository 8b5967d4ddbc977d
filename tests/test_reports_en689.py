"""EN 689:2018 tests: k table (anchors.md §C1), preliminary cases, a worked UTL example."""

from __future__ import annotations

import itertools
import math

import pytest

from reports.en689 import (
    Method,
    Verdict,
    assess,
    k_factor,
    preliminary_verdict,
    reassessment_months,
    utl95_70,
)

#: U_T = k(n) from /work/shared/reference/anchors.md §C1 (three decimals).
ANCHOR_K = {
    6: 2.187, 7: 2.120, 8: 2.072, 9: 2.035, 10: 2.005, 11: 1.981, 12: 1.961, 13: 1.944,
    14: 1.929, 15: 1.917, 16: 1.905, 17: 1.895, 18: 1.886, 19: 1.878, 20: 1.870, 25: 1.841,
    30: 1.820,
}  # fmt: skip


@pytest.mark.parametrize("n", [6, 10, 20])
def test_k_factor_matches_anchor_table_at_required_points(n: int) -> None:
    assert k_factor(n) == pytest.approx(ANCHOR_K[n], abs=5e-4)


@pytest.mark.parametrize("n", sorted(ANCHOR_K))
def test_k_factor_matches_whole_anchor_table(n: int) -> None:
    assert round(k_factor(n), 3) == ANCHOR_K[n]


def test_k_factor_decreases_towards_the_normal_quantile() -> None:
    ks = [k_factor(n) for n in range(6, 200)]
    assert all(a > b for a, b in itertools.pairwise(ks))
    assert ks[-1] > 1.6449  # z_0.95: the limit as n → ∞


def test_k_factor_refuses_a_single_result() -> None:
    with pytest.raises(ValueError, match="n >= 2"):
        k_factor(1)


@pytest.mark.parametrize(
    ("values", "oelv", "verdict"),
    [
        # n = 3: all < 0.10 × OELV → compliant
        ([1.0, 1.5, 1.99], 20.0, Verdict.COMPLIANT),
        # n = 3: one value at 0.10 × OELV exactly is not "below" → no decision
        ([1.0, 1.5, 2.0], 20.0, Verdict.NO_DECISION),
        # n = 4: all < 0.15 × OELV (3 ppm) → compliant, although one is above 0.10 × OELV
        ([1.0, 2.5, 2.9, 0.5], 20.0, Verdict.COMPLIANT),
        # n = 5: all < 0.20 × OELV (4 ppm) → compliant
        ([3.9, 3.0, 1.0, 2.0, 0.1], 20.0, Verdict.COMPLIANT),
        # n = 5: one at 4.1 ppm → neither → no decision
        ([4.1, 3.0, 1.0, 2.0, 0.1], 20.0, Verdict.NO_DECISION),
        # any result above the OELV → non-compliant (n = 3, 4, 5)
        ([1.0, 1.0, 20.1], 20.0, Verdict.NON_COMPLIANT),
        ([1.0, 1.0, 1.0, 25.0], 20.0, Verdict.NON_COMPLIANT),
        ([0.1, 0.1, 0.1, 0.1, 21.0], 20.0, Verdict.NON_COMPLIANT),
        # a result equal to the OELV is not "above" → no decision
        ([1.0, 1.0, 20.0], 20.0, Verdict.NO_DECISION),
    ],
)
def test_preliminary_cases(values: list[float], oelv: float, verdict: Verdict) -> None:
    assert preliminary_verdict(values, oelv) is verdict
    result = assess(values, oelv)
    assert result.method is Method.PRELIMINARY
    assert result.verdict is verdict
    assert result.utl is None


def test_preliminary_takes_only_three_to_five() -> None:
    for n in (2, 6):
        with pytest.raises(ValueError, match="3 to 5"):
            preliminary_verdict([1.0] * n, 10.0)


def test_fewer_than_three_results_is_insufficient() -> None:
    result = assess([1.0, 2.0], 20.0)
    assert result.verdict is Verdict.INSUFFICIENT
    assert result.method is Method.NONE
    assert result.reassess_months is None


def test_worked_utl_example() -> None:
    """Six shift TWAs chosen so that ln(x/2 ppm) = 0, 1, −1, 0.5, −0.5, 0.

    ȳ = ln 2 = 0.693147; s² = (0 + 1 + 1 + 0.25 + 0.25 + 0)/5 = 0.5, s = 0.707107;
    k(6) = 2.187 (anchors.md §C1); UTL95,70 = exp(0.693147 + 2.187 × 0.707107) = 2 × e^1.546442
    = 9.389 ppm. GM = 2 ppm, GSD = e^0.707107 = 2.028.
    Against an OELV of 20 ppm: UTL < OELV → compliant; GM/OELV = 0.10 → 24-month reassessment.
    Against 9 ppm: UTL >= OELV → non-compliant.
    """
    values = [2.0 * math.exp(z) for z in (0.0, 1.0, -1.0, 0.5, -0.5, 0.0)]
    assert utl95_70(values) == pytest.approx(9.389, abs=0.005)
    ok = assess(values, 20.0)
    assert ok.method is Method.STATISTICAL
    assert ok.n == 6
    assert ok.k == pytest.approx(2.187, abs=5e-4)
    assert ok.utl == pytest.approx(9.389, abs=0.005)
    assert ok.gm == pytest.approx(2.0)
    assert ok.gsd == pytest.approx(2.028, abs=5e-4)
    assert ok.verdict is Verdict.COMPLIANT
    assert ok.reassess_months == 24
    bad = assess(values, 9.0)
    assert bad.verdict is Verdict.NON_COMPLIANT
    assert bad.reassess_months == 0


def test_statistical_test_can_fail_without_any_single_result_above_the_oelv() -> None:
    values = [1.0, 2.0, 4.0, 8.0, 3.0, 9.5]  # all below 10, wide spread
    result = assess(values, 10.0)
    assert max(values) < 10.0
    assert result.utl is not None and result.utl >= 10.0
    assert result.verdict is Verdict.NON_COMPLIANT


def test_exceedance_estimate_is_lognormal_tail() -> None:
    values = [2.0 * math.exp(z) for z in (0.0, 1.0, -1.0, 0.5, -0.5, 0.0)]
    result = assess(values, 2.0)  # OELV = GM → half of the shifts above
    assert result.exceedance_pct == pytest.approx(50.0)


def test_non_detects_count_as_half_the_loq() -> None:
    """EN 689 Annex H substitution: a result below the LOQ is LOQ/2 (not half the smallest result)."""
    with_zero = assess([0.0, 1.0, 2.0, 1.5, 1.2, 0.8], 20.0, loq=0.6)
    substituted = assess([0.3, 1.0, 2.0, 1.5, 1.2, 0.8], 20.0)
    assert with_zero.utl == pytest.approx(substituted.utl)
    assert (with_zero.censored, with_zero.loq) == (1, 0.6)
    below = assess([0.5, 1.0, 2.0, 1.5, 1.2, 0.8], 20.0, loq=0.6)  # 0.5 < LOQ is a non-detect too
    assert below.utl == pytest.approx(substituted.utl)
    nothing = assess([0.0] * 6, 20.0, loq=1.0)
    assert (nothing.verdict, nothing.censored, nothing.gm) == (Verdict.COMPLIANT, 6, pytest.approx(0.5))


def test_non_detects_without_an_loq_get_no_verdict() -> None:
    """The old code replaced 0 by half the smallest positive result; without an LOQ there is no
    honest value for "nothing detected", so the group gets no decision and says why."""
    result = assess([0.0, 1.0, 2.0, 1.5, 1.2, 0.8], 20.0)
    assert (result.verdict, result.reason, result.utl) == (Verdict.NO_DECISION, "no_loq", None)
    with pytest.raises(ValueError, match="LOQ"):
        assess([1.0, 2.0, 3.0], 20.0, loq=0.0)


@pytest.mark.parametrize(
    ("gm", "months"), [(0.5, 36), (1.99, 36), (2.0, 24), (4.9, 24), (5.0, 18), (9.9, 18), (10.0, 12)]
)
def test_reassessment_bands(gm: float, months: int) -> None:
    assert reassessment_months(gm, 20.0) == months


def test_non_positive_oelv_is_refused() -> None:
    with pytest.raises(ValueError, match="OELV"):
        assess([1.0, 2.0, 3.0], 0.0)
