"""Webhook notification blocks and the messages automations send through them.

A webhook is declared in ``envs/<env>.blocks.toml`` as a Prefect ``custom-webhook`` block with a ``format``:

- ``generic``: a POST whose body is one JSON document (``WEBHOOK_FIELDS``);
- ``slack``: a POST of ``{"text": ...}``, what a Slack incoming webhook reads.

The URL is a secret (``secret_from``): it is stored in the block's secret values and the block's ``url``
field only refers to it, so it never shows in the UI, a log or a committed file. Messages are Jinja
templates the Prefect server renders when the automation fires, with the run, its flow and deployment.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FORMATS", "WEBHOOK_FIELDS", "block_fields", "message"]

FORMATS = ("generic", "slack")
DEFAULT_TIMEOUT = 10.0
#: Keys of the generic format's JSON document.
WEBHOOK_FIELDS = (
    "title",
    "kind",
    "environment",
    "notification",
    "flow",
    "deployment",
    "flow_run",
    "flow_run_id",
    "state",
    "message",
    "stderr_tail",
    "url",
)

_STDERR_MARK = "stderr (last lines):"  # how a failed Julia job's error carries its stderr tail
_TAIL = (
    '{% set m = flow_run.state.message or "" %}'
    f'{{% set tail = (m.split("{_STDERR_MARK}")[1].split("\\n  fix:")[0].strip("\\n") if "{_STDERR_MARK}" in m else "") %}}'
)


def block_fields(name: str, fmt: str, url: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Fields of a ``CustomWebhookNotificationBlock`` posting format ``fmt`` to the secret ``url``."""
    fields: dict[str, Any] = {
        "name": name,
        "url": "{{url}}",
        "method": "POST",
        "secrets": {"url": url},
        "timeout": timeout,
    }
    if fmt == "slack":
        fields["json_data"] = {"text": "*{{subject}}*\n{{body}}"}
    else:
        fields["form_data"] = "{{body}}"  # the body is already a JSON document
        fields["headers"] = {"Content-Type": "application/json"}
    return fields


def _title(kind: str, env: str, late_after: str) -> str:
    run = f"[{env}] {{{{ flow.name }}}}/{{{{ deployment.name }}}} run {{{{ flow_run.name }}}}"
    if kind == "late":
        return run + " still {{ flow_run.state.name }} after " + late_after
    return run + " ended {{ flow_run.state.name }}"


def message(kind: str, fmt: str, *, env: str, notification: str, late_after: str = "") -> tuple[str, str]:
    """(subject, body) templates for a notification of ``kind`` (``state`` or ``late``) in format ``fmt``."""
    title = _title(kind, env, late_after)
    if fmt == "slack":
        lines = [
            "Flow: {{ flow.name }}  Deployment: {{ deployment.name }}  Environment: " + env,
            "State: *{{ flow_run.state.name }}*",
            "Run: <{{ flow_run|ui_url }}|{{ flow_run.name }}>",
            "{% if tail %}Julia stderr (last lines):\n```{{ tail }}```{% elif flow_run.state.message %}"
            "```{{ flow_run.state.message }}```{% endif %}",
        ]
        return title, _TAIL + "\n".join(lines)
    values = {
        "title": "{{ (title or '')|tojson }}",
        "kind": json.dumps(kind),
        "environment": json.dumps(env),
        "notification": json.dumps(notification),
        "flow": "{{ (flow.name or '')|tojson }}",
        "deployment": "{{ (deployment.name or '')|tojson }}",
        "flow_run": "{{ (flow_run.name or '')|tojson }}",
        "flow_run_id": '"{{ flow_run.id }}"',
        "state": "{{ (flow_run.state.name or '')|tojson }}",
        "message": "{{ (flow_run.state.message or '')|tojson }}",
        "stderr_tail": "{{ tail|tojson }}",
        "url": "{{ ((flow_run|ui_url) or '')|tojson }}",
    }
    assert tuple(values) == WEBHOOK_FIELDS
    body = "{" + ", ".join(f'"{key}": {value}' for key, value in values.items()) + "}"
    return title, _TAIL + "{% set title %}" + title + "{% endset %}" + body
