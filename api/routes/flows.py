"""Flows: drafts saved freely (YAML, BPMN or JSON), validated on every save, published as
immutable versions with who, when and a diff. Designing needs the `designer` scope."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import require_scope
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.signalling import workflow_handle
from api.simulation import SCENARIOS, SimulatedChannels, Simulator
from dunflow.bpmn import element_of, flow_to_bpmn
from dunflow.case import FINAL_STATUSES, DebtorInfo, InvoiceInfo, PlanProposal, SendRequest, VersionMove
from dunflow.flow import Channel, DebtorType, FlowInvalid, FlowProblem, dump_flow_yaml, load_flow_yaml
from dunflow.flows import (
    SourceFormat,
    check_source,
    flow_overview,
    problems_of,
    publish_draft,
    read_source,
    save_draft,
    version_history,
)
from dunflow.money import split_into_terms
from dunflow.store import ApiKey, Case, CaseMove, FlowDraft, FlowPublication, FlowVersion, as_utc
from dunflow.templates import TemplateCatalog
from workflows.collection import CollectionWorkflow

router = APIRouter(prefix="/api/flows", tags=["flows"])
VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]
READ, DESIGN = require_scope("read"), require_scope("designer")
MEDIA = {
    "application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml", "text/x-yaml": "yaml",
    "application/xml": "bpmn", "text/xml": "bpmn", "application/bpmn+xml": "bpmn",
    "application/json": "json",
}
Format = Literal["yaml", "bpmn", "json"]


async def _body(request: Request) -> tuple[str, SourceFormat]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in MEDIA:
        raise ApiError(415, f"send the flow as application/yaml, application/xml (BPMN) or application/json, "
                            f"not {media or 'no content type'}", where="content-type")
    try:
        return (await request.body()).decode("utf-8"), MEDIA[media]
    except UnicodeDecodeError:
        raise ApiError(422, "the flow must be UTF-8 text", where="body") from None


def _problem_lists(problems: list[FlowProblem]) -> dict:
    return {
        "problems": [{"where": p.where, "problem": p.problem} for p in problems],
        "errors": [{"step": element_of(p.where), "message": p.problem} for p in problems],
    }


def _invalid(problems: list[FlowProblem], **extra) -> ApiError:
    summary = "; ".join(str(p) for p in problems[:3]) + (" …" if len(problems) > 3 else "")
    return ApiError(422, f"the flow is invalid: {summary}", **_problem_lists(problems), **extra)


def _templates(settings) -> TemplateCatalog:
    return TemplateCatalog(settings.templates_dir)


def _exists(session, name: str) -> bool:
    return session.get(FlowDraft, name) is not None or session.exec(
        select(FlowVersion.id).where(FlowVersion.name == name)).first() is not None


@router.get("")
def list_flows(session: SessionDep, _key: ApiKey = READ) -> list[dict]:
    """Every flow: published version, draft (if any), open cases per version."""
    return flow_overview(session)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_flow(request: Request, session: SessionDep, settings: SettingsDep, key: ApiKey = DESIGN) -> dict:
    """A new flow, saved as its first draft; its name comes from the definition."""
    text, fmt = await _body(request)
    try:
        name = read_source(text, fmt).get("name")
    except FlowInvalid as invalid:
        raise _invalid(invalid.problems) from None
    if not isinstance(name, str) or not name:
        raise _invalid([FlowProblem(where="name", problem="the flow needs a name (the process id in BPMN)")])
    if _exists(session, name):
        raise ApiError(409, f"flow {name!r} exists already; save a draft with PUT /api/flows/{name}/draft", where="name")
    return _save(session, settings, name, text, fmt, key)


@router.put("/{name}/draft")
async def put_draft(name: str, request: Request, session: SessionDep, settings: SettingsDep,
                    key: ApiKey = DESIGN) -> dict:
    """Save the draft as sent (YAML, BPMN or JSON), valid or not; 422 lists what must be fixed to publish."""
    text, fmt = await _body(request)
    return _save(session, settings, name, text, fmt, key)


def _save(session, settings, name: str, text: str, fmt: SourceFormat, key: ApiKey) -> dict:
    problems = problems_of(text, fmt, _templates(settings).exists, name)
    draft = save_draft(session, name, text, fmt, key.name)
    saved = {"name": name, "draft_saved": True, "saved_by": draft.saved_by,
             "saved_at": as_utc(draft.saved_at).isoformat()}
    if problems:
        raise _invalid(problems, **saved)
    return saved | {"valid": True}


@router.post("/validate")
async def validate(request: Request, settings: SettingsDep, _key: ApiKey = READ) -> dict:
    """Check a flow without saving it: `valid` and the problems with their step or element ids."""
    text, fmt = await _body(request)
    problems = problems_of(text, fmt, _templates(settings).exists)
    return {"valid": not problems} | _problem_lists(problems)


@router.get("/{name}/draft")
def get_draft(name: str, session: SessionDep, settings: SettingsDep, format: Format = Query("bpmn"),
              _key: ApiKey = READ) -> dict:
    """The draft (or, without one, the latest version) in the asked format, with its problems."""
    draft = session.get(FlowDraft, name)
    if draft is None:
        return _published_as(session, name, format)
    problems = problems_of(draft.source, draft.format, _templates(settings).exists, name)
    source = draft.source
    if draft.format != format:
        if problems:
            raise ApiError(409, f"the draft is {draft.format} and cannot be converted to {format} until it is valid",
                           where="format", **_problem_lists(problems))
        source = _render(check_source(draft.source, draft.format, _templates(settings).exists, name), format)
    return {"name": name, "draft": True, "format": format, "source": source, "saved_by": draft.saved_by,
            "saved_at": as_utc(draft.saved_at).isoformat(), "valid": not problems} | _problem_lists(problems)


def _render(definition, fmt: Format) -> str:
    if fmt == "bpmn":
        return flow_to_bpmn(definition)
    if fmt == "json":
        return definition.model_dump_json(by_alias=True, exclude_none=True, indent=2)
    return dump_flow_yaml(definition)


def _version_row(session, name: str, version: int | None) -> FlowVersion:
    query = select(FlowVersion).where(FlowVersion.name == name)
    query = query.where(FlowVersion.version == version) if version else query.order_by(FlowVersion.version.desc())
    row = session.exec(query).first()
    if row is None:
        raise ApiError(404, f"flow {name!r} has no version {version}" if version else f"no flow named {name!r}",
                       where="name")
    return row


def _source_of(session, row: FlowVersion, fmt: Format) -> str:
    publication = session.get(FlowPublication, row.id)
    if fmt == "bpmn" and publication is not None and publication.diagram:
        return publication.diagram  # as the designer laid it out
    if fmt == "yaml":
        return row.definition_yaml
    return _render(load_flow_yaml(row.definition_yaml), fmt)


def _published_as(session, name: str, fmt: Format) -> dict:
    row = _version_row(session, name, None)
    return {"name": name, "draft": False, "version": row.version, "format": fmt,
            "source": _source_of(session, row, fmt), "valid": True, "problems": [], "errors": []}


@router.post("/{name}/publish")
def publish(name: str, session: SessionDep, settings: SettingsDep, key: ApiKey = DESIGN) -> dict:
    """Publish the draft as the next version; new cases take it, running cases keep theirs."""
    try:
        published = publish_draft(session, name, key.name, _templates(settings).exists)
    except LookupError as error:
        raise ApiError(409, str(error), where="draft") from None
    except FlowInvalid as invalid:
        raise _invalid(invalid.problems) from None
    return {"name": name, "version": published.flow.version, "created": published.created}


@router.get("/{name}/versions")
def versions(name: str, session: SessionDep, _key: ApiKey = READ) -> list[dict]:
    """Every published version: who, when, the diff against the one before, open cases on it."""
    history = version_history(session, name)
    if not history:
        raise ApiError(404, f"no published flow named {name!r}", where="name")
    return history


@router.get("/{name}/versions/{version}")
def export_version(name: str, version: VersionNumber, session: SessionDep, format: Format = Query("yaml"),
                   _key: ApiKey = READ) -> Response:
    """One version as YAML (to keep in git), BPMN or JSON."""
    media = {"yaml": "application/yaml", "bpmn": "application/xml", "json": "application/json"}[format]
    return PlainTextResponse(_source_of(session, _version_row(session, name, version), format), media_type=media)


class SimulationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: Literal[tuple(SCENARIOS)] = Field(description="how the simulated debtor behaves")
    version: VersionNumber | None = Field(default=None, description="a published version; by default the draft, else the latest")
    debtor_type: DebtorType = "consumer"
    language: Literal["nl", "en"] = "nl"
    amount_cents: int = Field(default=24_500, gt=0)
    due_in_days: int = Field(default=14, ge=0, le=365)


@router.get("/scenarios")
def scenarios(_key: ApiKey = READ) -> dict:
    """The debtor behaviours a simulation can play."""
    return {name: scenario.title for name, scenario in SCENARIOS.items()}


@router.post("/{name}/simulate")
async def simulate(name: str, body: SimulationIn, request: Request, session: SessionDep, settings: SettingsDep,
                   _key: ApiKey = DESIGN) -> dict:
    """Run the flow (draft, or a version) against a scenario on a simulated clock: the timeline day by day."""
    draft = session.get(FlowDraft, name) if body.version is None else None
    if draft is not None:
        try:
            definition = check_source(draft.source, draft.format, _templates(settings).exists, name)
        except FlowInvalid as invalid:
            raise _invalid(invalid.problems) from None
        source = "draft"
    else:
        row = _version_row(session, name, body.version)
        definition, source = load_flow_yaml(row.definition_yaml), f"version {row.version}"
    simulator: Simulator = request.app.state.simulator
    timeline = await simulator.run(definition, body.scenario, debtor_type=body.debtor_type, language=body.language,
                                   amount_cents=body.amount_cents, due_in_days=body.due_in_days)
    return timeline | {"source": source}


@router.get("/preview/{channel}/{template}")
def preview(channel: Channel, template: str, settings: SettingsDep, language: Literal["nl", "en"] = "nl",
            _key: ApiKey = READ) -> dict:
    """A template rendered for an example debtor and invoice, as the designer's preview."""
    today = date.today()
    request = SendRequest(
        key="preview", case_id="preview", step_id="preview", channel=channel, template=template,
        debtor=DebtorInfo(id="EXAMPLE", name="Jan de Vries", email="jan@example.nl", phone="+31612345678",
                          address="Dorpsstraat 1\n1234 AB Ergens", language=language),
        invoice=InvoiceInfo(number="F-2026-001", amount_cents=24_500, currency="EUR", issued_on=today,
                            due_on=today + timedelta(days=14)),
        amount_open_cents=24_500, plans=[PlanProposal(terms=n, term_amounts_cents=split_into_terms(24_500, n))
                                         for n in (2, 3, 6)])
    try:
        rendered = SimulatedChannels(settings).renderer.render(request)
    except LookupError as error:
        raise ApiError(404, str(error), where="template") from None
    return {"subject": rendered.subject, "body": rendered.body}


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_version: VersionNumber
    to_version: VersionNumber
    case_ids: list[str] | None = Field(default=None, description="only these cases; by default every open case")


async def _request_move(client: Client, case: Case, move: VersionMove) -> str:
    if not case.workflow_started:
        return "skipped: its workflow has not started"
    try:
        await workflow_handle(client, case).signal(CollectionWorkflow.move_to_version, move)
    except RPCError as error:
        return f"skipped: {error.message}"
    return "requested"


@router.post("/{name}/move")
async def move_cases(name: str, body: MoveIn, session: SessionDep, client: TemporalDep,
                     key: ApiKey = require_scope("cases:write")) -> dict:
    """Move running cases of one version to another. Each moves at its next wait (which must exist
    as a wait in the new version) and starts that wait again there; every request is logged."""
    if body.from_version == body.to_version:
        raise ApiError(422, "from_version and to_version are the same", where="to_version")
    _version_row(session, name, body.from_version)
    target = _version_row(session, name, body.to_version)
    move = VersionMove(flow=load_flow_yaml(target.definition_yaml), version=target.version, by=key.name)
    query = select(Case).where(Case.flow_name == name, Case.flow_version == body.from_version,
                               Case.status.not_in(FINAL_STATUSES))
    if body.case_ids is not None:
        query = query.where(Case.id.in_(body.case_ids))
    cases = list(session.exec(query))
    result = {"name": name, "from_version": body.from_version, "to_version": body.to_version,
              "requested": [], "skipped": []}
    for case in cases:
        note = await _request_move(client, case, move)
        session.add(CaseMove(case_id=case.id, flow_name=name, from_version=body.from_version,
                             to_version=body.to_version, moved_by=key.name, note=note))
        if note == "requested":
            result["requested"].append(case.id)
        else:
            result["skipped"].append({"case_id": case.id, "reason": note.removeprefix("skipped: ")})
    found = {case.id for case in cases}
    result["skipped"] += [{"case_id": case_id, "reason": f"not an open case on version {body.from_version}"}
                          for case_id in body.case_ids or [] if case_id not in found]
    session.commit()
    return result


@router.get("/{name}/moves")
def moves(name: str, session: SessionDep, _key: ApiKey = READ) -> list[dict]:
    """The log of cases moved between versions of this flow: who, when, from and to."""
    rows = session.exec(select(CaseMove).where(CaseMove.flow_name == name).order_by(CaseMove.id))
    return [{"case_id": row.case_id, "from_version": row.from_version, "to_version": row.to_version,
             "moved_by": row.moved_by, "note": row.note, "at": as_utc(row.at).isoformat()} for row in rows]
