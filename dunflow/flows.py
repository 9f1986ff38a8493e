"""Flow versions in the store. The shipped YAML files under flows/ are published at start-up:
a file whose content differs from the latest stored version becomes a new version."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dunflow.flow import FlowDefinition, load_flow_yaml
from dunflow.store import FlowVersion
from dunflow.templates import TemplateCatalog


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


def publish_shipped_flows(engine: Engine, flows_dir: Path, templates: TemplateCatalog) -> list[PublishedFlow]:
    """Validate every flows/*.yaml and store it as a new version when it changed."""
    published = []
    with Session(engine) as session:
        for path in sorted(Path(flows_dir).glob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            definition = load_flow_yaml(text, templates.exists)
            latest = session.exec(
                select(FlowVersion).where(FlowVersion.name == definition.name).order_by(FlowVersion.version.desc())
            ).first()
            if latest is None or latest.definition_yaml != text:
                latest = FlowVersion(name=definition.name, version=1 if latest is None else latest.version + 1,
                                     definition_yaml=text)
                session.add(latest)
                try:
                    session.commit()
                except IntegrityError:  # another process published the same file at the same moment
                    session.rollback()
                    latest = session.exec(select(FlowVersion).where(FlowVersion.name == definition.name)
                                          .order_by(FlowVersion.version.desc())).first()
            published.append(PublishedFlow(definition.name, latest.version, definition))
    return published
