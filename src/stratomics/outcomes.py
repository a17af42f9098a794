"""Subgroups against outcomes and clinical characteristics.

- survival outcomes: Kaplan-Meier per subgroup (lifelines), log-rank test across subgroups, and a
  Cox model of the subgroups (reference: the largest, S1) adjusted for covariates;
- binary outcomes: logistic regression of the outcome on the subgroups adjusted for covariates
  (statsmodels), with a likelihood-ratio test across subgroups;
- continuous outcomes: least squares of the outcome on the subgroups adjusted for covariates
  (statsmodels), with an F test across subgroups;
- for each, a permutation p-value: subgroup labels shuffled among the patients (seeded), the
  unadjusted test statistic recomputed for all permutations at once
  (:mod:`stratomics.permutation_tests`), p = (1 + #{permuted >= observed}) / (1 + permutations);
- Table 1: clinical characteristics per subgroup (median [IQR] with Kruskal-Wallis for numbers,
  n (%) with the chi-square test for categories).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate.design import adjustable_covariates
from stratomics.outcome_types import ordinal_codes, outcome_type
from stratomics.permutation_tests import anova_f, chi_square, kruskal_h, logrank, permutation_p

log = logging.getLogger(__name__)

OUTCOME_COLUMNS = ["outcome", "model", "term", "estimate", "std_error", "ci_low", "ci_high", "ratio",
                   "p_value", "test", "test_p_value", "permutation_p_value", "n", "n_events"]  # fmt: skip


def _dummies(groups: pd.Series) -> pd.DataFrame:
    """Indicators of every subgroup but the first (the reference)."""
    levels = list(groups.cat.categories) if hasattr(groups, "cat") else sorted(groups.unique())
    return pd.DataFrame({f"subgroup[{level}]": (groups == level).astype(float) for level in levels[1:]},
                        index=groups.index)  # fmt: skip


def _covariate_matrix(obs: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """The adjustable covariates as numbers: text columns one-hot (first level dropped)."""
    covariates = adjustable_covariates(covariates, obs, purpose="subgroup outcomes")
    frame = obs[covariates]
    return pd.get_dummies(frame, drop_first=True, dtype=float) if covariates else pd.DataFrame(index=obs.index)


def survival_by_subgroup(obs, groups, columns, *, covariates, n_permutations=1000, seed=0) -> pd.DataFrame:
    """Log-rank test and adjusted Cox hazard ratios of subgroups for one survival outcome.

    Parameters
    ----------
    obs
        One row per patient with the outcome and covariate columns.
    groups
        The subgroup of each patient (the first category is the reference).
    columns
        The (time, event) columns.
    covariates
        Adjustment covariates.

    Returns
    -------
    One row per non-reference subgroup (hazard ratio vs the reference) with the overall log-rank
    test and its permutation p-value repeated on each row.
    """
    from lifelines import CoxPHFitter
    from lifelines.statistics import multivariate_logrank_test

    time, event = columns
    data = pd.concat([obs[[time, event]], groups.rename("subgroup"), _covariate_matrix(obs, covariates)], axis=1).dropna()
    labels = data["subgroup"].astype(str).to_numpy()

    test = multivariate_logrank_test(data[time], labels, data[event])
    permutation = permutation_p(logrank(data[time].to_numpy(float), data[event].to_numpy(float)), labels,
                                n_permutations=n_permutations, seed=seed)  # fmt: skip
    design = pd.concat([_dummies(data["subgroup"]), data.drop(columns=["subgroup"])], axis=1)
    cox = CoxPHFitter().fit(design, time, event)
    summary = cox.summary.loc[[c for c in design.columns if c.startswith("subgroup[")]]
    return pd.DataFrame({
        "model": "cox", "term": summary.index, "estimate": summary["coef"], "std_error": summary["se(coef)"],
        "ci_low": summary["coef lower 95%"], "ci_high": summary["coef upper 95%"],
        "ratio": summary["exp(coef)"], "p_value": summary["p"], "test": "log-rank",
        "test_p_value": test.p_value, "permutation_p_value": permutation, "n": len(data),
        "n_events": int(data[event].sum()),
    })  # fmt: skip


def _regression_designs(obs, groups, column, covariates):
    """(y, labels, covariates-only design, design with the subgroup indicators) of the complete patients."""
    import statsmodels.api as sm

    data = pd.concat([obs[[column]], groups.rename("subgroup"), _covariate_matrix(obs, covariates)], axis=1).dropna()
    base = sm.add_constant(data.drop(columns=[column, "subgroup"]), has_constant="add")
    full = pd.concat([base, _dummies(data["subgroup"])], axis=1)
    return data[column].to_numpy(float), data["subgroup"].astype(str).to_numpy(), base, full


def _regression_rows(fit, full, **columns) -> pd.DataFrame:
    """One row per subgroup term of a statsmodels fit, plus the given columns on every row."""
    terms = [c for c in full.columns if c.startswith("subgroup[")]
    ci = fit.conf_int().loc[terms]
    return pd.DataFrame({"term": terms, "estimate": fit.params[terms], "std_error": fit.bse[terms], "ci_low": ci[0],
                         "ci_high": ci[1], "p_value": fit.pvalues[terms], **columns})  # fmt: skip


def binary_by_subgroup(obs, groups, columns, *, covariates, n_permutations=1000, seed=0) -> pd.DataFrame:
    """Adjusted odds ratios of subgroups for a binary outcome, with a likelihood-ratio test.

    Parameters are those of :func:`survival_by_subgroup`; ``columns`` holds the outcome's column.

    Returns
    -------
    One row per non-reference subgroup (odds ratio vs the reference), the overall likelihood-ratio
    test (adjusted) and the permutation p-value of the unadjusted chi-square test on each row.
    """
    import statsmodels.api as sm

    y, labels, base, full = _regression_designs(obs, groups, columns[0], covariates)
    fit = sm.Logit(y, full).fit(disp=0)
    null = sm.Logit(y, base).fit(disp=0)
    lr_p = stats.chi2.sf(2 * (fit.llf - null.llf), full.shape[1] - base.shape[1])

    permutation = permutation_p(chi_square(y), labels, n_permutations=n_permutations, seed=seed)
    rows = _regression_rows(fit, full, test="likelihood ratio", test_p_value=lr_p, permutation_p_value=permutation,
                            n=len(y), n_events=int(y.sum()))  # fmt: skip
    return rows.assign(model="logistic", ratio=np.exp(rows["estimate"]))


def continuous_by_subgroup(obs, groups, columns, *, covariates, n_permutations=1000, seed=0) -> pd.DataFrame:
    """Adjusted mean differences of subgroups for a continuous outcome (least squares), with an F test.

    Parameters are those of :func:`survival_by_subgroup`; ``columns`` holds the outcome's column.

    Returns
    -------
    One row per non-reference subgroup (difference in mean vs the reference; no ratio, no events),
    the overall F test of the subgroup terms (adjusted) and the permutation p-value of the
    unadjusted one-way ANOVA F on each row.
    """
    import statsmodels.api as sm

    y, labels, base, full = _regression_designs(obs, groups, columns[0], covariates)
    fit = sm.OLS(y, full).fit()
    f_p = float(fit.compare_f_test(sm.OLS(y, base).fit())[1])
    permutation = permutation_p(anova_f(y), labels, n_permutations=n_permutations, seed=seed)
    rows = _regression_rows(fit, full, test="F", test_p_value=f_p, permutation_p_value=permutation, n=len(y),
                            n_events=np.nan)  # fmt: skip
    return rows.assign(model="linear", ratio=np.nan)


def ordinal_by_subgroup(obs, groups, columns, *, covariates, n_permutations=1000, seed=0, levels=None) -> pd.DataFrame:
    """Adjusted cumulative odds ratios of subgroups for an ordinal outcome (proportional odds,
    statsmodels ``OrderedModel``), with a likelihood-ratio test.

    Parameters are those of :func:`survival_by_subgroup`; ``columns`` holds the outcome's column and
    ``levels`` its categories from lowest to highest (None: numeric order).

    Returns
    -------
    One row per non-reference subgroup (odds of a higher category vs the reference), the overall
    likelihood-ratio test (adjusted) and the permutation p-value of the unadjusted Kruskal-Wallis
    test on each row.
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    coded = obs.assign(**{columns[0]: ordinal_codes(obs[columns[0]], levels)})
    y, labels, base, full = _regression_designs(coded, groups, columns[0], covariates)
    full, base = full.drop(columns="const"), base.drop(columns="const")
    fit = OrderedModel(y, full, distr="logit").fit(method="bfgs", disp=0, maxiter=1000)
    if base.shape[1]:
        null_llf = OrderedModel(y, base, distr="logit").fit(method="bfgs", disp=0, maxiter=1000).llf
    else:  # thresholds only: the observed category shares
        counts = np.bincount(y.astype(int))
        null_llf = float((counts * np.log(counts / len(y))).sum())
    lr_p = stats.chi2.sf(2 * (fit.llf - null_llf), full.shape[1] - base.shape[1])
    permutation = permutation_p(kruskal_h(y), labels, n_permutations=n_permutations, seed=seed)
    rows = _regression_rows(fit, full, test="likelihood ratio", test_p_value=lr_p, permutation_p_value=permutation,
                            n=len(y), n_events=np.nan)  # fmt: skip
    return rows.assign(model="ordinal", ratio=np.exp(rows["estimate"]))


#: Subgroup tests by an outcome type's model name (:mod:`stratomics.outcome_types`).
SUBGROUP_TESTS = {"cox": survival_by_subgroup, "logistic": binary_by_subgroup, "linear": continuous_by_subgroup,
                  "ordinal": ordinal_by_subgroup}  # fmt: skip


def subgroup_outcomes(obs: pd.DataFrame, outcomes: dict, covariates: list[str], *, group: str = "subgroup",
                      n_permutations: int = 1000, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Subgroups against every configured outcome (the test of each outcome type: :data:`SUBGROUP_TESTS`).

    Returns
    -------
    One row per outcome and non-reference subgroup (:data:`OUTCOME_COLUMNS`).
    """
    groups = obs[group]
    if groups.nunique() < 2:
        log.warning("subgroup outcomes: %d subgroup(s), nothing to compare", groups.nunique())
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    tables = []
    for name, spec in outcomes.items():
        otype = outcome_type(spec, name)
        test = SUBGROUP_TESTS[otype.model]
        options = {option: spec[option] for option in otype.options if option in spec}
        table = test(obs, groups, otype.columns(name, spec), covariates=covariates, n_permutations=n_permutations,
                     seed=seed, **options)  # fmt: skip
        tables.append(table.assign(outcome=name))
    return pd.concat(tables, ignore_index=True)[OUTCOME_COLUMNS] if tables else pd.DataFrame(columns=OUTCOME_COLUMNS)


#: Columns of a Kaplan-Meier table (one row per subgroup and event time).
KM_COLUMNS = ["subgroup", "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"]


def kaplan_meier_table(obs: pd.DataFrame, time: str, event: str, *, group: str = "subgroup") -> pd.DataFrame:
    """Kaplan-Meier estimates per subgroup at every event or censoring time: numbers at risk, events
    and censored there, survival with its 95% CI."""
    from lifelines import KaplanMeierFitter

    rows = []
    data = obs[[time, event, group]].dropna()
    for level, part in data.groupby(group, observed=True):
        km = KaplanMeierFitter().fit(part[time], part[event])
        curve = km.survival_function_.join(km.confidence_interval_).join(
            km.event_table[["at_risk", "observed", "censored"]])  # fmt: skip
        curve.columns = ["survival", "ci_low", "ci_high", "at_risk", "events", "censored"]
        rows.append(curve.rename_axis("time").reset_index().assign(subgroup=str(level)))
    return pd.concat(rows, ignore_index=True)[KM_COLUMNS]


#: Footnote of Table 1 (the Word table), saying how each kind of row is summarised and tested.
TABLE_ONE_NOTE = (
    "Numbers: median [Q1,Q3], Kruskal-Wallis test. Categories: n (%) of the patients with a known value, "
    "chi-square test (Fisher's exact test for a 2 x 2 table with small counts); a binary characteristic shows one level. Survival outcomes: events / person-time and "
    "median follow-up by the reverse Kaplan-Meier method, log-rank test. Missing: patients without the value. "
    "Patients without a subgroup are not included."
)


def _tableone_input(data: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[str], dict]:
    """Characteristics as ``tableone`` reads them: numbers stay numbers, categories become text.

    Returns
    -------
    (data, categorical columns, level shown per binary column: 1 of a 0/1 column, else the first level).
    """
    data = data[columns].copy()
    categorical, shown = [], {}
    for column in columns:
        values = data[column]
        distinct = set(values.dropna().unique())
        if values.dtype.kind in "biuf" and not distinct <= {0, 1}:
            data[column] = values.astype(float)
            continue
        text = values.map(lambda value: str(int(value)) if distinct <= {0, 1} else str(value), na_action="ignore")
        data[column] = text.astype(object).where(values.notna(), None)
        categorical.append(column)
        levels = sorted(data[column].dropna().unique())
        if len(levels) == 2:
            shown[column] = "1" if distinct <= {0, 1} else levels[0]
    return data, categorical, shown


def table_one(obs: pd.DataFrame, columns: list[str], *, group: str = "subgroup", survival: dict | None = None) -> pd.DataFrame:
    """Clinical characteristics of all patients and per subgroup, with one test per characteristic (``tableone``).

    Numbers: median [Q1,Q3], Kruskal-Wallis test; categories: n (%) per level (one row for a
    binary characteristic: 1 of a 0/1 column, else its first level), chi-square test; the missing
    count of each characteristic. Survival outcomes (``survival``: name -> (time column, event
    column)): events / person-time and the median follow-up by the reverse Kaplan-Meier method
    (censoring as the event), with the log-rank test; a censored time is never summarised as a
    plain median. Patients without a subgroup are left out.

    Returns
    -------
    One row per characteristic (and level): characteristic, level, missing, all, one column per
    subgroup, then test and p_value (on the first row of each characteristic).
    """
    import warnings

    from tableone import TableOne

    data = obs.dropna(subset=[group])
    labels = data[group].astype(str)
    levels = list(data[group].cat.categories) if hasattr(data[group], "cat") else sorted(data[group].unique())
    levels = [str(level) for level in levels if str(level) in set(labels)]
    described, categorical, shown = _tableone_input(data, columns)
    described[group] = labels.to_numpy()
    rows = [{"characteristic": "patients", "level": "", "missing": "", "all": str(len(data)),
             **{level: str((described[group] == level).sum()) for level in levels}, "test": "", "p_value": np.nan}]  # fmt: skip
    known = [column for column in columns if described[column].notna().any()]
    if known:
        tested = len(levels) > 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tableone's pandas deprecations and small-count notes
            summary = TableOne(described, columns=known, categorical=[c for c in categorical if c in known],
                               groupby=group, nonnormal=[c for c in known if c not in categorical], pval=tested,
                               htest_name=tested, missing=True, overall=True, include_null=False, label_suffix=False,
                               decimals=1, limit={c: 1 for c in shown}, order={c: [level] for c, level in shown.items()})  # fmt: skip
        rows += _tableone_rows(summary, levels)
    rows += [{"characteristic": column, "level": "no known value", "missing": str(len(data)), "test": "",
              "p_value": np.nan} for column in columns if column not in known]  # fmt: skip
    for name, (time, event) in (survival or {}).items():
        rows += _survival_rows(data, name, time, event, group)
    return pd.DataFrame(rows)


def _tableone_rows(summary, levels: list[str]) -> list[dict]:
    """Tidy rows of a ``TableOne``: the test and its p-value on each characteristic's first row."""
    table = summary.tableone.droplevel(0, axis=1)
    tests = getattr(summary, "htest_table", None)  # None with one subgroup: nothing to compare
    rows = []
    for (characteristic, level), cells in table.iloc[1:].iterrows():  # the first row counts patients
        first = not rows or rows[-1]["characteristic"] != characteristic
        rows.append({"characteristic": characteristic, "level": level or "median [Q1,Q3]",
                     "missing": str(cells["Missing"]).strip(), "all": cells["Overall"],
                     **{level_: cells[level_] for level_ in levels},
                     "test": tests.loc[characteristic, "Test"] if first and tests is not None else "",
                     "p_value": float(tests.loc[characteristic, "P-Value"]) if first and tests is not None else np.nan})  # fmt: skip
    return rows


def _survival_rows(data: pd.DataFrame, name: str, time: str, event: str, group: str) -> list[dict]:
    """Table 1 rows of a survival outcome: events / person-time, reverse-KM median follow-up, log-rank."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    known = data.dropna(subset=[time, event])
    p_value = (multivariate_logrank_test(known[time], known[group].astype(str), known[event]).p_value
               if known[group].nunique() > 1 else np.nan)  # fmt: skip
    parts = {"all": known, **{str(level): part for level, part in known.groupby(data[group].astype(str)[known.index])}}
    events, follow_up = {}, {}
    for level, part in parts.items():
        events[level] = f"{int(part[event].sum())} / {part[time].sum():.4g}"
        follow_up[level] = f"{KaplanMeierFitter().fit(part[time], 1 - part[event]).median_survival_time_:.4g}"
    missing = str(len(data) - len(known))
    return [{"characteristic": name, "level": f"events / person-time ({time})", "missing": missing, **events,
             "test": "log-rank", "p_value": p_value},
            {"characteristic": name, "level": "median follow-up (reverse Kaplan-Meier)", "missing": "",
             **follow_up, "test": "", "p_value": np.nan}]  # fmt: skip
