"""Independent references shared by several test files."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def pinv_solution(A, b: np.ndarray) -> np.ndarray:
    """The minimum-norm least-squares solution ``pinv(A) b`` of a singular A, with the cutoff
    set where A's singular values have their gap.

    (why) ``np.linalg.pinv``'s default cutoff, ``1e-15 sigma_max``, is below the rounding of a
    zero singular value (a few eps sigma_max), so whether pinv drops it depends on the LAPACK:
    for a 6 x 5 all-Neumann matrix it comes out at 1e-17 sigma_max here, on an H100 machine
    (numpy 2.5.2) it was kept, and pinv(A) b was 1.5e14 for b = 3 ones (where 0 is exact) and
    1e12-4e13 in other singular tests. The matrices of the tests have their zero singular values
    below 1e-12 sigma_max and the others above 1e-3 sigma_max (asserted), so 1e-8 is a cutoff
    with room on both sides."""
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    s = np.linalg.svd(A, compute_uv=False)
    assert ((s < 1e-12 * s[0]) | (s > 1e-3 * s[0])).all(), s / s[0]
    return np.linalg.pinv(A, rcond=1e-8) @ b
