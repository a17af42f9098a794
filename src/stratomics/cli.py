"""The ``stratomics`` command line: simulate the demo cohort, validate a config, list the assay kinds, assign
subgroups, predict risk."""

from __future__ import annotations

import argparse
import logging
import sys

from stratomics.errors import StratomicsInputError
from stratomics.simulate import SCENARIOS
from stratomics.tables import write_table


def _simulate(args: argparse.Namespace) -> None:
    from stratomics.simulate import simulate_cohort

    paths = simulate_cohort(args.out, n_patients=args.n_patients, n_snps=args.n_snps,
                            n_genes=args.n_genes, scenario=args.scenario, seed=args.seed)  # fmt: skip
    print(f"wrote the demo cohort ({args.n_patients} patients, scenario {args.scenario}) to {args.out}: "
          f"{len(paths)} files")  # fmt: skip


def _validate_config(args: argparse.Namespace) -> None:
    from stratomics.config import read_config, validate_config

    config = validate_config(read_config(args.config), check_files=not args.skip_files)
    assays = ", ".join(f"{name} ({spec['kind']})" for name, spec in config["assays"].items())
    print(f"{args.config}: valid; assays: {assays}")


def _kinds(args: argparse.Namespace) -> None:
    from stratomics.config import load_schema
    from stratomics.kinds import KINDS

    described = load_schema()["properties"]["assays"]["additionalProperties"]["properties"]
    for kind in KINDS.values():
        print(f"{kind.name}")
        for option in sorted(kind.accepted_options):
            print(f"  {option}: {described[option].get('description', '')}")


def _assign(args: argparse.Namespace) -> None:
    import mudata as md

    from stratomics.subgroups import assign_patients, load_model

    model = load_model(args.model, sha256=args.sha256, allow_pickle=args.allow_pickle)
    table = assign_patients(model, md.read_h5mu(args.cohort))
    write_table(table, args.out)
    assigned = (table["subgroup"] != "").sum()
    print(f"assigned {assigned} of {len(table)} patients to subgroups: {args.out}")


def _predict(args: argparse.Namespace) -> None:
    import mudata as md

    from stratomics.predict import predict_patients
    from stratomics.subgroups import load_model

    signatures = load_model(args.signature, sha256=args.sha256, allow_pickle=args.allow_pickle)
    subgroups = load_model(args.subgroups, allow_pickle=args.allow_pickle) if args.subgroups else None
    table = predict_patients(signatures, md.read_h5mu(args.cohort), subgroup_model=subgroups)
    write_table(table, args.out)
    print(f"risk of {', '.join(signatures.signatures)} for {len(table)} patients: {args.out}")


def _model_file_options(command: argparse.ArgumentParser, model_option: str) -> None:
    """--sha256 (the hash the sender gave for the model file) and --allow-pickle (older joblib models)."""
    command.add_argument("--sha256", help=f"expected SHA-256 of the {model_option} file (refused when it differs)")
    command.add_argument("--allow-pickle", action="store_true",
                         help="also load joblib pickles of older versions; a pickle runs code when loaded, so only "
                              "for files you made yourself")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per task."""
    parser = argparse.ArgumentParser(prog="stratomics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser("simulate", help="write the synthetic demo cohort")
    simulate.add_argument("--out", default="results/demo", help="output folder")
    simulate.add_argument("--n-patients", type=int, default=800)
    simulate.add_argument("--n-snps", type=int, default=20_000)
    simulate.add_argument("--n-genes", type=int, default=2_000)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--scenario", default="realistic", choices=list(SCENARIOS), help="difficulty (stratomics.simulate.SCENARIOS)")  # fmt: skip
    simulate.set_defaults(run=_simulate)
    validate = commands.add_parser("validate-config", help="check a config.yaml and its input files")
    validate.add_argument("config", help="path to the config file")
    validate.add_argument("--skip-files", action="store_true", help="do not check that input files exist")
    validate.set_defaults(run=_validate_config)
    kinds = commands.add_parser("kinds", help="list the assay kinds and the options each accepts")
    kinds.set_defaults(run=_kinds)
    assign = commands.add_parser("assign", help="place the patients of a preprocessed cohort into saved subgroups")
    assign.add_argument("--model", default="results/stratify/model.zip", help="saved subgroup model")
    assign.add_argument("--cohort", required=True, help="preprocessed cohort (.h5mu) of the new patients")
    assign.add_argument("--out", default="assignments.tsv", help="output table")
    _model_file_options(assign, "--model")
    assign.set_defaults(run=_assign)
    predict = commands.add_parser("predict", help="risk of each outcome for new patients from the saved signature")
    predict.add_argument("--signature", default="results/predict/signature.zip", help="saved signature")
    predict.add_argument("--cohort", required=True, help="preprocessed cohort (.h5mu) of the new patients")
    predict.add_argument("--subgroups", help="saved subgroup model, when the signature uses subgroups")
    predict.add_argument("--out", default="risk.tsv", help="output table")
    _model_file_options(predict, "--signature")
    predict.set_defaults(run=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; input problems print one message and return 1."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except StratomicsInputError as err:
        print(f"stratomics: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
