"""Helpers for the portal's tests: users of each role and signing in through the portal's own
forms (the sign-in CSRF token, the second factor).

Password hashing (argon2id) takes most of a second on a busy machine, so the ``portal``
fixture gives each new user the same password hash (computed once) and opens its session
with a session row as ``sign_in`` writes it; ``sign_in`` below walks the real forms (the
sign-in tests use it)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from terugkeer.security.accounts import SESSION_HOURS, TOTP_STEP, add_user, totp_secret
from terugkeer.security.crypto import field_cipher, totp_context
from terugkeer.security.passwords import hash_password, new_totp_secret
from terugkeer.security.roles import SECOND_FACTOR_ROLES, Role
from terugkeer.security.tables import sessions, users
from terugkeer.web.app import create_app

PASSWORD = "portaal-test-wachtwoord-1"
MUNICIPALITY = "GM0363"
OTHER_MUNICIPALITY = "GM0599"


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found, "no sign-in form token in the page"
    return found.group(1)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def code_for(engine: Engine, name: str, step_offset: int = 0) -> str:
    """A one-time code of the user's second factor (each code is accepted once: pass a
    different ``step_offset``, -1 or 1, for a second sign-in within 30 seconds)."""
    secret = totp_secret(engine, name)
    assert secret is not None
    now = int(datetime.now(UTC).timestamp()) // TOTP_STEP + step_offset
    return pyotp.TOTP(secret).at(now * TOTP_STEP)


def make_user(
    engine: Engine, role: Role, name: str | None = None, municipality: str | None = None
) -> str:
    name = name or f"test-{role.value}"
    scoped = role in (Role.MAYOR_OFFICE, Role.CASEWORKER)
    add_user(engine, name, role.value, PASSWORD, (municipality or MUNICIPALITY) if scoped else None)
    return name


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(PASSWORD)


def quick_user(
    engine: Engine, role: Role, name: str | None = None, municipality: str | None = None
) -> str:
    """A user row as ``add_user`` writes it, with the password hash computed once."""
    name = name or f"test-{role.value}"
    scoped = role in (Role.MAYOR_OFFICE, Role.CASEWORKER)
    secret = new_totp_secret() if role in SECOND_FACTOR_ROLES else None
    with engine.begin() as conn:
        conn.execute(
            insert(users).values(
                name=name,
                role=role.value,
                municipality=(municipality or MUNICIPALITY) if scoped else None,
                password_hash=_password_hash(),
                totp_secret=field_cipher().encrypt(secret, totp_context(name)) if secret else None,
                active=True,
                created_at=datetime.now(UTC),
            )
        )
    return name


def quick_session(client: TestClient, engine: Engine, name: str) -> None:
    """A live session for the user, as ``sign_in`` writes it, as the client's cookie."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        user = conn.execute(select(users).where(users.c.name == name)).one()
        conn.execute(
            insert(sessions).values(
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                user_id=user.id,
                csrf_token=csrf,
                second_factor=user.totp_secret is not None,
                created_at=now,
                expires_at=now + timedelta(hours=SESSION_HOURS),
            )
        )
    client.cookies.set("terugkeer_session", token)


def sign_in(
    client: TestClient, engine: Engine, name: str, role: Role, step_offset: int = 0
) -> None:
    """Sign in through /portaal/inloggen (with the one-time code for a second factor)."""
    page = client.get("/portaal/inloggen")
    data = {"naam": name, "wachtwoord": PASSWORD, "form_token": form_token(page.text)}
    if role in SECOND_FACTOR_ROLES:
        data["code"] = code_for(engine, name, step_offset)
    response = client.post("/portaal/inloggen", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert client.cookies.get("terugkeer_session")


@pytest.fixture
def portal(engine: Engine) -> Callable[..., TestClient]:
    """``portal(Role.X)``: a client signed in as a new user of that role (municipality
    GM0363 for a scoped role, or ``municipality=``); ``portal()`` a client not signed in."""
    app = create_app(engine)

    def make(
        role: Role | None = None, name: str | None = None, municipality: str | None = None
    ) -> TestClient:
        client = TestClient(app)
        if role is not None:
            quick_session(client, engine, quick_user(engine, role, name, municipality))
        return client

    return make
