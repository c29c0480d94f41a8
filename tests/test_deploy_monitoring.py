"""The Grafana dashboard and the Prometheus alerts name only metrics a running daemon exports, and cover them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml
from fake_bundle import make_fake_bundle
from live_daemon import free_port, live_daemon
from prometheus_client.parser import text_string_to_metric_families

from emoscribe.clients.subscriber import Subscriber
from emoscribe.messages import StreamEnded

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
GRAFANA = DEPLOY / "grafana" / "emoscribe.json"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA_VARIABLES = re.compile(r"\$__(rate_interval|interval|range)")
# Series Prometheus itself writes for every target: not the daemon's to export.
PROMETHEUS_OWN = {"up"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory) -> str:
    """``/metrics`` of a daemon that has heard speech (the demo, fast) and keeps running (an RTP port)."""
    folder = tmp_path_factory.mktemp("monitoring")
    bundle = make_fake_bundle(folder / "bundle", speaker=True)
    rtp = f"rtp://127.0.0.1:{free_port()}"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    subscriber = Subscriber(endpoint)
    with live_daemon(bundle, folder, "--demo", "--source", rtp, endpoint=endpoint) as daemon:
        ended, deadline = 0, time.monotonic() + 60
        while ended < 2 and time.monotonic() < deadline:
            message = subscriber.receive(200)
            ended += isinstance(message, StreamEnded)
        subscriber.close()
        assert ended == 2, f"the demo's two streams did not end within a minute: {daemon.log.read_text()}"
        with urllib.request.urlopen(daemon.metrics_url, timeout=5) as response:
            return response.read().decode()


def exported(text: str) -> tuple[set[str], set[str]]:
    """(series names a query may use, metric family names) of an exposition. A labelled metric with no child
    yet has no sample, so the names follow from each family's type, as Prometheus would store them."""
    names, families = set(), set()
    for family in text_string_to_metric_families(text):
        if not family.name.endswith("_created"):  # creation times, which the text format exposes as gauges
            families.add(family.name)
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names, families


def selectors(expression: str) -> set[str]:
    """Every metric name a PromQL expression selects, from its syntax tree."""
    found: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(GRAFANA_VARIABLES.sub("5m", expression)), visit)
    return found


def grafana() -> dict:
    return json.loads(GRAFANA.read_text())


def grafana_panels() -> list[dict]:
    panels = []
    for panel in grafana()["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return panels


def grafana_expressions() -> list[str]:
    return [target["expr"] for panel in grafana_panels() for target in panel.get("targets", [])]


def grafana_variable_metrics() -> set[str]:
    """Metric names in the template variables' ``label_values(metric, label)`` queries."""
    found = set()
    for variable in grafana()["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        found.update(re.findall(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,", text))
    return found


def alert_rules() -> list[dict]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_selector_extraction_sees_through_functions_and_operators() -> None:
    expression = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{x=~"$instance"}[$__rate_interval])))'
        " > 0.1 unless on (job) b_total offset 5m"
    )
    assert selectors(expression) == {"a_bucket", "b_total"}


def test_every_metric_the_grafana_dashboard_names_is_exported(exposition: str) -> None:
    names, _ = exported(exposition)
    expressions = grafana_expressions()
    assert len(expressions) >= 15
    used = set().union(*(selectors(e) for e in expressions)) | grafana_variable_metrics()
    assert used - PROMETHEUS_OWN <= names, f"not exported: {sorted(used - PROMETHEUS_OWN - names)}"


def test_every_metric_the_alert_rules_name_is_exported(exposition: str) -> None:
    names, _ = exported(exposition)
    used = set().union(*(selectors(rule["expr"]) for rule in alert_rules()))
    assert used - PROMETHEUS_OWN <= names, f"not exported: {sorted(used - PROMETHEUS_OWN - names)}"


def test_the_grafana_dashboard_shows_every_metric_family_the_daemon_exports(exposition: str) -> None:
    _, families = exported(exposition)
    used = set().union(*(selectors(e) for e in grafana_expressions()))
    shown = {family for family in families if any(name.startswith(family) for name in used)}
    assert families - shown == set(), f"exported but on no panel: {sorted(families - shown)}"


def test_grafana_dashboard_is_importable() -> None:
    """The fields Grafana's import needs, unique panel ids, panels inside the 24-column grid, every query on the
    datasource variable (so the import asks which Prometheus to use)."""
    document = grafana()
    assert document["uid"] and document["title"] and isinstance(document["schemaVersion"], int)
    names = [variable["name"] for variable in document["templating"]["list"]]
    assert names[0] == "datasource" and document["templating"]["list"][0]["query"] == "prometheus"
    panels = grafana_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {
        "EmoscribeTargetDown",
        "EmoscribeNoHeartbeat",
        "EmoscribeLatencyOverBudget",
        "EmoscribeDropsRising",
    } <= set(names)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        selectors(rule["expr"])  # parses


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; .ci/run installs it)"
)


@needs_promtool
def test_promtool_accepts_the_rules_and_the_example_config() -> None:
    for arguments in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run([PROMTOOL, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alerts_fire_when_and_only_when_they_should() -> None:
    """alerts_test.yml: a dead target, a stuck and a silent heartbeat, slow and fast latency, drops, errors,
    backlog and rejections, each beside a healthy series that must not alert."""
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
