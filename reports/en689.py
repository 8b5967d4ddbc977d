"""EN 689:2018 compliance tests on the shift TWAs of one similar-exposure group (SEG).

Source: EN 689:2018 "Workplace exposure — Measurement of exposure by inhalation to chemical
agents — Strategy for testing compliance with occupational exposure limit values", the
preliminary test (3 to 5 results) and the statistical test (>= 6 results, lognormal model,
UTL95,70), as implemented in OHcomplianceStrategies `phaseOne_EN6892018.R` /
`phaseTwo_EN6892018.R` (see /work/shared/reference/anchors.md §C1, [EN1][EN2][EN4][EN6]).

* Preliminary test, n = 3 / 4 / 5: compliance if **all** results < 0.10 / 0.15 / 0.20 × OELV;
  non-compliance if **any** result > OELV; otherwise no decision (take >= 6 results).
* Statistical test, n >= 6: UTL95,70 = exp(ȳ + k·s), ȳ and s the mean and sample standard
  deviation of ln(x); k = t'_0.70(n−1, δ = z_0.95·√n) / √n (noncentral t quantile).
  UTL < OELV → compliance; UTL >= OELV → non-compliance.
* Non-detects: a result below the limit of quantification (LOQ) of its hazard is a censored
  value and counts as LOQ/2 (EN 689:2018 Annex H's simple substitution, the minimum it accepts;
  a censored-data method such as ROS is not used because it has not been validated here against
  a published example). A result of 0 with no LOQ configured cannot be judged: the verdict is
  "no decision" until an LOQ is set.
* Reassessment interval (EN 689:2018 §5.6, cut-offs on GM/OELV as summarised in anchors.md §C1,
  marked there "verify against the standard's text"): GM < 0.1 OELV → 36 months,
  < 0.25 → 24, < 0.5 → 18, otherwise 12.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
from scipy.stats import nct, norm

#: EN 689:2018 preliminary test: fraction of the OELV all results must stay below, by n.
PRELIMINARY_FRACTION: dict[int, float] = {3: 0.10, 4: 0.15, 5: 0.20}
#: Fewest results for any test, and for the statistical test (EN 689:2018, 5.5.2 / 5.5.3).
MIN_RESULTS = 3
MIN_STATISTICAL = 6
#: UTL95,70: 95 % of exposures (coverage) with 70 % confidence.
COVERAGE = 0.95
CONFIDENCE = 0.70
#: Reassessment interval in months by GM / OELV (upper bound of the band, months).
REASSESS_BANDS: tuple[tuple[float, int], ...] = ((0.1, 36), (0.25, 24), (0.5, 18), (math.inf, 12))


class Verdict(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    NO_DECISION = "no_decision"  # preliminary test inconclusive (take >= 6 results), or non-detects without an LOQ
    INSUFFICIENT = "insufficient"  # fewer than 3 valid results


class Method(StrEnum):
    PRELIMINARY = "preliminary"
    STATISTICAL = "statistical"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class En689Result:
    """Outcome of EN 689 for one SEG; concentrations in the unit of `oelv`."""

    n: int
    oelv: float
    method: Method
    verdict: Verdict
    gm: float | None  # geometric mean
    gsd: float | None  # geometric standard deviation
    k: float | None  # tolerance factor used (statistical test)
    utl: float | None  # UTL95,70 (statistical test)
    screen_limit: float | None  # fraction × OELV (preliminary test)
    exceedance_pct: float | None  # lognormal estimate of the share of shifts above the OELV, %
    reassess_months: int | None  # when compliant: next reassessment; non-compliant: 0 (act now)
    censored: int = 0  # results below the LOQ, counted as LOQ/2
    loq: float | None = None  # limit of quantification used (unit of `oelv`)
    reason: str = ""  # "no_loq" when non-detects could not be judged

    def as_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__slots__}


@lru_cache(maxsize=512)
def k_factor(n: int) -> float:
    """k(n) = t'_0.70(n−1, z_0.95·√n) / √n: one-sided tolerance factor of UTL95,70 (EN 689 Annex F)."""
    if n < 2:
        raise ValueError(f"k factor needs n >= 2 results, got {n}")
    delta = float(norm.ppf(COVERAGE)) * math.sqrt(n)
    return float(nct.ppf(CONFIDENCE, n - 1, delta)) / math.sqrt(n)


def reassessment_months(gm: float, oelv: float) -> int:
    """Months to the next periodic reassessment from GM/OELV (bands in the module docstring)."""
    ratio = gm / oelv
    return next(months for upper, months in REASSESS_BANDS if ratio < upper)


def censor(values: Sequence[float], loq: float | None) -> tuple[np.ndarray, int]:
    """Results with non-detects (< LOQ) replaced by LOQ/2 (EN 689:2018 Annex H); and their count.

    Without an LOQ, results <= 0 stay as they are (the caller must not take their logarithm).
    """
    x = np.asarray(values, dtype=np.float64)
    if loq is None:
        return x, 0
    low = x < loq
    return np.where(low, loq / 2.0, x), int(np.count_nonzero(low))


def _log_moments(x: np.ndarray) -> tuple[float, float]:
    """(ȳ, s) of ln x; (−inf, 0) when nothing was detected at all."""
    if not np.any(x > 0):
        return -math.inf, 0.0
    y = np.log(x)
    return float(y.mean()), float(y.std(ddof=1)) if y.size > 1 else 0.0


def _exceedance_pct(ybar: float, s: float, oelv: float) -> float:
    """P(X > OELV) for X ~ LN(ȳ, s), in percent."""
    if s == 0.0:
        return 100.0 if math.exp(ybar) > oelv else 0.0
    return float(norm.sf((math.log(oelv) - ybar) / s)) * 100.0


def preliminary_verdict(values: Sequence[float], oelv: float) -> Verdict:
    """EN 689 preliminary test for 3 to 5 results (table in the module docstring)."""
    n = len(values)
    if n not in PRELIMINARY_FRACTION:
        raise ValueError(f"the preliminary test takes 3 to 5 results, got {n}")
    if all(v < PRELIMINARY_FRACTION[n] * oelv for v in values):
        return Verdict.COMPLIANT
    if any(v > oelv for v in values):
        return Verdict.NON_COMPLIANT
    return Verdict.NO_DECISION


def utl95_70(values: Sequence[float], loq: float | None = None) -> float:
    """UTL95,70 = exp(ȳ + k(n)·s) of the results (n >= 2), non-detects as LOQ/2."""
    ybar, s = _log_moments(censor(values, loq)[0])
    return math.exp(ybar + k_factor(len(values)) * s) if math.isfinite(ybar) else 0.0


def assess(values: Sequence[float], oelv: float, loq: float | None = None) -> En689Result:
    """Run the EN 689 test that fits the number of results and return the verdict with figures.

    `loq`: limit of quantification of the hazard (unit of `oelv`); results below it count as LOQ/2.
    """
    if not oelv > 0:
        raise ValueError(f"OELV must be positive, got {oelv}")
    if loq is not None and not loq > 0:
        raise ValueError(f"LOQ must be positive, got {loq}")
    n = len(values)
    x, censored = censor(values, loq)
    if n and np.any(x <= 0):  # nothing detected and no LOQ to say how little: no statistics
        return En689Result(n, oelv, Method.NONE, Verdict.NO_DECISION, None, None, None, None, None, None, None,
                           0, loq, "no_loq")  # fmt: skip
    ybar, s = _log_moments(x) if n else (-math.inf, 0.0)
    gm = math.exp(ybar) if n else None
    gsd = math.exp(s) if n else None
    exceed = _exceedance_pct(ybar, s, oelv) if n else None
    k = utl = screen = None
    if n < MIN_RESULTS:
        method, verdict = Method.NONE, Verdict.INSUFFICIENT
    elif n < MIN_STATISTICAL:
        method, screen = Method.PRELIMINARY, PRELIMINARY_FRACTION[n] * oelv
        verdict = preliminary_verdict([float(v) for v in x], oelv)
    else:
        method, k = Method.STATISTICAL, k_factor(n)
        utl = math.exp(ybar + k * s)
        verdict = Verdict.COMPLIANT if utl < oelv else Verdict.NON_COMPLIANT
    months = None
    if verdict is Verdict.COMPLIANT and gm is not None:
        months = reassessment_months(gm, oelv)
    elif verdict is Verdict.NON_COMPLIANT:
        months = 0
    return En689Result(n, oelv, method, verdict, gm, gsd, k, utl, screen, exceed, months, censored, loq)
