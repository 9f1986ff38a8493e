"""The `dunflow` command."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import typer

from dunflow.settings import get_settings

app = typer.Typer(help="dunflow: accounts-receivable collection flows on Temporal.", no_args_is_help=True)
flows_app = typer.Typer(help="Check and list collection flows.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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

    asyncio.run(run_worker(get_settings()))


@app.command()
def api() -> None:
    """Serve the HTTP API on DUNFLOW_API_HOST:DUNFLOW_API_PORT."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")


@flows_app.command("validate")
def validate(files: list[Path] = typer.Argument(..., help="flow definition YAML files")) -> None:
    """Check flow definitions; print every problem with the step it is in."""
    from dunflow.flow import FlowInvalid, load_flow_yaml
    from dunflow.templates import TemplateCatalog

    templates = TemplateCatalog(get_settings().templates_dir)
    failed = False
    for path in files:
        try:
            flow = load_flow_yaml(path.read_text(encoding="utf-8"), templates.exists)
        except OSError as error:
            typer.echo(f"{path}: cannot read it: {error.strerror}", err=True)
            failed = True
        except FlowInvalid as invalid:
            failed = True
            for problem in invalid.problems:
                typer.echo(f"{path}: {problem}", err=True)
        else:
            typer.echo(f"{path}: ok ({flow.name}, {len(flow.steps)} steps)")
    if failed:
        raise typer.Exit(1)


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
    from dunflow.store import create_schema, make_engine

    engine = make_engine(get_settings().effective_database_url)
    create_schema(engine)
    return engine


@apikey_app.command("create")
def apikey_create(
    name: str = typer.Option(..., "--name", help="who or what uses the key, e.g. erp"),
    scope: list[str] = typer.Option(..., "--scope", help="cases:write, signals:write, read or admin; repeat for more"),
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
