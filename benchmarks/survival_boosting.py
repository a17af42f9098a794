"""Cox gradient boosting: scikit-survival's booster with its O(n^2) loss against stratomics'
CoxGradientBoosting (the same booster, loss and gradient from sorted times), in one run.

    python benchmarks/survival_boosting.py                 # 800, 3,000 and 10,000 patients
    python benchmarks/survival_boosting.py 800 3000

The demo's settings (100 trees of depth 2, learning rate 0.03, subsample 0.8, leaves of 30), 20
predictors, 60% events; prints each fit's time, the speed-up and the largest difference between
the two models' predicted risks and their training C-index.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sksurv.ensemble import GradientBoostingSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from stratomics.cox_boosting import CoxGradientBoosting

SETTINGS = {"learning_rate": 0.03, "n_estimators": 100, "max_depth": 2, "min_samples_leaf": 30, "subsample": 0.8,
            "random_state": 0}  # fmt: skip


def cohort(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 20))
    event_time = rng.exponential(365 * np.exp(-(0.6 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3])))
    censor = rng.uniform(90, 900, n)
    return X, Surv.from_arrays(event_time < censor, np.ceil(np.minimum(event_time, censor)))  # whole days: ties


def timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - start


def main(sizes):
    print(f"{'patients':>9} {'scikit-survival':>16} {'stratomics':>11} {'speed-up':>9}   agreement")
    for n in sizes:
        X, y = cohort(n)
        ours, ours_time = timed_fit(CoxGradientBoosting(**SETTINGS), X, y)
        reference, reference_time = timed_fit(GradientBoostingSurvivalAnalysis(**SETTINGS), X, y)
        risk, reference_risk = ours.predict(X), reference.predict(X)
        c_index = [concordance_index_censored(y["event"], y["time"], r)[0] for r in (risk, reference_risk)]
        print(f"{n:>9} {reference_time:>15.2f}s {ours_time:>10.2f}s {reference_time / ours_time:>8.1f}x   "
              f"max |risk difference| {np.abs(risk - reference_risk).max():.1e}, C-index {c_index[0]:.4f} vs "
              f"{c_index[1]:.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [800, 3000, 10000])
