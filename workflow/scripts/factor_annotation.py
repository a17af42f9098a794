import joblib
import mudata as md

from stratomics.factor_annotation import factor_associations, factor_features, method_weights
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input.mdata)
    integration, _ = joblib.load(snakemake.input.model)
    scores, assays = mdata.obsm["X_integrated"], list(mdata.uns["integrate"]["assays"])
    features = factor_features(mdata, scores, assays, weights=method_weights(integration))
    write_table(features, snakemake.output.features)
    associations = factor_associations(mdata.obs, scores, characteristics=snakemake.params.characteristics,
                                       outcomes=snakemake.params.outcomes)  # fmt: skip
    write_table(associations, snakemake.output.associations)


run_step(snakemake.log[0], main, inputs=snakemake.input)
