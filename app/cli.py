"""The esms-usage command: serve, migrate, tokens, FINESS referential, demo data."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.config import get_settings
from app.db import Database, make_engine, resolve_database_url, stop_embedded_postgres

cli = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
token_cli = typer.Typer(no_args_is_help=True, help="Access tokens.")
finess_cli = typer.Typer(no_args_is_help=True, help="The FINESS establishment referential.")
db_cli = typer.Typer(no_args_is_help=True, help="Database schema.")
person_cli = typer.Typer(no_args_is_help=True, help="People who sign in with OpenID Connect.")
cli.add_typer(token_cli, name="token")
cli.add_typer(finess_cli, name="finess")
cli.add_typer(db_cli, name="db")
cli.add_typer(person_cli, name="person")


def _err(message: str) -> None:
    typer.echo(message, err=True)


async def _with_database(work):
    """Run `work(database)` on a migrated database, as its owner (the operator's commands),
    then close it."""
    from app import migrate

    url = resolve_database_url(owner=True)
    await migrate.upgrade(url)
    database = Database(make_engine(url, pool_size=2))
    try:
        return await work(database)
    finally:
        await database.dispose()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
    demo: Annotated[bool, typer.Option(help="load the small demo dataset first")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="apply migrations before serving")
    ] = True,
) -> None:
    """Apply migrations, then serve the API (embedded PostgreSQL unless DATABASE_URL is set).

    With --workers N, N processes share the port and the database; nothing one of them
    needs lives in another's memory.
    """
    import shutil
    import tempfile

    import uvicorn

    from app import migrate
    from app.observability.logs import configure
    from app.workers import PortSharingWorkers, port_is_free

    if migrate_first:
        asyncio.run(migrate.upgrade(resolve_database_url(owner=True)))
    resolve_database_url()  # the embedded server is started once, before the workers
    if demo:
        _run_demo(small=True)
    metrics_dir = None
    if workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="esms-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    level = get_settings().log_level
    _err(f"esms-usage: serving on http://{host}:{port} with {workers} process(es) (docs at /docs)")
    sign_in = ": sign in with one of the demo tokens above" if demo else ""
    _err(f"esms-usage: web console at http://{host}:{port}/console{sign_in}")
    # uvicorn re-raises SIGTERM once it has drained; make that an orderly exit so that the
    # embedded PostgreSQL is stopped behind it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=configure(level),
        log_level=level,
        access_log=False,
        server_header=False,  # say nothing of the server and its version
        timeout_graceful_shutdown=10,
    )
    try:
        if workers == 1:
            uvicorn.run("app.main:create_app", **options)
        else:
            # Each worker its own socket on the port, so that connections are spread evenly.
            if not port_is_free(host, port):
                _err(f"esms-usage: {host}:{port} is already in use")
                raise typer.Exit(1)
            PortSharingWorkers(uvicorn.Config("app.main:create_app", **options)).run()
    finally:
        stop_embedded_postgres()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the latest migration (safe when run by two processes at once)."""
    from app import migrate

    asyncio.run(migrate.upgrade(resolve_database_url(owner=True)))
    _err("esms-usage: schema at head")


@token_cli.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="vendor, ars, grades or national")],
    vendor: Annotated[str | None, typer.Option(help="SIREN of the vendor (vendor role)")] = None,
    region: Annotated[str | None, typer.Option(help="INSEE region code (ars, grades)")] = None,
    name: Annotated[str, typer.Option(help="who the token is for")] = "",
    expires: Annotated[
        datetime | None, typer.Option(help="expiry, ISO date or date-time (Europe/Paris)")
    ] = None,
) -> None:
    """Create a token and print it (only it) on stdout; it is never shown again."""
    from app.access import repository
    from app.access.principal import Role
    from app.access.router import check_binding
    from app.clock import PARIS
    from app.errors import DomainError

    try:
        parsed_role = Role(role)
    except ValueError:
        _err(f"esms-usage: unknown role {role!r} (vendor, ars, grades, national)")
        raise typer.Exit(2) from None
    expires_at = expires.replace(tzinfo=PARIS) if expires and expires.tzinfo is None else expires

    async def work(database: Database) -> str:
        async with database.sessions() as session:
            try:
                await check_binding(session, parsed_role, vendor, region)
            except DomainError as exc:
                details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
                raise typer.BadParameter(f"{exc.detail} {details}") from exc
            token, _ = await repository.create_token(
                session,
                parsed_role,
                vendor_siren=vendor,
                region_code=region,
                name=name,
                expires_at=expires_at,
            )
            await session.commit()
            return token

    typer.echo(asyncio.run(_with_database(work)))


@person_cli.command("grant")
def person_grant(
    issuer: Annotated[str, typer.Option(help="issuer URL of a configured provider")],
    subject: Annotated[str, typer.Option(help="the person's `sub` (a client: its client id)")],
    role: Annotated[str, typer.Option(help="vendor, ars, grades or national")],
    vendor: Annotated[str | None, typer.Option(help="SIREN of the vendor (vendor role)")] = None,
    region: Annotated[str | None, typer.Option(help="INSEE region code (ars, grades)")] = None,
    email: Annotated[str | None, typer.Option(help="shown until the person signs in")] = None,
    client: Annotated[bool, typer.Option(help="a client application, not a person")] = False,
) -> None:
    """Grant a role to a person known by issuer and subject (the first national team member,
    typically; later grants are made from the console or the API). Prints the grant id."""
    from app.access.principal import COMMAND_LINE, Role
    from app.errors import DomainError
    from app.identity import service

    try:
        parsed_role = Role(role)
    except ValueError:
        _err(f"esms-usage: unknown role {role!r} (vendor, ars, grades, national)")
        raise typer.Exit(2) from None

    async def work(database: Database) -> int:
        async with database.sessions() as session:
            try:
                person, _ = await service.register(
                    session,
                    COMMAND_LINE,
                    issuer=issuer,
                    subject=subject,
                    kind="client" if client else "person",
                    email=email,
                    name=None,
                )
                grant = await service.give_grant(
                    session,
                    COMMAND_LINE,
                    person.id,
                    parsed_role,
                    vendor_siren=vendor,
                    region_code=region,
                )
            except DomainError as exc:
                details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
                raise typer.BadParameter(f"{exc.detail} {details}".strip()) from exc
            await session.commit()
            return grant.id

    typer.echo(asyncio.run(_with_database(work)))


@token_cli.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (effective at once)."""
    from app.access import repository

    async def work(database: Database) -> bool:
        async with database.sessions() as session:
            done = await repository.revoke_token(session, token_id)
            await session.commit()
            return done

    if not asyncio.run(_with_database(work)):
        _err(f"esms-usage: no active token {token_id}")
        raise typer.Exit(1)
    _err(f"esms-usage: token {token_id} revoked")


@finess_cli.command("import")
def finess_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import a FINESS file: the official extraction, the réexposition CSV or the FINESS+
    JSON flow (recognised from the content; UTF-8 or ISO-8859-1). Only the programme's
    establishments are stored; the others are counted in the report."""
    from app.referential.finess_formats import InvalidFinessFile
    from app.referential.importer import import_finess_file
    from app.referential.progress import import_progress

    async def work(database: Database):
        with import_progress(file.stat().st_size) as progress:
            return await import_finess_file(database, file, progress=progress)

    try:
        report = asyncio.run(_with_database(work))
    except InvalidFinessFile as exc:
        _err(f"esms-usage: {file} was not imported, nothing was written: {exc}")
        raise typer.Exit(1) from None
    _err(f"esms-usage: {file}: {report.format} format, {report.encoding}")
    for reason, by_key in report.as_dict()["skipped"].items():
        if by_key:
            counts = ", ".join(f"{key}: {count}" for key, count in by_key.items())
            _err(f"skipped by {reason}: {counts}")
    for error in report.errors[:50]:
        _err(f"{error.where}: {error.message}")
    if report.error_count > 50:
        _err(f"... and {report.error_count - 50} more refused rows")
    _err(f"esms-usage: {report.summary()}")


@finess_cli.command("synth")
def finess_synth(
    count: Annotated[int, typer.Option(min=0, help="establishments of the programme")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="file to write")],
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    format: Annotated[str, typer.Option(help="official | reexposition | finess-plus")] = "official",
    other_structures: Annotated[
        float,
        typer.Option(min=0, help="structures of other categories per establishment (e.g. 1.0)"),
    ] = 0.0,
) -> None:
    """Write a synthetic FINESS file (valid keys) in one of the three formats."""
    from app.referential.finess_file import write_synthetic_finess_file
    from app.referential.finess_formats import FinessFormat

    try:
        chosen = FinessFormat(format)
    except ValueError:
        _err(f"esms-usage: --format must be one of {', '.join(FinessFormat)}, not {format!r}")
        raise typer.Exit(2) from None
    write_synthetic_finess_file(out, count, seed=seed, format=chosen, other_share=other_structures)
    _err(f"esms-usage: wrote {count} establishments to {out} ({chosen} format)")


def _run_demo(small: bool) -> None:
    from app.demo import load_demo

    async def work(database: Database):
        return await load_demo(database, national=not small)

    summary = asyncio.run(_with_database(work))
    _err(summary)


@cli.command()
def demo(
    national: Annotated[bool, typer.Option(help="full national scale")] = False,
) -> None:
    """Load a realistic demo dataset (referential, vendors, projects, extracts, tokens)."""
    _run_demo(small=not national)


@cli.command()
def openapi(
    out: Annotated[Path, typer.Option(dir_okay=False, help="file to write")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI description generated from the app (kept in the repository)."""
    from app.main import openapi_json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(openapi_json())
    _err(f"esms-usage: wrote {out}")


def quiet_dependencies() -> None:
    """Each command prints only what it is for: the warnings of dependencies (platformdirs'
    RuntimeDirWarning when XDG_RUNTIME_DIR is unset, deprecations...) are not for its user,
    nor for its server processes. An operator's -W or PYTHONWARNINGS still decides."""
    if sys.warnoptions or os.environ.get("PYTHONWARNINGS"):
        return
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"app(\.|$)")  # ours still show
    os.environ["PYTHONWARNINGS"] = "ignore"  # the workers of `serve --workers N`


def main() -> None:
    quiet_dependencies()
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
