"""Every platform call `dmbridge doctor` makes exists in the published specs, the way doctor makes it."""

from __future__ import annotations

import ast
from pathlib import Path

from slack_specs import spec  # tests/contract is on sys.path

ROOT = Path(__file__).resolve().parents[2]
SLACK_METHODS = {
    "auth_test": "auth.test",
    "conversations_info": "conversations.info",
    "usergroups_users_list": "usergroups.users.list",
}


def _client_methods() -> set[str]:
    tree = ast.parse((ROOT / "bridge" / "doctor.py").read_text(encoding="utf-8"))
    return {
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "client"
    }


def test_doctor_calls_only_slack_methods_of_the_spec_with_their_arguments() -> None:
    web = spec("slack/web-api.openapi.json")
    called = _client_methods()
    assert called == set(SLACK_METHODS), called
    for method in SLACK_METHODS.values():
        assert f"/{method}" in web["paths"], method
    # the arguments doctor passes are documented parameters of the GET form of each method
    params = {
        m: {p["name"] for verb in web["paths"][f"/{m}"].values() for p in verb.get("parameters", [])}
        for m in SLACK_METHODS.values()
    }
    assert "channel" in params["conversations.info"] and "usergroup" in params["usergroups.users.list"]


def test_x_webhook_listing_takes_the_app_bearer_token_doctor_sends() -> None:
    x = spec("x/openapi.json")
    op = x["paths"]["/2/webhooks"]["get"]
    assert op["security"] == [{"BearerToken": []}]  # app-only: why doctor obtains one from the consumer keys
    me = x["paths"]["/2/users/me"]["get"]
    assert {"UserToken": []} in me["security"] and any("OAuth2UserToken" in s for s in me["security"])
    fields = x["components"]["schemas"]["WebhookConfig"]["properties"]
    assert {"id", "url", "valid"} <= set(fields)  # what doctor reads of each registration
