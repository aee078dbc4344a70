"""An IIR synapse filter as a sum of first-order sections, and back (the form NIR can write).

With w = z^-1 the filter of eq. 5d is H(w) = B(w) / A(w), B(w) = sum_q beta[q] w^q and
A(w) = 1 - sum_p alpha[p-1] w^p. When A has P distinct real poles p_i (A(w) = prod_i (1 - p_i w)),

    H(w) = sum_i c_i / (1 - p_i w) + sum_q d_q w^q,

so F = sum_i c_i x_i + sum_q d_q O[t - q] with x_i[t] = p_i x_i[t-1] + O[t]: one leaky integrator
per pole (gain c_i), plus direct and delayed paths (the quotient D of B by A, present when Q >= P).
The dual exponential with lag 1 is x_a - x_b: c = (1, -1) and no direct path.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

IMAG_TOLERANCE = 1e-9  # |Im p| / max(1, |p|) below this counts as a real pole
DISTINCT_TOLERANCE = 1e-3  # poles closer than this count as repeated (their section gains ~ 1 / gap cancel)


class Sections(NamedTuple):
    """poles [P] and gains [P] of the first-order sections, and the direct path d [K] (d[q] weights O[t-q])."""

    poles: np.ndarray
    gains: np.ndarray
    direct: np.ndarray


class NoSectionsError(ValueError):
    """The filter has no sum-of-first-order-sections form (complex, repeated or zero poles)."""


def to_sections(alpha: np.ndarray, beta: np.ndarray) -> Sections:
    """Partial fractions of one filter: alpha [P], beta [Q+1] (float64) -> :class:`Sections`.

    Raises :class:`NoSectionsError` naming the poles when some are complex, repeated or zero.
    """
    alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    P = alpha.shape[0]
    denominator = np.concatenate([[1.0], -alpha])  # A in ascending powers of w
    if P == 0:
        return Sections(np.zeros(0), np.zeros(0), beta.copy())
    if alpha[-1] == 0:
        raise NoSectionsError(f"alpha {alpha.tolist()} has a pole at 0 (its last coefficient is 0): drop the "
                              "trailing zero to lower the order")
    roots = np.roots(np.concatenate([[1.0], -alpha]))  # z^P - alpha_1 z^(P-1) - ... - alpha_P
    if np.any(np.abs(roots.imag) > IMAG_TOLERANCE * np.maximum(1.0, np.abs(roots))):
        raise NoSectionsError(f"alpha {alpha.tolist()} has complex poles {np.round(roots, 6).tolist()}: a sum of "
                              "first-order sections (NIR LI nodes) cannot write them")
    poles = np.sort(roots.real)[::-1].copy()
    gaps = np.abs(np.diff(poles))
    if np.any(gaps <= DISTINCT_TOLERANCE * np.maximum(1.0, np.abs(poles[1:]))):
        raise NoSectionsError(f"alpha {alpha.tolist()} has repeated poles {poles.tolist()}: their sections are not "
                              "first order (the alpha kernel is one); NIR has no exact form for them")
    # B = D A + R with deg R < P (numpy's polynomials run from the highest power down)
    if beta.shape[0] > P:
        quotient, remainder = np.polydiv(beta[::-1], denominator[::-1])
        direct, remainder = quotient[::-1], remainder[::-1]
    else:
        direct, remainder = np.zeros(0), beta
    remainder = np.concatenate([remainder, np.zeros(P - remainder.shape[0])])
    gains = np.empty(P)
    for i, p in enumerate(poles):
        others = np.delete(poles, i)
        w = 1.0 / p
        gains[i] = np.polyval(remainder[::-1], w) / np.prod(1.0 - others * w)
    return Sections(poles, gains, direct)


def from_sections(sections: Sections) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`to_sections`: -> (alpha [P], beta [max(P, P + K)]) in float64."""
    poles, gains, direct = (np.asarray(a, dtype=np.float64) for a in sections)
    denominator = np.array([1.0])
    for p in poles:
        denominator = np.convolve(denominator, [1.0, -p])
    numerator = np.zeros(max(poles.shape[0], poles.shape[0] + direct.shape[0]))
    for i, c in enumerate(gains):
        part = np.array([c])
        for p in np.delete(poles, i):
            part = np.convolve(part, [1.0, -p])
        numerator[: part.shape[0]] += part
    if direct.shape[0]:
        product = np.convolve(direct, denominator)
        numerator[: product.shape[0]] += product
    return -denominator[1:], numerator
