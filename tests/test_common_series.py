"""scikit-learn's estimator checks on the series detectors too (small windows, one epoch), with each expected
failure written down: those the tabular detectors share (tests/test_common.py), and those that follow from
a series being one ordered sequence of steps rather than a set of rows."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from anomalia.detectors import detector_names, get_detector
from test_common import EXPECTED_FAILURES

SERIES = [n for n in detector_names() if get_detector(n).input_kind == "series"]

SERIES_FAILURES = {
    **EXPECTED_FAILURES,
    "check_methods_subset_invariance": "a step's score comes from the window that ends at it, so scoring a "
    "subset of the steps (other neighbours) gives other scores, by design",
    "check_methods_sample_order_invariance": "a series is ordered: shuffling its steps changes every window",
    "check_fit1d": "1-D input is a series of one channel (n_steps,), accepted on purpose",
    "check_estimator_sparse_tag": "a sparse matrix is refused by the series checks, but with our own message "
    "(not scikit-learn's wording about sparse input)",
    "check_estimator_sparse_array": "as check_estimator_sparse_tag",
    "check_estimator_sparse_matrix": "as check_estimator_sparse_tag",
}


def _expected(estimator: object) -> dict[str, str]:
    return SERIES_FAILURES


@pytest.mark.filterwarnings("ignore")
@parametrize_with_checks(
    [  # windows as small as scikit-learn's 10-row check data allows (forecasters read one step more)
        get_detector(n)(**{**get_detector(n).test_params, "window": 4 - 2 * get_detector(n).target_steps,
                           "epochs": 1, "random_state": 0})
        for n in SERIES
    ],
    expected_failed_checks=_expected,
    xfail_strict=True,
)
def test_sklearn_checks_on_series_detectors(estimator: object, check: object) -> None:
    check(estimator)
