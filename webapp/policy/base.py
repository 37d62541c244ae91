"""The policy registry's shapes: results, parameters, frameworks, controls and the context.

A control is a class with class attributes (id, title, description, severity, parameters,
references) and two methods, `applies_to(facts)` and `check(facts, context)`. `@register` puts
one instance of it in `CONTROLS`. Frameworks (SOC 2, GDPR, CIS, AWS FSBP) are registered in
`FRAMEWORKS`; a control's `references` maps a framework id to the ids it satisfies there, and
registration refuses a reference to a framework that is not registered.

Everything here is pure: no Flask, no session, no clock. `now` and the parameter values come in
the `Context`, so an evaluation is repeatable and a test needs no app.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

from webapp.models.enums import AssetStatus, Criticality
from webapp.policy.facts import AssetFacts, Neighbour


class Status(enum.StrEnum):
    pass_ = "pass"
    fail = "fail"
    unknown = "unknown"


class Severity(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Result(NamedTuple):
    """What a check says about one asset: a status and a reason a person can read."""

    status: Status
    reason: str

    @classmethod
    def passed(cls, reason: str) -> Result:
        return cls(Status.pass_, reason)

    @classmethod
    def failed(cls, reason: str) -> Result:
        return cls(Status.fail, reason)

    @classmethod
    def unknown(cls, reason: str) -> Result:
        return cls(Status.unknown, reason)


class ParameterError(ValueError):
    """A parameter value is refused. `field` is `<control id>.<parameter name>`, for a 422 that
    names it; the message names it too."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Parameter:
    """One admin-editable setting of a control (SPEC §12). `type` is int (bounded by minimum and
    maximum, inclusive) or bool; `help` says in one line what the value means."""

    name: str
    type: type
    default: Any
    help: str
    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""

    def validate(self, control_id: str, value: Any) -> Any:
        """The value as stored, or ParameterError naming `<control>.<name>` and the range."""
        field_name = f"{control_id}.{self.name}"
        if self.type is bool:
            if isinstance(value, bool):
                return value
            raise ParameterError(field_name, f"{field_name} must be true or false, not {value!r}.")
        # bool is an int in Python; True days is not a number of days
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise ParameterError(
                    field_name, f"{field_name} must be a whole number, not {value!r}."
                )
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise ParameterError(
                field_name,
                f"{field_name} must be between {self.minimum} and {self.maximum}"
                f"{' ' + self.unit if self.unit else ''}, not {value}.",
            )
        return value

    @property
    def allowed(self) -> str:
        """The allowed range, for a form's hint: "1–3650 days", "true or false"."""
        if self.type is bool:
            return "true or false"
        return f"{self.minimum}–{self.maximum}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    description: str
    url: str = ""


FRAMEWORKS: dict[str, Framework] = {}


def register_framework(framework: Framework) -> Framework:
    if framework.id in FRAMEWORKS:
        raise ValueError(f"policy framework {framework.id!r} registered twice")
    FRAMEWORKS[framework.id] = framework
    return framework


class Control:
    """A rule every applicable asset is checked against. Subclass, set the class attributes,
    implement `applies_to` and `check`, and decorate with `@register`.

    `check` is called only for assets `applies_to` accepts. It must not query: everything it may
    read is in the facts and the context. Missing posture data is `unknown`, never `pass`.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    severity: ClassVar[Severity]
    family: ClassVar[str]  # the module it lives in: encryption, network, backup…
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    references: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})
    uses_graph: ClassVar[bool] = False

    def applies_to(self, asset: AssetFacts) -> bool:
        return in_scope(asset)

    def check(self, asset: AssetFacts, context: Context) -> Result:
        raise NotImplementedError

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


CONTROLS: dict[str, Control] = {}

ControlClass = type[Control]


def register(cls: ControlClass) -> ControlClass:
    """Class decorator: check the declaration and add one instance to `CONTROLS`."""
    control = cls()
    if control.id in CONTROLS:
        raise ValueError(f"policy control {control.id!r} registered twice")
    if control.severity not in Severity:
        raise ValueError(
            f"{control.id}: severity {control.severity!r} is not one of {list(Severity)}"
        )
    for framework, ids in control.references.items():
        if framework not in FRAMEWORKS:
            raise ValueError(f"{control.id}: references unknown framework {framework!r}")
        if not ids or isinstance(ids, str):
            raise ValueError(f"{control.id}: references[{framework!r}] must be a tuple of ids")
    for p in control.parameters:
        p.validate(control.id, p.default)  # a default outside its own range is a bug
    CONTROLS[control.id] = control
    return cls


def controls_for(framework_id: str) -> list[Control]:
    """The controls that cite a framework, in registry order (for /policy: frameworks, then
    controls)."""
    return [c for c in CONTROLS.values() if framework_id in c.references]


def in_scope(asset: AssetFacts) -> bool:
    """The assets any control looks at: live (not in the trash, not merged away) and not
    decommissioned. A decommissioned database is kept for the record; its posture is moot."""
    return (
        asset.deleted_at is None
        and asset.merged_into is None
        and asset.status is not AssetStatus.decommissioned
    )


def validate_parameters(values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Admin-entered values `{control id: {parameter: value}}` checked against the registry:
    unknown controls or parameters and out-of-range values raise ParameterError naming the field.
    Returns the values as stored (numbers as int)."""
    checked: dict[str, dict[str, Any]] = {}
    for control_id, given in values.items():
        control = CONTROLS.get(control_id)
        if control is None:
            raise ParameterError(control_id, f"There is no policy control {control_id!r}.")
        for name, value in given.items():
            try:
                parameter = control.parameter(name)
            except KeyError:
                field_name = f"{control_id}.{name}"
                raise ParameterError(
                    field_name, f"{field_name}: the control has no parameter {name!r}."
                ) from None
            checked.setdefault(control_id, {})[name] = parameter.validate(control_id, value)
    return checked


def merged_parameters(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Mapping[str, Any]]:
    """Every registered control's parameters: defaults, with valid overrides on top."""
    checked = validate_parameters(overrides or {})
    return {
        control_id: MappingProxyType({**control.defaults, **checked.get(control_id, {})})
        for control_id, control in CONTROLS.items()
    }


NO_NEIGHBOURS: tuple[Neighbour, ...] = ()


@dataclass(frozen=True)
class Context:
    """What a check may know besides the asset. Build it once per evaluation run with `build`;
    `neighbours` is the dependency graph of the assets being evaluated, given in bulk (asset id ->
    its relationships), or None when the graph was not loaded (graph controls then say unknown).
    """

    now: datetime
    parameters: Mapping[str, Mapping[str, Any]]
    stale_after_days: int = 30
    neighbours: Mapping[uuid.UUID, Sequence[Neighbour]] | None = None
    stale_cutoff: datetime = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stale_cutoff", self.now - timedelta(days=self.stale_after_days))

    @classmethod
    def build(
        cls,
        now: datetime,
        parameters: Mapping[str, Mapping[str, Any]] | None = None,
        stale_after_days: int = 30,
        neighbours: Mapping[uuid.UUID, Sequence[Neighbour]] | None = None,
    ) -> Context:
        """A context whose parameters are every control's defaults with `parameters` (validated)
        on top. `now` must be timezone-aware."""
        if now.tzinfo is None:
            raise ValueError("Context.now must be timezone-aware (UTC)")
        if isinstance(stale_after_days, bool) or not 1 <= int(stale_after_days) <= 3650:
            raise ParameterError(
                "stale_after_days",
                f"stale_after_days must be between 1 and 3650, not {stale_after_days}.",
            )
        return cls(now, merged_parameters(parameters), int(stale_after_days), neighbours)

    def params(self, control_id: str) -> Mapping[str, Any]:
        return self.parameters[control_id]

    def neighbours_of(self, asset_id: uuid.UUID) -> Sequence[Neighbour]:
        if self.neighbours is None:
            return NO_NEIGHBOURS
        return self.neighbours.get(asset_id, NO_NEIGHBOURS)


def evaluate(
    asset: AssetFacts,
    context: Context,
    controls: Mapping[str, Control] | None = None,
) -> dict[str, Result]:
    """Every registered control that applies to the asset, checked: {control id: Result}.
    Controls that do not apply are left out (the Policy tab lists them folded)."""
    registry = CONTROLS if controls is None else controls
    return {
        control_id: control.check(asset, context)
        for control_id, control in registry.items()
        if control.applies_to(asset)
    }


def not_applicable(asset: AssetFacts) -> list[str]:
    """The ids of registered controls that do not apply to the asset."""
    return [cid for cid, control in CONTROLS.items() if not control.applies_to(asset)]


# Shared wording -----------------------------------------------------------------------------

CRITICALITY_ORDER: tuple[Criticality, ...] = (
    Criticality.low,
    Criticality.medium,
    Criticality.high,
    Criticality.critical,
)


def plural(n: int | float, one: str, many: str | None = None) -> str:
    """`1 day`, `3 days`, `1.5 hours`."""
    word = one if n == 1 else (many or one + "s")
    shown = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{shown} {word}"
