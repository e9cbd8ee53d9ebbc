"""API tokens: created from the command line or the API, stored hashed, revocable, audited."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from cli import main
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import api_tokens, audit_log, users
from tests.web.api_kit import RECORDS, Api, bearer, token_for, client, system  # noqa: F401 - fixtures
from tests.web.auth_kit import app_client, csrf_of, give_password, sign_in
from web.system import System


class Session:
    """A browser session signed in as one user, with its own client (tokens are created so)."""

    def __init__(self, system: System, username: str):
        give_password(system, username)
        self.client = app_client(system)
        assert sign_in(self.client, username).status_code == 303
        self.csrf = csrf_of(self.client.get("/").text)  # the sign-out form's

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers={"X-CSRF-Token": self.csrf}, **kw)


def test_a_token_acts_as_its_user(client: TestClient, system: System) -> None:
    token = token_for(system, "agent")
    assert client.get(RECORDS, headers=bearer(token)).status_code == 200


def test_only_the_hash_of_a_token_is_stored(system: System) -> None:
    token = token_for(system, "agent")
    with read_transaction(system.db) as conn:
        row = conn.execute(select(api_tokens)).mappings().one()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(dict(row).values()) and token.startswith(row["prefix"])


def test_an_unknown_token_is_refused_not_treated_as_anonymous(client: TestClient) -> None:
    response = client.get("/api/v1/forms", headers=bearer("dk_not-a-real-token"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working(client: TestClient, system: System) -> None:
    admin = Api(client, system, "admin")
    token = Session(system, "admin").post("/api/v1/tokens", json={"name": "gateway"}).json()
    assert client.get(RECORDS, headers=bearer(token["token"])).status_code == 200
    assert admin.delete(f"/api/v1/tokens/{token['id']}").json()["active"] is False
    assert client.get(RECORDS, headers=bearer(token["token"])).status_code == 401


def test_a_deactivated_users_token_stops_working(client: TestClient, system: System) -> None:
    token = token_for(system, "agent")
    with transaction(system.db) as conn:
        conn.execute(update(users).where(users.c.username == "agent").values(is_active=False))
    assert client.get(RECORDS, headers=bearer(token)).status_code == 401


def test_users_list_and_revoke_only_their_own_tokens(client: TestClient, system: System) -> None:
    agent, accounts, admin = (Api(client, system, u) for u in ("agent", "accounts", "admin"))
    mine = Session(system, "agent").post("/api/v1/tokens", json={"name": "script"}).json()
    assert {t["user"] for t in agent.get("/api/v1/tokens").json()["items"]} == {"agent"}
    assert accounts.delete(f"/api/v1/tokens/{mine['id']}").status_code == 404
    assert {t["user"] for t in admin.get("/api/v1/tokens").json()["items"]} == {"agent", "accounts", "admin"}
    assert [t["user"] for t in admin.get("/api/v1/tokens?user=accounts").json()["items"]] == ["accounts"]


def test_a_token_cannot_create_tokens(client: TestClient, system: System) -> None:
    # A leaked token could otherwise mint others that keep working after it is revoked.
    response = Api(client, system, "agent").post("/api/v1/tokens", json={"name": "another"})
    assert response.status_code == 403 and "sign in" in response.json()["error"]
    with read_transaction(system.db) as conn:
        assert [r.name for r in conn.execute(select(api_tokens.c.name))] == ["tests"]


def test_a_token_needs_a_name(client: TestClient, system: System) -> None:
    response = Session(system, "agent").post("/api/v1/tokens", json={"name": "  "})
    assert response.status_code == 400 and "name" in response.json()["fields"]


def test_creating_and_revoking_tokens_is_audited(client: TestClient, system: System) -> None:
    created = Session(system, "agent").post("/api/v1/tokens", json={"name": "script"}).json()
    Api(client, system, "agent").delete(f"/api/v1/tokens/{created['id']}")
    with read_transaction(system.db) as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action).where(
            audit_log.c.target == f"token:{created['id']}"))]
    assert actions == ["token.created", "token.revoked"]


def test_the_command_line_creates_lists_and_revokes_tokens(system: System, client: TestClient,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = str(system.db.url)
    assert main(["tokens", "create", "agent", "--name", "hotline gateway", "--db", db]) == 0
    token = capsys.readouterr().out.strip()
    assert client.get(RECORDS, headers=bearer(token)).status_code == 200
    assert main(["tokens", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "hotline gateway" in listed and token not in listed
    assert main(["tokens", "revoke", "1", "--db", db]) == 0
    assert client.get(RECORDS, headers=bearer(token)).status_code == 401


def test_the_command_line_refuses_a_token_for_an_unknown_user(system: System,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "create", "nobody", "--name", "x", "--db", str(system.db.url)]) == 1
    assert "no active user 'nobody'" in capsys.readouterr().err


def test_administrators_see_every_token_on_a_page_and_revoke_one(client: TestClient, system: System) -> None:
    from tests.web.auth_kit import csrf_of, give_password, sign_in

    token = token_for(system, "agent", "nightly export")
    give_password(system, "admin")
    assert sign_in(client, "admin").status_code == 303
    page = client.get("/admin/tokens?lang=en")
    assert page.status_code == 200 and "nightly export" in page.text and token not in page.text
    done = client.post("/admin/tokens/1/revoke", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get(RECORDS, headers=bearer(token)).status_code == 401


def test_the_token_page_is_for_administrators_only(client: TestClient, system: System) -> None:
    from tests.web.auth_kit import app_client, give_password, sign_in

    give_password(system, "agent")
    sign_in(client, "agent")
    assert client.get("/admin/tokens").status_code == 403
