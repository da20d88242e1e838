"""The monitoring kit of docs/ops: the Grafana dashboard and the Prometheus alert rules query metrics a worker
exports (orderbank.engine.stream.metrics), every query parses as PromQL, and the rule file has the structure
Prometheus loads. PromQL is parsed by promql-parser (the Rust parser of GreptimeDB), so no promtool is needed."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml

from orderbank.engine.stream.metrics import Metrics
from tests import REPO_ROOT

OPS = REPO_ROOT / "docs" / "ops"
DASHBOARD = OPS / "grafana" / "orderbank.json"
ALERTS = OPS / "prometheus" / "alerts.yml"
SCRAPED = {"up"}
"""Series Prometheus writes itself for each scrape target."""
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",)}
GRAFANA = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
"""Grafana's built-in variables, as Prometheus would get them."""
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def exported() -> set[str]:
    """Every series name a worker's /metrics can carry (prometheus_client adds the suffixes)."""
    return {family.name + suffix for family in Metrics().registry.collect() for suffix in SUFFIXES[family.type]}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; a ValueError if it is not PromQL."""
    for variable, value in GRAFANA.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_problems(rules: dict[str, Any], known: set[str]) -> list[str]:
    """What Prometheus would refuse in a rule file, or what would never fire: unknown keys, a missing or
    unparsable expression, a bad duration, a metric no worker exports, an alert without a summary."""
    problems = []
    groups = rules.get("groups")
    if not isinstance(groups, list) or not groups:
        return ["no groups"]
    names = [group.get("name") for group in groups]
    if len(set(names)) != len(names) or not all(names):
        problems.append(f"group names must be unique and set: {names}")
    for group in groups:
        if set(group) - {"name", "interval", "rules", "limit", "labels"} or not group.get("rules"):
            problems.append(f"group {group.get('name')}: keys {sorted(group)}")
        for rule in group.get("rules") or []:
            name = rule.get("alert", "?")
            if set(rule) - RULE_KEYS or "alert" not in rule or "expr" not in rule:
                problems.append(f"{name}: keys {sorted(rule)}")
            for key in ("for", "keep_firing_for"):
                if key in rule and not DURATION.match(str(rule[key])):
                    problems.append(f"{name}: {key} {rule[key]!r} is not a duration")
            try:
                unknown = metric_names(str(rule.get("expr", ""))) - known
            except ValueError as exc:
                problems.append(f"{name}: expr does not parse: {exc}")
            else:
                problems.extend(f"{name}: no metric {metric}" for metric in sorted(unknown))
            labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
            if labels.get("severity") not in ("warning", "critical"):
                problems.append(f"{name}: severity {labels.get('severity')!r}")
            if not {"summary", "description"} <= set(annotations):
                problems.append(f"{name}: annotations {sorted(annotations)}")
            if not all(isinstance(v, str) for v in (*labels.values(), *annotations.values())):
                problems.append(f"{name}: a label or annotation that is not text")
    return problems


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return loaded


def test_the_dashboard_queries_metrics_a_worker_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs(dashboard)
    used = set().union(*map(metric_names, exprs))
    assert used - SCRAPED <= exported(), sorted(used - SCRAPED - exported())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids) and dashboard["uid"] == "orderbank"
    sources = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    datasources = yaml.safe_load((OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert sources == {source["uid"] for source in datasources["datasources"]}


def test_the_alert_rules_load_and_cover_the_failures_that_matter(rules: dict[str, Any]) -> None:
    assert rule_problems(rules, exported() | SCRAPED) == []
    alerts = {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    watched = {name: metric_names(expr) for name, expr in alerts.items()}
    assert watched["OrderbankLagGrowing"] == {"orderbank_consumer_lag"}
    assert watched["OrderbankDeadLetters"] == {"orderbank_rejections_total"}
    assert watched["OrderbankRecoveryRereads"] == {"orderbank_recovery_rereads_total"}
    assert watched["OrderbankWorkerDown"] == watched["OrderbankNoWorkerUp"] == {"up"}
    job = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())["scrape_configs"][0]["job_name"]
    assert all(f'job="{job}"' in alerts[name] for name in ("OrderbankWorkerDown", "OrderbankNoWorkerUp"))


@pytest.mark.parametrize(("change", "problem"), [
    (lambda rule: rule.update(expr="rate(orderbank_rejections_total[5m]"), "does not parse"),
    (lambda rule: rule.update(expr="increase(orderbank_rejected_total[5m]) > 0"), "no metric orderbank_rejected"),
    (lambda rule: rule.update({"for": "5 minutes"}), "is not a duration"),
    (lambda rule: rule.update(annotation={"summary": "x"}), "keys"),
    (lambda rule: rule["labels"].update(severity="page"), "severity"),
])
def test_the_rule_check_refuses_a_broken_rule(rules: dict[str, Any], change: Any, problem: str) -> None:
    broken = json.loads(json.dumps(rules))
    change(broken["groups"][0]["rules"][0])
    problems = rule_problems(broken, exported() | SCRAPED)
    assert len(problems) == 1 and problem in problems[0], problems
