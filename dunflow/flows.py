"""Flow versions in the store. The shipped YAML files under flows/ are published at start-up:
a file whose content differs from the latest version published from files becomes a new version.
Designers save drafts freely (YAML, BPMN or JSON) and publish them as immutable versions, each
with who published it, when, and a diff against the version before."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dunflow.bpmn import bpmn_to_data
from dunflow.case import FINAL_STATUSES
from dunflow.flow import FlowDefinition, FlowInvalid, FlowProblem, TemplateExists, dump_flow_yaml, load_flow_yaml, parse_flow
from dunflow.store import Case, FlowDraft, FlowPublication, FlowVersion, as_utc, utcnow
from dunflow.templates import TemplateCatalog

SourceFormat = Literal["yaml", "bpmn", "json"]


@dataclass(frozen=True)
class PublishedFlow:
    name: str
    version: int
    definition: FlowDefinition


@lru_cache(maxsize=128)
def _parsed(definition_yaml: str) -> FlowDefinition:
    """Published versions never change, so each text is parsed once per process."""
    return load_flow_yaml(definition_yaml)


def _published(row: FlowVersion | None) -> PublishedFlow | None:
    if row is None:
        return None
    return PublishedFlow(name=row.name, version=row.version, definition=_parsed(row.definition_yaml))


def latest_flow(session: Session, name: str) -> PublishedFlow | None:
    query = select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc())
    return _published(session.exec(query).first())


def pinned_flow(session: Session, name: str, version: int) -> PublishedFlow:
    query = select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == version)
    return _published(session.exec(query).one())


def flow_names(session: Session) -> list[str]:
    return sorted(set(session.exec(select(FlowVersion.name))))


def read_source(text: str, fmt: SourceFormat) -> dict:
    """A flow document as plain data; FlowInvalid when it cannot even be read."""
    if fmt == "bpmn":
        return bpmn_to_data(text)
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise FlowInvalid([FlowProblem(where=fmt, problem=f"cannot be read: {error}")]) from None
    if not isinstance(data, dict):
        raise FlowInvalid([FlowProblem(where="flow", problem="a flow definition is a mapping (name, start, steps, signals)")])
    return data


def check_source(text: str, fmt: SourceFormat, templates: TemplateExists, name: str | None = None) -> FlowDefinition:
    """Read and validate a flow document; `name`, when given, must be the flow's own name."""
    data = read_source(text, fmt)
    if name is not None and data.get("name") != name:
        raise FlowInvalid([FlowProblem(where="name", problem=f"the flow is named {data.get('name')!r}, not {name!r}")])
    return parse_flow(data, templates)


def problems_of(text: str, fmt: SourceFormat, templates: TemplateExists, name: str | None = None) -> list[FlowProblem]:
    try:
        check_source(text, fmt, templates, name)
    except FlowInvalid as invalid:
        return invalid.problems
    return []


def save_draft(session: Session, name: str, text: str, fmt: SourceFormat, by: str) -> FlowDraft:
    draft = session.get(FlowDraft, name) or FlowDraft(name=name, source=text, format=fmt, saved_by=by)
    draft.source, draft.format, draft.saved_by, draft.saved_at = text, fmt, by, utcnow()
    session.add(draft)
    session.commit()
    session.refresh(draft)
    return draft


def flow_diff(before: str | None, after: str, versions: tuple[str, str]) -> str:
    """A unified diff of the two definitions in their canonical YAML form."""
    canonical = [dump_flow_yaml(load_flow_yaml(text)).splitlines(keepends=True) if text else [] for text in (before, after)]
    return "".join(difflib.unified_diff(*canonical, fromfile=versions[0], tofile=versions[1]))


def _latest_row(session: Session, name: str) -> FlowVersion | None:
    query = select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc())
    return session.exec(query).first()


def _add_version(session: Session, name: str, definition_yaml: str, by: str, source: str,
                 diagram: str | None = None, draft: FlowDraft | None = None) -> FlowVersion:
    """Store the next version of a flow with its publication record (and drop the draft it came
    from, in the same transaction); when two publish at once, the second takes the next number."""
    for _ in range(3):
        if draft is not None:
            session.delete(draft)
        latest = _latest_row(session, name)
        number = 1 if latest is None else latest.version + 1
        row = FlowVersion(name=name, version=number, definition_yaml=definition_yaml)
        session.add(row)
        try:
            session.flush()
            session.add(FlowPublication(
                flow_version_id=row.id, published_by=by, source=source, diagram=diagram,
                diff=flow_diff(latest.definition_yaml if latest else None, definition_yaml,
                               (f"v{latest.version}" if latest else "(none)", f"v{number}"))))
            session.commit()
        except IntegrityError:  # someone published the same flow at the same moment: number again
            session.rollback()
            continue
        session.refresh(row)
        return row
    raise RuntimeError(f"could not publish {name}: concurrent publishers kept taking the version number")


@dataclass(frozen=True)
class Publication:
    flow: PublishedFlow
    created: bool  # False when the draft equalled the latest version


def publish_draft(session: Session, name: str, by: str, templates: TemplateExists) -> Publication:
    """Validate the draft and publish it; FlowInvalid publishes nothing, LookupError if there is no draft."""
    draft = session.get(FlowDraft, name)
    if draft is None:
        raise LookupError(f"flow {name!r} has no draft to publish: save one first (PUT /api/flows/{name}/draft)")
    definition = check_source(draft.source, draft.format, templates, name)
    canonical = dump_flow_yaml(definition)
    latest = _latest_row(session, name)
    if latest is not None and load_flow_yaml(latest.definition_yaml) == definition:
        session.delete(draft)
        session.commit()
        return Publication(PublishedFlow(name, latest.version, definition), created=False)
    diagram = draft.source if draft.format == "bpmn" else None
    row = _add_version(session, name, canonical, by, "designer", diagram, draft)
    return Publication(PublishedFlow(name, row.version, definition), created=True)


def version_history(session: Session, name: str) -> list[dict]:
    rows = session.exec(select(FlowVersion, FlowPublication)
                        .join(FlowPublication, FlowPublication.flow_version_id == FlowVersion.id, isouter=True)
                        .where(FlowVersion.name == name).order_by(FlowVersion.version)).all()
    running = running_cases(session).get(name, {})
    return [{
        "version": version.version,
        "published_at": as_utc(version.created_at).isoformat(),
        "published_by": publication.published_by if publication else "flows/ (start-up)",
        "source": publication.source if publication else "file",
        "diff": publication.diff if publication else "",
        "running_cases": running.get(version.version, 0),
    } for version, publication in rows]


def running_cases(session: Session) -> dict[str, Counter]:
    """Open cases per flow and version."""
    counts: dict[str, Counter] = {}
    query = select(Case.flow_name, Case.flow_version).where(Case.status.not_in(FINAL_STATUSES))
    for flow_name, version in session.exec(query):
        counts.setdefault(flow_name, Counter())[version] += 1
    return counts


def flow_overview(session: Session) -> list[dict]:
    """Every flow: its published version, whether a draft waits, open cases per version."""
    drafts = {draft.name: draft for draft in session.exec(select(FlowDraft))}
    running = running_cases(session)
    names = sorted(set(flow_names(session)) | set(drafts))
    overview = []
    for name in names:
        latest = _latest_row(session, name)
        draft = drafts.get(name)
        overview.append({
            "name": name,
            "title": load_flow_yaml(latest.definition_yaml).title if latest else "",
            "published_version": latest.version if latest else None,
            "draft": {"saved_by": draft.saved_by, "saved_at": as_utc(draft.saved_at).isoformat(),
                      "format": draft.format} if draft else None,
            "running_cases": {str(v): n for v, n in sorted(running.get(name, {}).items())},
        })
    return overview


def _latest_from_files(session: Session, name: str) -> FlowVersion | None:
    """The newest version that came from flows/*.yaml (versions without a record are from files too)."""
    rows = session.exec(select(FlowVersion, FlowPublication)
                        .join(FlowPublication, FlowPublication.flow_version_id == FlowVersion.id, isouter=True)
                        .where(FlowVersion.name == name).order_by(FlowVersion.version.desc())).all()
    return next((version for version, publication in rows if publication is None or publication.source == "file"), None)


def publish_shipped_flows(engine: Engine, flows_dir: Path, templates: TemplateCatalog) -> list[PublishedFlow]:
    """Validate every flows/*.yaml and store it as a new version when the file changed; a version a
    designer published later is not overwritten by an unchanged file."""
    published = []
    with Session(engine) as session:
        for path in sorted(Path(flows_dir).glob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            definition = load_flow_yaml(text, templates.exists)
            from_file = _latest_from_files(session, definition.name)
            if from_file is None or from_file.definition_yaml != text:
                _add_version(session, definition.name, text, f"flows/{path.name}", "file")
            latest = _latest_row(session, definition.name)
            published.append(PublishedFlow(definition.name, latest.version, _parsed(latest.definition_yaml)))
    return published
