"""The allow-list of estimators a TrainingJob may name, by import path.

The train entry point imports the class named by `spec.estimator`; an import path from a user
is code execution, so only the paths below are accepted. The CRD schema carries this list as an
enum (the API server refuses anything else at admission), and the runtime image keeps its own
copy (`kubeloop_runtime.estimators.ALLOWED_ESTIMATORS`) that a test compares with this one.

This module must stay import-free: the CRD generator and the runtime read it without scikit-learn.
"""

from __future__ import annotations

CLASSIFIERS: tuple[str, ...] = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.AdaBoostClassifier",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.svm.SVC",
    "sklearn.svm.LinearSVC",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.neural_network.MLPClassifier",
)

REGRESSORS: tuple[str, ...] = (
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
    "sklearn.neural_network.MLPRegressor",
)

ALLOWED_ESTIMATORS: tuple[str, ...] = CLASSIFIERS + REGRESSORS
