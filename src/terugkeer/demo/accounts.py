"""The demo's accounts: one per role, to sign in to the portal (``/portaal/``) and the API of
the demo database. Synthetic, for development only: new random passwords each run, printed
and written to ``accounts.txt`` in the demo's folder (readable by its owner only), with the
second factor's secret for the roles that need one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from terugkeer.security.accounts import add_user, totp_secret
from terugkeer.security.actor import Actor
from terugkeer.security.roles import SCOPED_ROLES, Role

DEMO_MUNICIPALITY = "GM0363"  # Amsterdam: the most notices in a synthetic national year
FILE_NAME = "accounts.txt"


@dataclass(frozen=True)
class DemoAccount:
    name: str
    role: Role
    municipality: str | None
    password: str
    totp_secret: str | None  # base32, for an authenticator app (or pyotp)
    totp_uri: str | None


def demo_accounts(
    engine: Engine, workdir: Path, console: Console, roles: Iterable[Role] = tuple(Role)
) -> list[DemoAccount]:
    """Add ``demo-<role>`` for each role (the scoped roles in GM0363), print them and write
    them to ``<workdir>/accounts.txt``."""
    actor = Actor.system("demo", "demo accounts")
    made = []
    for role in roles:
        name = f"demo-{role.value}"
        municipality = DEMO_MUNICIPALITY if role in SCOPED_ROLES else None
        password = secrets.token_urlsafe(12)
        created = add_user(engine, name, role.value, password, municipality, actor=actor)
        secret = totp_secret(engine, name) if created.totp_uri else None
        made.append(DemoAccount(name, role, municipality, password, secret, created.totp_uri))
    path = workdir / FILE_NAME
    _write(path, made)
    console.print(
        f"[bold]demo accounts[/bold] (synthetic, local use only; new passwords each run; "
        f"also in {path}):"
    )
    for account in made:
        where = f" {account.municipality}" if account.municipality else ""
        console.print(f"  {account.name}{where}  password: {account.password}", soft_wrap=True)
        if account.totp_secret:
            console.print(f"    second factor (TOTP) secret: {account.totp_secret}", soft_wrap=True)
    return made


def _write(path: Path, accounts: list[DemoAccount]) -> None:
    lines = [
        "# terugkeer demo accounts: synthetic, for development only (new on each `make demo`).",
        "# Sign in at http://127.0.0.1:8000/portaal/ after `make serve` (see README).",
        "# A role with a second factor asks a code: add the secret to an authenticator app,",
        "# or: .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\"",
        "",
    ]
    for a in accounts:
        lines.append(f"name: {a.name}")
        lines.append(f"role: {a.role.value}")
        if a.municipality:
            lines.append(f"municipality: {a.municipality}")
        lines.append(f"password: {a.password}")
        if a.totp_secret:
            lines.append(f"totp_secret: {a.totp_secret}")
            lines.append(f"totp_uri: {a.totp_uri}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
