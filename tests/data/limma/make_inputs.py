"""Write the inputs of the limma reference (run from this folder; then run make_reference.R)."""

import numpy as np
import pandas as pd

rng = np.random.default_rng(2024)
n_samples, n_features = 24, 300
group = np.repeat(["A", "B", "C"], 8)
age = rng.normal(50, 10, n_samples).round(1)
design = pd.DataFrame({"A": (group == "A") * 1.0, "B": (group == "B") * 1.0, "C": (group == "C") * 1.0,
                       "age": age})  # fmt: skip
sd = np.sqrt(0.5 * 6 / rng.chisquare(6, n_features))  # prior df 6: variances worth moderating
values = rng.normal(0, 1, (n_samples, n_features)) * sd + 0.02 * age[:, None]
values[group == "B", :30] += 1.5
values[rng.random(values.shape) < 0.05] = np.nan  # missing values fitted per feature
values[:, 5] = np.nan
values[:2, 5] = [1.0, 2.0]  # too few observations: no residual df
values[rng.random(values.shape) < 0.02] *= 6  # a few outliers for the robust option
pd.DataFrame(values.T, index=[f"f{i}" for i in range(n_features)]).to_csv("values.tsv", sep="\t", float_format="%.10g")
design.to_csv("design.tsv", sep="\t", index=False)
