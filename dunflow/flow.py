"""The flow model: the schema of a collection flow definition, its validator, YAML load/dump.

A flow is a set of named steps linked by `next`, plus signal routes that say what a payment,
dispute or promise does wherever the case stands. `CollectionWorkflow` interprets it.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Callable, Iterator, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Channel = Literal["email", "sms", "call", "letter"]
ChannelEventKind = Literal["delivered", "opened", "clicked", "bounced", "failed", "answered", "no_answer", "key_pressed"]
DebtorType = Literal["consumer", "business"]
LANGUAGES = ("nl", "en")

STEP_ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- steps ---------------------------------------------------------------------------------


class SendStep(_Strict):
    """Send a message. `notice: fourteen_day` marks the 14-day letter (its template must be marked
    too); for consumers, collection costs may be charged only after its term has passed.
    `on_failure` is the step taken when the message could not go out (refused by the provider,
    e.g. an invalid number; the debtor opted out; no address for the channel); without it the
    failure is noted and the flow goes on to `next`."""

    type: Literal["send"]
    channel: Channel
    template: str
    notice: Literal["fourteen_day"] | None = None
    combine: bool = False  # one message per debtor, channel, template and day over all their open cases
    next: str
    on_failure: str | None = None


class RelativeDate(_Strict):
    """A date relative to the invoice: `{date: due_date, offset_days: -1}` is one day before due.
    `notice_term_end` is the last day of the 14-day notice's term (offset 1: the first day after)."""

    date: Literal["due_date", "issue_date", "notice_term_end"]
    offset_days: int = 0


class WaitStep(_Strict):
    """Wait a duration or until a date. Any signal wakes the wait so its route applies at once;
    `wake_on` channel events end the wait early; `if_passed` is taken when the date already passed."""

    type: Literal["wait"]
    days: int | None = Field(default=None, ge=0)
    hours: int | None = Field(default=None, ge=0)
    business_days: int | None = Field(default=None, ge=1)  # ends at 09:00 that many business days later
    until: RelativeDate | None = None
    if_passed: str | None = None
    wake_on: list[ChannelEventKind] = Field(default_factory=list)
    next: str

    @model_validator(mode="after")
    def _one_kind_of_wait(self) -> "WaitStep":
        has_duration = self.days is not None or self.hours is not None
        kinds = has_duration + (self.until is not None) + (self.business_days is not None)
        if kinds != 1:
            raise ValueError("a wait needs one of: a duration (days/hours), `business_days` or `until`")
        if self.if_passed and self.until is None:
            raise ValueError("`if_passed` only applies to a wait `until` a date")
        return self

    @property
    def duration_hours(self) -> int:
        """The fewest hours the wait lasts (a business day is at least a day)."""
        return (self.days or 0) * 24 + (self.hours or 0) + (self.business_days or 0) * 24


class Opened(_Strict):
    fact: Literal["opened"]
    step: str


class Clicked(_Strict):
    fact: Literal["clicked"]
    step: str


class KeyPressed(_Strict):
    fact: Literal["key_pressed"]
    step: str
    key: str = Field(pattern=r"^[0-9*#]$")


class AmountOpenAbove(_Strict):
    fact: Literal["amount_open_above"]
    cents: int = Field(ge=0)


class DebtorIs(_Strict):
    fact: Literal["debtor_type"]
    is_: DebtorType = Field(alias="is")


Condition = Annotated[
    Union[Opened, Clicked, KeyPressed, AmountOpenAbove, DebtorIs], Field(discriminator="fact")
]


class BranchCase(_Strict):
    when: Condition
    next: str


class BranchStep(_Strict):
    """Take the first case whose condition holds, else `otherwise`."""

    type: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    otherwise: str


class OfferPlanStep(_Strict):
    type: Literal["offer_plan"]
    channel: Channel = "email"
    template: str = "plan_offer"
    max_terms: int = Field(ge=2, le=36)
    min_term_cents: int = Field(gt=0)
    next: str


class EscalateStep(_Strict):
    """Hand the case to a person; it waits until an operator resumes (then `next`) or closes it."""

    type: Literal["escalate"]
    reason: str = Field(min_length=1)
    next: str | None = None


class ChargeCostsStep(_Strict):
    """Add the statutory collection costs to the amount open. For a consumer only when a 14-day
    notice was sent and its term has passed; otherwise the case is escalated, nothing charged."""

    type: Literal["charge_costs"]
    next: str


class EndStep(_Strict):
    type: Literal["end"]
    outcome: str = Field(pattern=STEP_ID_PATTERN)


Step = Annotated[
    Union[SendStep, WaitStep, BranchStep, OfferPlanStep, EscalateStep, ChargeCostsStep, EndStep],
    Field(discriminator="type"),
]

# --- signal routes -------------------------------------------------------------------------


class Route(_Strict):
    """What a signal does: `end` the case, `pause` it, `continue` where it stands, `goto` a step."""

    action: Literal["end", "pause", "continue", "goto"]
    outcome: str | None = Field(default=None, pattern=STEP_ID_PATTERN)
    step: str | None = None

    @model_validator(mode="after")
    def _arguments_fit_action(self) -> "Route":
        if (self.action == "end") != (self.outcome is not None):
            raise ValueError("`outcome` is required with action end and only there")
        if (self.action == "goto") != (self.step is not None):
            raise ValueError("`step` is required with action goto and only there")
        return self


class SignalRoutes(_Strict):
    full_payment: Route
    partial_payment: Route
    dispute_opened: Route
    dispute_upheld: Route
    dispute_rejected: Route
    promise_to_pay: Route
    broken_promise: Route
    broken_plan: Route | None = None  # an installment plan broken; none: as a broken promise


# --- contact rules -------------------------------------------------------------------------


class ContactHours(_Strict):
    """When a channel may reach a debtor, in the debtor's time zone. Never on Sundays or Dutch
    public holidays; `saturday: false` or `business_days_only` narrow it further."""

    start: time = time(8, 0)
    end: time = time(21, 0)
    saturday: bool = True
    business_days_only: bool = False

    @model_validator(mode="after")
    def _start_before_end(self) -> "ContactHours":
        if self.start >= self.end:
            raise ValueError("`start` must be before `end`")
        return self


def _default_hours() -> dict[str, ContactHours]:
    return {"sms": ContactHours(), "call": ContactHours(),
            "letter": ContactHours(start=time(8, 0), end=time(18, 0), business_days_only=True)}


class ContactRules(_Strict):
    """A send outside its channel's hours, or over the weekly maximum of contacts with the debtor
    (all cases together), is deferred to the next allowed moment, never dropped. Channels without
    hours (email by default) go out at any time."""

    hours: dict[Channel, ContactHours] = Field(default_factory=_default_hours)
    max_per_week: int | None = Field(default=None, ge=1)

    @field_validator("hours", mode="before")
    @classmethod
    def _over_the_defaults(cls, hours):
        """Hours given for a channel replace its defaults; the other channels keep theirs."""
        return _default_hours() | dict(hours or {})


class FlowDefinition(_Strict):
    name: str = Field(pattern=STEP_ID_PATTERN)
    title: str = ""
    description: str = ""
    start: str
    steps: dict[str, Step] = Field(min_length=1)
    signals: SignalRoutes
    contact_rules: ContactRules | None = None  # none: messages go out when their step comes

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]


# --- validation ----------------------------------------------------------------------------


class FlowProblem(BaseModel):
    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


class FlowInvalid(ValueError):
    def __init__(self, problems: list[FlowProblem]):
        self.problems = problems
        super().__init__("flow is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


TemplateExists = Callable[[str, str, str], bool]  # (channel, template, language) -> exists


def successors(step: Step) -> Iterator[str]:
    """Every step this one can lead to by itself (not through signals)."""
    if isinstance(step, BranchStep):
        yield from (case.next for case in step.cases)
        yield step.otherwise
    elif isinstance(step, WaitStep):
        yield step.next
        if step.if_passed:
            yield step.if_passed
    elif isinstance(step, SendStep):
        yield step.next
        if step.on_failure:
            yield step.on_failure
    elif not isinstance(step, EndStep) and step.next:
        yield step.next


def _route_targets(flow: FlowDefinition) -> Iterator[tuple[str, str]]:
    for event, route in flow.signals:
        if route is not None and route.step:
            yield f"signals.{event}", route.step


def _check_references(flow: FlowDefinition) -> list[FlowProblem]:
    problems = []
    if flow.start not in flow.steps:
        problems.append(FlowProblem(where="start", problem=f"unknown step {flow.start!r}"))
    for step_id, step in flow.steps.items():
        for target in successors(step):
            if target not in flow.steps:
                problems.append(FlowProblem(where=f"steps.{step_id}", problem=f"leads to unknown step {target!r}"))
        if isinstance(step, BranchStep):
            for index, case in enumerate(step.cases):
                referenced = getattr(case.when, "step", None)
                if referenced is not None and referenced not in flow.steps:
                    problems.append(FlowProblem(
                        where=f"steps.{step_id}.cases[{index}]",
                        problem=f"condition refers to unknown step {referenced!r}"))
    for where, target in _route_targets(flow):
        if target not in flow.steps:
            problems.append(FlowProblem(where=where, problem=f"goes to unknown step {target!r}"))
    return problems


def _check_step_ids(flow: FlowDefinition) -> list[FlowProblem]:
    return [
        FlowProblem(where=f"steps.{step_id}", problem="step ids are lower_snake_case (a-z, 0-9, _)")
        for step_id in flow.steps
        if not re.match(STEP_ID_PATTERN, step_id)
    ]


def _check_reachable(flow: FlowDefinition) -> list[FlowProblem]:
    seen: set[str] = set()
    frontier = [flow.start] + [target for _, target in _route_targets(flow)]
    while frontier:
        step_id = frontier.pop()
        if step_id in seen or step_id not in flow.steps:
            continue
        seen.add(step_id)
        frontier.extend(successors(flow.steps[step_id]))
    return [
        FlowProblem(where=f"steps.{step_id}", problem="unreachable: no step, start or signal route leads here")
        for step_id in flow.steps
        if step_id not in seen
    ]


def _check_loops_wait(flow: FlowDefinition) -> list[FlowProblem]:
    """A cycle of steps none of which waits would send messages in a tight loop."""
    blocking = (WaitStep, EscalateStep)
    graph = {
        step_id: [t for t in successors(step) if t in flow.steps and not isinstance(flow.steps[t], blocking)]
        for step_id, step in flow.steps.items()
        if not isinstance(step, blocking)
    }
    problems, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(step_id: str, path: list[str]) -> None:
        state[step_id] = 1
        for target in graph[step_id]:
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                problems.append(FlowProblem(
                    where=f"steps.{target}",
                    problem="loop without a wait: " + " -> ".join(cycle)))
            elif target not in state:
                visit(target, path + [target])
        state[step_id] = 2

    for step_id in graph:
        if step_id not in state:
            visit(step_id, [step_id])
    return problems


def _check_templates(flow: FlowDefinition, template_exists: TemplateExists) -> list[FlowProblem]:
    problems = []
    for step_id, step in flow.steps.items():
        if isinstance(step, (SendStep, OfferPlanStep)):
            missing = [lang for lang in LANGUAGES if not template_exists(step.channel, step.template, lang)]
            if missing:
                problems.append(FlowProblem(
                    where=f"steps.{step_id}",
                    problem=f"template {step.channel}/{step.template} does not exist for language(s) {', '.join(missing)}"))
    return problems


def _check_conditions(flow: FlowDefinition) -> list[FlowProblem]:
    problems = []
    for step_id, step in flow.steps.items():
        if not isinstance(step, BranchStep):
            continue
        for index, case in enumerate(step.cases):
            condition = case.when
            target = flow.steps.get(getattr(condition, "step", ""))
            if target is None:
                continue
            where = f"steps.{step_id}.cases[{index}]"
            if not isinstance(target, (SendStep, OfferPlanStep)):
                problems.append(FlowProblem(where=where, problem=f"condition refers to {condition.step!r}, which sends no message"))
            elif isinstance(condition, (Opened, Clicked)) and target.channel != "email":
                problems.append(FlowProblem(where=where, problem=f"only an email can be {condition.fact}; {condition.step!r} is {target.channel}"))
            elif isinstance(condition, KeyPressed) and target.channel != "call":
                problems.append(FlowProblem(where=where, problem=f"keys are pressed only in a call; {condition.step!r} is {target.channel}"))
    return problems


NOTICE_TERM_DAYS = 16  # posted on day 0, received on day 1 at the earliest, 14 days, then costs


def _edges(flow: FlowDefinition, step: Step) -> Iterator[tuple[str, bool]]:
    """(next step, whether the way there is for business debtors only)."""
    if isinstance(step, BranchStep):
        for case in step.cases:
            yield case.next, isinstance(case.when, DebtorIs) and case.when.is_ == "business"
        yield step.otherwise, False
    else:
        for target in successors(step):
            yield target, False


def _hours_after_notice(flow: FlowDefinition) -> dict[str, float]:
    """For every step, the fewest hours a consumer can have waited since the last 14-day notice
    on any way there: -inf when a way has no notice, inf when only businesses get there."""
    arriving: dict[str, float] = {flow.start: float("-inf")}
    for _, target in _route_targets(flow):  # a signal can jump there at any moment
        arriving[target] = float("-inf")
    frontier = list(arriving)
    while frontier:
        step_id = frontier.pop()
        step, hours = flow.steps[step_id], arriving[step_id]
        if isinstance(step, SendStep) and step.notice == "fourteen_day":
            hours = 0.0
        elif isinstance(step, WaitStep) and step.until is not None and step.until.date == "notice_term_end":
            hours = max(hours, (NOTICE_TERM_DAYS - 1 + step.until.offset_days) * 24.0) if hours >= 0 else hours
        elif isinstance(step, WaitStep):
            hours += step.duration_hours
        for target, business_only in _edges(flow, step):
            reached = float("inf") if business_only else hours
            if reached < arriving.get(target, float("inf")) or target not in arriving:
                arriving[target] = reached
                frontier.append(target)
    return arriving


def _check_costs_after_notice(flow: FlowDefinition) -> list[FlowProblem]:
    arriving = _hours_after_notice(flow)
    problems = []
    for step_id, step in flow.steps.items():
        hours = arriving.get(step_id, float("inf"))
        if not isinstance(step, ChargeCostsStep) or hours >= NOTICE_TERM_DAYS * 24:
            continue
        why = ("a consumer can get here without a 14-day notice (a send with notice: fourteen_day)"
               if hours == float("-inf") else
               f"a consumer can get here {hours / 24:g} days after the 14-day notice; wait at least "
               f"{NOTICE_TERM_DAYS} days (receipt the next business day, then 14 days)")
        problems.append(FlowProblem(where=f"steps.{step_id}", problem=f"charges costs too early: {why}"))
    return problems


def _check_contact_hours(flow: FlowDefinition) -> list[FlowProblem]:
    """Texts and calls reach people where they are: a flow that sends them needs contact hours."""
    if flow.contact_rules is not None:
        return []
    return [FlowProblem(where=f"steps.{step_id}",
                        problem=f"a {step.channel} with no contact hours: add `contact_rules` to the flow "
                                "(`contact_rules: {}` keeps SMS and calls to Mon-Sat 08:00-21:00, never on "
                                "Sundays or public holidays)")
            for step_id, step in flow.steps.items()
            if isinstance(step, SendStep) and step.channel in ("sms", "call")]


def validate_flow(flow: FlowDefinition, template_exists: TemplateExists | None = None) -> list[FlowProblem]:
    problems = _check_step_ids(flow) + _check_references(flow)
    if problems:
        return problems
    problems = (_check_reachable(flow) + _check_loops_wait(flow) + _check_conditions(flow)
                + _check_costs_after_notice(flow) + _check_contact_hours(flow))
    if template_exists is not None:
        problems += _check_templates(flow, template_exists)
    return problems


def _pydantic_problems(error: ValidationError) -> list[FlowProblem]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "flow"
        message = item["msg"]
        if item["type"] == "missing" and item["loc"][:1] == ("signals",):
            message = "missing route: say what this signal does (end, pause, continue or goto)"
        problems.append(FlowProblem(where=where, problem=message))
    return problems


def parse_flow(data: object, template_exists: TemplateExists | None = None) -> FlowDefinition:
    """Build and validate a flow from plain data; raise FlowInvalid listing every problem."""
    if not isinstance(data, dict):
        raise FlowInvalid([FlowProblem(where="flow", problem="a flow definition is a mapping (name, start, steps, signals)")])
    try:
        flow = FlowDefinition.model_validate(data)
    except ValidationError as error:
        raise FlowInvalid(_pydantic_problems(error)) from None
    problems = validate_flow(flow, template_exists)
    if problems:
        raise FlowInvalid(problems)
    return flow


def load_flow_yaml(text: str, template_exists: TemplateExists | None = None) -> FlowDefinition:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FlowInvalid([FlowProblem(where="yaml", problem=str(error))]) from None
    return parse_flow(data, template_exists)


def dump_flow_yaml(flow: FlowDefinition) -> str:
    data = flow.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)
    for step in data["steps"].values():
        if step.get("wake_on") == []:
            del step["wake_on"]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
