"""`python3 .ci/check_chart.py` renders charts/tooken with several value sets, lints it strictly, validates every rendered
manifest against a current Kubernetes schema, checks that bad values are refused, that no
secret is ever rendered, and that the CRD copies are identical. Exits non-zero on any failure.
`python3 .ci/check_chart.py --render NAMESPACE` prints the default render instead."""

import filecmp
import sys
import urllib.parse

import yaml
import kubernetes_validate
from helm_python.chart import Chart, lint

CHART = "charts/tooken"
KUBERNETES = "1.33.0"
VALUE_SETS = {
    "defaults": {},
    "postgres with 3 replicas": {
        "apiServer": {"replicas": 3, "database": {"type": "postgres", "postgres": {"existingSecret": "tooken-db"}}},
        "operator": {"replicas": 2},
        "podDisruptionBudget": {"enabled": True},
    },
    "namespace-scoped, with monitoring": {
        "operator": {"watchNamespace": "apps"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "sidecar": {"replicas": 2},
    },
    "dashboard behind an HTTPS ingress": {
        "apiServer": {
            "ownerEmail": "ops@example.com",
            "ingress": {"enabled": True, "className": "nginx", "host": "tooken.example.com",
                        "tlsSecretName": "tooken-tls", "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}},
        },
    },
}
REFUSED = {
    "several replicas on SQLite": ({"apiServer": {"replicas": 2}}, "requires apiServer.database.type=postgres"),
    "postgres without a Secret": ({"apiServer": {"database": {"type": "postgres"}}}, "existingSecret"),
    "an unknown sign-up policy": ({"apiServer": {"signup": "maybe"}}, "signup"),
    "a misspelt value": ({"operator": {"replicaz": 2}}, "replicaz"),
    "an ingress without a host": ({"apiServer": {"ingress": {"enabled": True}}}, "host"),
    "an owner email without @": ({"apiServer": {"ownerEmail": "ops"}}, "ownerEmail"),
}
# Kinds from CRDs the Kubernetes schemas do not know; checked for shape instead.
EXTERNAL_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def documents(manifests):
    for path, text in manifests.items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                yield path, doc


def check_lint(name, values):
    report = lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
    for problem in problems:
        fail(f"lint ({name}): {problem}")


def check_render(name, values):
    with Chart.load(CHART) as chart:
        manifests = chart.render(values=values, name="tooken", namespace="tooken", is_install=True)
        crds = chart.crds
    count = 0
    for path, doc in documents(manifests):
        kind = (doc.get("apiVersion"), doc.get("kind"))
        text = yaml.safe_dump(doc)
        if "tok_live_" in text or "whsec_" in text:
            fail(f"{name}: {path} renders a secret")
        if kind in EXTERNAL_KINDS:
            if not doc.get("spec", {}).get("endpoints"):
                fail(f"{name}: {path} {kind} has no endpoints")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
            count += 1
        except Exception as error:  # noqa: BLE001 - report every kind of validation failure
            fail(f"{name}: {path} {kind[1]}/{doc.get('metadata', {}).get('name')}: {error}")
    for crd in crds:
        for doc in yaml.safe_load_all(crd.get("data", "")):
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
            count += 1
    print(f"ok   {name}: {count} manifests valid against Kubernetes {KUBERNETES}")


def check_refused(name, values, needle):
    try:
        with Chart.load(CHART) as chart:
            chart.validate_schema(values)
            chart.render(values=values, name="tooken", namespace="tooken", is_install=True)
    except Exception as error:  # noqa: BLE001 - any refusal counts, if it says why
        if needle not in str(error):
            fail(f"{name}: refused, but the message does not mention {needle!r}: {error}")
        else:
            print(f"ok   refused {name}")
        return
    fail(f"{name}: accepted, but it must be refused")


if len(sys.argv) == 3 and sys.argv[1] == "--render":
    # For the cluster test: the default render (hooks included) as YAML, for one namespace.
    with Chart.load(CHART) as chart:
        rendered = chart.render(values={}, name="tooken", namespace=sys.argv[2], is_install=True)
    print(yaml.safe_dump_all([doc for _, doc in documents(rendered)]))
    sys.exit(0)

def check_dashboard_ingress():
    """The HTTPS ingress set: an Ingress for the host, a Secure session cookie, the first Owner."""
    with Chart.load(CHART) as chart:
        manifests = chart.render(values=VALUE_SETS["dashboard behind an HTTPS ingress"], name="tooken",
                                 namespace="tooken", is_install=True)
    docs = [doc for _, doc in documents(manifests)]
    ingress = [doc for doc in docs if doc["kind"] == "Ingress"]
    if len(ingress) != 1 or ingress[0]["spec"]["tls"][0]["hosts"] != ["tooken.example.com"]:
        fail(f"dashboard ingress: expected one TLS Ingress for tooken.example.com, got {ingress}")
    api = next(doc for doc in docs if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "tooken-api")
    env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    if env.get("TOOKEN_SECURE_COOKIES") != "true" or env.get("TOOKEN_BOOTSTRAP_OWNER_EMAIL") != "ops@example.com":
        fail(f"dashboard ingress: tooken-server env lacks the Secure cookie or the Owner: {env}")


def api_env(values):
    with Chart.load(CHART) as chart:
        manifests = chart.render(values=values, name="tooken", namespace="tooken", is_install=True)
    api = next(doc for _, doc in documents(manifests)
               if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "tooken-api")
    return {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}


def check_webhook_targets():
    """tooken-server may deliver to the sidecar's Service (by the host its webhook URL names),
    and to the in-cluster targets the values add; nothing else is opened."""
    env = api_env({})
    sidecar_host = urllib.parse.urlsplit(env["TOOKEN_BOOTSTRAP_WEBHOOK_URL"]).hostname
    if env.get("TOOKEN_WEBHOOK_ALLOWED_TARGETS") != sidecar_host:
        fail(f"webhook targets: the sidecar {sidecar_host} is not the one allowed target: {env}")
    env = api_env({"apiServer": {"webhookAllowedTargets": ["10.20.0.0/16"]}})
    if env.get("TOOKEN_WEBHOOK_ALLOWED_TARGETS") != f"10.20.0.0/16,{sidecar_host}":
        fail(f"webhook targets: the values' targets are missing: {env}")
    env = api_env({"sidecar": {"enabled": False}})
    if "TOOKEN_WEBHOOK_ALLOWED_TARGETS" in env:
        fail(f"webhook targets: allowed without a sidecar or values: {env}")
    print("ok   webhook targets: the sidecar's Service and the values' targets")


check_dashboard_ingress()
check_webhook_targets()
for name, values in VALUE_SETS.items():
    check_lint(name, values)
    check_render(name, values)
for name, (values, needle) in REFUSED.items():
    check_refused(name, values, needle)
comparison = filecmp.dircmp("crds", f"{CHART}/crds")
if comparison.left_only or comparison.right_only or comparison.diff_files:
    fail("crds/ and charts/tooken/crds/ differ: copy crds/* into the chart")
else:
    print("ok   crds/ and charts/tooken/crds/ are identical")

print(f"{len(failures)} failed" if failures else "chart checks passed")
sys.exit(1 if failures else 0)
