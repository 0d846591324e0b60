"""The ``dmbridge`` command."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from bridge import manifest as manifest_mod
from bridge.config import FileConfig, Settings
from bridge.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="dmbridge: customer DMs from X and other channels as Slack threads.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="dmbridge.toml (default: ./dmbridge.toml)")]


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(host: str = "127.0.0.1", port: int = 3000, config: ConfigOpt = None, verbose: bool = False) -> None:
    """Run the bridge: HTTP mode on POST /slack/events, or Socket Mode when SLACK_APP_TOKEN is set."""
    import uvicorn

    from bridge.app import build

    _logging(verbose)
    # Request handlers, delivery loops and pollers share one interpreter; with the default 5 ms GIL
    # switch interval a thread returning from a socket waits behind busy ones, which showed up as
    # acknowledgement latency and slower deliveries. 0.5 ms keeps I/O-bound threads responsive.
    sys.setswitchinterval(0.0005)
    settings = Settings()
    try:
        settings.check_for_serve()
        bridge = build(settings, FileConfig.load(config))
    except ConfigError as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    bridge.start()
    try:
        if settings.slack_app_token:
            bridge.connect_socket_mode()
            typer.echo("dmbridge: Socket Mode connected; /healthz and /metrics on "
                       f"http://{host}:{port}")
            uvicorn.run(bridge.http, host=host, port=port, log_level="warning")
        else:
            uvicorn.run(bridge.http, host=host, port=port, log_level="info" if verbose else "warning")
    finally:
        bridge.stop()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (serve does this on start)."""
    from bridge.store import migrate as mig
    from bridge.store.db import Database

    settings = Settings()
    db = Database(settings.database_url)
    mig.upgrade(db)
    db.dispose()
    typer.echo(f"dmbridge: schema is current ({db.engine.url.render_as_string(hide_password=True)})")


templates_app = typer.Typer(no_args_is_help=True, help="Saved replies: bulk import and export as YAML.")
app.add_typer(templates_app, name="templates")


@templates_app.command("export")
def templates_export(file: Annotated[Path | None, typer.Argument(help="YAML file (default: stdout)")] = None) -> None:
    """Write every template as YAML (name: text)."""
    import yaml

    from bridge.store import desk as store
    from bridge.store.db import Database

    db = Database(Settings().database_url)
    with db.session() as s:
        data = {t.name: t.text for t in store.all_templates(s)}
    db.dispose()
    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    _Dumper.add_representer(str, _text)
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=1000)
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        typer.echo(f"dmbridge: wrote {len(data)} template(s) to {file}")


@templates_app.command("import")
def templates_import(file: Path) -> None:
    """Add or replace templates from YAML (name: text); all are checked before any is saved."""
    import time

    import yaml

    from bridge import templates
    from bridge.commands import ParseError, template_name
    from bridge.store import desk as store
    from bridge.store import migrate as mig
    from bridge.store.db import Database

    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        typer.echo(f"dmbridge: {file} must map template names to texts", err=True)
        raise typer.Exit(2)
    problems = []
    for name, body in data.items():
        try:
            template_name(str(name))
            templates.validate(str(body))
        except (ParseError, ValueError) as exc:
            problems.append(f"  {name}: {exc}")
    if problems:
        typer.echo(f"dmbridge: nothing imported; fix these in {file}:\n" + "\n".join(problems), err=True)
        raise typer.Exit(2)
    db = Database(Settings().database_url)
    mig.upgrade(db)
    with db.session() as s:
        created = sum(store.save_template(s, str(n).lower(), str(b), "import", time.time()) for n, b in data.items())
    db.dispose()
    typer.echo(f"dmbridge: imported {len(data)} template(s) ({created} new, {len(data) - created} replaced)")


@app.command()
def stats(days: Annotated[int, typer.Option(help="how many days back")] = 7, config: ConfigOpt = None) -> None:
    """Volumes, response and resolution times, SLA attainment and busiest hours (as /dm stats)."""
    import time

    from bridge.sla_runner import report_text
    from bridge.store.db import Database

    try:
        file = FileConfig.load(config)
    except ConfigError as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    db = Database(Settings().database_url)
    typer.echo(report_text(db, file, days, time.time()).replace("*", ""))
    db.dispose()


@app.command()
def manifest(url: Annotated[str | None, typer.Option(help="public base URL, e.g. https://dm.example.com")] = None,
             socket: Annotated[bool, typer.Option("--socket", help="Socket Mode variant")] = False) -> None:
    """Print the Slack app manifest to paste at api.slack.com/apps → Create New App → From a manifest."""
    typer.echo(manifest_mod.dump(manifest_mod.render(url, socket)), nl=False)


@app.command("x-auth")
def x_auth(
    redirect_url: Annotated[str | None, typer.Option(
        help="the URL X redirected to (or its code), completing an earlier --print-url")] = None,
    print_url: Annotated[bool, typer.Option("--print-url", help="print the URL and exit (two-step use)")] = False,
    pending: Annotated[Path, typer.Option(help="where --print-url keeps the PKCE verifier (0600)")] = Path(
        ".dmbridge-x-auth.json"),
) -> None:
    """Authorize the X account for OAuth 2.0 (PKCE) once; serve refreshes the tokens (X_CLIENT_ID)."""
    from bridge import x_auth as flow
    from bridge.errors import AuthFailed, RetryLater
    from connectors.x.oauth import OAuthError

    try:
        flow.run(Settings(), print_url=print_url, redirect_url=redirect_url, pending_file=pending,
                 read_line=lambda: sys.stdin.readline(), echo=typer.echo)
    except (ConfigError, AuthFailed, RetryLater, OAuthError) as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def doctor(url: Annotated[str | None, typer.Option(help="public base URL, to match the X webhook exactly")] = None,
           config: ConfigOpt = None) -> None:
    """Check the deployment: Slack token, scopes, channels and groups; X and Meta credentials and webhooks;
    the database. Prints ✅/❌ with the fix; exits 1 on any ❌."""
    from bridge import doctor as doc

    try:
        file = FileConfig.load(config)
    except ConfigError as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    results = doc.run(Settings(), file, public_url=url)
    typer.echo(doc.table(results))
    raise typer.Exit(0 if doc.summary_ok(results) else 1)


@app.command()
def demo(verbose: bool = False) -> None:
    """Run the whole loop on local emulators of Slack, X and Meta, with no credentials, and print both sides."""
    from bridge.sandbox.demo import run_demo

    _logging(verbose) if verbose else logging.basicConfig(level=logging.WARNING)
    ok = run_demo(print)
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app()


if __name__ == "__main__":
    main()
