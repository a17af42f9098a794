"""Speed and agreement of the resampled performance metrics against one reference call per resample.

    python benchmarks/bootstrap_metrics.py                  # 300, 800 and 3,000 patients
    python benchmarks/bootstrap_metrics.py 800 --resamples 500

For each cohort size, 500 patient-bootstrap resamples of one survival prediction (Harrell's C and
the time-dependent AUC at 365 days) and of one binary prediction (AUC, Brier score, calibration
intercept and slope) are scored twice: by stratomics (all resamples at once, as patient weights)
and by a loop calling lifelines' ``concordance_index``, scikit-survival's
``cumulative_dynamic_auc``, scikit-learn's ``roc_auc_score`` / ``brier_score_loss`` and stratomics' one-model
Newton logistic fit on each resample, as stratomics did before. Prints times and the largest difference.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import special

from stratomics.associate.predictor import logistic_fit
from stratomics.prediction_metrics import binary_metrics, bootstrap_counts, survival_metrics


def simulated(n: int, seed: int = 0):
    """A survival outcome with ties and censoring, a binary outcome, and a risk score for each."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    time = np.ceil(rng.exponential(500 * np.exp(-0.7 * risk)))
    censoring = rng.uniform(100, 1200, n)
    event, time = time <= censoring, np.minimum(time, np.ceil(censoring))
    y = (rng.random(n) < special.expit(risk - 0.5)).astype(int)
    return time, event, risk, y, special.expit(0.8 * risk - 0.4)


def reference_loop(data, indices) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics of each resample with one call of the reference libraries per resample."""
    from lifelines.utils import concordance_index
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    time, event, risk, y, p = data
    survival, binary = [], []
    for patients in indices:
        t, e, r = time[patients], event[patients], risk[patients]
        outcome = Surv.from_arrays(e, t)
        survival.append({"c_index": concordance_index(t, -r, e),
                         "auc_365d": cumulative_dynamic_auc(outcome, outcome, r, [365])[0][0]})  # fmt: skip
        yy, pp = y[patients], p[patients]
        log_odds = np.log(pp / (1 - pp))
        ones = np.ones((len(yy), 1))
        binary.append({"auc": roc_auc_score(yy, pp), "brier": brier_score_loss(yy, pp),
                       "calibration_intercept": logistic_fit(yy, ones, offset=log_odds)[0],
                       "calibration_slope": logistic_fit(yy, np.column_stack([ones, log_odds]))[1]})  # fmt: skip
    return pd.DataFrame(survival), pd.DataFrame(binary)


def resampled(data, weights) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same metrics from stratomics, all resamples at once."""
    time, event, risk, y, p = data
    return survival_metrics(time, event, risk, horizons=[365], weights=weights), binary_metrics(y, p, weights)


def compare(n: int, n_resamples: int) -> dict:
    data = simulated(n)
    weights = bootstrap_counts(n, n_bootstrap=n_resamples, seed=1)
    rng = np.random.default_rng(1)
    indices = [rng.integers(0, n, n) for _ in range(n_resamples)]
    start = time.perf_counter()
    ours = resampled(data, weights)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = reference_loop(data, indices)
    reference_s = time.perf_counter() - start
    difference = max(np.nanmax(np.abs(a.to_numpy() - b[a.columns].to_numpy())) for a, b in zip(reference, ours))
    return {"patients": n, "resamples": n_resamples, "reference_loop_s": round(reference_s, 2),
            "stratomics_s": round(ours_s, 2), "speed_up": round(reference_s / ours_s, 1),
            "max_abs_difference": f"{difference:.1e}"}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patients", nargs="*", type=int, default=[300, 800, 3000])
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args()
    rows = [compare(n, args.resamples) for n in args.patients]
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
