"""Commands for users, API tokens, keys and the audit log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from terugkeer.db.engine import make_engine
from terugkeer.db.migrate import upgrade

out = Console()


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="Encryption keys for sensitive fields.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")
    user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
    app.add_typer(user_app, name="user")
    token_app = typer.Typer(help="API tokens for feeds and other systems.", no_args_is_help=True)
    app.add_typer(token_app, name="token")
    audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")

    @user_app.command("add")
    def user_add(
        name: str,
        role: Annotated[
            str,
            typer.Option(
                help="operator, mayor_office, idv_officer, caseworker, analyst, auditor, administrator, feed"
            ),
        ],
        municipality: Annotated[
            str | None, typer.Option(help="GMnnnn, for mayor_office and caseworker")
        ] = None,
    ) -> None:
        """Add a user; the password is read from standard input (never an argument)."""
        from terugkeer.security.accounts import AccountError, add_user
        from terugkeer.security.passwords import WeakPasswordError

        password = sys.stdin.readline().rstrip("\n")
        engine = make_engine()
        upgrade(engine)
        try:
            created = add_user(engine, name, role, password, municipality)
        except (AccountError, WeakPasswordError) as e:
            out.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
        out.print(f"user [{created.name}] added with role {created.role}")
        if created.totp_uri:
            out.print("second factor required; enrol this in an authenticator app (shown once):")
            out.print(created.totp_uri, soft_wrap=True)

    @token_app.command("create")
    def token_create(
        name: str, user: Annotated[str, typer.Option(help="the user the token acts as")]
    ) -> None:
        """Create an API token; it is printed once and only its hash is kept."""
        from terugkeer.security.accounts import AccountError, create_token

        try:
            token = create_token(make_engine(), name, user)
        except AccountError as e:
            out.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
        out.print(token, soft_wrap=True)

    @audit_app.command("verify")
    def audit_verify() -> None:
        """Check the audit log's hash chain; exits 1 at the first break."""
        from terugkeer.security.audit import verify

        report = verify(make_engine())
        if report.ok:
            out.print(f"audit log intact: {report.entries} entries")
            return
        out.print(f"[red]audit log broken at entry {report.first_bad_id}: {report.problem}[/red]")
        raise typer.Exit(1)

    @keys_app.command("generate")
    def generate() -> None:
        """Print a new random 256-bit key (add it as id:key to TERUGKEER_ENCRYPTION_KEYS)."""
        from terugkeer.security.crypto import generate_key

        out.print(generate_key())

    @keys_app.command("rotate")
    def rotate_keys() -> None:
        """Re-encrypt every sensitive field to the newest key in TERUGKEER_ENCRYPTION_KEYS."""
        from terugkeer.security.keys import rotate

        report = rotate(make_engine())
        out.print(
            f"active key [{report.active_key}]: re-encrypted {report.rewritten}, "
            f"already current {report.already_current}"
        )
