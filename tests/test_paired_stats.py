"""Paired statistics against scipy (an independent implementation) and known cases."""
import numpy as np
import pytest

from tfrestore.metrics.paired import bootstrap_ci, paired_summary, wilcoxon_signed_rank


@pytest.mark.parametrize("n", [5, 12, 20, 30, 60])
def test_wilcoxon_matches_scipy(n):
    st = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n)
    a = rng.normal(size=n)
    b = a + rng.normal(0.3, 1.0, n)          # continuous: no ties
    ours = wilcoxon_signed_rank(a, b)[1]
    ref = st.wilcoxon(a, b, method="exact" if n <= 20 else "approx", correction=False).pvalue
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_wilcoxon_known_cases():
    # Every difference positive, n = 6: p = 2 / 2^6 exactly.
    assert wilcoxon_signed_rank(np.arange(1, 7) + 1.0, np.zeros(6))[1] == pytest.approx(2 / 64)
    assert wilcoxon_signed_rank([1, 2, 3], [1, 2, 3])[1] == 1.0


def test_bootstrap_and_summary():
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 1.0, 400)
    lo, hi = bootstrap_ci(d)
    assert lo < d.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.15)
    s = paired_summary([0.5, 0.6, 0.7], [0.4, 0.6, 0.8])
    assert (s["wins"], s["ties"], s["losses"]) == (1, 1, 1)
    s = paired_summary([1.0, 2.0], [2.0, 3.0], higher_is_better=False)
    assert s["wins"] == 2
