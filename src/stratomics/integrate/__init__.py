"""Multi-omics integration that keeps every patient with at least one assay: one module per method.

Every method is a function registered in :data:`METHODS` under its config name
(``integrate.method``) with the signature::

    fit(assays, patients, *, n_factors="auto", max_factors=15, [seed=0,] **method_options) -> (model, scores)

where ``assays`` maps assay names to patients x features frames (patients who have the assay),
``scores`` is patients x factors (NaN rows for patients without any assay) and ``model`` has

- ``transform(assays, patients) -> scores``: factors of (new) patients from any subset of the assays;
- ``variance``: a table with the columns of :data:`VARIANCE_COLUMNS`, the share of each assay's
  variance that each factor explains.

Adding a method is one module here, one line in :data:`METHODS` and its test
(``tests/test_integrate_alternatives.py`` checks every registered method against this interface).
"""

from __future__ import annotations

import inspect

from stratomics.errors import StratomicsInputError
from stratomics.integrate.mfa import IntegrationModel, fit_concat_pca, fit_mfa
from stratomics.integrate.mofa import fit_mofa
from stratomics.integrate.snf import fit_snf

#: Integration methods by config name.
METHODS = {"mofa": fit_mofa, "mfa": fit_mfa, "snf": fit_snf, "concat_pca": fit_concat_pca}
#: The method of :func:`fit_integration` when none is given, and the default of the config's
#: ``integrate.method`` (the schema takes it from here).
DEFAULT_METHOD = "mofa"
#: Columns of every method's variance table.
VARIANCE_COLUMNS = ["factor", "assay", "variance_explained"]

__all__ = ["DEFAULT_METHOD", "METHODS", "VARIANCE_COLUMNS", "IntegrationModel", "fit_integration"]


def fit_integration(assays: dict, patients, *, method: str = DEFAULT_METHOD, seed: int = 0, **options):
    """Fit an integration method; return the model and the patients x factors scores.

    Parameters
    ----------
    assays
        Preprocessed values per assay: patients (who have the assay) x features.
    patients
        All patients to integrate (those without any assay get NaN scores).
    method
        A name of :data:`METHODS`.
    seed
        Seed of every random step of the method (methods without any take none).
    options
        ``n_factors``, ``max_factors`` and method options, as in the config's ``integrate`` section:
        each method gets the options its function takes, and a section named after the method
        (such as ``snf``) is unpacked into them.

    Returns
    -------
    The model and the scores.
    """
    if method not in METHODS:
        raise StratomicsInputError(f"integrate: unknown method '{method}'; use one of {', '.join(METHODS)}.")
    fit = METHODS[method]
    accepted = inspect.signature(fit).parameters
    options = {"seed": seed, **options, **(options.get(method) or {})}
    return fit(assays, patients, **{name: value for name, value in options.items() if name in accepted})
