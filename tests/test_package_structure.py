"""One public-API convention across the package (as scanpy's tests/test_package_structure.py)."""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import stratomics

SOURCE = Path(stratomics.__file__).parent
#: Functions from before the convention that still take more than 3 positional parameters; the
#: list may only shrink (a new function takes its options keyword-only).
LEGACY_POSITIONAL = {
    "stratomics.associate.outcome_data", "stratomics.associate.outcome_biomarkers",
    "stratomics.associate.cluster_markers", "stratomics.associate.markers_of_groups",
    "stratomics.associate.linear_association", "stratomics.associate.genotype_scan",
    "stratomics.associate.cox.fit_cox_predictor", "stratomics.associate.genetic.scan_snps",
    "stratomics.cohort.map_samples", "stratomics.cohort.assay_to_anndata", "stratomics.figures.consensus_and_selection",
    "stratomics.integrate.snf.kernel", "stratomics.predict.evaluate_outcome",
    "stratomics.prediction_metrics.survival_metrics",
}  # fmt: skip


def public_functions():
    for module_info in pkgutil.walk_packages(stratomics.__path__, "stratomics."):
        module = importlib.import_module(module_info.name)
        for name, function in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(function) and function.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", function


def test_every_public_function_has_a_docstring_and_at_most_three_positional_parameters():
    functions = dict(public_functions())
    assert len(functions) > 100
    undocumented = [name for name, function in functions.items() if not (function.__doc__ or "").strip()]
    assert not undocumented
    crowded = set()
    for name, function in functions.items():
        kinds = [p.kind for p in inspect.signature(function).parameters.values()]
        if sum(kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for kind in kinds) > 3:
            crowded.add(name)
    assert crowded <= LEGACY_POSITIONAL, sorted(crowded - LEGACY_POSITIONAL)
    assert LEGACY_POSITIONAL <= crowded, sorted(LEGACY_POSITIONAL - crowded)  # a fixed function leaves the list


def test_no_module_imports_a_private_name_of_another():
    offending = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stratomics"):
                offending += [f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
    assert not offending
