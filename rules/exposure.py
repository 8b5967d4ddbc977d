"""Exposure formulas, one per function, each with its source. Pure numpy, no state.

The engine integrates held readings (sample-and-hold, SPEC §3); these functions turn the
integrals into the figures regulations define, and serve the tests as the published formulas.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

#: Reference duration of TWA8, LEX,8h and dose: 8 h (29 CFR 1910.1000(d); ISO 1999 T0 = 8 h).
EIGHT_HOURS_S = 28_800.0
#: STEL averaging period: 15 min (Directive 98/24/EC Annex I; 29 CFR 1910.1000 ceiling note).
STEL_WINDOW_S = 900.0
#: Reference sound pressure for dB SPL and dB(C) peak: 20 µPa (ISO 1999; 2003/10/EC Art. 3).
P0_PA = 20e-6

A = TypeVar("A", float, npt.NDArray[np.float64])


def twa8(integral_c_s: A) -> A:
    """8-h TWA: E = (1/8 h) ∫ C dt = (Ca·Ta + ... + Cn·Tn)/8 (29 CFR 1910.1000(d)(1)(i))."""
    return integral_c_s / EIGHT_HOURS_S


def shift_average(integral_c_s: A, shift_length_s: A) -> A:
    """Average over the shift: (Ca·Ta + ... + Cn·Tn) / shift length.

    30 CFR 70.100(a) / 90.100: "the average concentration of respirable dust ... during each
    shift"; for an 8-h shift it equals the 8-h TWA, for a 10-h shift it is 8/10 of it.
    """
    return integral_c_s / shift_length_s


def energy(level_db: A) -> A:
    """Relative sound energy 10^(L/10) (ISO 1999; equal-energy rule, 3-dB exchange)."""
    return np.power(10.0, np.asarray(level_db) / 10.0)  # type: ignore[return-value]


def lex8h(integral_energy_s: A) -> A:
    """Daily noise exposure LEX,8h = 10·log10((1/T0) ∫ 10^(L/10) dt), T0 = 8 h.

    Source: Directive 2003/10/EC Art. 2(b) → ISO 1999:1990 3.6; ISO 9612:2009
    (LEX,8h = LAeq,Te + 10·lg(Te/T0)). Returns -inf for zero energy.
    """
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(integral_energy_s) / EIGHT_HOURS_S)  # type: ignore[return-value]


def dose_weight(level_db: A, criterion_db: float, exchange_db: float, threshold_db: float) -> A:
    """Dose rate per hour relative to 8 h: 1/T(L) · 8 h = 2^((L − criterion)/exchange), 0 below threshold.

    T(L) = 8/2^((L − 90)/5) h: OSHA 1910.95 Table G-16a footnote, MSHA 30 CFR 62 Table 62-1;
    NIOSH 98-126: T(L) = 8/2^((L − 85)/3) h. Levels below `threshold_db` are not integrated
    (MSHA 62.101: the action level integrates 80 dBA and above).
    """
    level = np.asarray(level_db, dtype=np.float64)
    w = np.exp2((level - criterion_db) / exchange_db)
    return np.where(level >= threshold_db, w, 0.0)  # type: ignore[return-value]


def dose_pct(integral_weight_s: A) -> A:
    """Noise dose D = 100·Σ Cn/Tn = 100/(8 h) ∫ 2^((L − criterion)/exchange) dt (1910.95 App. A)."""
    return 100.0 * integral_weight_s / EIGHT_HOURS_S


def allowed_hours(level_db: A, criterion_db: float = 90.0, exchange_db: float = 5.0) -> A:
    """Reference duration T = 8/2^((L − criterion)/exchange) h (Table G-16a / Table 62-1)."""
    return 8.0 / np.exp2((np.asarray(level_db) - criterion_db) / exchange_db)  # type: ignore[return-value]


def twa_from_dose(dose: A, criterion_db: float = 90.0, exchange_db: float = 5.0) -> A:
    """Equivalent 8-h level of a dose: TWA = q·log2(D/100) + criterion.

    With q = 5: TWA = 16.61·log10(D/100) + 90 (1910.95 App. A; MSHA Table 62-2);
    with q = 3, criterion 85: TWA = 10·log10(D/100) + 85 (NIOSH 98-126).
    """
    with np.errstate(divide="ignore"):
        return exchange_db * np.log2(np.asarray(dose) / 100.0) + criterion_db  # type: ignore[return-value]


def peak_db(pressure_pa: A) -> A:
    """Peak sound pressure level Lpeak = 20·log10(p/20 µPa) (2003/10/EC Art. 3 footnote)."""
    return 20.0 * np.log10(np.asarray(pressure_pa) / P0_PA)  # type: ignore[return-value]


def mixture_index(concentrations: npt.NDArray[np.float64], limits: npt.NDArray[np.float64]) -> float:
    """Em = C1/L1 + C2/L2 + … + Cn/Ln; the mixture limit is exceeded above 1 (1910.1000(d)(2)(i))."""
    return float(np.sum(np.asarray(concentrations) / np.asarray(limits)))
