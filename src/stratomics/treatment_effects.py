"""Which treatment suits which subgroup: treatment effects within each subgroup, weighted for confounding.

Treatment is not randomised in a cohort, so each treatment ``t`` is compared with the reference
among the patients given either, in two models side by side:

- ``iptw``: inverse probability of treatment weighting. The propensity of receiving ``t`` is a
  logistic regression on the covariates and the subgroup (mild L2 penalty, so that a covariate level
  where only one treatment is given yields propensities near 0 or 1 instead of a failed fit). Patients
  whose propensity lies outside ``[trim, 1 - trim]`` have no comparable patient on the other
  treatment (positivity) and are left out of both models, counted per subgroup and arm. Stabilised
  weights; the outcome model is ``outcome ~ t * subgroup`` with a robust (sandwich) covariance:
  logistic (statsmodels GLM, ``var_weights``) or Cox (lifelines, ``weights_col``, ``robust=True``).
- ``adjusted``: the same outcome model with the covariates added, unweighted, model-based errors.

The effect of ``t`` within subgroup ``g`` is the treatment term plus its interaction with ``g``
(log odds or log hazard ratio), with its confidence interval from the covariance of the two; the
subgroup x treatment interaction is the joint Wald test of every interaction term (not given when a
subgroup's effect separates, i.e. has a standard error above :data:`MAX_STD_ERROR`). A subgroup with
fewer than ``min_per_arm`` patients in an arm after trimming, or an arm without events (binary: or
with only events), cannot be estimated: it is left out of that comparison's models, and its
row says why.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate.design import adjustable_covariates
from stratomics.errors import StratomicsInputError
from stratomics.outcome_types import outcome_type

log = logging.getLogger(__name__)

EFFECT_COLUMNS = ["outcome", "treatment", "reference", "subgroup", "model", "estimate", "std_error", "ci_low",
                  "ci_high", "ratio", "ratio_type", "p_value", "interaction_p_value", "interaction_df", "n_treatment",
                  "n_reference", "events_treatment", "events_reference", "effective_n", "note"]  # fmt: skip
OVERLAP_COLUMNS = ["outcome", "treatment", "reference", "subgroup", "arm", "n", "n_trimmed", "propensity_min",
                   "propensity_median", "propensity_max"]  # fmt: skip
#: A log ratio with a larger standard error comes from a model that separates (its estimate is meaningless).
MAX_STD_ERROR = 5.0
PROPENSITY_COLUMNS = ["patient_id", "outcome", "treatment", "reference", "subgroup", "arm", "propensity", "weight", "trimmed"]


def propensity_scores(covariates: pd.DataFrame, treated: np.ndarray, *, penalty: float = 1.0) -> np.ndarray:
    """Probability of the treatment given the covariates (logistic regression, L2 penalty ``1 / penalty``).

    Parameters
    ----------
    covariates
        Numeric design, one row per patient (text one-hot); numeric columns are standardised.
    treated
        1 for the treatment, 0 for the reference.
    penalty
        scikit-learn's ``C`` (larger: weaker penalty).

    Returns
    -------
    The propensity of each patient.
    """
    from sklearn.linear_model import LogisticRegression

    values = covariates.to_numpy(float)
    spread = values.std(axis=0)
    scaled = (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    if scaled.shape[1] == 0:
        return np.full(len(treated), treated.mean())
    model = LogisticRegression(C=penalty, max_iter=1000).fit(scaled, treated)
    return model.predict_proba(scaled)[:, 1]


def stabilised_weights(treated: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """Stabilised inverse probability of treatment weights: P(arm) / P(arm | covariates)."""
    share = treated.mean()
    return np.where(treated == 1, share / propensity, (1 - share) / (1 - propensity))


def _interaction_design(data: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Columns treated, subgroup[g] and treated:subgroup[g] for every subgroup but the first."""
    design = pd.DataFrame({"treated": data["treated"].astype(float)}, index=data.index)
    for level in levels[1:]:
        design[f"subgroup[{level}]"] = (data["subgroup"] == level).astype(float)
    for level in levels[1:]:
        design[f"treated:subgroup[{level}]"] = design["treated"] * design[f"subgroup[{level}]"]
    return design


def fit_outcome_model(model: str, data: pd.DataFrame, design: pd.DataFrame, *,
                      weights=None) -> tuple[pd.Series, pd.DataFrame]:  # fmt: skip
    """Coefficients and covariance of a logistic or Cox outcome model.

    Parameters
    ----------
    model
        ``logistic`` (``data["y"]``; an intercept is added) or ``cox`` (``data["time"]``, ``data["event"]``).
    data, design
        The outcome columns and the numeric design, on the same rows.
    weights
        Patient weights: then the covariance is the robust (sandwich) one; None: model-based.

    Returns
    -------
    (coefficients, covariance), indexed by the design's columns (and ``const`` for logistic).
    """
    if model == "logistic":
        import statsmodels.api as sm

        exog = sm.add_constant(design, has_constant="add")
        glm = sm.GLM(data["y"].to_numpy(float), exog, family=sm.families.Binomial(),
                     var_weights=weights)  # fmt: skip
        fit = glm.fit(cov_type="HC0") if weights is not None else glm.fit()
        return fit.params, fit.cov_params()
    from lifelines import CoxPHFitter

    frame = design.assign(time=data["time"].to_numpy(float), event=data["event"].to_numpy(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-integer weights are meant; separation is judged by the caller
        if weights is None:
            fit = CoxPHFitter().fit(frame, "time", "event")
            return fit.params_, fit.variance_matrix_
        fit = CoxPHFitter().fit(frame.assign(weight=weights), "time", "event", weights_col="weight")
    scores = cox_score_residuals(frame, fit.params_.to_numpy(), np.asarray(weights, float))
    meat = (scores * np.asarray(weights, float)[:, None]).T @ (scores * np.asarray(weights, float)[:, None])
    bread = fit.variance_matrix_.to_numpy()
    return fit.params_, pd.DataFrame(bread @ meat @ bread, index=fit.params_.index, columns=fit.params_.index)


def cox_score_residuals(frame: pd.DataFrame, beta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Cox score residuals (Lin & Wei 1989, Breslow risk sets), the rows of the robust covariance.

    lifelines reports the robust standard errors of a weighted fit but not their covariance, which the
    within-subgroup contrasts need; this is the same computation, with cumulative sums over the times.

    Parameters
    ----------
    frame
        Columns ``time``, ``event`` and the design's columns (in the order of ``beta``).
    beta, weights
        Fitted coefficients; patient weights.

    Returns
    -------
    Patients x coefficients (rows in the order of ``frame``).
    """
    order = np.argsort(frame["time"].to_numpy(float), kind="stable")
    time, event = frame["time"].to_numpy(float)[order], frame["event"].to_numpy(float)[order]
    X = frame.drop(columns=["time", "event"]).to_numpy(float)[order]
    relative_risk = np.exp(X @ beta)
    at_risk = weights[order] * relative_risk
    first = np.searchsorted(time, time, side="left")  # the risk set of t: every patient from its first tie on
    last = np.searchsorted(time, time, side="right") - 1  # the events up to t: every one to its last tie
    s0 = np.cumsum(at_risk[::-1])[::-1][first]
    mean_x = (np.cumsum((X * at_risk[:, None])[::-1], axis=0)[::-1])[first] / s0[:, None]
    hazard = event * weights[order] / s0
    cumulative, cumulative_x = np.cumsum(hazard)[last], np.cumsum(mean_x * hazard[:, None], axis=0)[last]
    residuals = event[:, None] * (X - mean_x) - relative_risk[:, None] * (X * cumulative[:, None] - cumulative_x)
    return residuals[np.argsort(order)]


def _subgroup_effects(params: pd.Series, covariance: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Effect of the treatment within each subgroup (treated + treated:subgroup[g]) with its error."""
    rows = []
    for level in levels:
        terms = ["treated"] + ([f"treated:subgroup[{level}]"] if level != levels[0] else [])
        estimate = float(params[terms].sum())
        error = float(np.sqrt(covariance.loc[terms, terms].to_numpy().sum()))
        rows.append({"subgroup": level, "estimate": estimate, "std_error": error})
    table = pd.DataFrame(rows)
    z = stats.norm.ppf(0.975)
    return table.assign(ci_low=table["estimate"] - z * table["std_error"], ci_high=table["estimate"] + z * table["std_error"],
                        ratio=np.exp(table["estimate"]), p_value=2 * stats.norm.sf(np.abs(table["estimate"] / table["std_error"])))  # fmt: skip


def interaction_wald(params: pd.Series, covariance: pd.DataFrame) -> tuple[float, int]:
    """Joint Wald test of every treated:subgroup term: (p-value, degrees of freedom); (NaN, 0) without one."""
    terms = [term for term in params.index if str(term).startswith("treated:")]
    if not terms:
        return np.nan, 0
    beta = params[terms].to_numpy()
    statistic = float(beta @ np.linalg.solve(covariance.loc[terms, terms].to_numpy(), beta))
    return float(stats.chi2.sf(statistic, len(terms))), len(terms)


def _arm_counts(data: pd.DataFrame, event: str) -> pd.DataFrame:
    """Patients and events per subgroup and arm (columns n_treatment, n_reference, events_...)."""
    counts = data.groupby(["subgroup", "treated"], observed=True).agg(n=("treated", "size"), events=(event, "sum"))
    counts = counts.unstack("treated").reindex(columns=pd.MultiIndex.from_product([["n", "events"], [1, 0]]))
    counts = counts.fillna(0).astype(int)
    counts.columns = ["n_treatment", "n_reference", "events_treatment", "events_reference"]
    return counts


def _not_estimable(counts: pd.DataFrame, trimmed: pd.DataFrame, min_per_arm: int, *, binary: bool) -> pd.Series:
    """Why each subgroup's effect cannot be estimated ("" when it can): too few patients in an arm
    within the propensity overlap, an arm without events or (``binary``) with only events."""
    reasons = pd.Series("", index=counts.index)
    for arm in ("treatment", "reference"):
        few = (counts[f"n_{arm}"] < min_per_arm) & (reasons == "")
        reasons[few] = [f"{counts.at[g, f'n_{arm}']} patient(s) on the {arm} within the propensity overlap "
                        f"({trimmed.at[g, arm]} trimmed), at least {min_per_arm} needed" for g in counts.index[few]]  # fmt: skip
    for arm in ("treatment", "reference"):
        none = (counts[f"events_{arm}"] == 0) & (reasons == "")
        reasons[none] = f"no event on the {arm} (its ratio would be 0 or infinite)"
        if binary:
            every = (counts[f"events_{arm}"] == counts[f"n_{arm}"]) & (reasons == "")
            reasons[every] = f"every patient on the {arm} had the event (its odds ratio would be infinite)"
    return reasons


def compare_treatments(data: pd.DataFrame, covariates: pd.DataFrame, *, model: str, trim: float = 0.05,
                       min_per_arm: int = 5, label: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """One treatment against the reference within every subgroup, weighted and adjusted.

    Parameters
    ----------
    data
        One row per patient given the treatment or the reference: ``treated`` (1/0), ``subgroup``
        (ordered: the first level is the interaction reference) and the outcome (``y`` for logistic;
        ``time`` and ``event`` for Cox), complete.
    covariates
        Numeric covariate design on the same rows.
    model
        ``logistic`` or ``cox``.
    trim, min_per_arm
        See the module docstring.
    label
        The comparison, named in warnings.

    Returns
    -------
    (effects, propensity): one row per subgroup and model (``iptw``, ``adjusted``); one row per
    patient with propensity, weight and whether trimmed.
    """
    propensity = propensity_scores(pd.concat([covariates, pd.get_dummies(data["subgroup"], drop_first=True, dtype=float)],
                                             axis=1), data["treated"].to_numpy())  # fmt: skip
    trimmed = (propensity < trim) | (propensity > 1 - trim)
    weights = stabilised_weights(data["treated"].to_numpy(), propensity)
    patients = pd.DataFrame({"subgroup": data["subgroup"].astype(str), "arm": np.where(data["treated"] == 1, "treatment",
                             "reference"), "propensity": propensity, "weight": weights, "trimmed": trimmed},
                            index=data.index)  # fmt: skip
    kept = data[~trimmed]
    event = {"logistic": "y", "cox": "event"}[model]
    counts = _arm_counts(kept, event)
    counts = counts.reindex(pd.Index(list(data["subgroup"].cat.categories), name="subgroup"), fill_value=0)
    n_trimmed = patients[trimmed].groupby(["subgroup", "arm"]).size().unstack("arm")
    n_trimmed = n_trimmed.reindex(index=counts.index, columns=["treatment", "reference"]).fillna(0).astype(int)
    reasons = _not_estimable(counts, n_trimmed, min_per_arm, binary=model == "logistic")
    if reasons.str.len().gt(0).any():
        log.warning("treatment heterogeneity %s: not estimable in %s", label,
                    "; ".join(f"{g}: {r}" for g, r in reasons[reasons != ""].items()))  # fmt: skip
    levels = [level for level in counts.index if reasons[level] == ""]
    effects = []
    if levels:
        fitted = kept[kept["subgroup"].isin(levels)]
        design = _interaction_design(fitted, levels)
        weight = pd.Series(weights, index=data.index)[fitted.index]
        extra = covariates.loc[fitted.index]
        extra = extra.loc[:, extra.nunique() > 1]  # a level absent after trimming is no column
        for name, extra, w in (("iptw", None, weight.to_numpy()), ("adjusted", extra, None)):
            full = design if extra is None else pd.concat([design, extra], axis=1)
            effects.append(_model_rows(model, fitted, full, w, levels, name))
    table = pd.concat(effects, ignore_index=True) if effects else pd.DataFrame(columns=["subgroup", "model"])
    missing = [{"subgroup": level, "model": name, "note": f"not estimable: {reasons[level]}"}
               for level in counts.index if reasons[level] for name in ("iptw", "adjusted")]  # fmt: skip
    table = pd.concat([table, pd.DataFrame(missing)], ignore_index=True) if missing else table
    table = table.merge(counts.reset_index(), on="subgroup", how="left")
    table["note"] = table["note"].fillna("") if "note" in table else ""
    return table, patients


def _model_rows(model: str, data: pd.DataFrame, design: pd.DataFrame, weights, levels: list[str], name: str) -> pd.DataFrame:
    """Per-subgroup effects and the interaction test of one outcome model (NaN with a note when it fails)."""
    try:
        params, covariance = fit_outcome_model(model, data, design, weights=weights)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:
        note = f"the {name} model could not be fitted ({type(err).__name__}: {str(err)[:120]})"
        return pd.DataFrame({"subgroup": levels, "model": name, "note": note})
    effects = _subgroup_effects(params, covariance, levels)
    separated = ~(effects["std_error"] <= MAX_STD_ERROR)
    if separated.any():  # an arm without events, or one the covariates predict perfectly
        effects.loc[separated, ["estimate", "std_error", "ci_low", "ci_high", "ratio", "p_value"]] = np.nan
    p_value, df = interaction_wald(params, covariance) if not separated.any() else (np.nan, 0)
    in_levels = data["subgroup"].astype(str).to_numpy()
    effective = [_effective_n(weights[in_levels == level]) if weights is not None else np.nan for level in levels]
    note = np.where(separated, f"not estimable: the {name} model separates (standard error above {MAX_STD_ERROR:g} "
                               "on the log scale; an arm without events or predicted perfectly)", "")  # fmt: skip
    return effects.assign(model=name, interaction_p_value=p_value, interaction_df=df, effective_n=effective, note=note)


def _effective_n(weights: np.ndarray) -> float:
    """Kish's effective sample size of a set of weights."""
    return float(weights.sum() ** 2 / (weights**2).sum())


def treatment_heterogeneity(obs: pd.DataFrame, outcomes: dict, covariates: list[str], *, treatment: str,
                            reference: str, group: str = "subgroup", trim: float = 0.05,
                            min_per_arm: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Every treatment against the reference, within each subgroup, for every binary and survival outcome.

    Parameters
    ----------
    obs
        One row per patient: the subgroup, treatment, outcome and covariate columns.
    outcomes
        Outcome name -> config entry; continuous outcomes are not compared.
    covariates
        Confounders: in the propensity model and the adjusted model.
    treatment, reference
        The treatment column and its reference level.
    group, trim, min_per_arm
        The subgroup column; see the module docstring.

    Returns
    -------
    (effects, overlap, propensity): :data:`EFFECT_COLUMNS`, :data:`OVERLAP_COLUMNS` (the
    positivity check per comparison, subgroup and arm) and :data:`PROPENSITY_COLUMNS`.
    """
    levels = _treatment_levels(obs, treatment, reference)
    covariates = [c for c in adjustable_covariates(covariates, obs, purpose="treatment heterogeneity") if c != treatment]
    effects, propensities = [], []
    others = [name for name, spec in outcomes.items() if outcome_type(spec, name).model not in ("logistic", "cox")]
    if others:
        log.info("treatment heterogeneity compares binary and survival outcomes; not compared: %s", ", ".join(others))
    for level in levels:
        given = obs[obs[treatment].isin([level, reference])]
        for name, spec in outcomes.items():
            otype = outcome_type(spec, name)
            if otype.model not in ("logistic", "cox"):
                continue
            data, design = _comparison_data(given, otype.columns(name, spec), covariates, treatment=treatment,
                                            level=level, group=group)  # fmt: skip
            table, patients = compare_treatments(data, design, model=otype.model, trim=trim, min_per_arm=min_per_arm,
                                                 label=f"{name}, {level} vs {reference}")  # fmt: skip
            effects.append(table.assign(outcome=name, treatment=level, reference=reference))
            propensities.append(patients.assign(outcome=name, treatment=level, reference=reference).rename_axis("patient_id"))
    if not effects:
        return (pd.DataFrame(columns=EFFECT_COLUMNS), pd.DataFrame(columns=OVERLAP_COLUMNS),
                pd.DataFrame(columns=PROPENSITY_COLUMNS))  # fmt: skip
    effects = pd.concat(effects, ignore_index=True)
    effects["ratio_type"] = effects["outcome"].map(lambda o: "hazard ratio" if outcome_type(outcomes[o], o).time_to_event
                                                   else "odds ratio")  # fmt: skip
    propensity = pd.concat(propensities).reset_index()  # per outcome: its complete cases differ
    return effects.reindex(columns=EFFECT_COLUMNS), overlap_table(propensity), propensity[PROPENSITY_COLUMNS]


def _treatment_levels(obs: pd.DataFrame, treatment: str, reference: str) -> list[str]:
    """The treatments compared with the reference; an input error when the column or level is absent."""
    if treatment not in obs:
        raise StratomicsInputError(f"associate.treatment_heterogeneity: treatment column '{treatment}' is not in the "
                                   "sample sheet. Name the column that holds each patient's treatment.")  # fmt: skip
    given = obs[treatment].dropna().astype(str)
    if reference not in set(given):
        raise StratomicsInputError(
            f"associate.treatment_heterogeneity: reference '{reference}' is not a value of column '{treatment}' "
            f"(values: {', '.join(sorted(set(given)))}). Set reference to one of them."
        )
    return sorted(set(given) - {reference})


def _comparison_data(given: pd.DataFrame, columns: list[str], covariates: list[str], *, treatment: str, level: str,
                     group: str) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Complete patients of one comparison: outcome, treated and subgroup; and their covariate design."""
    roles = ["y"] if len(columns) == 1 else ["time", "event"]
    frame = given[[*columns, group, *covariates]].dropna()
    if len(frame) < len(given):
        log.info("treatment heterogeneity, %s: %d of %d patients on it or the reference lack the outcome (%s), the "
                 "subgroup or a covariate and are left out", level, len(given) - len(frame), len(given),
                 ", ".join(columns))  # fmt: skip
    data = pd.DataFrame(dict(zip(roles, (frame[c].astype(float) for c in columns))), index=frame.index)
    data["treated"] = (given.loc[frame.index, treatment].astype(str) == level).astype(int)
    subgroups = frame[group].astype(str)
    order = sorted(subgroups.unique(), key=lambda s: (len(s), s))
    data["subgroup"] = pd.Categorical(subgroups, categories=order)
    design = pd.get_dummies(frame[covariates], drop_first=True, dtype=float)
    return data, design


def overlap_table(propensity: pd.DataFrame) -> pd.DataFrame:
    """The positivity check: per outcome, comparison, subgroup and arm, patients, trimmed ones and the propensity range."""
    grouped = propensity.groupby(["outcome", "treatment", "reference", "subgroup", "arm"], observed=True)
    table = grouped.agg(n=("propensity", "size"), n_trimmed=("trimmed", "sum"), propensity_min=("propensity", "min"),
                        propensity_median=("propensity", "median"), propensity_max=("propensity", "max"))  # fmt: skip
    return table.reset_index()[OVERLAP_COLUMNS]
