"""Model files that hold data only: a zip of a JSON tree and NumPy arrays, read without running code.

A pickle (joblib) runs whatever code its author put in it when it is loaded, so a subgroup model or
a signature received from another site could take over the receiving machine. The saved models are
written here instead as ``schema.json`` (the object tree: numbers, text, lists, dicts, pandas
tables and objects of the classes in :data:`ALLOWED_CLASSES`, by name, with their attributes) and
one ``.npy`` file per array (read with ``allow_pickle=False``). Loading rebuilds only the allowed
classes, by setting their attributes; any other type in the file is refused. The writer records
the file's SHA-256 next to it (``<file>.sha256``); a receiver checks the hash that the sender gave
it through another channel (``federated.model_sha256``, ``--sha256``), which proves that the file
is the one sent. Archive entries carry a fixed date, so a rerun writes identical bytes.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError

FORMAT = "stratomics-model/1"
#: The classes a model file may hold (module and qualified name); nothing else is rebuilt.
ALLOWED_CLASSES = frozenset({
    "stratomics.subgroups.SubgroupModel", "stratomics.stratify.Stratification", "stratomics.stratify.CentroidModel",
    "stratomics.subgroup_space.SubgroupSpace", "stratomics.membership.Membership",
    "stratomics.membership.GaussianDiscriminant",
    "stratomics.integrate.mofa.MofaModel", "stratomics.integrate.mofa.MofaView",
    "stratomics.integrate.mfa.IntegrationModel", "stratomics.integrate.mfa.BlockModel",
    "stratomics.predict.Signatures", "stratomics.predict.Signature", "stratomics.predict.Screen",
    "stratomics.predict.MedianImputer",
    "stratomics.outcome_types.OutcomeType",
    "sklearn.cluster._kmeans.KMeans", "sklearn.mixture._gaussian_mixture.GaussianMixture",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler", "sklearn.impute._base.SimpleImputer",
    "sklearn.linear_model._logistic.LogisticRegression", "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
    "sksurv.linear_model.coxph.BreslowEstimator", "sksurv.functions.StepFunction",
})  # fmt: skip
#: Classes that model files of earlier stratomics versions held, and what replaced them.
RETIRED_CLASSES = {
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis": "the membership discriminants of stratomics "
    "before December 2026 (now Gaussian discriminants of soft memberships)",
}
#: Attributes that describe the machine a model was fitted on, not the model (scikit-learn's k-means
#: records the fitting machine's thread count): not written, so the file does not depend on the
#: machine, and set to these values on loading.
MACHINE_ATTRIBUTES = {"sklearn.cluster._kmeans.KMeans": {"_n_threads": 1}}
_FIXED_DATE = (2000, 1, 1, 0, 0, 0)
_ZIP_MAGIC = b"PK\x03\x04"


def save_model_file(model, path: str | Path) -> str:
    """Write ``model`` as a data-only model file and its SHA-256 to ``<path>.sha256``.

    Parameters
    ----------
    model
        An object made of the allowed classes, numbers, text, containers, arrays and pandas tables.
    path
        The file to write.

    Returns
    -------
    The file's SHA-256 (hexadecimal).
    """
    arrays: list[np.ndarray] = []
    tree = {"format": FORMAT, "model": _encode(model, arrays)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _write_entry(archive, "schema.json", json.dumps(tree, sort_keys=True).encode())
        for index, array in enumerate(arrays):
            content = io.BytesIO()
            np.save(content, array, allow_pickle=False)
            _write_entry(archive, f"arrays/{index}.npy", content.getvalue())
    data = buffer.getvalue()
    Path(path).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    Path(f"{path}.sha256").write_text(f"{digest}  {Path(path).name}\n")
    return digest


def load_model_file(path: str | Path, *, sha256: str | None = None):
    """Read a data-only model file, checking its SHA-256 when one is given.

    Parameters
    ----------
    path
        A file written by :func:`save_model_file`.
    sha256
        The hash the sender gave (hexadecimal); the file is refused when it differs.

    Returns
    -------
    The model.

    Raises
    ------
    StratomicsInputError
        When the hash differs, the file is a pickle or not a model file, or it names a class that
        model files may not hold.
    """
    check_sha256(path, sha256)
    if not is_model_file(path):
        raise StratomicsInputError(
            f"{path}: not a stratomics model file (a pickle or joblib file, which runs code when loaded, or another "
            "format). Use the model files the workflow writes (results/stratify/model.zip, "
            "results/predict/signature.zip, results/federated/model_for_sites.zip)."
        )  # fmt: skip
    try:
        with zipfile.ZipFile(path) as archive:
            tree = json.loads(archive.read("schema.json"))
            if tree.get("format") != FORMAT:
                raise StratomicsInputError(f"{path}: model format {tree.get('format')!r}; this stratomics reads {FORMAT}.")

            def array(index: int) -> np.ndarray:
                return np.load(io.BytesIO(archive.read(f"arrays/{index}.npy")), allow_pickle=False)

            return _decode(tree["model"], array, str(path))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError) as err:
        raise StratomicsInputError(f"{path}: a damaged or foreign model file ({err}); ask the sender for it again.") from err


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hexadecimal)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_sha256(path: str | Path, sha256: str | None) -> None:
    """Refuse the file when ``sha256`` is given and is not its hash (nothing to check when None)."""
    if sha256 is None:
        return
    found = file_sha256(path)
    if found != sha256.strip().lower():
        raise StratomicsInputError(
            f"{path}: SHA-256 {found} is not the expected {sha256.strip()}. The file is not the one the sender "
            "hashed (changed or corrupted in transit): ask the sender for the file and its hash again."
        )  # fmt: skip


def is_model_file(path: str | Path) -> bool:
    """Whether the file is a zip archive, as model files are (a pickle is not)."""
    with open(path, "rb") as handle:
        return handle.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC


def _write_entry(archive: zipfile.ZipFile, name: str, content: bytes) -> None:
    """One archive entry with a fixed date (identical bytes on every run)."""
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, content)


def _encode(value, arrays: list):
    """The JSON tree of ``value``; arrays are appended to ``arrays`` and referred to by position."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return {"type": "scalar", "dtype": value.dtype.str, "value": value.item()}
    if isinstance(value, np.ndarray) and value.dtype != object:
        arrays.append(value)
        return {"type": "array", "entry": len(arrays) - 1}
    if isinstance(value, np.ndarray):  # text or mixed plain values
        return {"type": "object_array", "items": _encode(value.ravel().tolist(), arrays), "shape": list(value.shape)}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return {"type": type(value).__name__, "items": [_encode(item, arrays) for item in items]}
    if isinstance(value, dict):
        return {"type": "dict", "items": [[_encode(key, arrays), _encode(item, arrays)] for key, item in value.items()]}
    if isinstance(value, pd.Index | pd.Series):
        kind = "Series" if isinstance(value, pd.Series) else "Index"
        return {"type": kind, "values": _encode_values(value, arrays), "name": _encode(value.name, arrays),
                "index": _encode(value.index, arrays) if isinstance(value, pd.Series) else None}  # fmt: skip
    if isinstance(value, pd.DataFrame):
        return {"type": "DataFrame", "columns": _encode(value.columns, arrays), "index": _encode(value.index, arrays),
                "items": [_encode_values(value.iloc[:, i], arrays) for i in range(value.shape[1])]}  # fmt: skip
    if isinstance(value, slice):
        return {"type": "slice", "items": [_encode(part, arrays) for part in (value.start, value.stop, value.step)]}
    if isinstance(value, np.dtype):
        return {"type": "dtype", "dtype": value.str}
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"type": "numpy_type", "dtype": np.dtype(value).str}
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if name not in ALLOWED_CLASSES:
        raise TypeError(f"a model file cannot hold a {name} (allowed: stratomics.model_file.ALLOWED_CLASSES)")
    state = {key: item for key, item in vars(value).items() if key not in MACHINE_ATTRIBUTES.get(name, {})}
    return {"type": "object", "class": name, "state": _encode(state, arrays)}


def _encode_values(values: pd.Index | pd.Series, arrays: list):
    """The values of a pandas Index or column; categorical ones as codes and categories."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categorical = pd.Categorical(values)
        return {"type": "categorical", "codes": _encode(np.asarray(categorical.codes), arrays),
                "categories": _encode(categorical.categories, arrays), "ordered": bool(categorical.ordered)}  # fmt: skip
    return _encode(values.to_numpy(), arrays)


def _decode(node, array, path: str):
    """Rebuild a value from its JSON tree (``array(i)`` reads the i-th array)."""
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("list", "tuple", "set", "frozenset"):
        return CONTAINERS[kind](_decode(item, array, path) for item in node["items"])
    if kind == "dict":
        return {_decode(key, array, path): _decode(item, array, path) for key, item in node["items"]}
    if kind == "object":
        return _rebuild(node["class"], _decode(node["state"], array, path), path)
    if kind in _PLAIN_DECODERS:
        return _PLAIN_DECODERS[kind](node, lambda child: _decode(child, array, path), array)
    raise StratomicsInputError(f"{path}: unknown entry {kind!r} in the model file; it was not written by stratomics.")


def _decode_dataframe(node: dict, decode, _array) -> pd.DataFrame:
    """A DataFrame from its columns, index and column values."""
    index = decode(node["index"])
    frame = pd.DataFrame({i: decode(values) for i, values in enumerate(node["items"])}, index=index)
    frame.columns = decode(node["columns"])
    return frame


CONTAINERS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}
_PLAIN_DECODERS = {
    "scalar": lambda node, _decode, _array: np.dtype(node["dtype"]).type(node["value"]),
    "array": lambda node, _decode, array: array(node["entry"]),
    "object_array": lambda node, decode, _array: np.array(decode(node["items"]), dtype=object).reshape(node["shape"]),
    "slice": lambda node, decode, _array: slice(*decode(node["items"])),
    "dtype": lambda node, _decode, _array: np.dtype(node["dtype"]),
    "numpy_type": lambda node, _decode, _array: np.dtype(node["dtype"]).type,
    "categorical": lambda node, decode, _array: pd.Categorical.from_codes(
        decode(node["codes"]), decode(node["categories"]), ordered=node["ordered"]),
    "Index": lambda node, decode, _array: pd.Index(decode(node["values"]), name=decode(node["name"])),
    "Series": lambda node, decode, _array: pd.Series(decode(node["values"]), index=decode(node["index"]),
                                                     name=decode(node["name"])),
    "DataFrame": _decode_dataframe,
}  # fmt: skip


def _rebuild(name: str, state: dict, path: str):
    """An object of an allowed class with the given attributes (its constructor is not called)."""
    if name in RETIRED_CLASSES:
        raise StratomicsInputError(
            f"{path}: the model file holds a {name}, {RETIRED_CLASSES[name]}; it was saved by an earlier "
            "stratomics. Refit the subgroups with this version (rerun the workflow's stratify step) and save "
            "the model again."
        )  # fmt: skip
    if name not in ALLOWED_CLASSES:
        raise StratomicsInputError(
            f"{path}: the model file holds a {name}, which model files may not hold; the file was not written by "
            "stratomics or was altered. Do not use it."
        )  # fmt: skip
    module, _, qualname = name.rpartition(".")
    cls = getattr(importlib.import_module(module), qualname)
    instance = cls.__new__(cls)
    instance.__dict__.update({**MACHINE_ATTRIBUTES.get(name, {}), **state})
    return instance
