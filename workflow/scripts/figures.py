from pathlib import Path

import mudata as md
import pandas as pd

from stratomics import figures
from stratomics.associate.multiple import genomic_inflation
from stratomics.factor_figures import factor_overview
from stratomics.plot import save_figure
from stratomics.runner import run_step
from stratomics.subgroups import scaled_group_means

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def save(figure, pdf_path):
    save_figure(figure, Path(pdf_path).with_suffix(""))


def read(path):
    return pd.read_csv(path, sep="\t")


def main():
    inputs, outputs, params = snakemake.input, snakemake.output, snakemake.params
    mdata = md.read_h5mu(inputs.mdata)
    obs = mdata.obs
    save(figures.embedding(read(inputs.umap), obs, params.colour_by), outputs.embedding[0])
    patients = pd.Index(mdata.uns["stratify"]["consensus_patients"])
    save(figures.consensus_and_selection(mdata.uns["stratify"]["consensus"], obs.loc[patients, "subgroup"].astype(str),
                                         obs.loc[patients, "subgroup_confidence"], selection=read(inputs.selection),
                                         cdf=read(inputs.cdf)),
         outputs.consensus[0])  # fmt: skip
    save(factor_overview(read(inputs.variance), read(inputs.factor_selection),
                         associations=read(inputs.factor_associations), features=read(inputs.factor_features)),
         outputs.factors[0])  # fmt: skip
    outcomes, curves = read(inputs.outcomes), read(inputs.kaplan_meier)
    for index, name in enumerate(params.survival):
        log_rank = outcomes.loc[(outcomes["outcome"] == name) & (outcomes["test"] == "log-rank"), "test_p_value"]
        p_value = log_rank.iloc[0] if len(log_rank) else float("nan")  # one subgroup: no test
        save(figures.kaplan_meier(curves[curves["outcome"] == name], p_value, outcome=name, times=params.km_times,
                                  confidence_bands=params.km_confidence_bands), outputs.kaplan_meier[2 * index])  # fmt: skip
    save(figures.forest(outcomes), outputs.forest[0])
    biomarkers = read(inputs.biomarkers)
    for index, name in enumerate(params.outcomes):
        save(figures.volcano(biomarkers, outcome=name), outputs.volcano[2 * index])
    if inputs.genotypes:
        scan = read(inputs.genotypes[0])
        for index, name in enumerate(params.outcomes):
            rows = scan[scan["outcome_or_contrast"] == name]
            save(figures.manhattan_qq(rows, genomic_inflation(rows["p_value"]), outcome=name), outputs.manhattan[2 * index])
    markers = read(inputs.markers)
    means = scaled_group_means(mdata, [assay for assay in markers["assay"].unique() if assay in mdata.mod])
    save(figures.marker_heatmap(markers, means), outputs.markers[0])
    save(figures.table_figure(read(inputs.table_one), title="Table 1. Patient characteristics by subgroup"),
         outputs.table_one[0])  # fmt: skip


run_step(snakemake.log[0], main, inputs=snakemake.input)
