"""Config validation: schema defaults, misspelt keys, kinds, options and files."""

import copy
from pathlib import Path

import pytest

from conftest import demo_config
from stratomics.cli import main
from stratomics.config import read_config, validate_config
from stratomics.errors import StratomicsInputError
from stratomics.integrate import DEFAULT_METHOD
from stratomics.simulate import DEMO_FILES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(small_demo):
    return copy.deepcopy(demo_config(small_demo[0]))


def test_defaults_are_filled_in(config):
    validated = validate_config(config)
    assert validated["seed"] == 0 and validated["cohort"]["visit"] == "baseline"
    assert validated["preprocess"] == {"batch_correction": "none", "combat_covariates": []}
    assert validated["cohort"]["id_column"] == "patient_id"
    config.setdefault("integrate", {}).pop("method", None)  # the library's default method is the workflow's
    assert validate_config(config)["integrate"]["method"] == DEFAULT_METHOD == "mofa"


def test_misspelt_key_suggests_the_right_one(config):
    config["cohort"]["covariate"] = config["cohort"].pop("covariates")
    with pytest.raises(StratomicsInputError, match="unknown key 'covariate' in cohort. Did you mean 'covariates'"):
        validate_config(config)


def test_unknown_kind_lists_the_kinds(config):
    config["assays"]["rna"]["kind"] = "rnaseq"
    with pytest.raises(StratomicsInputError, match="assays.rna.kind is 'rnaseq', which is not one of: olink_npx"):
        validate_config(config)


def test_option_of_another_kind_is_rejected(config):
    config["assays"]["rna"]["min_maf"] = 0.05
    with pytest.raises(StratomicsInputError, match="assays.rna.min_maf does not apply to kind 'rna_counts'"):
        validate_config(config)


def test_missing_file_is_named_with_its_key(config):
    config["assays"]["flow"]["path"] = "nowhere/flow.tsv"
    with pytest.raises(StratomicsInputError, match="assays.flow.path points to 'nowhere/flow.tsv'"):
        validate_config(config)
    assert validate_config(config, check_files=False)["assays"]["flow"]["path"] == "nowhere/flow.tsv"


def test_missing_plink_member_is_named(config, tmp_path):
    config["assays"]["genotypes"]["path"] = str(tmp_path / "g")
    (tmp_path / "g.bed").write_bytes(b"")
    with pytest.raises(StratomicsInputError, match=r"assays.genotypes.path \(.bim\)"):
        validate_config(config)


def test_the_default_config_is_valid_and_its_inputs_are_the_demo_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fresh clone: the demo files are not written yet
    config = read_config(ROOT / "config.yaml")
    buildable = [f"results/demo/{name}" for name in DEMO_FILES.values()]
    validated = validate_config(config, buildable=buildable)
    assert validated["preprocess"]["batch_correction"] == "combat"
    with pytest.raises(StratomicsInputError, match="does not exist"):
        validate_config(config, buildable=buildable[:1])


def test_cli_validate_config_reports_errors_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config.yaml").read_text().replace("cohort:", "cohrt:"))
    assert main(["validate-config", str(bad), "--skip-files"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stratomics: config: unknown key 'cohrt'") and "Traceback" not in err
    assert main(["validate-config", str(ROOT / "config.yaml"), "--skip-files"]) == 0
    assert "valid; assays: proteomics (olink_npx)" in capsys.readouterr().out


def test_cli_simulate_writes_a_cohort_that_validates(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["simulate", "--out", str(out), "--n-patients", "30", "--n-snps", "150",
                 "--n-genes", "60", "--seed", "2"]) == 0  # fmt: skip
    assert "30 patients" in capsys.readouterr().out
    assert len((out / "samples.csv").read_text().splitlines()) == 31
    validate_config(demo_config(out))


def test_integrating_an_unknown_assay_is_an_error(config):
    config["integrate"] = {"assays": ["proteomics", "rnaseq"]}
    with pytest.raises(StratomicsInputError, match="integrate.assays names 'rnaseq'.*Did you mean 'rna'"):
        validate_config(config)


@pytest.mark.parametrize("section", ["integrate", "predict"])
def test_genotypes_cannot_be_integrated_nor_predictors(config, section):
    config[section] = {"assays": ["proteomics", "genotypes"]}
    with pytest.raises(StratomicsInputError, match=f"{section}.assays names 'genotypes', a genotypes assay"):
        validate_config(config)


def test_predicting_from_an_unknown_assay_is_an_error(config):
    config["predict"] = {"assays": ["protemics"]}
    with pytest.raises(StratomicsInputError, match="predict.assays names 'protemics'.*Did you mean 'proteomics'"):
        validate_config(config)


def test_resolve_derives_each_setting_once_from_the_config(config):
    from stratomics.config import resolve

    config["associate"] = {"marker_groups": ["disease"]}
    resolved = resolve(validate_config(config))
    assert resolved["genotype_assays"] == ["genotypes"]
    assert resolved["integrated_assays"] == resolved["predict_assays"] == ["proteomics", "cytokines", "flow", "rna"]
    assert resolved["feature_assays"] == ["proteomics", "cytokines", "flow", "rna", "questionnaire", "voice", "wearable"]  # tested,
    # not integrated
    assert resolved["associate_covariates"] == ["age", "sex", "site", "disease"]
    assert resolved["predict_clinical"] == ["age", "sex", "disease"]  # the batch is not a predictor
    assert resolved["survival_outcomes"] == ["time_to_switch"]
    assert resolved["table1_columns"] == ["age", "sex", "site", "disease", "failure_12m", "activity_12m"]
    assert resolved["colour_by"] == ["subgroup", "site", "disease", "subgroup_confidence"]
    assert resolved["n_stratify_settings"] == 7  # k = 2..8
    assert resolved["subgroup_space"] == {"adjust_for": ["age", "sex", "site", "disease"], "select_factors": True,
                                         "min_patients": 10}


def test_resolve_of_a_cohort_without_batch_genotypes_or_demo_columns(config):
    from stratomics.config import resolve

    del config["assays"]["genotypes"], config["cohort"]["batch"]
    config["cohort"]["covariates"] = ["age"]
    config["cohort"]["outcomes"] = {"os": {"type": "survival", "time": "os_days", "event": "dead"}}
    config["table1"] = {"columns": ["age", "bmi"]}
    config["stratify"] = {"algorithm": "leiden", "resolutions": [0.5, 1.0]}
    resolved = resolve(validate_config(config))
    assert resolved["genotype_assays"] == [] and resolved["batch"] is None
    assert resolved["colour_by"] == ["subgroup", "subgroup_confidence"]
    assert resolved["table1_columns"] == ["age", "bmi"]  # the survival outcome has rows of its own
    assert resolved["predict_outcomes"] == ["os"] and resolved["n_stratify_settings"] == 2
    assert resolved["subgroup_space"] == {"adjust_for": ["age"], "select_factors": True, "min_patients": 10}
    config["stratify"].update(adjust_for=[], factors="all")
    assert resolve(validate_config(config))["subgroup_space"] == {"adjust_for": [], "select_factors": False,
                                                                   "min_patients": 10}


def test_tests_model_the_batch_when_assays_are_batch_corrected(config):
    from stratomics.config import resolve

    config["cohort"]["covariates"] = ["age"]
    assert resolve(validate_config(config))["associate_covariates"] == ["age"]  # no correction
    config["preprocess"] = {"batch_correction": "combat"}
    assert resolve(validate_config(config))["associate_covariates"] == ["age", "site"]
    config.update(mode="site", site="LUX", federated={"model_sha256": "ab" * 32})  # one site: nothing to model
    assert resolve(validate_config(config))["associate_covariates"] == ["age"]


def test_site_mode_needs_the_hash_of_the_shipped_model(config):
    config.update(mode="site", site="LUX")
    with pytest.raises(StratomicsInputError, match="mode site needs federated.model_sha256"):
        validate_config(config)
    config["federated"] = {"model_sha256": "not a hash"}
    with pytest.raises(StratomicsInputError, match="model_sha256"):
        validate_config(config)


def test_a_config_that_would_run_code_is_refused_with_the_reason(tmp_path):
    marker = tmp_path / "ran"
    template = tmp_path / "template.yaml"
    template.write_text(f"__use_yte__: true\nseed: ?(__import__('pathlib').Path('{marker}').touch())\n")
    with pytest.raises(StratomicsInputError, match="sets __use_yte__.*Python in it runs on every snakemake call"):
        read_config(template)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(StratomicsInputError, match="tagged.yaml: not valid YAML"):
        read_config(tagged)  # the safe loader knows no Python tags
    assert not marker.exists()


def test_an_outcome_or_assay_set_to_null_by_a_later_config_file_is_removed(tmp_path):
    config = demo_config(tmp_path)
    config["cohort"]["outcomes"]["activity_12m"] = None
    config["assays"]["wearable"] = None
    checked = validate_config(config, check_files=False)
    assert "activity_12m" not in checked["cohort"]["outcomes"] and "failure_12m" in checked["cohort"]["outcomes"]
    assert "wearable" not in checked["assays"] and "voice" in checked["assays"]
