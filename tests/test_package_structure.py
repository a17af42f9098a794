"""One public-API convention across the package (as scanpy's tests/test_package_structure.py)."""

import ast
import graphlib
import importlib
import inspect
import pkgutil
from pathlib import Path

import stratomics

SOURCE = Path(stratomics.__file__).parent
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
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    crowded = [name for name, function in functions.items()
               if sum(p.kind in positional for p in inspect.signature(function).parameters.values()) > 3]  # fmt: skip
    assert not crowded  # the data first, options keyword-only


def test_no_module_imports_a_private_name_of_another():
    offending = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stratomics"):
                offending += [f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
    assert not offending


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_modules_import_each_other_without_a_cycle():
    modules = {module_name(path): path for path in SOURCE.rglob("*.py")}
    imports = {name: set() for name in modules}
    for name, path in modules.items():  # every import, function-level ones included
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stratomics"):
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                imports[name] |= submodules or {node.module}
    assert imports["stratomics.associate.linear"] == {"stratomics.associate.moments", "stratomics.associate.prior"}
    graphlib.TopologicalSorter(imports).prepare()  # raises CycleError on a cycle
