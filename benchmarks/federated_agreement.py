"""Federated analysis of the demo cohort against the pooled analysis of all patients.

    python benchmarks/federated_agreement.py

The 800-patient demo is preprocessed centrally, subgroups are fitted on all patients and the model is
stripped of patient data (as it would be shipped). Each of the 4 sites then exports its
disclosure-controlled aggregates (minimum cell count 5) and the exports are meta-analysed. The pooled
analysis tests the same features on all patients with site as a covariate and the same feature
scale. Prints the correlation and largest difference of the estimates, the overlap of the top-50
biomarkers, and pooled against meta-analysed subgroup hazard / odds ratios.
"""

from __future__ import annotations

import logging
import tempfile
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
ASSAYS = ["proteomics", "cytokines", "flow", "rna"]


def main():
    from stratomics.associate import outcome_biomarkers
    from stratomics.cohort import build_cohort
    from stratomics.config import read_config, validate_config
    from stratomics.federated import combine_exports, feature_scales, site_export
    from stratomics.outcomes import subgroup_outcomes
    from stratomics.preprocess import preprocess_cohort
    from stratomics.simulate import simulate_cohort
    from stratomics.subgroups import integrate_and_stratify, strip_patient_data

    with tempfile.TemporaryDirectory() as folder:
        simulate_cohort(f"{folder}/demo", seed=0)
        config = validate_config(eval(str(read_config("config.yaml")).replace("results/demo", f"{folder}/demo")))
        mdata = preprocess_cohort(build_cohort(config).mdata, config)
        model, _ = integrate_and_stratify(mdata, ASSAYS, integrate_options={"method": "mofa"},
                                          stratify_options={"k": 4, "k_values": [4], "n_resamples": 20})  # fmt: skip
        shipped, scales = strip_patient_data(model), feature_scales(mdata, ASSAYS)
        outcomes, covariates = config["cohort"]["outcomes"], config["cohort"]["covariates"]
        exports = {}
        for site in sorted(mdata.obs["site"].dropna().unique()):
            local = mdata[mdata.obs_names[mdata.obs["site"] == site]].copy()
            exports[site] = f"{folder}/export_{site}"
            log = site_export(local, shipped, outcomes=outcomes, covariates=covariates, scales=scales,
                              folder=exports[site])  # fmt: skip
            print(f"site {site}: {local.n_obs} patients, {len(log)} cells suppressed")
        meta = combine_exports(exports)
        pooled = pd.concat([outcome_biomarkers(mdata[a], mdata.obs, name, spec=spec, covariates=covariates, assay=a, scale=scales[a])
                            for a in ASSAYS for name, spec in outcomes.items()])  # fmt: skip
        pooled_subgroups = subgroup_outcomes(mdata.obs, outcomes, covariates, n_permutations=0)
    keys = ["assay", "feature", "outcome_or_contrast"]
    joined = meta["features"].merge(pooled[keys + ["estimate", "p_value"]], on=keys).dropna(subset=["estimate"])
    for name, rows in joined.groupby("outcome_or_contrast"):
        print(f"-- {name}: {len(rows)} features")
        for effect in ("fixed", "random"):
            difference = (rows[f"estimate_{effect}"] - rows["estimate"]).abs()
            print(f"   {effect:6} effects vs pooled: r = {np.corrcoef(rows[f'estimate_{effect}'], rows['estimate'])[0, 1]:.4f}, "
                  f"max |difference| = {difference.max():.4f}, median = {difference.median():.4f}")  # fmt: skip
        top_meta = set(rows.nsmallest(50, "p_value_random")["feature"])
        top_pooled = set(rows.nsmallest(50, "p_value")["feature"])
        print(f"   top-50 overlap (random effects vs pooled): {len(top_meta & top_pooled)} of 50; "
              f"median I2 {rows['i2'].median():.2f}")  # fmt: skip
    subgroups = meta["subgroups"].merge(pooled_subgroups.rename(columns={"outcome": "outcome_or_contrast"}),
                                        on=["outcome_or_contrast", "model", "term"])  # fmt: skip
    for _, row in subgroups.iterrows():
        print(f"{row['outcome_or_contrast']:>15} {row['term']}: pooled ratio {np.exp(row['estimate']):.3f}, "
              f"meta (random) {np.exp(row['estimate_random']):.3f} [{np.exp(row['ci_low_random']):.3f}-"
              f"{np.exp(row['ci_high_random']):.3f}], I2 {row['i2']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
