"""Just enough PromQL lexing to list the metric names an expression reads."""

from __future__ import annotations

import re

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.$])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """Metric names in `expr` (functions, keywords, labels and durations left out)."""
    s = _STRINGS.sub('""', expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)  # ranges and subqueries
    s = _GROUPING.sub(" ", s)
    names = set()
    for m in _IDENT.finditer(s):
        word = m.group(0)
        if word.lower() in _KEYWORDS:
            continue
        if re.match(r"\s*\(", s[m.end():]):  # a function or an aggregation
            continue
        names.add(word)
    # A selector by name only: {__name__="x"}.
    names |= set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    return names


# What the dashboards' Grafana variables stand for when a test runs their queries.
GRAFANA_MACROS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
}


def expand(expr: str, variables: dict[str, str] | None = None) -> str:
    for k, v in GRAFANA_MACROS.items():
        expr = expr.replace(k, v)
    for k, v in (variables or {}).items():
        expr = expr.replace("${" + k + "}", v).replace("$" + k, v)
    return expr
