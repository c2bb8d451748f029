"""The allow-list of estimators a TrainingJob may name, by import path.

The train entry point imports the class named by `spec.estimator`; an import path from a user
is code execution, so only the paths below are accepted. The CRD schema carries this list as an
enum (the API server refuses anything else at admission), and the runtime image keeps its own
copy (`kubeloop_runtime.estimators.ALLOWED_ESTIMATORS`); tests compare the two.

This module must stay import-free: the CRD generator reads it without scikit-learn.
"""

from __future__ import annotations

from typing import Final

ALLOWED_ESTIMATORS: Final[tuple[str, ...]] = (
    # classifiers
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.svm.SVC",
    "sklearn.svm.LinearSVC",
    "sklearn.naive_bayes.GaussianNB",
    # regressors
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.SGDRegressor",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.svm.SVR",
    "sklearn.svm.LinearSVR",
)
