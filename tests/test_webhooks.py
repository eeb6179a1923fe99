"""kit/declarations/webhooks.py: webhook block fields and the message templates, rendered with Jinja as the
Prefect server renders them (its ``ui_url`` filter stood in: it needs a server's UI settings)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest

from prefect_julia.kit.declarations.webhooks import WEBHOOK_FIELDS, block_fields, message

RUN_URL = "http://127.0.0.1:4200/runs/flow-run/1234"


def _render(template: str, state_message: str | None = "boom", state: str = "Failed") -> str:
    env = jinja2.Environment(autoescape=False)
    env.filters["ui_url"] = lambda obj: RUN_URL
    run = SimpleNamespace(name="brave-otter", id="1234", state=SimpleNamespace(name=state, message=state_message))
    context: dict[str, Any] = {
        "flow_run": run,
        "flow": SimpleNamespace(name="etl"),
        "deployment": SimpleNamespace(name="nightly"),
    }
    return env.from_string(template).render(**context)


def test_the_url_is_a_secret_the_block_only_refers_to() -> None:
    fields = block_fields("ops", "generic", "https://hooks.example/T0/secret-path", timeout=3)
    assert fields["url"] == "{{url}}" and fields["secrets"] == {"url": "https://hooks.example/T0/secret-path"}
    assert "secret-path" not in json.dumps({k: v for k, v in fields.items() if k != "secrets"})
    assert fields["method"] == "POST" and fields["timeout"] == 3


def test_generic_posts_a_json_body_and_slack_a_text_document() -> None:
    generic = block_fields("ops", "generic", "https://x.invalid/")
    assert generic["form_data"] == "{{body}}" and generic["headers"] == {"Content-Type": "application/json"}
    assert "json_data" not in generic
    slack = block_fields("ops", "slack", "https://x.invalid/")
    assert slack["json_data"] == {"text": "*{{subject}}*\n{{body}}"} and "form_data" not in slack


def test_a_generic_state_message_renders_to_one_json_document_with_every_field() -> None:
    subject, body = message("state", "generic", env="dev", notification="ops")
    document = json.loads(_render(body, state_message='bad "data"\nline 2'))
    assert tuple(document) == WEBHOOK_FIELDS
    assert document == {
        "title": "[dev] etl/nightly run brave-otter ended Failed",
        "kind": "state",
        "environment": "dev",
        "notification": "ops",
        "flow": "etl",
        "deployment": "nightly",
        "flow_run": "brave-otter",
        "flow_run_id": "1234",
        "state": "Failed",
        "message": 'bad "data"\nline 2',
        "stderr_tail": "",
        "url": RUN_URL,
    }
    assert _render(subject) == "[dev] etl/nightly run brave-otter ended Failed"


def test_a_julia_failure_carries_its_stderr_tail_without_the_fix_line() -> None:
    failure = "bad_data.jl:7: bad data\nstderr (last lines):\nrow 3 is odd\nERROR: bad data\n  fix: look at row 3"
    _subject, body = message("state", "generic", env="prod", notification="ops")
    assert json.loads(_render(body, state_message=failure))["stderr_tail"] == "row 3 is odd\nERROR: bad data"
    _subject, slack = message("state", "slack", env="prod", notification="ops")
    text = _render(slack, state_message=failure)
    assert "Julia stderr (last lines):\n```row 3 is odd\nERROR: bad data```" in text
    assert "fix:" not in text


def test_a_late_message_says_how_long_the_run_waited() -> None:
    subject, body = message("late", "generic", env="dev", notification="ops", late_after="10 minutes")
    assert _render(subject, state="Pending") == "[dev] etl/nightly run brave-otter still Pending after 10 minutes"
    assert json.loads(_render(body, state_message=None, state="Pending"))["kind"] == "late"


@pytest.mark.parametrize("state_message", [None, "", "timed out"])
def test_a_slack_message_names_the_run_with_a_link(state_message: str | None) -> None:
    _subject, body = message("state", "slack", env="dev", notification="ops")
    text = _render(body, state_message=state_message)
    assert "Flow: etl  Deployment: nightly  Environment: dev" in text
    assert "State: *Failed*" in text and f"Run: <{RUN_URL}|brave-otter>" in text
    assert ("```timed out```" in text) == (state_message == "timed out")
