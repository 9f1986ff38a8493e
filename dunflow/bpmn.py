"""BPMN 2.0 ⇄ flow model. A restricted subset of BPMN maps one to one onto a flow definition:

- a task (send, offer_plan, escalate or any other step kind) carries `<dunflow:step type=...>`
  with the step's fields as attributes in its extension elements;
- a timer intermediate catch event is a wait (`dunflow:step type="wait"`, or a plain ISO 8601
  duration such as P2D in its timer definition);
- an exclusive gateway is a branch: its outgoing flows carry `<dunflow:when fact=...>` in
  order, the gateway's default flow is `otherwise`;
- an end event is an end step with `<dunflow:step type="end" outcome=...>`;
- sequence flows are `next`; the one start event points at the first step; a flow marked
  `<dunflow:ifPassed/>` leaves a wait whose date already passed, one marked
  `<dunflow:onFailure/>` leaves a send whose message could not go out;
- the process id is the flow's name, its name the title, its documentation the description,
  and `<dunflow:signals>` in its extension elements holds the signal routes.

Element ids are step ids. Anything else is rejected naming the element and what is unsupported.
"""

from __future__ import annotations

import re
import typing
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from dunflow.flow import (
    BranchStep,
    FlowDefinition,
    FlowInvalid,
    FlowProblem,
    Step,
    TemplateExists,
    WaitStep,
    parse_flow,
    successors,
)

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DUNFLOW = "https://dunflow.dev/schema/bpmn/1"
NAMESPACES = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI, "xsi": XSI, "dunflow": DUNFLOW}
for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)

TASKS = {"task", "sendTask", "serviceTask", "userTask", "manualTask", "scriptTask", "businessRuleTask"}
TASK_FOR_STEP = {"send": "sendTask", "offer_plan": "sendTask", "escalate": "userTask"}
IGNORED = {"documentation", "incoming", "outgoing", "extensionElements", "textAnnotation", "association"}
SUBSET = "use tasks, timer catch events, exclusive gateways, end events and sequence flows"
START_ID = "Start"  # not lower_snake_case, so it never collides with a step id
DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(\d+)H)?$")


def q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace_of(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def step_classes() -> dict[str, type]:
    """Every step kind of the flow model by its `type`, so kinds added later map without changes here."""
    classes = typing.get_args(typing.get_args(Step)[0])
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in classes}


def _is_list_field(cls: type, name: str) -> bool:
    info = cls.model_fields.get(name)
    return info is not None and typing.get_origin(info.annotation) is list


# --- flow → BPMN ---------------------------------------------------------------------------


def _attribute_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, data: dict) -> None:
    """Scalars become attributes, mappings child elements, lists of scalars space-separated attributes."""
    for name, value in data.items():
        if isinstance(value, dict):
            _fill(ET.SubElement(element, q(DUNFLOW, name)), value)
        elif isinstance(value, list):
            if value:
                element.set(name, " ".join(_attribute_text(item) for item in value))
        elif value is not None:
            element.set(name, _attribute_text(value))


def _step_fields(step: Step) -> dict:
    data = step.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    for name in ("next", "if_passed", "on_failure", "cases", "otherwise"):
        data.pop(name, None)
    return data


def _extension(element: ET.Element) -> ET.Element:
    found = element.find(q(BPMN, "extensionElements"))
    return found if found is not None else ET.SubElement(element, q(BPMN, "extensionElements"))


def _condition_label(when: dict) -> str:
    if when["fact"] == "key_pressed":
        return f"key {when['key']} in {when['step']}"
    if when["fact"] == "amount_open_above":
        return f"open above {when['cents']} cents"
    if when["fact"] == "debtor_type":
        return f"debtor is {when['is']}"
    return f"{when['step']} {when['fact']}"


@dataclass
class _Edge:
    id: str
    source: str
    target: str
    name: str = ""
    when: dict | None = None
    if_passed: bool = False
    on_failure: bool = False


@dataclass
class _Writer:
    flow: FlowDefinition
    edges: list[_Edge] = field(default_factory=list)

    def edge(self, source: str, target: str, **extra) -> _Edge:
        base = f"Flow_{source}_{target}"
        taken = {edge.id for edge in self.edges}
        edge_id, n = base, 2
        while edge_id in taken:
            edge_id, n = f"{base}_{n}", n + 1
        made = _Edge(edge_id, source, target, **extra)
        self.edges.append(made)
        return made

    def collect_edges(self) -> dict[str, str]:
        """All sequence flows; answers the default flow id of every branch."""
        defaults = {}
        self.edge(START_ID, self.flow.start)
        for step_id, step in self.flow.steps.items():
            if isinstance(step, BranchStep):
                for case in step.cases:
                    when = case.when.model_dump(mode="json", by_alias=True)
                    self.edge(step_id, case.next, name=_condition_label(when), when=when)
                defaults[step_id] = self.edge(step_id, step.otherwise, name="otherwise").id
            elif isinstance(step, WaitStep):
                self.edge(step_id, step.next)
                if step.if_passed:
                    self.edge(step_id, step.if_passed, name="if passed", if_passed=True)
            else:
                target = getattr(step, "next", None)
                if target:
                    self.edge(step_id, target)
                if getattr(step, "on_failure", None):
                    self.edge(step_id, step.on_failure, name="on failure", on_failure=True)
        return defaults

    def node(self, process: ET.Element, step_id: str, step: Step, default: str | None) -> None:
        if isinstance(step, BranchStep):
            element = ET.SubElement(process, q(BPMN, "exclusiveGateway"), id=step_id, name=step_id)
            element.set("default", default)
        else:
            tag = {"wait": "intermediateCatchEvent", "end": "endEvent"}.get(step.type)
            tag = tag or TASK_FOR_STEP.get(step.type, "serviceTask")
            element = ET.SubElement(process, q(BPMN, tag), id=step_id, name=step_id)
            _fill(ET.SubElement(_extension(element), q(DUNFLOW, "step")), _step_fields(step))
        for edge in self.edges:
            if edge.target == step_id:
                ET.SubElement(element, q(BPMN, "incoming")).text = edge.id
        for edge in self.edges:
            if edge.source == step_id:
                ET.SubElement(element, q(BPMN, "outgoing")).text = edge.id
        if isinstance(step, WaitStep):
            timer = ET.SubElement(element, q(BPMN, "timerEventDefinition"), id=f"Timer_{step_id}")
            if step.until is None:
                duration = ET.SubElement(timer, q(BPMN, "timeDuration"))
                duration.set(q(XSI, "type"), "bpmn:tFormalExpression")
                duration.text = _iso_duration(step)

    def sequence_flow(self, process: ET.Element, edge: _Edge) -> None:
        element = ET.SubElement(process, q(BPMN, "sequenceFlow"), id=edge.id, sourceRef=edge.source,
                                targetRef=edge.target)
        if edge.name:
            element.set("name", edge.name)
        if edge.when is not None:
            _fill(ET.SubElement(_extension(element), q(DUNFLOW, "when")), edge.when)
        if edge.if_passed:
            ET.SubElement(_extension(element), q(DUNFLOW, "ifPassed"))
        if edge.on_failure:
            ET.SubElement(_extension(element), q(DUNFLOW, "onFailure"))


def _iso_duration(step: WaitStep) -> str:
    days = f"{step.days}D" if step.days else ""
    hours = f"T{step.hours}H" if step.hours else ""
    return f"P{days}{hours}" if days or hours else "P0D"


def flow_to_bpmn(flow: FlowDefinition) -> str:
    """The flow as a BPMN 2.0 document with dunflow extensions and a generated diagram."""
    root = ET.Element(q(BPMN, "definitions"), id=f"Definitions_{flow.name}", targetNamespace=DUNFLOW)
    root.set("exporter", "dunflow")
    process = ET.SubElement(root, q(BPMN, "process"), id=flow.name, isExecutable="true")
    if flow.title:
        process.set("name", flow.title)
    if flow.description:
        ET.SubElement(process, q(BPMN, "documentation")).text = flow.description
    signals = ET.SubElement(_extension(process), q(DUNFLOW, "signals"))
    for signal, route in flow.signals:
        if route is None:
            continue
        _fill(ET.SubElement(signals, q(DUNFLOW, "route"), signal=signal), route.model_dump(exclude_none=True))
    if flow.contact_rules is not None:
        _fill(ET.SubElement(_extension(process), q(DUNFLOW, "contact_rules")),
              flow.contact_rules.model_dump(mode="json", exclude_none=True))
    writer = _Writer(flow)
    defaults = writer.collect_edges()
    start = ET.SubElement(process, q(BPMN, "startEvent"), id=START_ID, name="start")
    ET.SubElement(start, q(BPMN, "outgoing")).text = writer.edges[0].id
    for step_id, step in flow.steps.items():
        writer.node(process, step_id, step, defaults.get(step_id))
    for edge in writer.edges:
        writer.sequence_flow(process, edge)
    _diagram(root, flow, writer.edges)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --- diagram -------------------------------------------------------------------------------

SIZES = {"task": (100, 80), "event": (36, 36), "gateway": (50, 50)}
COLUMN, ROW, LEFT, TOP = 170, 130, 80, 80


def _shape_kind(step: Step | None) -> str:
    if step is None or step.type in ("wait", "end"):
        return "event"
    return "gateway" if step.type == "branch" else "task"


def _layers(flow: FlowDefinition) -> dict[str, int]:
    """Breadth-first depth from the start; steps only a signal reaches get columns after the rest."""
    layer = {START_ID: 0}
    seeds = [flow.start] + [s for s in flow.steps if s != flow.start]
    for seed in seeds:
        if seed in layer:
            continue
        layer[seed] = max(layer.values()) + 1
        queue = [seed]
        while queue:
            current = queue.pop(0)
            for target in successors(flow.steps[current]):
                if target in flow.steps and target not in layer:
                    layer[target] = layer[current] + 1
                    queue.append(target)
    return layer


def _diagram(root: ET.Element, flow: FlowDefinition, edges: list[_Edge]) -> None:
    diagram = ET.SubElement(root, q(BPMNDI, "BPMNDiagram"), id=f"Diagram_{flow.name}")
    plane = ET.SubElement(diagram, q(BPMNDI, "BPMNPlane"), id=f"Plane_{flow.name}", bpmnElement=flow.name)
    rows: dict[int, int] = defaultdict(int)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for node_id, column in _layers(flow).items():
        width, height = SIZES[_shape_kind(flow.steps.get(node_id))]
        centre_x, centre_y = LEFT + column * COLUMN, TOP + rows[column] * ROW
        rows[column] += 1
        boxes[node_id] = (centre_x - width // 2, centre_y - height // 2, width, height)
    for node_id, (x, y, width, height) in boxes.items():
        shape = ET.SubElement(plane, q(BPMNDI, "BPMNShape"), id=f"{node_id}_di", bpmnElement=node_id)
        if isinstance(flow.steps.get(node_id), BranchStep):
            shape.set("isMarkerVisible", "true")
        ET.SubElement(shape, q(DC, "Bounds"), x=str(x), y=str(y), width=str(width), height=str(height))
    for edge in edges:
        shape = ET.SubElement(plane, q(BPMNDI, "BPMNEdge"), id=f"{edge.id}_di", bpmnElement=edge.id)
        for x, y in _waypoints(boxes[edge.source], boxes[edge.target]):
            ET.SubElement(shape, q(DI, "waypoint"), x=str(x), y=str(y))


def _waypoints(source, target) -> list[tuple[int, int]]:
    sx, sy, sw, sh = source
    tx, ty, tw, th = target
    if tx > sx:  # forwards: right side to left side, with an elbow when rows differ
        start, end = (sx + sw, sy + sh // 2), (tx, ty + th // 2)
        if start[1] == end[1]:
            return [start, end]
        middle = (start[0] + end[0]) // 2
        return [start, (middle, start[1]), (middle, end[1]), end]
    below = max(sy + sh, ty + th) + 30  # backwards: under both shapes
    return [(sx + sw // 2, sy + sh), (sx + sw // 2, below), (tx + tw // 2, below), (tx + tw // 2, ty + th)]


# --- BPMN → flow ---------------------------------------------------------------------------


def _dunflow_child(element: ET.Element, name: str) -> ET.Element | None:
    extension = element.find(q(BPMN, "extensionElements"))
    return None if extension is None else extension.find(q(DUNFLOW, name))


def _read(element: ET.Element, cls: type | None) -> dict:
    data: dict = {}
    for name, value in element.attrib.items():
        if namespace_of(name):
            continue  # attributes of other tools' extensions
        data[name] = value.split() if cls is not None and _is_list_field(cls, name) else value
    for child in element:
        if namespace_of(child.tag) == DUNFLOW:
            data[local(child.tag)] = _read(child, None)
    return data


@dataclass
class _Reader:
    problems: list[FlowProblem] = field(default_factory=list)
    nodes: dict[str, ET.Element] = field(default_factory=dict)
    flows: list[ET.Element] = field(default_factory=list)
    starts: list[ET.Element] = field(default_factory=list)

    def reject(self, element: ET.Element, problem: str) -> None:
        where = element.get("id") or local(element.tag)
        self.problems.append(FlowProblem(where=where, problem=problem))

    def collect(self, process: ET.Element) -> None:
        for element in process:
            kind = local(element.tag)
            if namespace_of(element.tag) != BPMN:
                self.reject(element, f"{element.tag} is not BPMN; {SUBSET}")
            elif kind in IGNORED:
                continue
            elif kind == "sequenceFlow":
                self._check_flow(element)
                self.flows.append(element)
            elif kind == "startEvent":
                self._check_children(element, set())
                self.starts.append(element)
            elif kind in TASKS or kind in ("intermediateCatchEvent", "exclusiveGateway", "endEvent"):
                self._check_node(element, kind)
                self.nodes[element.get("id", "")] = element
            else:
                self.reject(element, f"{kind} is not supported; {SUBSET}")

    def _check_children(self, element: ET.Element, allowed: set[str]) -> None:
        for child in element:
            if namespace_of(child.tag) == BPMN and local(child.tag) not in IGNORED | allowed:
                self.reject(element, f"{local(child.tag)} is not supported here; {SUBSET}")

    def _check_node(self, element: ET.Element, kind: str) -> None:
        if kind == "intermediateCatchEvent":
            self._check_children(element, {"timerEventDefinition"})
            if element.find(q(BPMN, "timerEventDefinition")) is None:
                self.reject(element, "an intermediate event must be a timer (a wait); message or signal events are not supported")
        else:
            self._check_children(element, set())
        if kind in TASKS and _dunflow_child(element, "step") is None:
            self.reject(element, "a task needs dunflow step properties (type send, offer_plan, escalate, ...)")

    def _check_flow(self, element: ET.Element) -> None:
        if element.find(q(BPMN, "conditionExpression")) is not None:
            self.reject(element, "condition expressions are not supported: put a dunflow:when condition on the flow")

    def outgoing(self) -> dict[str, list[ET.Element]]:
        known = set(self.nodes) | {start.get("id") for start in self.starts}
        result: dict[str, list[ET.Element]] = defaultdict(list)
        for flow in self.flows:
            for end in ("sourceRef", "targetRef"):
                if flow.get(end) not in known:
                    self.reject(flow, f"{end} {flow.get(end)!r} is not a task, event or gateway of this process")
            if flow.get("targetRef") in {start.get("id") for start in self.starts}:
                self.reject(flow, "nothing may lead back into the start event")
            result[flow.get("sourceRef")].append(flow)
        return result


def _wait_from_timer(reader: _Reader, element: ET.Element) -> dict:
    duration = element.find(f"{q(BPMN, 'timerEventDefinition')}/{q(BPMN, 'timeDuration')}")
    match = DURATION.match((duration.text or "").strip()) if duration is not None else None
    if not match or not any(match.groups()):
        reader.reject(element, "a timer needs a duration such as P2D or PT24H, or dunflow wait properties")
        return {"type": "wait"}
    days, hours = match.groups()
    return {"type": "wait"} | ({"days": days} if days else {}) | ({"hours": hours} if hours else {})


def _marked_step(reader: _Reader, element: ET.Element, marker: ET.Element) -> dict | None:
    kind, step_type = local(element.tag), marker.get("type", "")
    expected = {"intermediateCatchEvent": {"wait"}, "endEvent": {"end"}}.get(kind)
    cls = step_classes().get(step_type)
    if cls is None or (expected and step_type not in expected) or (not expected and step_type in ("wait", "end", "branch")):
        allowed = sorted(expected or set(step_classes()) - {"wait", "end", "branch"})
        reader.reject(element, f"dunflow step type {step_type!r} does not fit a {kind}; use {', '.join(allowed)}")
        return None
    return _read(marker, cls)


def _step_data(reader: _Reader, element: ET.Element, leaving: list[ET.Element]) -> dict | None:
    kind = local(element.tag)
    if kind == "exclusiveGateway":
        return _branch_data(reader, element, leaving)
    marker = _dunflow_child(element, "step")
    if marker is not None:
        data = _marked_step(reader, element, marker)
    elif kind == "intermediateCatchEvent":
        data = _wait_from_timer(reader, element)
    else:
        data = None
    if data is None:
        return None
    step_type = data["type"]
    if kind == "endEvent":
        if leaving:
            reader.reject(element, "an end event has no outgoing sequence flow")
        return data
    passed = _marked_flows(leaving, "ifPassed")
    failed = _marked_flows(leaving, "onFailure")
    plain = [flow for flow in leaving if flow not in passed and flow not in failed]
    if passed and step_type != "wait" or len(passed) > 1:
        reader.reject(element, "only a wait has one `if passed` flow")
    if failed and step_type != "send" or len(failed) > 1:
        reader.reject(element, "only a send has one `on failure` flow")
    if len(plain) > 1:
        reader.reject(element, f"{len(plain)} outgoing sequence flows; only an exclusive gateway may branch")
    if plain:
        data["next"] = plain[0].get("targetRef")
    if passed:
        data["if_passed"] = passed[0].get("targetRef")
    if failed:
        data["on_failure"] = failed[0].get("targetRef")
    return data


def _marked_flows(leaving: list[ET.Element], marker: str) -> list[ET.Element]:
    return [flow for flow in leaving if _dunflow_child(flow, marker) is not None]


def _branch_data(reader: _Reader, element: ET.Element, leaving: list[ET.Element]) -> dict:
    default = element.get("default")
    cases, others = [], []
    for flow in leaving:
        when = _dunflow_child(flow, "when")
        if when is not None and flow.get("id") != default:
            cases.append({"when": _read(when, None), "next": flow.get("targetRef")})
        else:
            others.append(flow)
    if len(others) != 1:
        reader.reject(element, f"a gateway needs exactly one default flow (otherwise), found {len(others)}; "
                               "every other outgoing flow needs a dunflow:when condition")
    data = {"type": "branch", "cases": cases}
    if others:
        data["otherwise"] = others[0].get("targetRef")
    return data


def _signals(process: ET.Element) -> dict:
    routes = _dunflow_child(process, "signals")
    if routes is None:
        return {}
    result = {}
    for route in routes.findall(q(DUNFLOW, "route")):
        data = _read(route, None)
        result[data.pop("signal", "")] = data
    return result


def bpmn_to_data(text: str | bytes) -> dict:
    """The flow definition as plain data (not yet validated); FlowInvalid for XML outside the subset."""
    try:
        root = fromstring(text)
    except DefusedXmlException as error:
        raise FlowInvalid([FlowProblem(where="xml", problem=f"refused: {error}")]) from None
    except ET.ParseError as error:
        raise FlowInvalid([FlowProblem(where="xml", problem=f"not well-formed XML: {error}")]) from None
    if root.tag != q(BPMN, "definitions"):
        raise FlowInvalid([FlowProblem(where="xml", problem=f"not a BPMN 2.0 document (root is {local(root.tag)})")])
    reader = _Reader()
    processes = root.findall(q(BPMN, "process"))
    for element in root:
        if local(element.tag) not in ("process", "BPMNDiagram"):
            reader.reject(element, f"{local(element.tag)} is not supported (one process, no pools or messages)")
    if len(processes) != 1:
        reader.problems.append(FlowProblem(where="definitions", problem=f"needs exactly one process, found {len(processes)}"))
        raise FlowInvalid(reader.problems)
    process = processes[0]
    reader.collect(process)
    if len(reader.starts) != 1:
        reader.problems.append(FlowProblem(where=process.get("id", "process"),
                                           problem=f"needs exactly one start event, found {len(reader.starts)}"))
    leaving = reader.outgoing()
    data = {"name": process.get("id", ""), "title": process.get("name", ""),
            "description": process.findtext(q(BPMN, "documentation"), ""), "steps": {}, "signals": _signals(process)}
    contact_rules = _dunflow_child(process, "contact_rules")
    if contact_rules is not None:
        data["contact_rules"] = _read(contact_rules, None)
    for start in reader.starts:
        out = leaving.get(start.get("id"), [])
        if len(out) != 1:
            reader.reject(start, f"the start event needs exactly one outgoing sequence flow, found {len(out)}")
        else:
            data["start"] = out[0].get("targetRef")
    for node_id, element in reader.nodes.items():
        step = _step_data(reader, element, leaving.get(node_id, []))
        if step is not None:
            data["steps"][node_id] = step
    if reader.problems:
        raise FlowInvalid(reader.problems)
    return data


def bpmn_to_flow(text: str | bytes, template_exists: TemplateExists | None = None) -> FlowDefinition:
    """Compile a BPMN document to a validated flow definition, or raise FlowInvalid."""
    return parse_flow(bpmn_to_data(text), template_exists)


def element_of(where: str) -> str:
    """The step or element a problem is at: `steps.check_opened.cases[0]` is at check_opened."""
    if where.startswith("steps."):
        return re.split(r"[.\[]", where.removeprefix("steps."), maxsplit=1)[0]
    return where
