"""Reading and validating config.yaml against the JSON schema, with messages users can act on."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import jsonschema
import yaml

from stratomics.errors import StratomicsInputError
from stratomics.kinds import KINDS
from stratomics.omop import DERIVED_SAMPLE_SHEET, duckdb_path, is_postgres, sample_sheet_path
from stratomics.outcome_types import OUTCOME_TYPES, outcome_type
from stratomics.stratify import HDBSCAN_SHARES, LEIDEN_RESOLUTIONS

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


def load_schema() -> dict:
    """The JSON schema of config.yaml, completed from the registries: the integration methods (and the default one),
    the outcome types, and the assay kinds with their own options (each described as "kind: ...", or "kind, kind: ..."
    when several kinds define it)."""
    from stratomics.integrate import DEFAULT_METHOD, METHODS

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    schema["properties"]["integrate"]["properties"]["method"].update(enum=list(METHODS), default=DEFAULT_METHOD)
    outcome = schema["properties"]["cohort"]["properties"]["outcomes"]["additionalProperties"]["properties"]
    outcome["type"]["enum"] = list(OUTCOME_TYPES)
    assay = schema["properties"]["assays"]["additionalProperties"]["properties"]
    assay["kind"]["enum"] = list(KINDS)
    owners: dict[str, list[str]] = {}
    for kind in KINDS.values():
        for option, fragment in kind.options.items():
            if option in assay and option not in owners:  # the base schema defines it
                continue
            owners.setdefault(option, []).append(kind.name)
            assay[option] = {**fragment, "description": f"{', '.join(owners[option])}: {fragment.get('description', '')}"}
    return schema


#: The key that turns a YAML config into a YTE template (Python evaluated by Snakemake).
YTE_KEY = "__use_yte__"


def read_config(path: str | Path) -> dict:
    """Read a YAML config file, naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise StratomicsInputError(f"{path}: config file not found.")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise StratomicsInputError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise StratomicsInputError(f"{path}: expected a mapping of keys (seed, cohort, assays).")
    if YTE_KEY in config:
        raise StratomicsInputError(
            f"{path}: sets {YTE_KEY}, which makes Snakemake evaluate the file as a YTE template: the Python "
            "in it runs on every snakemake call, even a dry run. A stratomics config is data: remove the key "
            "and write the values out."
        )
    return config


def _drop_removed_entries(config: dict) -> None:
    """Remove the outcomes and assays set to null: a later config file (``--configfile a.yaml b.yaml``)
    drops an entry of an earlier one that way."""
    for entries in (config.get("cohort", {}).get("outcomes"), config.get("assays")):
        for name in [name for name, spec in (entries or {}).items() if spec is None]:
            del entries[name]


def validate_config(config: dict, *, check_files: bool = True, buildable=()) -> dict:
    """Validate a config, fill in the schema's defaults and check the assay options and files.

    Parameters
    ----------
    config
        The parsed config.
    check_files
        Also check that every input file exists.
    buildable
        Paths that a workflow rule produces (the demo cohort), exempt from the file check.

    Returns
    -------
    A copy of the config with defaults filled in; outcomes and assays set to null are removed.
    """
    config = copy.deepcopy(config)
    _drop_removed_entries(config)
    schema = load_schema()
    validator = _validator_filling_defaults(schema)
    errors = sorted(  # misspelt keys first: they explain the other errors
        validator.iter_errors(config),
        key=lambda e: (e.validator != "additionalProperties", [str(p) for p in e.absolute_path]),
    )
    if errors:
        raise StratomicsInputError(_describe_schema_error(errors[0], schema))
    _check_sample_source(config["cohort"])
    _check_visits(config["cohort"])
    for name, spec in config["assays"].items():
        accepted = KINDS[spec["kind"]].accepted_options
        unknown = set(spec) - {"kind", "path"} - accepted
        absent = [option for option in KINDS[spec["kind"]].required_options if option not in spec]
        if absent:
            raise StratomicsInputError(
                f"config: assays.{name} (kind '{spec['kind']}') needs the option {absent[0]}: "
                f"{KINDS[spec['kind']].options[absent[0]].get('description', '')}"
            )
        if unknown:
            option = sorted(unknown)[0]
            raise StratomicsInputError(
                f"config: assays.{name}.{option} does not apply to kind '{spec['kind']}'. "
                f"Options of this kind: {', '.join(sorted(accepted))}."
            )
    if config["mode"] == "site" and not config["federated"].get("model_sha256"):
        raise StratomicsInputError(
            "config: mode site needs federated.model_sha256: the SHA-256 the coordinating centre sent with the "
            "model (the first word of model_for_sites.zip.sha256), so that the site loads only the model the "
            "centre made."
        )  # fmt: skip
    for section in ("integrate", "predict"):
        for name in config[section].get("assays", []):
            if name not in config["assays"]:
                close = difflib.get_close_matches(name, list(config["assays"]), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise StratomicsInputError(
                    f"config: {section}.assays names '{name}', which is not an assay of this config "
                    f"(assays: {', '.join(config['assays'])}).{hint}"
                )
            if config["assays"][name]["kind"] == "genotypes":
                raise StratomicsInputError(
                    f"config: {section}.assays names '{name}', a genotypes assay: SNPs are scanned one by one "
                    "from the .bed (associate.genotype_chunks), not integrated nor used as predictors. Remove it "
                    f"from {section}.assays."
                )
    if check_files:
        exempt = {str(Path(path)) for path in [*buildable, DERIVED_SAMPLE_SHEET]}
        for key, path in input_files(config).items():
            if str(Path(path)) not in exempt and not Path(path).is_file():
                raise StratomicsInputError(
                    f"config: {key} points to '{path}', which does not exist (working directory "
                    f"{Path.cwd()}). Fix the path; relative paths resolve against the working "
                    "directory."
                )
    return config


def input_files(config: dict) -> dict[str, str]:
    """Every input file a config names, keyed by where it is named (e.g. "assays.rna.path")."""
    cohort = config["cohort"]
    sheet = sample_sheet_path(cohort)
    files = {"cohort.samples": sheet} if sheet else {}
    if cohort.get("omop") and not is_postgres(cohort["omop"]["url"]):
        files["cohort.omop.url"] = duckdb_path(cohort["omop"]["url"])
    if cohort.get("sample_map"):
        files["cohort.sample_map"] = cohort["sample_map"]
    for name, spec in config["assays"].items():
        if spec["kind"] == "genotypes":
            prefix = str(spec["path"]).removesuffix(".bed")
            files.update({f"assays.{name}.path ({ext})": prefix + ext for ext in (".bed", ".bim", ".fam")})
        else:
            files[f"assays.{name}.path"] = spec["path"]
        for option in ("limits", "hierarchy"):
            if spec.get(option):
                files[f"assays.{name}.{option}"] = spec[option]
    if config.get("enrichment", {}).get("gene_sets"):
        files["enrichment.gene_sets"] = config["enrichment"]["gene_sets"]
    return files


def _check_visits(cohort: dict) -> None:
    """cohort.visits, when given, starts with the baseline visit (cohort.visit) and names each visit once."""
    visits = cohort["visits"]
    if visits and visits[0].strip().casefold() != cohort["visit"].strip().casefold():
        raise StratomicsInputError(
            f"config: cohort.visits starts with '{visits[0]}', but the baseline (cohort.visit) is '{cohort['visit']}'. "
            "List the visits in time order, the baseline first."
        )
    if len({v.strip().casefold() for v in visits}) < len(visits):
        raise StratomicsInputError(f"config: cohort.visits names a visit twice ({', '.join(visits)}).")


def _check_sample_source(cohort: dict) -> None:
    """Exactly one of cohort.samples (a file) and cohort.omop (a CDM database) gives the patients."""
    if bool(cohort.get("samples")) == bool(cohort.get("omop")):
        given = "both" if cohort.get("samples") else "neither"
        raise StratomicsInputError(
            f"config: cohort has {given} of samples and omop. Give the sample sheet file as cohort.samples, or an "
            "OMOP CDM database as cohort.omop (then set samples: null when a second config file overrides one)."
        )


def _validator_filling_defaults(schema: dict):
    """A JSON Schema 2020-12 validator that also writes each property's default into the instance."""
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for key, spec in properties.items():
                if "default" in spec:
                    instance.setdefault(key, copy.deepcopy(spec["default"]))
        yield from base.VALIDATORS["properties"](validator, properties, instance, subschema)

    extended = jsonschema.validators.extend(base, {"properties": set_defaults})
    return extended(schema)


def _describe_schema_error(error: jsonschema.ValidationError, schema: dict) -> str:
    """Turn a schema error into one sentence naming the key, the value and a fix."""
    where = ".".join(str(part) for part in error.absolute_path) or "top level"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key = unknown[0]
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"Did you mean '{close[0]}'?" if close else f"Known keys: {', '.join(allowed)}."
        return f"config: unknown key '{key}' in {where}. {hint}"
    if error.validator == "required":
        return f"config: {where} is missing a required key: {error.message}."
    if error.validator == "enum":
        choices = ", ".join(str(choice) for choice in error.validator_value)
        return f"config: {where} is '{error.instance}', which is not one of: {choices}."
    return f"config: {where}: {error.message}."


def resolve(config: dict) -> dict:
    """Every setting derived from a validated config, computed once for the package and the rules.

    Parameters
    ----------
    config
        A config returned by :func:`validate_config`.

    Returns
    -------
    A dict with the assays per step (``feature_assays``, ``genotype_assays``, ``integrated_assays``,
    ``predict_assays``), the covariates per use (``associate_covariates``, also used by the subgroup
    tests and the site exports, so pooled and federated effects are adjusted alike; it holds the
    batch whenever an assay is batch-corrected), the outcomes by
    use (``outcomes``, ``survival_outcomes``, ``predict_outcomes``, ``binary_outcome_columns``: the groupings
    of the longitudinal tests besides the subgroups), ``predict_clinical``,
    ``table1_columns`` (survival outcomes get their own rows, see
    :func:`stratomics.outcomes.table_one`), ``colour_by`` (embedding colours), ``n_stratify_settings`` and
    ``subgroup_space`` (keyword arguments of :func:`stratomics.subgroups.integrate_cohort`: the
    covariates the factors are adjusted for, default the cohort covariates and the batch, and
    whether only factors with cluster structure are kept).
    """
    cohort, outcomes = config["cohort"], config["cohort"]["outcomes"]
    batch = cohort.get("batch")
    genotype_assays = [name for name, spec in config["assays"].items() if spec["kind"] == "genotypes"]
    feature_assays = [name for name in config["assays"] if name not in genotype_assays]
    by_default = [name for name in feature_assays if KINDS[config["assays"][name]["kind"]].integrated_by_default]
    integrated = config["integrate"].get("assays", by_default)
    types = {name: outcome_type(spec, name) for name, spec in outcomes.items()}
    outcome_columns = [column for name, spec in outcomes.items() if not types[name].time_to_event
                       for column in types[name].columns(name, spec)]  # fmt: skip
    colour_by = config.get("figures", {}).get(
        "colour_by", [batch, *config["associate"]["marker_groups"]]
    )
    return {
        "feature_assays": feature_assays,
        "genotype_assays": genotype_assays,
        "integrated_assays": integrated,
        "predict_assays": config["predict"].get("assays", integrated),
        "associate_covariates": _associate_covariates(config),
        "batch": batch,
        "outcomes": list(outcomes),
        "survival_outcomes": [name for name, otype in types.items() if otype.time_to_event],
        "predict_outcomes": [name for name, otype in types.items() if otype.predictable],
        "binary_outcome_columns": [otype.columns(name, outcomes[name])[0] for name, otype in types.items()
                                   if otype.name == "binary"],
        "predict_clinical": config["predict"].get("clinical", [c for c in cohort["covariates"] if c != batch]),
        "table1_columns": list(dict.fromkeys(
            config.get("table1", {}).get("columns", cohort["covariates"]) + outcome_columns
        )),
        "colour_by": list(dict.fromkeys(["subgroup", *(c for c in colour_by if c), "subgroup_confidence"])),
        "n_stratify_settings": n_stratify_settings(config["stratify"]),
        "subgroup_space": {
            "adjust_for": config["stratify"].get("adjust_for", list(dict.fromkeys([*cohort["covariates"], batch] if batch
                                                                                  else cohort["covariates"]))),
            "select_factors": config["stratify"]["factors"] == "structured",
            "min_patients": cohort["min_patients_per_assay"],
        },
    }  # fmt: skip


def _associate_covariates(config: dict) -> list[str]:
    """Covariates of the association tests; the batch is one of them whenever an assay is batch-corrected.

    The tests read the values before correction (:func:`stratomics.associate.tested_layer`), so the
    batch has to be in their model; a site analysis (mode site) has a single batch and leaves it out.
    """
    covariates = list(config["associate"].get("covariates", config["cohort"]["covariates"]))
    batch = config["cohort"].get("batch")
    corrected = any(spec.get("batch_correction", config["preprocess"]["batch_correction"]) != "none"
                    for spec in config["assays"].values() if spec["kind"] != "genotypes")  # fmt: skip
    if batch and corrected and batch not in covariates and config.get("mode", "full") != "site":
        covariates.append(batch)
    return covariates


def n_stratify_settings(options: dict) -> int:
    """Consensus jobs: one per k (k-means, Gaussian mixture), resolution (Leiden) or minimum size (HDBSCAN)."""
    if options["algorithm"] == "leiden":
        return len(set(options.get("resolutions", LEIDEN_RESOLUTIONS)))
    if options["algorithm"] == "hdbscan":
        return len(set(options.get("min_cluster_sizes", HDBSCAN_SHARES)))
    return len(set(range(options["k_min"], options["k_max"] + 1)) | {options.get("k", options["k_min"])})
