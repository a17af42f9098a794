# Configuration: the default run is config.yaml (the demo cohort); --configfile replaces it.
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from stratomics.cohort import VISITS_FILE, ingest_settings
from stratomics.config import input_files, resolve, validate_config
from stratomics.omop import DERIVED_SAMPLE_SHEET, EXCLUDED_PATIENTS, EXTRACTION_REPORT, duckdb_path, is_postgres
from stratomics.preprocess import clinical_columns, preprocess_options
from stratomics.errors import StratomicsInputError
from stratomics.simulate import DEMO_FILES
from stratomics.tables import REPORT_ROWS

min_version("8.0")


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


DEMO_DIR = "results/demo"
DEMO_OUTPUTS = [f"{DEMO_DIR}/{name}" for name in DEMO_FILES.values()]

MODE = config.get("mode", "full")
try:
    # the coordinating centre (meta mode) has no patient files
    config.update(validate_config(config, buildable=DEMO_OUTPUTS, check_files=MODE != "meta"))
    if MODE == "site" and not config.get("site"):
        raise StratomicsInputError("mode site needs the site's name: --config mode=site site=LUX")
    if MODE == "meta" and not config["federated"]["exports"]:
        raise StratomicsInputError(
            "mode meta needs federated.exports in the config: site name -> the folder each site sent"
        )
except StratomicsInputError as err:
    sys.exit(f"stratomics: {err}")

ASSAYS = list(config["assays"])
INPUT_FILES = list(input_files(config).values())


wildcard_constraints:
    assay="|".join(ASSAYS),

# Every derived setting (assays per step, covariates, outcomes by use, ...) is computed once, in the package.
RESOLVED = resolve(config)
# Without an assay to integrate (e.g. genotypes only) there are no subgroups, and nothing that builds on them.
SUBGROUPS = bool(RESOLVED["integrated_assays"])
if MODE == "full" and not SUBGROUPS:
    print("stratomics: no assay to integrate (genotypes are scanned, not integrated): subgroups, their outcome "
          "tests and figures, biomarker and marker tests, prediction and the model for sites are not applicable; "
          "running ingest, preprocessing, QC and the genotype scan.", file=sys.stderr)  # fmt: skip

# Steps that spread their work over processes (integration, leave-one-site-out, predictions) take 2 threads;
# on a machine of fewer than 4 cores they take 1: a 2-thread job waits for both cores while 1-thread jobs keep
# one busy (the demo's integration waited 130 s on 2 cores), and two 1-thread ones run side by side instead.
# A cluster run (no --cores total) keeps 2. Priorities: the chain to the predictions first (30, 25), then what the
# paper figures need (20, 10), so that the figures do not wait for the last QC panel.
try:
    PARALLEL_THREADS = 1 if workflow.cores < 4 else 2
except WorkflowError:
    PARALLEL_THREADS = 2
