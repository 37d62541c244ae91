"""Policy and posture (SPEC §12): controls every database is checked against, as a registry.

    from webapp.policy import AssetFacts, Context, evaluate, CONTROLS, FRAMEWORKS
    facts = AssetFacts.from_asset(asset)              # or AssetFacts.from_row(core_row)
    context = Context.build(now=utcnow(), parameters={"backup.retention": {"min_days_high": 14}},
                            stale_after_days=30, neighbours=graph)
    results = evaluate(facts, context)                # {control id: Result(status, reason)}

The registry
------------
`CONTROLS` maps a control id (`<family>.<name>`, e.g. `backup.retention`) to one instance of its
class, in the order the family modules are imported below; `FRAMEWORKS` maps a framework id
(`soc2`, `gdpr`, `cis_controls`, `cis_aws`, `aws_fsbp`) to its title and description. Each
control declares, as data beside its code: title, description, severity (low medium high
critical), its `parameters` (name, type, default, allowed range, one line of help) and its
`references` ({framework id: (ids…)}: SOC 2 criteria, GDPR Art. 32 paragraphs, CIS safeguards or
benchmark items, AWS FSBP RDS ids).

A check reads an `AssetFacts` (a read-only row of the columns in `facts.COLUMNS`, never an ORM
object) and a `Context` (now, every control's parameter values merged over the defaults,
stale_after_days, and the dependency-graph neighbours given in bulk). It returns
`Result(status, reason)`: `pass`, `fail`, or `unknown` when posture data is missing ("backup
retention not known"), never `pass` for what is not known. Reasons state the numbers ("backup
retention is 3 days; at least 7 are required for a high-criticality production database").
No check queries the database or reads the clock; the package imports no Flask and no session.

Adding a control
----------------
1. In the family's module (or a new one, imported below), subclass `Control`, set `id`,
   `family`, `title`, `description`, `severity`, `references` (framework ids must be registered
   in `frameworks.py`) and, if it has any, `parameters`.
2. Override `applies_to(facts)` when it is narrower than `base.in_scope` (live and not
   decommissioned), and write `check(facts, context)`; read parameters from
   `context.parameters[self.id]` and neighbours from `context.neighbours_of(facts.id)`. If it
   needs a column `AssetFacts` lacks, add it to `facts.COLUMNS` and the dataclass.
3. Decorate the class with `@register`: it checks the declaration (severity, known frameworks,
   defaults inside their own ranges) and adds the control to `CONTROLS`.
4. Add pass, fail and unknown cases and the mapping to tests/unit/test_policy_controls.py.
"""

from webapp.policy.base import (
    CONTROLS,
    FRAMEWORKS,
    Context,
    Control,
    Framework,
    Parameter,
    ParameterError,
    Result,
    Severity,
    Status,
    controls_for,
    evaluate,
    in_scope,
    merged_parameters,
    not_applicable,
    register,
    validate_parameters,
)
from webapp.policy.facts import COLUMNS, AssetFacts, Neighbour

# The registry: frameworks first (controls refer to them), then one module per control family,
# each registering its controls when imported. This order is the order of CONTROLS.
# isort: off
from webapp.policy import frameworks  # soc2 gdpr cis_controls cis_aws aws_fsbp
from webapp.policy import encryption  # encryption.at_rest, encryption.tls_required
from webapp.policy import network  # network.not_public
from webapp.policy import backup  # backup.retention, backup.recent, backup.deletion_protection
from webapp.policy import ownership  # ownership.owner_set, ownership.classified
from webapp.policy import lifecycle  # lifecycle.not_stale, .not_unverified, .engine_supported
from webapp.policy import graph  # graph.prod_depends_on_prod, graph.critical_has_copy

# isort: on

MODULES = (frameworks, encryption, network, backup, ownership, lifecycle, graph)

__all__ = [
    "COLUMNS",
    "CONTROLS",
    "FRAMEWORKS",
    "AssetFacts",
    "Context",
    "Control",
    "Framework",
    "Neighbour",
    "Parameter",
    "ParameterError",
    "Result",
    "Severity",
    "Status",
    "controls_for",
    "evaluate",
    "in_scope",
    "merged_parameters",
    "not_applicable",
    "register",
    "validate_parameters",
]
