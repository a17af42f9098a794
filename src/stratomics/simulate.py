"""A synthetic multi-omics cohort that looks like the real thing, written in the formats users bring.

Patients with IBD, rheumatoid arthritis or multiple sclerosis start a biologic at one of four sites.
Four latent endotypes of unequal size, shared across diseases, shift markers in several assays; each
assay sees only part of the structure (proteomics separates E1 and E2 from the rest, cytokines E1
and E3, flow cytometry E3 and E4, RNA-seq E2 and E4), so that no single assay recovers the
endotypes but their integration can. A latent risk factor drives early failure together with the
endotype, clinical covariates and planted SNPs, and shows through planted biomarkers.

The files carry the mess of real exports: an Olink long export with semicolons and decimal commas,
control samples, plate effects, values below LOD, QC warnings and a re-run sample; cytokines with
"<LLOQ"/"OOR >" strings, "n.d." cells, week-14 samples and re-drawn duplicates; a FlowJo-style
table with summary rows; RNA-seq counts for about 70% of patients; PLINK genotypes with low
call-rate, out-of-HWE and monomorphic SNPs and reference samples that belong to no patient.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.simulate_omop import write_demo_cdm

SITES = {"LUX": "Luxembourg", "BEL": "Belgium", "DEU": "Germany", "FRA": "France"}
SITE_WEIGHTS = (0.3, 0.25, 0.25, 0.2)
DISEASES = {"IBD": 0.45, "RA": 0.35, "MS": 0.20}
TREATMENTS = {
    "IBD": ("anti-TNF", "anti-integrin"),
    "RA": ("anti-TNF", "anti-IL6R", "anti-CD20"),
    "MS": ("anti-CD20", "anti-integrin"),
}
ENDOTYPES = ("E1", "E2", "E3", "E4")
ENDOTYPE_WEIGHTS = (0.38, 0.28, 0.22, 0.12)
#: Log hazard ratio of early failure per endotype.
ENDOTYPE_RISK = {"E1": 0.7, "E2": 0.0, "E3": 0.35, "E4": -0.4}
#: Treatment x endotype interaction: extra log hazard of failure on a treatment within an endotype
#: (anti-TNF fails more often in E1; the other treatments do not depend on the endotype).
TREATMENT_ENDOTYPE_RISK = {("anti-TNF", "E1"): 0.8}
#: Which endotypes shift markers in which assay (each assay sees two of the four).
ASSAY_ENDOTYPES = {
    "proteomics": ("E1", "E2"),
    "cytokines": ("E1", "E3"),
    "flow": ("E3", "E4"),
    "rna": ("E2", "E4"),
}
AVAILABILITY = {"proteomics": 0.92, "cytokines": 0.95, "flow": 0.9, "rna": 0.7, "genotypes": 0.97}
OLINK_PANELS = ("Inflammation", "Cardiometabolic", "Immune Response")
CYTOKINES = (
    "IL6", "TNF", "IL17A", "IFNG", "IL10", "IL1B", "CXCL8", "IL12p70", "IL13", "IL4",
    "IL2", "IL22", "IL23", "CSF2", "IL5", "IL21", "CCL2", "CXCL10", "IL18", "OSM",
)  # fmt: skip
FLOW_POPULATIONS = {
    "Lymphocytes": ("CD3+ T cells", "CD19+ B cells", "CD56+ NK cells"),
    "Lymphocytes/CD3+ T cells": ("CD4+", "CD8+"),
    "Lymphocytes/CD3+ T cells/CD4+": ("Naive", "Central memory", "Effector memory", "TEMRA"),
    "Lymphocytes/CD3+ T cells/CD8+": ("Naive", "Central memory", "Effector memory", "TEMRA"),
    "Lymphocytes/CD19+ B cells": ("Naive", "Memory", "Plasmablasts"),
    "Lymphocytes/CD56+ NK cells": ("CD56bright", "CD56dim"),
}
FLOW_SUFFIX = " | Freq. of Parent (%)"


@dataclass(frozen=True)
class Scenario:
    """How hard the cohort's subgroups are to find.

    Attributes
    ----------
    effect_scale
        Multiplies the shift of each assay's endotype markers (1.0-2.0 SD in the original demo).
    weak_share, weak_effect
        Share of each assay's features shifted weakly by each endotype it sees, and the shift range.
    inflammation
        Loading of a shared inflammation axis (tied to CRP, not to the endotype) on 40% of the
        features of every assay.
    assay_nuisance
        Loading of an assay-specific nuisance factor on 40% of its features.
    site_effect
        SD of the per-site feature offsets.
    missing
        Extra share of patients without each assay.
    endotypes
        False: no endotype shifts anything (a cohort without subgroups).
    """

    effect_scale: float = 1.0
    weak_share: float = 0.0
    weak_effect: tuple[float, float] = (0.33, 0.5)
    inflammation: float = 0.0
    assay_nuisance: float = 0.0
    site_effect: float = 0.25
    missing: float = 0.0
    endotypes: bool = True


#: Benchmark scenarios (benchmarks/stratify_quality.py); "strong" is the original demo.
REALISTIC = Scenario(effect_scale=0.8, weak_share=0.1, inflammation=0.35, assay_nuisance=0.3, site_effect=0.3,
                     missing=0.1)  # fmt: skip
SCENARIOS = {
    "strong": Scenario(),
    "realistic": REALISTIC,
    "weak": replace(REALISTIC, effect_scale=0.6),
    "nuisance": replace(REALISTIC, effect_scale=1.0, inflammation=0.5, assay_nuisance=0.4),
    "missing": replace(REALISTIC, missing=0.35),
    "no_structure": replace(REALISTIC, endotypes=False),
}


def simulate_cohort(
    out_dir: str | Path,
    *,
    n_patients: int = 800,
    n_snps: int = 20_000,
    n_genes: int = 2_000,
    scenario: str = "strong",
    seed: int = 0,
) -> dict[str, Path]:
    """Write the demo cohort: sample sheet, sample map, five assays and the ground truth.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    n_patients
        Number of patients in the sample sheet.
    n_snps
        Number of SNPs in the PLINK files.
    n_genes
        Number of genes in the RNA-seq count matrix.
    scenario
        Difficulty of the subgroups: a name of :data:`SCENARIOS`.
    seed
        Seed of every random draw; the same seed writes byte-identical files.

    Returns
    -------
    The paths written, by name (as in :data:`DEMO_FILES`).
    """
    out = Path(out_dir)
    (out / "ground_truth").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    setting = SCENARIOS[scenario]
    patients = _patients(n_patients, rng, setting)
    samples = _sample_map(patients, rng)
    has = {name: rng.random(n_patients) < share * (1 - setting.missing) for name, share in AVAILABILITY.items()}
    has["flow"] &= patients["site"].to_numpy() != "BEL"  # one site ran no flow cytometry
    planted: list[dict] = []
    genotypes, bim, snp_risk = _genotypes(n_snps, n_patients, rng, planted)
    _outcomes(patients, np.nan_to_num(genotypes, nan=0.0) @ snp_risk, rng)
    baseline = samples[samples["visit"] == "baseline"].drop_duplicates("patient_id")
    barcode = baseline.set_index("patient_id")["sample_id"].reindex(patients["patient_id"])
    paths = {name: out / file for name, file in DEMO_FILES.items()}
    _write_olink(paths["olink_npx"], patients, barcode, has["proteomics"], rng, planted, setting)
    follow_rng = np.random.default_rng([seed, 52])  # follow-up visits: the baseline files stay as they were
    samples = _with_week52(samples, follow_rng)
    _write_cytokines(paths, patients, samples, has["cytokines"], (rng, follow_rng), planted, setting)
    _write_flow(paths["flow"], patients, barcode, has["flow"], rng, planted, setting)
    gene_ids = _write_rna(paths["rna_counts"], patients, barcode, has["rna"], n_genes, rng, planted, setting)
    _write_plink(out / "genotypes", genotypes, bim, barcode, has["genotypes"], rng)
    wearable_rng = np.random.default_rng([seed, 18, 3])  # the treatment start and the wearable file: the other files stay
    patients["treatment_start"] = _treatment_starts(len(patients), wearable_rng)
    patients["activity_12m"] = _disease_activity(patients["risk_factor"].to_numpy(), np.random.default_rng([seed, 18, 4]))
    planted_wearable = _write_wearable(paths["wearable"], patients, wearable_rng)
    truth = patients[["patient_id", "endotype", "risk_factor", "inflammation"]]
    truth.to_csv(paths["endotypes"], sep="\t", index=False, float_format="%.6g")
    patients.drop(columns=["endotype", "risk_factor", "inflammation"]).to_csv(paths["samples"], index=False)
    samples.to_csv(paths["sample_map"], index=False)
    write_demo_cdm(patients, paths["omop_cdm"], seed)
    planted += _write_questionnaire(paths["questionnaire"], patients, np.random.default_rng([seed, 18]))
    planted += _write_voice(paths["voice"], patients, np.random.default_rng([seed, 18, 2])) + planted_wearable
    pd.DataFrame(planted).to_csv(paths["planted"], sep="\t", index=False, float_format="%.6g")
    _write_gene_sets(paths["gene_sets"], pd.DataFrame(planted), gene_ids, np.random.default_rng([seed, 19]))
    params = {"n_patients": n_patients, "n_snps": n_snps, "n_genes": n_genes, "seed": seed, "scenario": scenario,
              **asdict(setting), "activity_12m_log_odds_per_risk_sd": ACTIVITY_EFFECT, "treatment_endotype_log_hazard": [
                  {"treatment": t, "endotype": e, "effect": v} for (t, e), v in TREATMENT_ENDOTYPE_RISK.items()]}
    paths["parameters"].write_text(json.dumps(params, indent=2) + "\n")
    return paths


#: The files of the demo cohort, relative to its folder.
DEMO_FILES = {
    "samples": "samples.csv",
    "sample_map": "sample_map.csv",
    "olink_npx": "olink_npx.csv",
    "cytokines": "cytokines.csv",
    "cytokine_limits": "cytokine_limits.csv",
    "flow": "flow_frequencies.tsv",
    "rna_counts": "rna_counts.tsv",
    "genotypes_bed": "genotypes.bed",
    "genotypes_bim": "genotypes.bim",
    "genotypes_fam": "genotypes.fam",
    "endotypes": "ground_truth/endotypes.tsv",
    "planted": "ground_truth/planted_features.tsv",
    "parameters": "ground_truth/parameters.json",
    "omop_cdm": "omop_cdm.duckdb",
    "questionnaire": "questionnaire.csv",
    "voice": "voice_features.csv",
    "wearable": "wearable.csv",
    "gene_sets": "gene_sets.gmt",
}


def _patients(n: int, rng: np.random.Generator, setting: Scenario) -> pd.DataFrame:
    """Clinical sample sheet with the hidden endotype and risk factor."""
    site = rng.choice(list(SITES), size=n, p=SITE_WEIGHTS)
    disease = rng.choice(list(DISEASES), size=n, p=list(DISEASES.values()))
    treatment = [rng.choice(TREATMENTS[d]) for d in disease]
    age_mean = np.select([disease == "IBD", disease == "RA"], [38, 56], 41)
    female = rng.random(n) < np.select([disease == "IBD", disease == "RA"], [0.5, 0.72], 0.7)
    endotype = rng.choice(ENDOTYPES, size=n, p=ENDOTYPE_WEIGHTS)
    risk = rng.normal(size=n)
    inflammation = rng.normal(size=n) if setting.inflammation else np.zeros(n)
    crp = np.exp(1.5 + 0.5 * risk + 0.4 * (endotype == "E1") + 0.5 * inflammation + rng.normal(0, 0.7, n))
    frame = pd.DataFrame(
        {
            "patient_id": [f"IMID-{s}-{i:04d}" for i, s in enumerate(site, start=1)],
            "site": site,
            "country": [SITES[s] for s in site],
            "disease": disease,
            "treatment": treatment,
            "age": np.clip(np.round(rng.normal(age_mean, 13)), 18, 90).astype(int),
            "sex": np.where(female, "F", "M"),
            "bmi": np.round(rng.normal(26, 4.5, n), 1),
            "smoking": rng.choice(["never", "former", "current"], size=n, p=[0.5, 0.3, 0.2]),
            "crp_mg_l": np.round(crp, 1),
            "endotype": endotype,
            "risk_factor": risk,
            "inflammation": inflammation,
        }
    )
    for column, share in (("bmi", 0.05), ("smoking", 0.03), ("crp_mg_l", 0.02)):
        frame.loc[rng.random(n) < share, column] = np.nan
    return frame


def _outcomes(patients: pd.DataFrame, snp_effect: np.ndarray, rng: np.random.Generator) -> None:
    """Add time to switch (Weibull, censored), switched and failure_12m (switch within a year)."""
    crp = np.log(patients["crp_mg_l"].fillna(patients["crp_mg_l"].median()))
    linear = (
        patients["endotype"].map(ENDOTYPE_RISK).to_numpy()
        + 0.6 * patients["risk_factor"].to_numpy()
        + 0.25 * (crp - crp.mean()).to_numpy()
        + 0.3 * (patients["smoking"] == "current").to_numpy()
        + snp_effect
        + sum(effect * ((patients["treatment"] == treatment) & (patients["endotype"] == endotype)).to_numpy()
              for (treatment, endotype), effect in TREATMENT_ENDOTYPE_RISK.items())
    )
    shape, uniform = 1.2, rng.random(len(patients))
    relative = (-np.log(uniform) / np.exp(linear)) ** (1 / shape)
    scale = 365 / np.quantile(relative, 0.38)  # about 40% switch within a year
    event_time = np.ceil(scale * relative)
    follow_up = np.round(rng.uniform(300, 900, len(patients)))
    switched = event_time <= follow_up
    patients["time_to_switch_days"] = np.minimum(event_time, follow_up).astype(int)
    patients["switched"] = switched.astype(int)
    failure = np.where(switched & (event_time <= 365), 1.0, 0.0)
    failure[~switched & (follow_up < 365)] = np.nan  # lost before a year: outcome unknown
    patients["failure_12m"] = pd.array(failure, dtype="Int64")


def _sample_map(patients: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Lab barcodes: one baseline sample per patient, week-14 samples and a few re-draws."""
    n = len(patients)
    codes = rng.choice(np.arange(100_000, 999_999), size=2 * n, replace=False)
    week14 = np.flatnonzero(rng.random(n) < 0.25)
    redraw = rng.choice(n, size=max(1, n // 200), replace=False)
    owners = np.concatenate([np.arange(n), week14, redraw])
    visits = ["baseline"] * n + ["week14"] * len(week14) + ["baseline"] * len(redraw)
    return pd.DataFrame(
        {
            "sample_id": [f"BC{code}" for code in codes[: len(owners)]],
            "patient_id": patients["patient_id"].to_numpy()[owners],
            "visit": visits,
        }
    )


def _assay_signal(
    patients: pd.DataFrame,
    assay: str,
    n_features: int,
    rng: np.random.Generator,
    planted: list[dict],
    names: list[str],
    *,
    n_markers: int,
    effect: float,
    n_risk: int,
    setting: Scenario,
    risk_effect: float = 0.5,
    site_scale: float = 1.0,
) -> np.ndarray:
    """Standardised patient x feature signal: endotype shifts, risk, nuisance, site, disease, noise.

    Each endotype that the assay sees shifts ``n_markers`` features by ``effect`` SD (random sign),
    scaled, and weakly shifts more features, as the ``setting`` says; ``n_risk`` features follow the
    latent risk factor. Planted features are appended to ``planted``.
    """
    n = len(patients)
    n_markers = min(n_markers, n_features // 4)  # small test cohorts have few features
    loading_sd = min(0.3, 1.5 / np.sqrt(n_features))  # correlated noise of a few features' worth
    factors = rng.normal(size=(n, 3)) @ rng.normal(0, loading_sd, size=(3, n_features))
    signal = rng.normal(size=(n, n_features)) + factors
    order = rng.permutation(n_features)
    n_weak = int(setting.weak_share * n_features)
    for k, endotype in enumerate(ASSAY_ENDOTYPES[assay] if setting.endotypes else ()):
        markers = order[k * n_markers : (k + 1) * n_markers]
        shift = effect * setting.effect_scale * rng.choice([-1.0, 1.0], size=n_markers)
        if n_weak:
            candidates = order[2 * n_markers : -n_risk]
            weak = rng.choice(candidates, size=min(n_weak, len(candidates)), replace=False)
            markers = np.concatenate([markers, weak])
            shift = np.concatenate([shift, rng.uniform(*setting.weak_effect, len(weak)) * rng.choice([-1.0, 1.0], len(weak))])
        signal[np.ix_(patients["endotype"].to_numpy() == endotype, markers)] += shift
        planted += [
            {"assay": assay, "feature": names[j], "effect_on": f"endotype {endotype}", "effect": s}
            for j, s in zip(markers, shift)
        ]
    risk_features = order[-n_risk:]
    signal[:, risk_features] += risk_effect * patients["risk_factor"].to_numpy()[:, None]
    planted += [
        {"assay": assay, "feature": names[j], "effect_on": "risk_factor", "effect": risk_effect}
        for j in risk_features
    ]
    for strength, patient_factor in ((setting.inflammation, patients["inflammation"].to_numpy()),
                                     (setting.assay_nuisance, rng.normal(size=n) if setting.assay_nuisance else None)):
        if strength:
            loaded = rng.random(n_features) < 0.4
            signal[:, loaded] += strength * patient_factor[:, None] * rng.choice([-1.0, 1.0], loaded.sum())
    for column, size in (("site", setting.site_effect * site_scale), ("disease", 0.2)):
        levels = patients[column].astype("category").cat.codes.to_numpy()
        offsets = rng.normal(0, size, size=(levels.max() + 1, n_features))
        signal += offsets[levels]
    return signal


def _write_olink(path, patients, barcode, has, rng, planted, setting) -> None:
    """Olink long export: 3 panels x 92 assays on 88-sample plates, semicolons, decimal commas."""
    n_assays = 92 * len(OLINK_PANELS)
    olink_ids = [f"OID{20001 + j}" for j in range(n_assays)]
    signal = _assay_signal(
        patients, "proteomics", n_assays, rng, planted, olink_ids,
        n_markers=25, effect=1.0, n_risk=6, setting=setting,
    )  # fmt: skip
    keep = np.flatnonzero(has)
    reruns = rng.choice(keep, size=min(4, len(keep)), replace=False)
    runs = np.concatenate([rng.permutation(keep), reruns])
    mean = rng.uniform(1.5, 9, n_assays)
    sd = rng.uniform(0.6, 1.4, n_assays)
    lod_depth = np.where(rng.random(n_assays) < 0.15, rng.uniform(-0.5, 0.8, n_assays), 2.5)
    n_plates = int(np.ceil(len(keep) / 88)) + 1  # re-runs go on a last plate of their own
    plate_shift = rng.normal(0, 0.3, (n_plates, 1)) + rng.normal(0, 0.15, (n_plates, n_assays))
    plate = np.concatenate([np.arange(len(keep)) // 88, np.full(len(reruns), n_plates - 1)])
    npx = mean + sd * signal[runs] + plate_shift[plate]
    npx[len(keep) :] += rng.normal(0, 0.1, (len(reruns), n_assays))
    lod = (mean - lod_depth * sd) + plate_shift[plate] + rng.normal(0, 0.05, (n_plates, 1))[plate]
    sample_ids = barcode.to_numpy()[runs]
    panel = np.repeat(np.arange(len(OLINK_PANELS)), 92)
    warned = rng.random((len(runs), len(OLINK_PANELS))) < 0.02
    warned[rng.choice(len(keep), size=min(2, len(keep)), replace=False)] = True
    npx[warned[:, panel]] += rng.normal(0, 1.5, (int(warned[:, panel].sum())))
    controls = [f"CONTROL_SAMPLE_AS {p + 1}-{k}" for p in range(n_plates) for k in (1, 2)]
    control_plate = np.repeat(np.arange(n_plates), 2)
    control_npx = mean + plate_shift[control_plate] + rng.normal(0, 0.2, (len(controls), n_assays))
    all_ids = np.concatenate([sample_ids, controls])
    all_plate = np.concatenate([plate, control_plate])
    all_npx = np.vstack([npx, control_npx])
    all_lod = np.vstack([lod, (mean - lod_depth * sd) + plate_shift[control_plate]])
    all_warn = np.vstack([warned[:, panel], np.zeros((len(controls), n_assays), bool)])
    n_rows = len(all_ids)
    names = _protein_names(n_assays)
    table = pd.DataFrame(
        {
            "SampleID": np.repeat(all_ids, n_assays),
            "Index": np.repeat(np.arange(1, n_rows + 1), n_assays),
            "OlinkID": np.tile(olink_ids, n_rows),
            "UniProt": np.tile([f"P{10000 + j * 7}" for j in range(n_assays)], n_rows),
            "Assay": np.tile(names, n_rows),
            "Panel": np.tile([f"Olink Target 96 {OLINK_PANELS[p]}" for p in panel], n_rows),
            "Panel_Version": "v.3012",
            "PlateID": [f"Run{p + 1:02d}_plate" for p in np.repeat(all_plate, n_assays)],
            "QC_Warning": np.where(all_warn.ravel(), "WARN", "PASS"),
            "LOD": np.round(all_lod.ravel(), 5),
            "NPX": np.round(all_npx.ravel(), 5),
        }
    )
    table.to_csv(path, sep=";", decimal=",", index=False)


def _protein_names(n: int) -> list[str]:
    """Assay names: real inflammation proteins first, then numbered ones."""
    known = [
        "IL6", "TNF", "OSM", "CXCL9", "CXCL10", "IL17A", "IFNG", "IL10", "CCL2", "CCL20",
        "TNFSF14", "IL18", "CD40", "HGF", "MMP1", "MMP10", "CDCP1", "TREM1", "IL1RN", "S100A12",
    ]  # fmt: skip
    return known[:n] + [f"PROT{j:03d}" for j in range(len(known), n)]


def _with_week52(samples: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Add week-52 samples for 60% of the patients sampled at week 14 (7-digit barcodes)."""
    week14 = samples.loc[samples["visit"] == "week14", "patient_id"]
    late = week14[rng.random(len(week14)) < 0.6].to_numpy()
    codes = rng.choice(np.arange(1_000_000, 9_999_999), size=len(late), replace=False)
    return pd.concat([samples, pd.DataFrame({"sample_id": [f"BC{c}" for c in codes], "patient_id": late,
                                             "visit": "week52"})], ignore_index=True)  # fmt: skip


def _trajectories(patients, measured, rng, planted) -> np.ndarray:
    """Samples x cytokines: 3 cytokines fall by 0.8 SD at follow-up in responders (failure_12m 0) only."""
    falling = rng.choice(len(CYTOKINES), size=3, replace=False)
    responders = patients.set_index("patient_id")["failure_12m"].eq(0).fillna(False).astype(bool)
    responder = measured["patient_id"].map(responders).to_numpy(bool)
    follow_up = measured["visit"].to_numpy() != "baseline"
    effect = np.zeros((len(measured), len(CYTOKINES)))
    effect[np.ix_(responder & follow_up, falling)] = -0.8
    effect[follow_up] += rng.normal(0, 0.3, size=(follow_up.sum(), len(CYTOKINES)))  # visit-to-visit variation
    planted += [{"assay": "cytokines", "feature": CYTOKINES[j], "effect_on": "follow-up in responders (failure_12m 0)",
                 "effect": -0.8} for j in falling]  # fmt: skip
    return effect


def _write_cytokines(paths, patients, samples, has, rngs, planted, setting) -> None:
    """Wide cytokine concentrations (pg/mL) with censoring strings, plus the limits file.

    Week-14 and week-52 samples carry planted trajectories; week-52 values come from the second
    generator, so that the baseline and week-14 rows draw what they drew before week 52 existed.
    """
    rng, follow_rng = rngs
    n_analytes = len(CYTOKINES)
    signal = _assay_signal(
        patients, "cytokines", n_analytes, rng, planted, list(CYTOKINES),
        n_markers=6, effect=1.5, n_risk=2, setting=setting,
    )  # fmt: skip
    patient_row = pd.Series(np.arange(len(patients)), index=patients["patient_id"])
    measured = samples[samples["patient_id"].map(pd.Series(has, index=patients["patient_id"]))]
    trajectory = _trajectories(patients, measured, follow_rng, planted)
    early = (measured["visit"] != "week52").to_numpy()
    rows = patient_row[measured["patient_id"]].to_numpy()
    shift = np.select([measured["visit"].to_numpy() == "week14", ~early], [-0.4, -0.3], 0.0)[:, None]
    offset = rng.uniform(0.5, 2.5, n_analytes)
    log10 = offset + 0.45 * (signal[rows] + shift)
    log10[early] += rng.normal(0, 0.05, (early.sum(), n_analytes))
    log10[~early] += follow_rng.normal(0, 0.05, ((~early).sum(), n_analytes))
    # the limits come from the values without trajectories, so that every baseline value reads as before
    lloq = 10 ** (np.quantile(log10[early], rng.uniform(0.02, 0.4, n_analytes), axis=0).diagonal())
    uloq = 10 ** (np.quantile(log10[early], 0.99, axis=0) + 0.02)
    log10 += 0.45 * trajectory
    conc = 10**log10
    text = np.char.mod("%.2f", conc).astype(object)
    instrument_style = measured["patient_id"].str.contains("LUX|BEL").to_numpy()[:, None]
    for censored, marks in ((conc < lloq, ("OOR <", "<LLOQ")), (conc > uloq, ("OOR >", ">ULOQ"))):
        text[censored] = np.broadcast_to(np.where(instrument_style, *marks), conc.shape)[censored]
    first = text[early]
    extrapolated = (rng.random(first.shape) < 0.01) & (conc[early] >= lloq) & (conc[early] <= uloq)
    first[extrapolated] = "*" + first[extrapolated]
    first[rng.random(first.shape) < 0.01] = "n.d."
    text[early] = first
    table = pd.DataFrame(text, columns=list(CYTOKINES))
    table.insert(0, "sample_id", measured["sample_id"].to_numpy())
    table.to_csv(paths["cytokines"], index=False)
    limits = pd.DataFrame({"analyte": CYTOKINES, "lloq": lloq, "uloq": uloq})
    limits.to_csv(paths["cytokine_limits"], index=False, float_format="%.4g")


def _write_flow(path, patients, barcode, has, rng, planted, setting) -> None:
    """FlowJo-style table of population frequencies (% of parent), tab-separated, summary rows."""
    children = [(parent, child) for parent, kids in FLOW_POPULATIONS.items() for child in kids]
    names = [f"{parent}/{child}" for parent, child in children]
    signal = _assay_signal(
        patients, "flow", len(names), rng, planted, names,
        n_markers=5, effect=2.0, n_risk=2, setting=setting, site_scale=0.6,
    )  # fmt: skip
    rows = np.flatnonzero(has)
    columns = {}
    for parent, kids in FLOW_POPULATIONS.items():
        index = [names.index(f"{parent}/{kid}") for kid in kids]
        base = np.log(rng.dirichlet(np.full(len(kids) + 1, 3.0)))
        logits = np.column_stack([base[:-1] + 0.35 * signal[rows][:, index], np.full(len(rows), base[-1])])
        share = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        columns.update({names[j]: 100 * share[:, k] for k, j in enumerate(index)})
    table = pd.DataFrame(columns).round(2)[names]
    summary = pd.DataFrame([table.mean(), table.std()]).round(2)
    table = pd.concat([table, summary], ignore_index=True)
    table.columns = [name + FLOW_SUFFIX for name in names]
    table.insert(0, "Sample:", list(barcode.to_numpy()[rows]) + ["Mean", "SD"])
    table.to_csv(path, sep="\t", index=False)


#: The demo's patient-reported outcome instruments: items (the third fatigue item is reverse-coded) and range.
DEMO_INSTRUMENTS = {
    "fatigue": {"items": ["FAT1", "FAT2", "FAT3", "FAT4", "FAT5"], "reverse": ["FAT3"], "range": [1, 5]},
    "pain": {"items": ["PAIN1", "PAIN2", "PAIN3"], "reverse": [], "range": [0, 10]},
}
#: Latent shift (within-instrument SD) planted in each instrument: fatigue by endotype E3, pain by the failure risk factor.
QUESTIONNAIRE_EFFECTS = {"fatigue": ("endotype E3", 0.8), "pain": ("risk_factor", 0.5)}


def _write_questionnaire(path, patients: pd.DataFrame, rng: np.random.Generator) -> list[dict]:
    """Item responses of 75% of the patients (IDs are patient IDs), a few items skipped and about 1 in 200
    answers invalid (out of range or text); returns the planted effects."""
    n = len(patients)
    causes = {"endotype E3": (patients["endotype"] == "E3").to_numpy(float),
              "risk_factor": patients["risk_factor"].to_numpy()}  # fmt: skip
    columns = {"patient_id": patients["patient_id"].to_numpy()}
    for name, spec in DEMO_INSTRUMENTS.items():
        cause, effect = QUESTIONNAIRE_EFFECTS[name]
        latent = effect * causes[cause] + rng.normal(size=n)
        low, high = spec["range"]
        middle, spread = (low + high) / 2, (high - low) / 4
        for item in spec["items"]:
            sign = -1 if item in spec["reverse"] else 1
            value = np.clip(np.round(middle + spread * (sign * 0.8 * latent + rng.normal(0, 0.6, n))), low, high)
            columns[item] = value.astype(int).astype(str)
    table = pd.DataFrame(columns)
    items = [item for spec in DEMO_INSTRUMENTS.values() for item in spec["items"]]
    cells = table[items].to_numpy(object)
    draw = rng.random(cells.shape)
    cells[draw < 0.03] = ""
    cells[(draw >= 0.03) & (draw < 0.035)] = rng.choice(["6", "-1", "11", "three", "3-4"], int(((draw >= 0.03) & (draw < 0.035)).sum()))
    table[items] = cells
    table = table[rng.random(n) < 0.75]
    table.to_csv(path, index=False)
    return [{"assay": "questionnaire", "feature": name, "effect_on": cause, "effect": effect}
            for name, (cause, effect) in QUESTIONNAIRE_EFFECTS.items()]  # fmt: skip


#: eGeMAPS-style voice features (name, mean, SD) and those shifted by the failure risk factor (per SD).
VOICE_FEATURES = {"F0semitoneFrom27.5Hz_sma3nz_amean": (30.0, 4.0), "jitterLocal_sma3nz_amean": (0.025, 0.008),
                  "shimmerLocaldB_sma3nz_amean": (1.2, 0.3), "HNRdBACF_sma3nz_amean": (8.0, 2.5),
                  "loudness_sma3_amean": (0.9, 0.3), "alphaRatioV_sma3nz_amean": (-12.0, 4.0),
                  "hammarbergIndexV_sma3nz_amean": (20.0, 5.0), "MeanVoicedSegmentLengthSec": (0.25, 0.08)}  # fmt: skip
VOICE_EFFECTS = {"jitterLocal_sma3nz_amean": 0.5, "HNRdBACF_sma3nz_amean": -0.5}


def _write_voice(path, patients: pd.DataFrame, rng: np.random.Generator) -> list[dict]:
    """Two to four recordings for 60% of the patients, with their durations; 5% too short and 3% missing most
    features (both fail QC); returns the planted effects."""
    chosen = np.flatnonzero(rng.random(len(patients)) < 0.6)
    counts = rng.integers(2, 5, len(chosen))
    owner = np.repeat(chosen, counts)
    patient_level = rng.normal(size=(len(chosen), len(VOICE_FEATURES)))
    noise = rng.normal(0, 0.6, (len(owner), len(VOICE_FEATURES)))
    risk = patients["risk_factor"].to_numpy()[owner]
    columns = {"patient_id": patients["patient_id"].to_numpy()[owner],
               "recording": [f"rec{i + 1:05d}" for i in range(len(owner))],
               "duration_s": np.round(rng.uniform(4, 30, len(owner)), 1)}  # fmt: skip
    for j, (name, (mean, sd)) in enumerate(VOICE_FEATURES.items()):
        z = np.repeat(patient_level[:, j], counts) * 0.8 + noise[:, j] + VOICE_EFFECTS.get(name, 0.0) * risk
        columns[name] = np.round(mean + sd * z, 5)
    table = pd.DataFrame(columns)
    short = rng.random(len(table)) < 0.05
    table.loc[short, "duration_s"] = np.round(rng.uniform(0.3, 1.8, int(short.sum())), 1)
    broken = rng.random(len(table)) < 0.03
    table.loc[broken, list(VOICE_FEATURES)[1:]] = np.nan
    table.to_csv(path, index=False)
    return [{"assay": "voice", "feature": name, "effect_on": "risk_factor", "effect": effect}
            for name, effect in VOICE_EFFECTS.items()]  # fmt: skip


#: Disease activity at 12 months, lowest first, and its log cumulative odds per SD of the failure risk factor.
ACTIVITY_LEVELS, ACTIVITY_EFFECT = ("remission", "low", "moderate", "high"), 0.8


def _disease_activity(risk: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An ordinal disease-activity category per patient (proportional odds in the risk factor), 3% unknown."""
    latent = ACTIVITY_EFFECT * risk + rng.logistic(size=len(risk))
    activity = np.array(ACTIVITY_LEVELS, dtype=object)[np.digitize(latent, [-0.8, 0.6, 2.0])]
    activity[rng.random(len(risk)) < 0.03] = ""
    return activity


def _treatment_starts(n: int, rng: np.random.Generator) -> np.ndarray:
    """Treatment start dates (the index date) spread over 2022-2023, as YYYY-MM-DD."""
    days = rng.integers(0, 730, n).astype("timedelta64[D]")
    return np.datetime_as_string(np.datetime64("2022-01-01") + days, unit="D")


#: Wearable summaries planted (between-patient SD per unit): daily steps lower in endotype E2, the
#: heart-rate circadian amplitude lower with the failure risk factor.
WEARABLE_EFFECTS = {"steps_mean": ("endotype E2", -1.0), "heart_rate_amplitude": ("risk_factor", -0.5)}
#: Days written around each treatment start (the demo's baseline window is days -14 to -1).
WEARABLE_DAYS = np.arange(-17, 3)
#: Heart-rate epochs per day (every 15 minutes).
EPOCHS_PER_DAY = 96


def _write_wearable(path, patients: pd.DataFrame, rng: np.random.Generator) -> list[dict]:
    """Daily steps and heart rate every 15 minutes for 30% of the patients, around their treatment start.

    About 1 day in 7 is a non-wear day (4-8 hours of heart rate, steps cut short), other days lose
    a 1-3 hour block (charging), and about 1 value in 1,000 is impossible (heart rate 0 or 300,
    text, negative steps). Returns the planted effects.
    """
    chosen = np.flatnonzero(rng.random(len(patients)) < 0.3)
    n, n_days = len(chosen), len(WEARABLE_DAYS)
    causes = {"endotype E2": (patients["endotype"].to_numpy()[chosen] == "E2").astype(float),
              "risk_factor": patients["risk_factor"].to_numpy()[chosen]}  # fmt: skip
    shift = {feature: effect * causes[cause] for feature, (cause, effect) in WEARABLE_EFFECTS.items()}
    log_steps = np.log(7000) + 0.35 * (rng.normal(size=n) + shift["steps_mean"])
    amplitude = 9 + 2.5 * (0.8 * rng.normal(size=n) + shift["heart_rate_amplitude"])
    mesor, acrophase = rng.normal(72, 7, n), rng.normal(15, 1.2, n)
    starts = patients["treatment_start"].to_numpy()[chosen].astype("datetime64[D]")
    dates = starts[:, None] + WEARABLE_DAYS.astype("timedelta64[D]")
    hour = np.arange(EPOCHS_PER_DAY) * 24 / EPOCHS_PER_DAY
    worn = _wear_mask(rng, n, n_days, hour)
    heart = (mesor[:, None, None] + amplitude[:, None, None] * np.cos(2 * np.pi * (hour - acrophase[:, None, None]) / 24)
             + rng.normal(0, 5, worn.shape))  # fmt: skip
    weekend = (dates.astype("datetime64[D]").view("int64") - 4) % 7 >= 5  # 1970-01-01 was a Thursday
    steps = np.exp(log_steps[:, None] - 0.2 * weekend + rng.normal(0, 0.3, (n, n_days))) * np.minimum(1, worn.sum(2) / 64)
    who, day, epoch = np.nonzero(worn)
    minutes = (epoch * 24 * 60 // EPOCHS_PER_DAY).astype("timedelta64[m]")
    times = np.datetime_as_string(dates[who, day].astype("datetime64[m]") + minutes, unit="m")
    ids = patients["patient_id"].to_numpy()[chosen]
    table = pd.concat([
        pd.DataFrame({"patient_id": ids[who], "time": np.char.replace(times, "T", " "), "metric": "heart_rate",
                      "value": np.round(heart[who, day, epoch], 1)}),
        pd.DataFrame({"patient_id": np.repeat(ids, n_days), "time": np.datetime_as_string(dates.ravel(), unit="D"),
                      "metric": "steps", "value": np.round(steps.ravel())}),
    ]).sort_values(["patient_id", "time", "metric"], kind="stable")  # fmt: skip
    table["value"] = table["value"].map("{:g}".format).to_numpy(object)
    broken = np.flatnonzero(rng.random(len(table)) < 0.001)
    table.iloc[broken, 3] = np.where(table["metric"].to_numpy()[broken] == "steps", "-1",
                                     rng.choice(["0", "300", "--"], len(broken)))  # fmt: skip
    table.to_csv(path, index=False)
    return [{"assay": "wearable", "feature": feature, "effect_on": cause, "effect": effect}
            for feature, (cause, effect) in WEARABLE_EFFECTS.items()]  # fmt: skip


def _wear_mask(rng: np.random.Generator, n: int, n_days: int, hour: np.ndarray) -> np.ndarray:
    """Patients x days x epochs: worn or not (non-wear days keep a 4-8 hour block, other days lose 1-3 hours)."""
    nonwear = rng.random((n, n_days)) < 0.15
    block_start, block_hours = rng.uniform(6, 14, (n, n_days, 1)), rng.uniform(4, 8, (n, n_days, 1))
    gap_start, gap_hours = rng.uniform(0, 22, (n, n_days, 1)), rng.uniform(1, 3, (n, n_days, 1))
    in_block = (hour >= block_start) & (hour < block_start + block_hours)
    in_gap = (hour >= gap_start) & (hour < gap_start + gap_hours)
    return np.where(nonwear[:, :, None], in_block, ~in_gap)


def _write_rna(path, patients, barcode, has, n_genes, rng, planted, setting) -> list[str]:
    """RNA-seq counts, genes x samples (negative binomial, varying library sizes); returns the gene IDs."""
    gene_ids = [f"ENSG{j:011d}" for j in rng.choice(10**6, n_genes, replace=False)]
    signal = _assay_signal(
        patients, "rna", n_genes, rng, planted, gene_ids,
        n_markers=100, effect=1.7, n_risk=8, setting=setting,
    )  # fmt: skip
    rows = np.flatnonzero(has)
    base = rng.normal(3.5, 2.0, n_genes)
    base[rng.random(n_genes) < 0.03] = -6  # genes not expressed in blood
    library = rng.lognormal(np.log(20), 0.35, len(rows))
    mean = library[:, None] * np.exp(base + 0.35 * signal[rows])
    dispersion = 0.06 + 1.0 / np.maximum(mean, 1e-3)
    counts = rng.poisson(rng.gamma(1 / dispersion, mean * dispersion))
    table = pd.DataFrame(counts.T, columns=barcode.to_numpy()[rows])
    table.insert(0, "gene_name", [f"GENE{j}" for j in range(n_genes)])
    table.insert(0, "gene_id", gene_ids)
    table.to_csv(path, sep="\t", index=False)
    return gene_ids


def _write_gene_sets(path, planted: pd.DataFrame, gene_ids: list[str], rng: np.random.Generator) -> None:
    """GMT of the demo: per assay, endotype and direction, the planted genes (at most 30) diluted by 30%
    other genes; and 20 decoy sets of random genes. RNA genes by symbol (GENE<j>), proteins by Olink Assay."""
    n_proteins = 92 * len(OLINK_PANELS)
    names = {"rna": dict(zip(gene_ids, [f"GENE{j}" for j in range(len(gene_ids))])),
             "proteomics": dict(zip([f"OID{20001 + j}" for j in range(n_proteins)], _protein_names(n_proteins)))}  # fmt: skip
    lines = []
    for assay, endotype, sign in [(a, e, s) for a in names for e in ASSAY_ENDOTYPES[a] for s in (1, -1)]:
        rows = planted[(planted["assay"] == assay) & (planted["effect_on"] == f"endotype {endotype}")]
        genes = [names[assay][f] for f in rows.loc[np.sign(rows["effect"]) == sign, "feature"]][:30]
        others = sorted(set(names[assay].values()) - set(genes))
        genes += list(rng.choice(others, size=int(0.3 * len(genes) / 0.7), replace=False))
        direction = "UP" if sign > 0 else "DOWN"
        lines.append([f"PLANTED_{endotype}_{direction}_{assay.upper()}", f"demo: planted in endotype {endotype}, "
                      f"{direction.lower()}, {assay}, diluted 30%", *genes])  # fmt: skip
    every_gene = [name for assay in names for name in names[assay].values()]
    for k in range(20):
        genes = rng.choice(every_gene, size=int(rng.integers(15, 100)), replace=False)
        lines.append([f"DECOY_{k + 1:02d}", "demo: random genes", *genes])
    Path(path).write_text("".join("\t".join(line) + "\n" for line in lines))


def _genotypes(n_snps, n_patients, rng, planted):
    """Additive genotypes with bad SNPs, the bim table and the per-allele log hazard of each SNP."""
    maf = rng.uniform(0.03, 0.5, n_snps)
    kind = rng.choice(["good", "low_call", "hwe", "rare"], size=n_snps, p=[0.985, 0.006, 0.004, 0.005])
    maf[kind == "rare"] = 0.0005
    genotypes = rng.binomial(2, maf, size=(n_patients, n_snps)).astype(np.float32)
    hwe = np.flatnonzero(kind == "hwe")
    genotypes[:, hwe] = rng.choice([0.0, 2.0], size=(n_patients, len(hwe)))  # no heterozygotes
    missing_rate = np.where(kind == "low_call", 0.2, 0.003)
    genotypes[rng.random((n_patients, n_snps)) < missing_rate] = np.nan
    effect = np.zeros(n_snps)
    causal = rng.choice(np.flatnonzero((kind == "good") & (maf > 0.2)), size=5, replace=False)
    effect[causal] = 0.45
    chrom = np.sort(rng.choice(np.arange(1, 23), size=n_snps, p=_chromosome_weights()))
    pos = np.concatenate(
        [np.sort(rng.choice(2 * 10**8, (chrom == c).sum(), replace=False)) + 1 for c in range(1, 23)]
    )
    rsids = [f"rs{i}" for i in rng.choice(10**8, n_snps, replace=False)]
    alleles = rng.choice(list("ACGT"), size=(n_snps, 2))
    same = alleles[:, 0] == alleles[:, 1]
    alleles[same, 1] = np.where(alleles[same, 0] == "A", "G", "A")
    bim = pd.DataFrame(
        {"chrom": chrom, "snp": rsids, "cm": 0, "pos": pos, "a1": alleles[:, 0], "a2": alleles[:, 1]}
    )
    planted += [
        {"assay": "genotypes", "feature": rsids[j], "effect_on": "time_to_switch", "effect": 0.45}
        for j in causal
    ]
    return genotypes, bim, effect


def _chromosome_weights() -> np.ndarray:
    """Relative SNP density per autosome (roughly chromosome length)."""
    lengths = np.array([249, 242, 198, 190, 181, 171, 159, 145, 138, 134, 135,
                        133, 114, 107, 102, 90, 83, 80, 59, 64, 47, 51], float)  # fmt: skip
    return lengths / lengths.sum()


def _write_plink(prefix, genotypes, bim, barcode, has, rng) -> None:
    """PLINK 1 .bed/.bim/.fam, with reference samples that belong to no patient."""
    from bed_reader import to_bed

    rows = np.flatnonzero(has)
    references = np.array(["NA12878", "NA12891", "NA12892"])
    reference_genotypes = rng.binomial(2, 0.3, size=(len(references), genotypes.shape[1]))
    values = np.vstack([genotypes[rows], reference_genotypes.astype(np.float32)])
    iids = np.concatenate([barcode.to_numpy()[rows], references])
    properties = {
        "fid": iids,
        "iid": iids,
        "sex": np.zeros(len(iids), dtype=np.int32),
        "chromosome": bim["chrom"].astype(str).to_numpy(),
        "sid": bim["snp"].to_numpy(),
        "cm_position": bim["cm"].astype(float).to_numpy(),
        "bp_position": bim["pos"].to_numpy(),
        "allele_1": bim["a1"].to_numpy(),
        "allele_2": bim["a2"].to_numpy(),
    }
    to_bed(f"{prefix}.bed", values, properties=properties, count_A1=True, num_threads=1)
