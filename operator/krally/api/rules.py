"""Cross-field rules of the BenchmarkTask spec, declared once for the API server and the engine.

What a plain schema keyword cannot say (a bound that depends on the plugin named next to it, a
field required by one runner type, map keys with a syntax) is a :class:`Rule`: a CEL expression
the CRD generator puts into ``x-kubernetes-validations`` at the rule's schema location, and the
same predicate in Python that :func:`krally.task.schema.schema_errors` applies, so
``kubectl apply`` and ``krally validate`` give the same verdict with the same field and message.

CEL can only read fields the schema declares (not the unknown fields of an
``x-kubernetes-preserve-unknown-fields`` object), which is why the spec schema declares the
runner and trigger fields these rules read. Arrays and maps the rules iterate carry
``maxItems``/``maxProperties`` and strings ``maxLength``, keeping the API server's cost estimate
within its budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# -- syntaxes (RE2 and Python `re` read them alike: no lookarounds, no backreferences) --------

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# A ServiceAccount, Secret or ConfigMap name.
DNS1123_SUBDOMAIN = rf"^{DNS1123_LABEL}(\.{DNS1123_LABEL})*$"
# Kubernetes' classic rule for environment variable names (portable to every version).
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters.
_LABEL_KEY = (
    rf"({DNS1123_LABEL}(\.{DNS1123_LABEL})*/)?"
    r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
)
LABEL_KEY = f"^{_LABEL_KEY}$"
# A toleration's key: a label key or empty (every key).
OPTIONAL_LABEL_KEY = f"^({_LABEL_KEY})?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A resource quantity, as Kubernetes parses it (e.g. 100m, 1.5, 2Gi, 1e3).
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# An image reference: [host[:port]/]path[:tag][@digest], path components lower case.
_COMPONENT = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
IMAGE = (
    r"^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*"
    r"(:[0-9]+)?/)?"
    rf"{_COMPONENT}(/{_COMPONENT})*"
    r"(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"
    r"(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


# Set by the operator in runner and hook containers: a task may not override them.
RESERVED_ENV = (
    "KRALLY_SPEC",
    "KRALLY_HOOK",
    "KRALLY_TASK_NAME",
    "KRALLY_TASK_NAMESPACE",
    "KRALLY_TASK_UID",
)


def matches(pattern: str, value: Any) -> bool:
    return isinstance(value, str) and re.search(pattern, value) is not None


@dataclass(frozen=True)
class Rule:
    """One rule: ``cel`` is evaluated by the API server with ``self`` = the value at ``where``;
    ``check`` is the same predicate in Python (True = valid), given that value (a dict)."""

    # Schema location: property names, "[]" for the items of an array.
    where: tuple[str, ...]
    cel: str
    check: Callable[[dict[str, Any]], bool]
    message: str
    # The field the error names, relative to ``where`` (CEL's fieldPath), "" = ``where`` itself.
    field: str = ""

    def validation(self) -> dict[str, Any]:
        """The ``x-kubernetes-validations`` entry."""
        entry: dict[str, Any] = {"rule": self.cel, "message": self.message}
        if self.field:
            entry["fieldPath"] = self.field
        return entry


def _has(obj: dict[str, Any], key: str) -> bool:
    # CEL treats null-valued fields as absent.
    return obj.get(key) is not None


def _runner(kinds: tuple[str, ...], cel: str, check: Callable[[dict[str, Any]], bool]) -> Any:
    """A rule that only applies to runners of the given types (the bound is theirs)."""
    names = ", ".join(f"'{k}'" for k in kinds)
    return f"!(self.type in [{names}]) || ({cel})", (
        lambda r: r.get("type") not in kinds or check(r)
    )


def _trigger(name: str, cel: str, check: Callable[[dict[str, Any]], bool]) -> Any:
    """A rule on the args of trigger plugin ``name``: ``cel`` is written with ``self`` = the
    args; the rule sits on the trigger (it reads the plugin name)."""
    cel = cel.replace("self.", "self.args.")
    return f"self.name != '{name}' || !has(self.args) || ({cel})", (
        lambda t: t.get("name") != name or not _has(t, "args") or check(t["args"])
    )


def _rules() -> list[Rule]:
    rules: list[Rule] = []

    def add(where: tuple[str, ...], pair: Any, message: str, field: str = "") -> None:
        cel, check = pair
        rules.append(Rule(where, cel, check, message, field))

    runner = ("runner",)
    add(
        runner,
        _runner(("constant_for_duration",), "has(self.duration)", lambda r: _has(r, "duration")),
        "runner constant_for_duration requires duration (seconds)",
        ".duration",
    )
    add(
        runner,
        _runner(
            ("constant_for_duration",),
            "!has(self.timeout) || self.timeout >= 1.0",
            lambda r: not _has(r, "timeout") or r["timeout"] >= 1,
        ),
        "runner constant_for_duration: timeout must be >= 1 second",
        ".timeout",
    )
    add(
        runner,
        _runner(
            ("constant", "rps"),
            "!has(self.timeout) || self.timeout >= 0.0",
            lambda r: not _has(r, "timeout") or r["timeout"] >= 0,
        ),
        "runner timeout must be >= 0 seconds (0: never)",
        ".timeout",
    )
    add(
        runner,
        _runner(("rps",), "has(self.times)", lambda r: _has(r, "times")),
        "runner rps requires times",
        ".times",
    )
    add(
        runner,
        _runner(
            ("constant",),
            "!has(self.concurrency) || self.concurrency <= (has(self.times) ? self.times : 1)",
            lambda r: not _has(r, "concurrency") or r["concurrency"] <= r.get("times", 1),
        ),
        "runner constant: concurrency must be less than or equal to times (default 1)",
        ".concurrency",
    )

    trigger = ("hooks", "[]", "trigger")
    for name in ("event", "periodic"):
        add(
            trigger,
            _trigger(
                name,
                "has(self.unit) && self.unit in ['iteration', 'time']",
                lambda a: a.get("unit") in ("iteration", "time"),
            ),
            f"trigger {name}: unit must be iteration or time",
            ".args.unit",
        )
    add(
        trigger,
        _trigger("event", "has(self.at) && size(self.at) > 0", lambda a: bool(a.get("at"))),
        "trigger event: at must list at least one value",
        ".args.at",
    )
    add(
        trigger,
        _trigger(
            "event",
            "!has(self.at) || !has(self.unit) || self.unit != 'iteration' "
            "|| self.at.all(v, v >= 1)",
            lambda a: a.get("unit") != "iteration" or all(v >= 1 for v in a.get("at") or []),
        ),
        "trigger event: iterations in at are numbered from 1",
        ".args.at",
    )
    add(
        trigger,
        _trigger(
            "event",
            "!has(self.at) || self.at.all(v, v >= 0)",
            lambda a: all(v >= 0 for v in a.get("at") or []),
        ),
        "trigger event: seconds in at must be >= 0",
        ".args.at",
    )
    add(
        trigger,
        _trigger("periodic", "has(self.step)", lambda a: _has(a, "step")),
        "trigger periodic requires step (>= 1)",
        ".args.step",
    )
    add(
        trigger,
        _trigger(
            "periodic",
            "!has(self.start) || !has(self.unit) || self.unit != 'iteration' || self.start >= 1",
            lambda a: a.get("unit") != "iteration" or not _has(a, "start") or a["start"] >= 1,
        ),
        "trigger periodic: start is an iteration, numbered from 1",
        ".args.start",
    )
    add(
        trigger,
        _trigger(
            "periodic",
            "!has(self.end) || self.end >= (has(self.start) ? self.start : "
            "(has(self.unit) && self.unit == 'time' ? 0 : 1))",
            lambda a: (
                not _has(a, "end")
                or a["end"] >= a.get("start", 0 if a.get("unit") == "time" else 1)
            ),
        ),
        "trigger periodic: end must be >= start",
        ".args.end",
    )

    for pod in (("hooks", "[]", "job"), ("runnerPod",)):
        add(
            (*pod, "nodeSelector"),
            (
                "self.all(k, k.matches(r'" + LABEL_KEY + "'))",
                lambda m: all(matches(LABEL_KEY, k) for k in m),
            ),
            "nodeSelector keys must be label keys ([prefix/]name, name at most 63 characters "
            "of [A-Za-z0-9-_.])",
        )
        add(
            (*pod, "tolerations", "[]"),
            (
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
                "|| self.value == ''",
                lambda t: t.get("operator") != "Exists" or not t.get("value"),
            ),
            "a toleration with operator Exists has no value",
            ".value",
        )
        add(
            (*pod, "tolerations", "[]"),
            (
                "(has(self.key) && self.key != '') || (has(self.operator) && "
                "self.operator == 'Exists')",
                lambda t: bool(t.get("key")) or t.get("operator") == "Exists",
            ),
            "a toleration without key needs operator Exists",
            ".operator",
        )
        add(
            (*pod, "tolerations", "[]"),
            (
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                lambda t: not _has(t, "tolerationSeconds") or t.get("effect") == "NoExecute",
            ),
            "tolerationSeconds needs effect NoExecute",
            ".tolerationSeconds",
        )
        add(
            (*pod, "env", "[]"),
            (
                "!(has(self.value) && has(self.valueFrom))",
                lambda e: not (_has(e, "value") and _has(e, "valueFrom")),
            ),
            "an env variable has value or valueFrom, not both",
            ".valueFrom",
        )
        add(
            (*pod, "env", "[]"),
            (
                f"!(self.name in [{', '.join(repr(n) for n in RESERVED_ENV)}])",
                lambda e: e.get("name") not in RESERVED_ENV,
            ),
            "this variable is set by the operator (" + ", ".join(RESERVED_ENV) + ")",
            ".name",
        )
        add(
            (*pod, "env", "[]", "valueFrom"),
            (
                "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                lambda v: _has(v, "secretKeyRef") != _has(v, "configMapKeyRef"),
            ),
            "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
        )
    return rules


RULES: tuple[Rule, ...] = tuple(_rules())


def locate(value: Any, where: tuple[str, ...], path: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every place of ``value`` matching the schema location."""
    if not where:
        yield path, value
        return
    head, rest = where[0], where[1:]
    if head == "[]":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from locate(item, rest, f"{path}[{index}]")
    elif isinstance(value, dict) and value.get(head) is not None:
        yield from locate(value[head], rest, f"{path}.{head}" if path else head)


def rule_problems(spec: Any, path: str = "spec") -> list[tuple[str, str]]:
    """(field path, message) of every rule ``spec`` breaks. Run after the schema check: a value
    of the wrong type is the schema's error, not a rule's."""
    problems = []
    for rule in RULES:
        for where, value in locate(spec, rule.where, path):
            if not isinstance(value, dict):
                continue
            try:
                ok = rule.check(value)
            except TypeError:  # a wrongly typed field: the schema reports it
                continue
            if not ok:
                problems.append((where + rule.field, rule.message))
    return problems
