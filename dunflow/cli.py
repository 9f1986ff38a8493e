"""The `dunflow` command."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from dunflow.settings import get_settings

app = typer.Typer(help="dunflow: accounts-receivable collection flows on Temporal.", no_args_is_help=True)
flows_app = typer.Typer(help="Check and list collection flows.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
app.add_typer(flows_app, name="flow", hidden=True)  # `dunflow flow validate FILE` reads naturally too
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
db_app = typer.Typer(help="The store's schema: Alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="Payload encryption keys (DUNFLOW_PAYLOAD_KEYS).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _logging() -> None:
    from dunflow.logs import configure_logging

    configure_logging(get_settings().log_format)


@app.command()
def dev() -> None:
    """Start Temporal's dev server (UI included), the worker and the API, supervised together."""
    from dunflow.devstack import DevStackError, run_dev_stack

    try:
        code = run_dev_stack(get_settings())
    except DevStackError as error:
        typer.echo(f"dunflow dev: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def worker() -> None:
    """Run a worker against an existing Temporal server (DUNFLOW_TEMPORAL_ADDRESS)."""
    _logging()
    from worker import run_worker

    settings = get_settings()
    _check_payload_keys(settings)
    asyncio.run(run_worker(settings))


@app.command()
def api() -> None:
    """Serve the HTTP API on DUNFLOW_API_HOST:DUNFLOW_API_PORT."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    _check_payload_keys(settings)
    _logging()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info",
                log_config=None)  # uvicorn's records go through dunflow's handler (text or JSON)


def _check_payload_keys(settings) -> None:
    from dunflow.codec import PayloadKeyError, parse_keys

    try:
        parse_keys(settings.effective_payload_keys)
    except PayloadKeyError as error:
        typer.echo(f"dunflow: {error}", err=True)
        raise typer.Exit(2) from None


def _migrating(action):
    from sqlalchemy.exc import OperationalError

    from dunflow.store import make_engine

    url = get_settings().effective_database_url
    engine = make_engine(url)
    try:
        return action(engine)
    except OperationalError as error:
        typer.echo(f"dunflow db: cannot reach the store ({error.orig}); check DUNFLOW_DATABASE_URL "
                   "and that the database server is up", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="the revision to reach")) -> None:
    """Bring the store's tables up to date (a store made before migrations is adopted)."""
    from dunflow import migrations

    _migrating(lambda engine: migrations.upgrade(engine, revision))
    typer.echo(f"store at revision {_migrating(migrations.current)}")


@db_app.command("current")
def db_current() -> None:
    """The revision the store is at (none: never migrated)."""
    from dunflow import migrations

    typer.echo(_migrating(migrations.current) or "none")


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", "--message", help="what changed")) -> None:
    """Write a migration for the change to dunflow/store.py's tables; read and tidy it before committing."""
    from dunflow import migrations

    _migrating(lambda engine: migrations.revision(engine, message))


@keys_app.command("new")
def keys_new(key_id: str = typer.Option(..., "--id", help="a short name for the key, e.g. 2026-11")) -> None:
    """Print a new AES-256 key as id:base64key; put it first in DUNFLOW_PAYLOAD_KEYS, keep the old ones after it."""
    from dunflow.codec import PayloadKeyError, new_key_spec, parse_keys

    spec = new_key_spec(key_id)
    try:
        parse_keys(spec)
    except PayloadKeyError as error:
        typer.echo(f"dunflow keys new: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(spec)


FORMATS = {".yaml": "yaml", ".yml": "yaml", ".bpmn": "bpmn", ".xml": "bpmn", ".json": "json"}


def _flow_file(path: Path) -> tuple[str, str]:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        typer.echo(f"{path}: unknown kind of file; name it .yaml, .bpmn or .json", err=True)
        raise typer.Exit(2)
    try:
        return path.read_text(encoding="utf-8"), fmt
    except (OSError, UnicodeDecodeError) as error:
        typer.echo(f"{path}: cannot read it: {getattr(error, 'strerror', None) or error}", err=True)
        raise typer.Exit(2) from None


def _report(path: Path, problems) -> None:
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)


@flows_app.command("validate")
def validate(files: list[Path] = typer.Argument(..., help="flow definitions: YAML, BPMN (.bpmn) or JSON files")) -> None:
    """Check flow definitions; print every problem with the step or BPMN element it is in."""
    from dunflow.flow import FlowInvalid
    from dunflow.flows import check_source
    from dunflow.templates import TemplateCatalog

    templates = TemplateCatalog(get_settings().templates_dir)
    failed = False
    for path in files:
        try:
            flow = check_source(*_flow_file(path), templates.exists)
        except FlowInvalid as invalid:
            failed = True
            _report(path, invalid.problems)
        else:
            typer.echo(f"{path}: ok ({flow.name}, {len(flow.steps)} steps)")
    if failed:
        raise typer.Exit(1)


@flows_app.command("publish")
def publish(file: Path = typer.Argument(..., help="the flow definition: YAML, BPMN (.bpmn) or JSON"),
            by: str = typer.Option("shell", "--by", help="who publishes, recorded with the version")) -> None:
    """Publish a flow file as the next version of its flow (new cases take it; running cases keep theirs)."""
    from sqlmodel import Session

    from dunflow.flow import FlowInvalid
    from dunflow.flows import check_source, publish_draft, save_draft
    from dunflow.templates import TemplateCatalog

    templates = TemplateCatalog(get_settings().templates_dir)
    text, fmt = _flow_file(file)
    try:
        name = check_source(text, fmt, templates.exists).name
        with Session(_store_engine()) as session:
            save_draft(session, name, text, fmt, by)
            published = publish_draft(session, name, by, templates.exists)
    except FlowInvalid as invalid:
        _report(file, invalid.problems)
        typer.echo("nothing was published: fix the problems above and publish again", err=True)
        raise typer.Exit(2) from None
    state = "published as" if published.created else "unchanged, still"
    typer.echo(f"{file}: {published.flow.name} {state} version {published.flow.version}")


@flows_app.command("list")
def list_flows() -> None:
    """The shipped flow definitions and their steps."""
    from dunflow.flow import load_flow_yaml

    for path in sorted(get_settings().flows_dir.glob("*.yaml")):
        flow = load_flow_yaml(path.read_text(encoding="utf-8"))
        typer.echo(f"{flow.name:12} {len(flow.steps):3} steps  {flow.title}")


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="CSV or JSON-lines file of cases (see POST /api/cases/bulk)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Open cases in bulk from a file; bad rows are listed, the rest start. Safe to run again."""
    import json

    from api.bulk import BulkFileError, import_cases, read_rows
    from dunflow.temporal import connect

    try:
        raw = file.read_bytes()
        total = sum(1 for _ in read_rows(raw))
    except OSError as error:
        typer.echo(f"dunflow import: cannot read {file}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    except BulkFileError as error:
        typer.echo(f"dunflow import: {file}: {error}", err=True)
        raise typer.Exit(2) from None
    settings = get_settings()

    async def run(advance):
        from dunflow.flows import publish_shipped_flows
        from dunflow.templates import TemplateCatalog

        engine = _store_engine()
        publish_shipped_flows(engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
        client = await connect(settings)
        return await import_cases(engine, client, settings, raw, progress=advance)

    try:
        with typer.progressbar(length=total, label=f"importing {total} rows", file=sys.stderr) as bar:
            summary = asyncio.run(run(bar.update))
    except RuntimeError as error:
        typer.echo(f"dunflow import: Temporal is unreachable at {settings.temporal_address} ({error}); "
                   "start it (dunflow dev) and run the same import again", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
        return
    typer.echo(f"{summary.rows} rows: {summary.started} started, {summary.existing} already existing, "
               f"{len(summary.rejected)} rejected")
    for rejected in summary.rejected:
        typer.echo(f"  row {rejected['row']}: {rejected['reason']}")


def _store_engine():
    from dunflow.migrations import upgrade
    from dunflow.store import make_engine

    engine = make_engine(get_settings().effective_database_url)
    upgrade(engine)
    return engine


@apikey_app.command("create")
def apikey_create(
    name: str = typer.Option(..., "--name", help="who or what uses the key, e.g. erp"),
    scope: list[str] = typer.Option(..., "--scope", help="cases:write, signals:write, read, designer, operator or admin; repeat for more"),
) -> None:
    """Make a key and print it once: it is stored only as a hash."""
    from dunflow.apikeys import create_key

    try:
        made = create_key(_store_engine(), name, scope)
    except ValueError as error:
        typer.echo(f"dunflow apikey create: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(made.key)
    typer.echo(f"key {made.id} ({name}: {' '.join(sorted(set(scope)))}). Keep it now; it cannot be shown again.", err=True)


@apikey_app.command("list")
def apikey_list() -> None:
    """Keys with their scopes; secrets are never shown."""
    from dunflow.apikeys import list_keys

    for key in list_keys(_store_engine()):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id:4}  {key.prefix}…  {key.name:20} {key.scopes:35} {state}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: int = typer.Argument(..., help="the id shown by `dunflow apikey list`")) -> None:
    """Revoke a key at once."""
    from dunflow.apikeys import revoke_key

    if revoke_key(_store_engine(), key_id) is None:
        typer.echo(f"dunflow apikey revoke: there is no key {key_id}; see `dunflow apikey list`", err=True)
        raise typer.Exit(1)
    typer.echo(f"key {key_id} revoked")


@app.command("import-statement")
def import_statement_file(
    file: Path = typer.Argument(..., help="a CAMT.053 (XML) or MT940 bank statement"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Record the credits of a bank statement as payments of the cases they name. Safe to run again."""
    import json

    from sqlmodel import Session

    from api.statements import import_statement
    from dunflow.statements import StatementError
    from dunflow.temporal import connect

    try:
        raw = file.read_bytes()
    except OSError as error:
        typer.echo(f"dunflow import-statement: cannot read {file}: {error.strerror}; "
                   "give the path of a statement file exported from the bank", err=True)
        raise typer.Exit(2) from None
    settings = get_settings()

    async def run() -> dict:
        client = await connect(settings, lazy=True)  # away: payments are queued for the worker
        with Session(_store_engine()) as session:
            return await import_statement(session, client, raw)

    try:
        summary = asyncio.run(run())
    except StatementError as error:
        typer.echo(f"dunflow import-statement: {file}: {error}; export it again from the bank as "
                   "CAMT.053 XML or MT940", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(summary, indent=2) if as_json else _statement_report(summary))


def _statement_report(summary: dict) -> str:
    queued = sum(1 for line in summary["paid"] if line["status"] == "queued")
    lines = [f"{summary['format']}: {summary['lines']} lines, paid {len(summary['paid'])}"
             + (f" ({queued} queued until Temporal is back)" if queued else "")
             + f", duplicates {len(summary['duplicates'])}, unmatched {len(summary['unmatched'])}, "
             f"debits skipped {summary['skipped_debits']}"]
    for paid in summary["paid"]:
        lines.append(f"  paid      line {paid['line_no']}: {_amount(paid['amount_cents'])} "
                     f"invoice {paid['invoice_number']} ({paid['status']})")
    for line in summary["unmatched"]:
        lines.append(f"  unmatched line {line['line_no']}: {_amount(line['amount_cents'])} {line['currency']} "
                     f"{line['remittance']!r}: {line['reason']}")
    return "\n".join(lines)


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@app.command()
def costs(
    amount: str = typer.Argument(..., help="the principal in euros, e.g. 3000.00"),
    business: bool = typer.Option(False, "--business", help="the debtor is a business, not a consumer"),
    as_json: bool = typer.Option(False, "--json", help="print the breakdown as JSON"),
) -> None:
    """The statutory collection costs (WIK scale) for a principal, band by band."""
    import json

    from dunflow.money import collection_costs, parse_amount

    try:
        principal = parse_amount(amount)
        if principal == 0:
            raise ValueError("the principal is 0.00: give the amount still owed, e.g. 3000.00")
    except ValueError as error:
        typer.echo(f"dunflow costs: {error}", err=True)
        raise typer.Exit(2) from None
    settings = get_settings()
    result = collection_costs(principal, "business" if business else "consumer",
                              vat=not settings.creditor_reclaims_vat, agreed_per_mille=settings.business_costs_per_mille)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    typer.echo(_costs_report(result))


def _costs_report(result) -> str:
    lines = [f"principal {_amount(result.principal_cents)} ({result.debtor_type})"]
    for band in result.bands:
        if band.base_cents:
            limits = (f"{_amount(band.lower_cents)} - {_amount(band.upper_cents)}" if band.upper_cents is not None
                      else f"above {_amount(band.lower_cents)}")
            lines.append(f"  {band.per_mille / 10:>4g}% of {_amount(band.base_cents):>12} ({limits}) "
                         f"= {_amount(band.cents):>9}")
    if result.rule != "scale":
        lines.append(f"  {result.rule} applies")
    lines.append(f"costs {_amount(result.costs_cents)}, VAT {_amount(result.vat_cents)}, total {_amount(result.total_cents)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(app())
