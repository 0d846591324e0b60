"""``dmbridge x-chat keygen|setup|status``: the brand account's X Chat identity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bridge.config import Settings
from bridge.errors import AuthFailed, ConfigError, Rejected, RetryLater

if TYPE_CHECKING:
    from bridge.x_chat_keys import Status

x_chat_app = typer.Typer(no_args_is_help=True, help="X Chat (encrypted DMs): the brand account's keys.")


def set_up(settings: Settings, *, replace: bool = False, pin: str | None = None) -> Status:
    """``x-chat setup`` on the database of ``settings``: migrated first; a new identity, or with ``pin`` the X
    app's one from its key backup."""
    from bridge import x_chat_keys
    from bridge.store import migrate
    from bridge.store.db import Database
    from bridge.wiring import x_chat_api

    db = Database(settings.database_url)
    try:
        migrate.upgrade(db)
        api = x_chat_api(settings, db)
        if pin is not None:
            return x_chat_keys.restore(db, api, settings.dmbridge_secret_key, pin)
        return x_chat_keys.setup(db, api, settings.dmbridge_secret_key, replace=replace)
    finally:
        db.dispose()


@x_chat_app.command()
def keygen() -> None:
    """Print a new DMBRIDGE_SECRET_KEY (it seals the X Chat keys in the database; keep it with your secrets)."""
    from bridge import x_chat_keys

    typer.echo(x_chat_keys.new_secret_key())


@x_chat_app.command()
def setup(
    replace: Annotated[bool, typer.Option("--replace", help="make a new identity even if one is stored")] = False,
    from_backup: Annotated[
        bool,
        typer.Option("--from-backup", help="take over the identity the X app made: unlock its key backup with the PIN"),
    ] = False,
) -> None:
    """Make the account's X Chat identity, register its public keys with X, store it sealed (once); or, with
    --from-backup, unlock the identity already made in the X app (asks for its PIN) and store that."""
    settings = Settings()
    pin = typer.prompt("X Chat PIN of the account", hide_input=True) if from_backup else None
    try:
        result = set_up(settings, replace=replace, pin=pin)
    except (ConfigError, AuthFailed, RetryLater, Rejected) as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(("✅ " if result.ok else "❌ ") + result.detail)
    raise typer.Exit(0 if result.ok else 1)


@x_chat_app.command()
def status() -> None:
    """Whether this process can open the stored X Chat identity (no secret is printed)."""
    from bridge import x_chat_keys
    from bridge.store import migrate
    from bridge.store.db import Database

    settings = Settings()
    db = Database(settings.database_url)
    try:
        migrate.upgrade(db)
        result = x_chat_keys.status(db, settings.dmbridge_secret_key)
    finally:
        db.dispose()
    typer.echo(("✅ " if result.ok else "❌ ") + result.detail)
    raise typer.Exit(0 if result.ok else 1)
