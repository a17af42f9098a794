import mudata as md

from stratomics.federated import feature_scales
from stratomics.model_file import save_model_file
from stratomics.runner import run_step
from stratomics.subgroups import load_model, strip_patient_data

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    model = load_model(snakemake.input.model)
    scales = feature_scales(md.read_h5mu(snakemake.input.mdata), model.assays)
    digest = save_model_file(strip_patient_data(model, scales, min_count=snakemake.params.min_count), snakemake.output.model)
    print(f"model for sites: {snakemake.output.model}, SHA-256 {digest} (send both; sites set federated.model_sha256)")


run_step(snakemake.log[0], main, inputs=snakemake.input)
