"""Model files hold data only: what is saved places and scores patients as before, and nothing in a
received file can run code."""

import io
import json
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
from test_predict import BINARY, SURVIVAL, cohort, evaluate
from test_stratify import planted_cohort

from stratomics.cli import main
from stratomics.errors import StratomicsInputError
from stratomics.model_file import file_sha256, load_model_file, save_model_file
from stratomics.predict import fit_signatures, predict_patients
from stratomics.subgroups import assign_patients, integrate_and_stratify, load_model, strip_patient_data


class RunsCodeWhenUnpickled:
    """What a tampered pickle does: its loader calls a function of the author's choice."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # creates the marker file when unpickled


@pytest.mark.parametrize(("method", "algorithm"), [("mofa", "kmeans"), ("mfa", "gmm"), ("concat_pca", "hdbscan")])
def test_subgroup_models_place_patients_identically_after_a_round_trip(tmp_path, method, algorithm):
    mdata, _ = planted_cohort(n=300, missing=0.3, seed=0)
    model, _ = integrate_and_stratify(mdata.copy(), ["big", "mid", "small"], integrate_options={"method": method},
                                      stratify_options={"n_resamples": 10, "algorithm": algorithm}, seed=0)  # fmt: skip
    for saved in (model, strip_patient_data(model)):
        digest = save_model_file(saved, tmp_path / "model.zip")
        assert (tmp_path / "model.zip.sha256").read_text().split() == [digest, "model.zip"]
        assert digest == file_sha256(tmp_path / "model.zip")
        loaded = load_model_file(tmp_path / "model.zip", sha256=digest)
        pd.testing.assert_frame_equal(assign_patients(loaded, mdata), assign_patients(saved, mdata))
        save_model_file(loaded, tmp_path / "again.zip")  # a rerun writes the same bytes
        assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "model.zip").read_bytes()


@pytest.mark.parametrize(("spec", "outcome"), [(BINARY, "failure_12m"), (SURVIVAL, "time")])
def test_signatures_score_new_patients_identically_after_a_round_trip(tmp_path, spec, outcome):
    mdata = cohort(n=200, n_features=100, planted=(3, 17), missing=0.2)
    options = {"horizons": (180,)} if outcome == "time" else {}
    _, evaluation = evaluate(mdata, spec, outcome=outcome, feature_sets=["all"], n_bootstrap=5, **options)
    signatures, _ = fit_signatures(mdata, {outcome: spec}, clinical=["age", "sex"], assays=["olink"],
                                   feature_set="all", evaluations=[evaluation], n_features=20, seed=3)  # fmt: skip
    digest = save_model_file(signatures, tmp_path / "signature.zip")
    new = cohort(n=100, n_features=100, planted=(3, 17), seed=9)
    loaded = load_model(tmp_path / "signature.zip", sha256=digest)
    pd.testing.assert_frame_equal(predict_patients(loaded, new), predict_patients(signatures, new))


def test_a_file_with_another_hash_is_refused(tmp_path):
    save_model_file({"weights": np.arange(3.0)}, tmp_path / "model.zip")
    with pytest.raises(StratomicsInputError, match="SHA-256 .* is not the expected 0{64}"):
        load_model_file(tmp_path / "model.zip", sha256="0" * 64)


def test_a_pickle_is_refused_without_running_it_unless_allowed(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    joblib.dump(RunsCodeWhenUnpickled(marker), tmp_path / "model.joblib")
    assert main(["assign", "--model", str(tmp_path / "model.joblib"), "--cohort", str(tmp_path / "none.h5mu")]) == 1
    assert "not a stratomics model file (a pickle" in capsys.readouterr().err
    assert not marker.exists()
    with pytest.raises(AttributeError):  # the opt-in loads it, and so runs its code: only for your own files
        load_model(tmp_path / "model.joblib", allow_pickle=True)
    assert marker.exists()


def model_file_naming(tmp_path, class_name: str):
    """A valid model file whose model is said to be an object of ``class_name``."""
    save_model_file({"weights": np.arange(3.0)}, tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    tree = json.loads(entries["schema.json"])
    tree["model"] = {"type": "object", "class": class_name, "state": {"type": "dict", "items": []}}
    entries["schema.json"] = json.dumps(tree).encode()
    with zipfile.ZipFile(tmp_path / "edited.zip", "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return tmp_path / "edited.zip"


def test_a_file_naming_a_class_outside_the_allowed_ones_is_refused(tmp_path):
    with pytest.raises(StratomicsInputError, match="holds a os.system, which model files may not hold"):
        load_model_file(model_file_naming(tmp_path, "os.system"))


def test_a_file_from_an_earlier_version_says_to_refit(tmp_path):
    path = model_file_naming(tmp_path, "sklearn.discriminant_analysis.LinearDiscriminantAnalysis")
    with pytest.raises(StratomicsInputError, match="saved by an earlier stratomics. Refit the subgroups"):
        load_model_file(path)


def test_an_array_entry_that_needs_pickle_is_refused(tmp_path):
    content = io.BytesIO()
    np.save(content, np.array([RunsCodeWhenUnpickled(tmp_path / "code_ran")], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as archive:
        archive.writestr("schema.json", json.dumps({"format": "stratomics-model/1", "model": {"type": "array", "entry": 0}}))
        archive.writestr("arrays/0.npy", content.getvalue())
    with pytest.raises(StratomicsInputError, match="damaged or foreign model file"):
        load_model_file(tmp_path / "model.zip")
    assert not (tmp_path / "code_ran").exists()


def test_objects_outside_the_allowed_classes_cannot_be_saved(tmp_path):
    with pytest.raises(TypeError, match="cannot hold a builtins.function"):
        save_model_file({"f": lambda x: x}, tmp_path / "model.zip")


def test_a_model_file_does_not_depend_on_the_fitting_machines_threads(tmp_path):
    from sklearn.cluster import KMeans

    points = np.random.default_rng(0).normal(size=(200, 3))
    model = KMeans(3, n_init=2, random_state=0).fit(points)
    model._n_threads = 16  # as fitted on a 16-core machine
    save_model_file(model, tmp_path / "many.zip")
    model._n_threads = 2
    save_model_file(model, tmp_path / "two.zip")
    assert (tmp_path / "many.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    loaded = load_model_file(tmp_path / "two.zip")
    assert (loaded.predict(points) == model.predict(points)).all()
