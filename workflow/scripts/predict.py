import joblib
import mudata as md
import pandas as pd

from stratomics.model_file import save_model_file
from stratomics.predict import fit_signatures
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    params, output = snakemake.params, snakemake.output
    evaluations = [joblib.load(path) for path in snakemake.input.evaluations]
    for name in ("performance", "curves", "predictions", "selection"):
        write_table(pd.concat([getattr(e, name) for e in evaluations], ignore_index=True), output[name])
    signatures, table = fit_signatures(md.read_h5mu(snakemake.input.mdata), params.outcomes, clinical=params.clinical,
                                       assays=params.assays, feature_set=params.feature_set, evaluations=evaluations,
                                       n_features=params.n_features, horizon=params.horizon, seed=params.seed)  # fmt: skip
    write_table(table, output.signature)
    save_model_file(signatures, output.model)
    print(f"signature ({params.feature_set}): {int((table['term'] != 'intercept').sum())} terms over "
          f"{len(params.outcomes)} outcomes")  # fmt: skip


run_step(snakemake.log[0], main, inputs=snakemake.input)
