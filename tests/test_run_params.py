"""kit/run/run_params.py: ``--param key=value`` read by the deployment's schema, refused with the flow's parameters."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.run.run_params import FUTURE_TAG, convert, schema_parameters, split_params

TODAY = date(2026, 11, 21)
SCHEMA: dict[str, Any] = {
    "properties": {
        "rundate": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number", "default": 0.5},
        "dry": {"type": "boolean", "default": False},
        "tags": {"type": "array"},
        "options": {"type": "object"},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        "mode": {"$ref": "#/definitions/Mode"},
        "anything": {},
    },
    "required": ["rundate", "count"],
    "definitions": {"Mode": {"enum": ["fast", "full"]}},
}


def _convert(given: dict[str, str], tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return convert(given, schema=SCHEMA, defaults={}, deployment="etl/nightly", tags=tags, today=TODAY)


def test_split_params_keeps_values_as_written() -> None:
    assert split_params(["a=1", " b = x=y ", "c="]) == {"a": "1", "b": " x=y ", "c": ""}


@pytest.mark.parametrize(("items", "said"), [(["a"], "is not key=value"), (["=1"], "is not key=value"),
                                              (["a=1", "a=2"], "given twice")])  # fmt: skip
def test_split_params_refuses_what_is_not_one_key_value(items: list[str], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        split_params(items)


def test_the_schema_gives_types_and_what_is_required() -> None:
    found = {p.name: p for p in schema_parameters(SCHEMA, {"count": 3})}
    assert found["limit"].types == ("integer", "null") and not found["limit"].required
    assert found["mode"].types == ("string",)  # an enum through a $ref
    assert found["anything"].types == ()
    assert found["rundate"].required and not found["count"].required  # a deployment default fills it
    assert found["count"].describe() == "count: integer = 3" and found["rundate"].describe() == "rundate: string"


def test_values_become_the_types_the_flow_declares() -> None:
    assert _convert(
        {
            "rundate": "2026-11-20",
            "count": "20261121",
            "ratio": "2",
            "dry": "yes",
            "tags": '["a", "b"]',
            "options": '{"k": 1}',
            "limit": "none",
            "mode": "fast",
            "anything": "[1, 2]",
        }
    ) == {
        "rundate": "2026-11-20",
        "count": 20261121,
        "ratio": 2,
        "dry": True,
        "tags": ["a", "b"],
        "options": {"k": 1},
        "limit": None,
        "mode": "fast",
        "anything": [1, 2],
    }
    assert _convert({"rundate": "2026-11-20", "count": "1", "ratio": "0.25", "anything": "plain"}) == {
        "rundate": "2026-11-20",
        "count": 1,
        "ratio": 0.25,
        "anything": "plain",
    }


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"rundate": "2026-11-20", "count": "1", "colour": "red"}, "etl/nightly has no parameter 'colour'"),
        ({"rundate": "2026-11-20", "count": "1.5"}, r"--param count='1.5' is not a valid integer for etl/nightly"),
        ({"rundate": "2026-11-20", "count": "1", "dry": "maybe"}, "is not a valid boolean"),
        ({"rundate": "2026-11-20", "count": "1", "tags": '{"a": 1}'}, "is not a valid array"),
        ({"rundate": "2026-11-20", "count": "1", "limit": "many"}, "is not a valid integer or null"),
        ({"count": "1"}, r"etl/nightly needs the parameter\(s\) rundate"),
        ({"rundate": "21.11.2026", "count": "1"}, "is not a real date written yyyy-mm-dd"),
        ({"rundate": "2026-02-30", "count": "1"}, "is not a real date written yyyy-mm-dd"),
        ({"rundate": "2026-11-22", "count": "1"}, r"is in the future \(today is 2026-11-21\)"),
    ],
)
def test_a_wrong_parameter_is_refused_with_the_flows_parameters(given: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=said) as refused:
        _convert(given)
    assert refused.value.hint and refused.value.hint.startswith(("Parameters of etl/nightly: rundate: string",
                                                                  "Write e.g.", "Use today"))  # fmt: skip


def test_a_future_rundate_is_allowed_by_the_deployments_tag() -> None:
    assert _convert({"rundate": "2027-01-01", "count": "1"}, tags=(FUTURE_TAG,))["rundate"] == "2027-01-01"
    with pytest.raises(ConfigError, match=FUTURE_TAG):
        _convert({"rundate": "2027-01-01", "count": "1"}, tags=("other",))


def test_a_flow_without_parameters_says_so() -> None:
    with pytest.raises(ConfigError) as refused:
        convert({"x": "1"}, schema=None, defaults={}, deployment="hello/hello", today=TODAY)
    assert refused.value.hint == "hello/hello takes no parameters."
