"""Schema validation: each rule names the column and the rule; all violations come at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from kubeloop_runtime.config import SchemaSpec
from kubeloop_runtime.errors import SchemaError
from kubeloop_runtime.schema import apply_declared_types, column_type, find_violations, validate


def schema(*columns: dict[str, Any], **rules: Any) -> SchemaSpec:
    return SchemaSpec.model_validate({"columns": list(columns), **rules})


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [25, 40, 130, -2, 33],
            "height": [1.7, 1.8, None, 1.6, 1.75],
            "city": ["paris", "rome", "oslo", "paris", None],
            "member": [True, False, True, True, False],
            "score": [1.0, 2.5, 3.0, 4.0, 5.0],
            "label": [0, 1, 0, 1, 0],
        }
    )


def rules_of(
    frame: pd.DataFrame, spec: SchemaSpec, target: str | None = None
) -> list[tuple[Any, str]]:
    return [(found.column, found.rule) for found in find_violations(frame, spec, target)]


def test_conforming_data_passes(people: pd.DataFrame) -> None:
    spec = schema(
        {"name": "age", "type": "integer", "min": -10, "max": 200},
        {"name": "height", "type": "number", "maxNullShare": 0.2},
        {"name": "city", "type": "category", "allowedValues": ["paris", "rome", "oslo"]},
        {"name": "member", "type": "boolean"},
        minRows=5,
    )
    assert find_violations(people, spec) == []
    validate(people, spec)


def test_min_rows(people: pd.DataFrame) -> None:
    found = find_violations(people, schema(minRows=6))
    assert [(item.column, item.rule, item.message) for item in found] == [
        (None, "minRows", "dataset: 5 rows, fewer than minRows 6")
    ]


def test_required_and_optional_missing_columns(people: pd.DataFrame) -> None:
    spec = schema({"name": "weight"}, {"name": "nickname", "required": False, "min": 3})
    found = find_violations(people, spec)
    assert [(item.column, item.rule, item.message) for item in found] == [
        ("weight", "required", "column 'weight': missing")
    ]


def test_extra_columns_refused_but_the_target_is_allowed(people: pd.DataFrame) -> None:
    spec = schema({"name": "age"}, {"name": "height"}, allowExtraColumns=False)
    assert rules_of(people, spec, target="label") == [
        ("city", "allowExtraColumns"),
        ("member", "allowExtraColumns"),
        ("score", "allowExtraColumns"),
    ]


@pytest.mark.parametrize(
    ("column", "declared", "expected"),
    [
        ("city", "number", "column 'city': type number expected, found str (e.g. 'paris')"),
        ("score", "integer", "column 'score': type integer expected, found non-integral numbers"),
        ("age", "boolean", "column 'age': type boolean expected, found int64"),
        ("member", "number", "column 'member': type number expected, found bool"),
    ],
)
def test_type_rule(people: pd.DataFrame, column: str, declared: str, expected: str) -> None:
    found = find_violations(people, schema({"name": column, "type": declared, "min": 0}))
    assert [(item.rule, item.message) for item in found] == [("type", expected)]


def test_min_and_max_count_values_outside_the_range(people: pd.DataFrame) -> None:
    found = find_violations(people, schema({"name": "age", "min": 0, "max": 120}))
    assert [(item.rule, item.message) for item in found] == [
        ("min", "column 'age': 1 value below min 0 (lowest -2)"),
        ("max", "column 'age': 1 value above max 120 (highest 130)"),
    ]


def test_range_rule_on_text_is_reported(people: pd.DataFrame) -> None:
    found = find_violations(people, schema({"name": "city", "max": 3}))
    assert [(item.rule, item.message) for item in found] == [
        ("max", "column 'city': rule max needs numbers, found text")
    ]


def test_allowed_values(people: pd.DataFrame) -> None:
    spec = schema(
        {"name": "city", "allowedValues": ["paris", "rome"]},
        {"name": "label", "allowedValues": [0, 1.0]},
    )
    found = find_violations(people, spec)
    assert [(item.column, item.rule, item.message) for item in found] == [
        ("city", "allowedValues", "column 'city': values not in allowedValues: 'oslo'")
    ]


def test_max_null_share(people: pd.DataFrame) -> None:
    found = find_violations(people, schema({"name": "height", "maxNullShare": 0.1}))
    assert [(item.rule, item.message) for item in found] == [
        ("maxNullShare", "column 'height': null share 0.2 (1 of 5) above maxNullShare 0.1")
    ]


def test_every_violation_is_raised_together(people: pd.DataFrame) -> None:
    spec = schema(
        {"name": "age", "max": 120},
        {"name": "city", "allowedValues": ["paris"]},
        {"name": "missing"},
        minRows=10,
    )
    with pytest.raises(SchemaError) as caught:
        validate(people, spec)
    assert str(caught.value).startswith("4 schema violations: dataset: 5 rows")
    assert caught.value.violations == [
        "dataset: 5 rows, fewer than minRows 10",
        "column 'age': 1 value above max 120 (highest 130)",
        "column 'city': values not in allowedValues: 'oslo', 'rome'",
        "column 'missing': missing",
    ]


def test_many_unexpected_values_are_summarised() -> None:
    frame = pd.DataFrame({"code": [f"c{index}" for index in range(12)]})
    found = find_violations(frame, schema({"name": "code", "allowedValues": ["c0"]}))
    assert found[0].message.endswith("'c1', 'c10', 'c11', 'c2', 'c3' and 6 more")


def test_declared_category_turns_numbers_into_text() -> None:
    frame = pd.DataFrame({"store": [10, 20, np.nan], "sales": [1.0, 2.0, 3.0]})
    typed = apply_declared_types(frame, schema({"name": "store", "type": "category"}))
    assert typed["store"].tolist()[:2] == ["10.0", "20.0"]
    assert typed["store"].isna().tolist() == [False, False, True]
    assert column_type("store", typed["store"]) == "category"
    assert column_type("sales", typed["sales"]) == "number"
    assert frame["store"].dtype == np.float64  # the input frame is left alone
