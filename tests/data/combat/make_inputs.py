"""Inputs of the ComBat reference: 40 features x 60 samples, 3 batches unbalanced in disease, one numeric covariate."""

import numpy as np
import pandas as pd

rng = np.random.default_rng(11)
n, p = 60, 40
batch = np.repeat(["b1", "b2", "b3"], [24, 20, 16])
disease = np.where(rng.random(n) < np.select([batch == "b1", batch == "b2"], [0.8, 0.5], 0.2), "IBD", "RA")
age = rng.normal(50, 12, n).round(1)
shift = rng.normal(0, 1, (3, p))[pd.factorize(batch)[0]]
scale = rng.uniform(0.6, 1.8, (3, p))[pd.factorize(batch)[0]]
values = 5 + shift + 1.2 * (disease == "RA")[:, None] + 0.02 * age[:, None] + scale * rng.normal(size=(n, p))
samples = [f"s{i + 1}" for i in range(n)]
pd.DataFrame(values.T, index=[f"f{j + 1}" for j in range(p)], columns=samples).round(6).to_csv(
    "values.tsv", sep="\t", index_label="feature")
pd.DataFrame({"sample": samples, "batch": batch, "disease": disease, "age": age}).to_csv(
    "samples.tsv", sep="\t", index=False)
