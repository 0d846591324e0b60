"""The ``dmbridge`` command."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge import manifest as manifest_mod
from bridge import records_cli
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outbox_cli import outbox_app
from bridge.toml_config import FileConfig
from bridge.x_chat_cli import x_chat_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="dmbridge: customer DMs from X and other channels as Slack threads.",
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="dmbridge.toml (default: ./dmbridge.toml)")]


def _logging(verbose: bool, kind: str = "text") -> None:
    from bridge import logs

    logs.configure(verbose, kind)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 3000, config: ConfigOpt = None, verbose: bool = False) -> None:
    """Run the bridge: HTTP mode on POST /slack/events, or Socket Mode when SLACK_APP_TOKEN is set."""
    from bridge.app import build

    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError: a setting that does not parse
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    _logging(verbose, settings.dmbridge_log_format)
    # Request handlers, delivery loops and pollers share one interpreter; with the default 5 ms GIL
    # switch interval a thread returning from a socket waits behind busy ones, which showed up as
    # acknowledgement latency and slower deliveries. 0.5 ms keeps I/O-bound threads responsive.
    sys.setswitchinterval(0.0005)
    try:
        settings.check_for_serve()
        metrics = _bind(settings.dmbridge_metrics_addr)
        bridge = build(settings, FileConfig.load(config))
    except ConfigError as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    bridge.start()
    # what start-up built (modules, models, clients) lives as long as the process: out of the collector's
    # view, a full collection scans only what requests and deliveries allocate since (start-up's garbage is
    # collected first, not frozen with it)
    gc.collect()
    gc.freeze()
    try:
        if settings.slack_app_token:
            bridge.connect_socket_mode()
            typer.echo(f"dmbridge: Socket Mode connected; /healthz and /metrics on http://{host}:{port}")
        _run_http(bridge.http, host, port, metrics, verbose and not settings.slack_app_token)
    finally:
        bridge.stop()


def _bind(addr: str) -> tuple[str, int] | None:
    """DMBRIDGE_METRICS_ADDR (``host:port``, ``[v6]:port`` or ``:port``) → (host, port); None when unset."""
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"DMBRIDGE_METRICS_ADDR must be host:port, not {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _run_http(http: Any, host: str, port: int, metrics: tuple[str, int] | None, access_log: bool) -> None:
    """uvicorn with connection limits; with a metrics address a second listener in the same event loop serves
    /metrics alone (and the main one no longer does). The main server owns the signals; the other stops
    with it."""
    import asyncio
    import contextlib

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    from bridge.http import UVICORN_LIMITS

    level = "info" if access_log else "warning"
    main = uvicorn.Server(uvicorn.Config(http, host=host, port=port, log_level=level, **UVICORN_LIMITS))
    if metrics is None:
        main.run()
        return
    route = next(r for r in http.routes if getattr(r, "path", "") == "/metrics")
    http.router.routes = [r for r in http.routes if r is not route]

    class SideServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    side = SideServer(
        uvicorn.Config(
            Starlette(routes=[Route("/metrics", route.endpoint)]),
            host=metrics[0],
            port=metrics[1],
            log_level=level,
            **UVICORN_LIMITS,
        )
    )

    async def both() -> None:
        task = asyncio.create_task(side.serve())
        try:
            await main.serve()
        finally:
            side.should_exit = True
            await task

    asyncio.run(both())


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
app.add_typer(outbox_app, name="outbox")
app.add_typer(x_chat_app, name="x-chat")
records_cli.register(app)


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
def stats(
    days: Annotated[int, typer.Option(help="how many days back")] = 7,
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or csv (the playbook's figures by group)")] = "text",
) -> None:
    """Volumes, response and resolution times, SLA attainment, busiest hours and the playbook's metrics."""
    import time

    from bridge.sla_runner import report_text
    from bridge.store.db import Database

    try:
        file = FileConfig.load(config)
    except ConfigError as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    db = Database(Settings().database_url)
    if fmt == "csv":
        from bridge.playbook_metrics import render_csv
        from bridge.stats import figures

        typer.echo(render_csv(figures(db, days, time.time())[0]), nl=False)
    else:
        typer.echo(report_text(db, file, days, time.time()).replace("*", ""))
    db.dispose()


@app.command()
def forget(
    customer: Annotated[str, typer.Option("--customer", help="PLATFORM:ID, e.g. x:1234567890")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase a customer's data on request; the bot's messages in Slack are deleted by the running serve."""
    import time

    from bridge.forget import InFlight, parse_customer
    from bridge.forget import forget as erase
    from bridge.store import migrate as mig
    from bridge.store.db import Database

    try:
        platform, customer_id = parse_customer(customer)
    except ValueError as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not yes:
        typer.confirm(f"Erase everything dmbridge holds about {platform}:{customer_id}?", abort=True)
    db = Database(Settings().database_url)
    try:
        mig.upgrade(db)
        done = erase(db, platform, customer_id, time.time())
    except InFlight as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    if not done.conversations:
        typer.echo(f"dmbridge: nothing stored for {platform}:{customer_id}")
        return
    typer.echo(
        f"dmbridge: erased {platform}:{customer_id}: {len(done.conversations)} conversation(s) "
        f"({', '.join(f'#{i}' for i in done.conversations)}); {done.cancelled} pending delivery(ies) "
        f"cancelled; {done.deletions} of the bot's Slack messages queued for deletion (chat.delete, "
        "sent by the running dmbridge serve)."
    )
    typer.echo(
        f"dmbridge: agents' own messages in those threads ({done.agent_replies} relayed repl(ies), and any "
        "notes) cannot be deleted with a bot token: delete them in Slack (a workspace admin can)."
    )


@app.command()
def manifest(
    url: Annotated[str | None, typer.Option(help="public base URL, e.g. https://dm.example.com")] = None,
    socket: Annotated[bool, typer.Option("--socket", help="Socket Mode variant")] = False,
) -> None:
    """Print the Slack app manifest to paste at api.slack.com/apps → Create New App → From a manifest."""
    typer.echo(manifest_mod.dump(manifest_mod.render(url, socket)), nl=False)


@app.command("x-auth")
def x_auth(
    redirect_url: Annotated[
        str | None, typer.Option(help="the URL X redirected to (or its code), completing an earlier --print-url")
    ] = None,
    print_url: Annotated[bool, typer.Option("--print-url", help="print the URL and exit (two-step use)")] = False,
    pending: Annotated[Path, typer.Option(help="where --print-url keeps the PKCE verifier (0600)")] = Path(
        ".dmbridge-x-auth.json"
    ),
) -> None:
    """Authorize the X account for OAuth 2.0 (PKCE) once; serve refreshes the tokens (X_CLIENT_ID)."""
    from bridge import x_auth as flow
    from bridge.errors import AuthFailed, RetryLater
    from connectors.x.oauth import OAuthError

    try:
        flow.run(
            Settings(),
            print_url=print_url,
            redirect_url=redirect_url,
            pending_file=pending,
            read_line=lambda: sys.stdin.readline(),
            echo=typer.echo,
        )
    except (ConfigError, AuthFailed, RetryLater, OAuthError) as exc:
        typer.echo(f"dmbridge: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def doctor(
    url: Annotated[str | None, typer.Option(help="public base URL, to match the X webhook exactly")] = None,
    config: ConfigOpt = None,
) -> None:
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
