"""The Helm chart, rendered by Helm's own engine (helm-python-sdk) for several value
sets, linted strictly, every manifest validated against Kubernetes 1.29 and 1.33,
and what matters asserted. No cluster is needed."""

import copy
import json
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "vizsearch"
KUBE_VERSIONS = ("1.29.0", "1.33.0")
SECRET_VALUES = {"storage-secret-value", "webhook-token-value", "milvus-token-value"}
REQUIRED = {"secrets": {"storage": {"secretKey": "storage-secret-value"}, "webhook": {"token": "webhook-token-value"},
                        "milvus": {"token": "milvus-token-value"}}}
VALUE_SETS = {
    "defaults": {},
    "gpu-scaling-keda": {"keda": {"enabled": True}, "triton": {"gpu": {"count": 2}, "autoscaling": {
        "enabled": True, "prometheusAdapter": True}}},
    "all-external": {
        "milvus": {"enabled": False, "external": {"uri": "http://milvus.db:19530"}},
        "minio": {"enabled": False, "external": {"endpoint": "s3.example.com:443", "secure": True}},
        "redis": {"enabled": False, "external": {"url": "redis://redis.cache:6379/2"}},
        "secrets": {"storage": {"existingSecret": "my-storage"}, "webhook": {"existingSecret": "my-webhook"},
                    "apiKeys": {"existingSecret": "my-keys"}, "milvus": {"existingSecret": "my-milvus"},
                    "internal": {"existingSecret": "my-internal"}},
    },
    "cluster-milvus-ingress": {"milvus": {"cluster": {"enabled": True}}, "gateway": {"ingress": {
        "enabled": True, "tls": [{"secretName": "vizsearch-tls", "hosts": ["vizsearch.example.com"]}]}}},
    "observability": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                                  "prometheusRule": {"enabled": True}, "dashboard": {"enabled": True},
                                  "prometheusAdapterRules": {"enabled": True}},
                      "tracing": {"otlpEndpoint": "http://otel-collector.obs:4318/", "sampleRatio": 0.25}},
}
# KEDA's and the Prometheus Operator's: not in Kubernetes' own schemas, checked by hand below.
CRDS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}


def merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def render(values: dict) -> tuple[list[dict], str]:
    rendered = helm_python.Chart.load(CHART).render(merge(REQUIRED, values), name="vs", namespace="search")
    docs = [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]
    return docs, next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def case(request):
    docs, notes = render(VALUE_SETS[request.param])
    return request.param, docs, notes


def kinds(docs, kind) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs):
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def test_lint_is_clean(case):
    name, _, _ = case
    report = helm_python.lint(str(CHART), merge(REQUIRED, VALUE_SETS[name]), strict=True, kube_version="1.33.0")
    # The dependency charts are fetched by `helm dependency build` where their repositories are reachable.
    errors = [e for e in report["errors"] if "missing these dependencies" not in e]
    assert errors == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_is_valid_kubernetes(case, kube_version):
    _, docs, _ = case
    for doc in docs:
        if doc["kind"] not in CRDS:
            kubernetes_validate.validate(doc, kube_version, strict=True)


def test_every_container_is_non_root_read_only_limited_and_probed(case):
    _, docs, _ = case
    for name, spec in pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["limits"]["memory"] and container["resources"]["limits"]["cpu"]
    for name, deployment in kinds(docs, "Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, name
    for name, deployment in kinds(docs, "Deployment").items():
        assert name in kinds(docs, "PodDisruptionBudget"), f"{name} has no PodDisruptionBudget"
        assert name in kinds(docs, "Service"), f"{name} has no Service"


def test_grpc_services_use_grpc_health_and_headless_services(case):
    _, docs, _ = case
    for component in ("query", "indexer", "embedder"):
        container = kinds(docs, "Deployment")[f"vs-vizsearch-{component}"]["spec"]["template"]["spec"]["containers"][0]
        assert "grpc" in container["readinessProbe"], component
        assert kinds(docs, "Service")[f"vs-vizsearch-{component}"]["spec"]["clusterIP"] == "None"


def test_triton_gets_its_gpus_model_and_shared_memory(case):
    name, docs, _ = case
    spec = kinds(docs, "Deployment")["vs-vizsearch-triton"]["spec"]["template"]["spec"]
    gpus = 2 if name == "gpu-scaling-keda" else 1
    triton = spec["containers"][0]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in triton["volumeMounts"]
    assert {"name": "VIZSEARCH_MODEL_DIR", "value": "/models/clip"} in triton["env"]
    assert {"name": "VIZSEARCH_JPEG_DECODE", "value": "auto"} in triton["env"]  # clip_jpeg decodes where a GPU is
    assert {"name": "VIZSEARCH_TORCH_COMPILE", "value": "false"} in triton["env"]
    fetch = spec["initContainers"][0]
    assert fetch["command"][:3] == ["python", "-m", "model.fetch"]
    assert "openai/clip-vit-base-patch32" in fetch["command"] and {"name": "models", "mountPath": "/models"} in \
        fetch["volumeMounts"]
    shm = next(v for v in spec["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"} and spec["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_autoscalers_target_their_deployments(case):
    name, docs, _ = case
    deployments = kinds(docs, "Deployment")
    hpas = kinds(docs, "HorizontalPodAutoscaler")
    expected = {"vs-vizsearch-gateway", "vs-vizsearch-query", "vs-vizsearch-embedder"}
    if name == "gpu-scaling-keda":
        expected.add("vs-vizsearch-triton")
        triton_metrics = hpas["vs-vizsearch-triton"]["spec"]["metrics"]
        assert triton_metrics[0]["pods"]["metric"]["name"] == "triton_queue_time_per_request_us"
        assert triton_metrics[1]["resource"]["name"] == "cpu", "CPU stays as the fallback"
        scaled = kinds(docs, "ScaledObject")["vs-vizsearch-worker"]
        assert scaled["spec"]["scaleTargetRef"]["name"] in deployments
        trigger = scaled["spec"]["triggers"][0]
        assert trigger["type"] == "metrics-api" and trigger["metadata"]["valueLocation"] == "pending_units"
        assert trigger["metadata"]["url"] == "http://vs-vizsearch-indexer:8082/v1/backlog"
    else:
        assert "ScaledObject" not in {d["kind"] for d in docs}
    assert set(hpas) == expected
    for hpa in hpas.values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments


def test_services_find_each_other_by_rendered_names_and_ports(case):
    name, docs, _ = case
    config = kinds(docs, "ConfigMap")["vs-vizsearch-config"]["data"]
    services = kinds(docs, "Service")
    for variable in ("VIZSEARCH_EMBEDDER_URL", "VIZSEARCH_QUERY_URL", "VIZSEARCH_INDEXER_URL", "VIZSEARCH_TRITON_URL"):
        host, port = config[variable].split(":")
        assert host in services, variable
        assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]], variable
    env = {e["name"]: e for e in
           kinds(docs, "Deployment")["vs-vizsearch-worker"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    if name == "all-external":
        assert config["VIZSEARCH_MILVUS_URI"] == "http://milvus.db:19530"
        assert config["VIZSEARCH_S3_ENDPOINT"] == "s3.example.com:443" and config["VIZSEARCH_S3_SECURE"] == "true"
        assert env["VIZSEARCH_REDIS_URL"]["value"] == "redis://redis.cache:6379/2"
        assert "VIZSEARCH_REDIS_PASSWORD" not in env and "StatefulSet" not in {d["kind"] for d in docs}
        assert "Job" not in {d["kind"] for d in docs} and "Secret" not in {d["kind"] for d in docs}
    else:
        assert config["VIZSEARCH_MILVUS_URI"] == "http://vs-milvus:19530"
        assert config["VIZSEARCH_S3_ENDPOINT"] == "vizsearch-minio:9000"
        # The chart's Redis, with the password from its Secret, set before the URL that uses it.
        names = list(env)
        assert names.index("VIZSEARCH_REDIS_PASSWORD") < names.index("VIZSEARCH_REDIS_URL")
        assert env["VIZSEARCH_REDIS_URL"]["value"] == "redis://:$(VIZSEARCH_REDIS_PASSWORD)@vs-vizsearch-redis:6379/0"
        assert env["VIZSEARCH_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "vs-vizsearch-redis", "key": "redis-password"}
        assert "vs-vizsearch-redis" in services and "vs-vizsearch-redis" in kinds(docs, "StatefulSet")
        job = kinds(docs, "Job")["vs-vizsearch-minio-notifications"]
        script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        assert "http://vs-vizsearch-indexer:8082/v1/minio/events" in script and "--event put,delete" in script


def test_no_secret_value_reaches_a_config_map_and_secrets_are_referenced(case):
    name, docs, _ = case
    for config_map in kinds(docs, "ConfigMap").values():
        text = yaml.safe_dump(config_map)
        assert not any(secret in text for secret in SECRET_VALUES)
    gateway = kinds(docs, "Deployment")["vs-vizsearch-gateway"]["spec"]["template"]["spec"]
    keys_volume = next(v for v in gateway["volumes"] if v["name"] == "api-keys")
    assert keys_volume["secret"]["secretName"] == ("my-keys" if name == "all-external" else "vs-vizsearch-api-keys")
    indexer = kinds(docs, "Deployment")["vs-vizsearch-indexer"]["spec"]["template"]["spec"]["containers"][0]
    token = next(e for e in indexer["env"] if e["name"] == "VIZSEARCH_WEBHOOK_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == ("my-webhook" if name == "all-external" else "vs-vizsearch-webhook")


def test_ingress_serves_http_and_grpc_when_on(case):
    name, docs, notes = case
    ingresses = kinds(docs, "Ingress")
    if name != "cluster-milvus-ingress":
        assert ingresses == {} and "port-forward svc/vs-vizsearch-gateway" in notes
        return
    grpc = ingresses["vs-vizsearch-gateway-grpc"]
    assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert grpc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"] == "grpc"
    assert ingresses["vs-vizsearch-gateway-http"]["spec"]["tls"][0]["secretName"] == "vizsearch-tls"
    assert "https://vizsearch.example.com" in notes


@pytest.mark.parametrize("values, words", [
    ({"gateway": {"replicas": -1}}, "/gateway/replicas': minimum: got -1"),
    ({"model": {"source": "ftp://models.example.com/clip"}}, "/model/source': 'ftp://models.example.com/clip' does not match"),
    ({"triton": {"gpu": {"count": -2}}}, "/triton/gpu/count"),
    ({"triton": {"jpegDecode": "nvjpeg"}}, "/triton/jpegDecode"),
    ({"triton": {"torchCompile": "yes"}}, "/triton/torchCompile"),
    ({"query": {"searchConsistency": "Sometimes"}}, "/query/searchConsistency"),
    ({"gateway": {"env": {"VIZSEARCH_X": "1"}}}, "/gateway/env"),
    ({"gateway": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}}, "/gateway/podDisruptionBudget"),
    ({"secrets": {"redis": {"existingSecret": "", "password": "p@ss/word"}}}, "/secrets/redis/password"),
])
def test_bad_values_are_refused_by_the_schema(values, words):
    with pytest.raises(helm_python.HelmValuesError) as error:
        render(values)
    assert words in str(error.value)


def test_missing_required_secrets_are_named():
    with pytest.raises(helm_python.HelmError, match="secrets.storage.secretKey"):
        helm_python.Chart.load(CHART).render({}, name="vs", namespace="search")


# -- Kubernetes conventions ------------------------------------------------------
def test_autoscaled_workloads_leave_their_replica_count_to_the_autoscaler(case):
    name, docs, _ = case
    workloads = kinds(docs, "Deployment")
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler").values()}
    scaled |= {s["spec"]["scaleTargetRef"]["name"] for s in kinds(docs, "ScaledObject").values()}
    assert scaled, name
    for workload_name, workload in workloads.items():
        assert ("replicas" in workload["spec"]) == (workload_name not in scaled), workload_name


def test_no_disruption_budget_blocks_a_node_drain(case):
    _, docs, _ = case
    workloads = kinds(docs, "Deployment")
    for name, budget in kinds(docs, "PodDisruptionBudget").items():
        spec = budget["spec"]
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] >= 1, name
        else:
            assert spec["minAvailable"] < workloads[name]["spec"].get("replicas", 2), name


def test_every_workload_has_its_own_service_account_without_a_token(case):
    _, docs, _ = case
    accounts = kinds(docs, "ServiceAccount")
    for name, spec in pod_specs(docs):
        assert spec["automountServiceAccountToken"] is False, name
        if name.startswith("vs-vizsearch-") and "minio-notifications" not in name and name != "vs-vizsearch-redis":
            assert spec["serviceAccountName"] == name and accounts[name]["automountServiceAccountToken"] is False


CONVENTIONS = {
    "fullnameOverride": "search",
    "global": {"imageRegistry": "mirror.local:5000"},
    "image": {"digest": "sha256:" + "a" * 64},
    "gateway": {"podAnnotations": {"team": "vision"},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                               "whenUnsatisfiable": "ScheduleAnyway"}],
                "probes": {"readiness": {"periodSeconds": 2}},
                "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/vs"}},
                "extraEnv": [{"name": "VIZSEARCH_LOG_LEVEL", "value": "DEBUG"},
                             {"name": "VIZSEARCH_RATE_LIMIT_PER_MINUTE",
                              "valueFrom": {"configMapKeyRef": {"name": "limits", "key": "rate"}}}],
                "ingress": {"enabled": True, "hosts": ["a.example.com", "b.example.com"], "grpcHosts": [],
                            "tls": [{"secretName": "tls", "hosts": ["a.example.com", "b.example.com"]}]}},
    "triton": {"extraArgs": ["--log-verbose=1"], "probes": {"startup": {"failureThreshold": 120}}},
    "config": {"vectorIndex": "IVF_SQ8", "ivfNlist": 4096},
    "query": {"searchNprobe": 64},
}


def test_names_images_placement_probes_and_environment_are_configurable():
    docs, notes = render(CONVENTIONS)
    deployments = kinds(docs, "Deployment")
    assert set(deployments) == {f"search-{c}" for c in ("gateway", "query", "indexer", "worker", "embedder", "triton")}
    config = kinds(docs, "ConfigMap")["search-config"]["data"]
    assert config["VIZSEARCH_QUERY_URL"] == "search-query:50053"
    assert (config["VIZSEARCH_VECTOR_INDEX"], config["VIZSEARCH_IVF_NLIST"]) == ("IVF_SQ8", "4096")
    query_env = {e["name"]: e.get("value") for e in
                 deployments["search-query"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (query_env["VIZSEARCH_SEARCH_NPROBE"], query_env["VIZSEARCH_SEARCH_EF"]) == ("64", "256")
    gateway = deployments["search-gateway"]["spec"]["template"]
    container = gateway["spec"]["containers"][0]
    assert container["image"] == f"mirror.local:5000/ghcr.io/vizsearch/vizsearch:0.1.0@sha256:{'a' * 64}"
    assert gateway["metadata"]["annotations"]["team"] == "vision"
    assert gateway["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert container["readinessProbe"] == {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2}
    assert kinds(docs, "ServiceAccount")["search-gateway"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/vs"}
    env = {e["name"]: e for e in container["env"]}
    assert env["VIZSEARCH_RATE_LIMIT_PER_MINUTE"]["valueFrom"]["configMapKeyRef"]["name"] == "limits"
    triton = deployments["search-triton"]["spec"]["template"]["spec"]["containers"][0]
    assert triton["command"][-1] == "--log-verbose=1" and triton["startupProbe"]["failureThreshold"] == 120
    assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    [ingress] = kinds(docs, "Ingress").values()
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["a.example.com", "b.example.com"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "30m"
    assert {r["http"]["paths"][0]["backend"]["service"]["port"]["name"] for r in ingress["spec"]["rules"]} == {"http"}
    assert "metrics" not in [p["name"] for p in kinds(docs, "Service")["search-gateway"]["spec"]["ports"]]
    assert "https://a.example.com" in notes


def test_redis_has_a_password_by_default(case):
    name, docs, _ = case
    if name == "all-external":
        return
    redis = kinds(docs, "StatefulSet")["vs-vizsearch-redis"]["spec"]["template"]["spec"]["containers"][0]
    assert '--requirepass "$REDIS_PASSWORD"' in redis["command"][-1]
    secret = kinds(docs, "Secret")["vs-vizsearch-redis"]
    assert len(secret["data"]["redis-password"]) >= 40, "a generated password"


# -- Security inside the cluster ------------------------------------------------------
def selected(policy: dict, docs) -> str:
    labels = policy["spec"]["podSelector"]["matchLabels"]
    return labels.get("app.kubernetes.io/component", labels.get("app.kubernetes.io/name"))


def allowed_callers(policy: dict) -> set[str]:
    return {peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component", "release")
            for rule in policy["spec"]["ingress"] for peer in rule.get("from", []) if "podSelector" in peer}


def test_network_policies_let_only_the_callers_in(case):
    name, docs, _ = case
    policies = {selected(p, docs): p for p in kinds(docs, "NetworkPolicy").values()}
    assert allowed_callers(policies["query"]) == {"gateway"}
    assert allowed_callers(policies["indexer"]) == {"gateway"}
    assert allowed_callers(policies["embedder"]) == {"gateway", "query", "indexer", "worker"}
    assert allowed_callers(policies["triton"]) == {"embedder"}
    if name == "all-external":
        assert "redis" not in policies and "milvus" not in policies
    else:
        assert allowed_callers(policies["redis"]) == {"gateway", "indexer", "worker"}
        assert allowed_callers(policies["milvus"]) == {"release"}
    query_ports = {p["port"] for rule in policies["query"]["spec"]["ingress"] if "podSelector" in str(rule)
                   for p in rule["ports"]}
    assert query_ports == {50053}, "callers reach the gRPC port; metrics have their own rule"
    gateway_open = policies["gateway"]["spec"]["ingress"][0]
    assert "from" not in gateway_open and {p["port"] for p in gateway_open["ports"]} == {8080, 50051}


def test_internal_calls_carry_a_token_from_a_secret_every_service_reads(case):
    name, docs, _ = case
    secret = "my-internal" if name == "all-external" else "vs-vizsearch-internal"
    for deployment_name, deployment in kinds(docs, "Deployment").items():
        if deployment_name.endswith("triton"):
            continue
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["VIZSEARCH_INTERNAL_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "token"}
    if name != "all-external":
        assert len(kinds(docs, "Secret")[secret]["data"]["token"]) >= 40


def test_policies_and_the_token_can_be_switched_off():
    docs, _ = render({"security": {"networkPolicies": {"enabled": False}, "internalToken": {"enabled": False}}})
    assert not kinds(docs, "NetworkPolicy") and "vs-vizsearch-internal" not in kinds(docs, "Secret")


# -- Observability ----------------------------------------------------------------------
COMPONENTS = ("gateway", "query", "indexer", "worker", "embedder", "triton")
REPO = CHART.parents[2]


def test_traces_go_to_the_collector_from_every_service_and_triton_only_when_asked(case):
    name, docs, _ = case
    config = kinds(docs, "ConfigMap")["vs-vizsearch-config"]["data"]
    triton = kinds(docs, "Deployment")["vs-vizsearch-triton"]["spec"]["template"]["spec"]["containers"][0]["command"]
    trace_args = [a for a in triton if a.startswith("--trace-config")]
    if name != "observability":
        assert "VIZSEARCH_OTLP_ENDPOINT" not in config and not trace_args
        return
    assert config["VIZSEARCH_OTLP_ENDPOINT"] == "http://otel-collector.obs:4318/"
    assert config["VIZSEARCH_TRACE_SAMPLE_RATIO"] == "0.25"
    assert "--trace-config=opentelemetry,url=http://otel-collector.obs:4318/v1/traces" in trace_args
    assert "--trace-config=rate=0" in trace_args  # only the embedder's traced calls
    for workload, spec in pod_specs(docs):
        if workload.split("vizsearch-")[-1] in ("gateway", "query", "indexer", "worker", "embedder"):
            sources = [s["configMapRef"]["name"] for c in spec["containers"] for s in c.get("envFrom", [])
                       if "configMapRef" in s]
            assert "vs-vizsearch-config" in sources, workload


def defined_metrics() -> set[str]:
    """The vizsearch_* metric names the code defines (histograms add _bucket, _sum, _count)."""
    import re
    names = set()
    for path in (REPO / "services").rglob("*.py"):
        names |= set(re.findall(r'"(vizsearch_[a-z_]+)"', path.read_text()))
    return names | {f"{n}_{suffix}" for n in names for suffix in ("bucket", "sum", "count")}


def test_every_component_has_a_service_monitor_on_its_metrics_port(case):
    name, docs, _ = case
    monitors = kinds(docs, "ServiceMonitor")
    if name != "observability":
        assert not monitors and "PrometheusRule" not in {d["kind"] for d in docs}
        return
    services = kinds(docs, "Service")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for component in COMPONENTS:
        monitor = monitors[f"vs-vizsearch-{component}"]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "prom"
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matching = [s for s in services.values() if wanted.items() <= s["metadata"]["labels"].items()]
        assert len(matching) == 1, component
        [port] = matching[0]["spec"]["ports"]
        assert port["name"] == monitor["spec"]["endpoints"][0]["port"] == "metrics"
        assert port["port"] == values[component]["metricsPort"]


def test_dashboards_and_alerts_use_metrics_that_exist(case):
    import re
    name, docs, _ = case
    if name != "observability":
        return
    exported = defined_metrics()
    dashboard = json.loads(kinds(docs, "ConfigMap")["vs-vizsearch-dashboard"]["data"]["vizsearch.json"])
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for words in ("Requests per second", "Latency", "Errors", "Queue time", "GPU", "Images per second",
                  "waiting", "Failures", "Milvus"):
        assert words in titles, words
    [rule] = kinds(docs, "PrometheusRule").values()
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert {"VizsearchErrorRateHigh", "VizsearchIngestionStalled", "VizsearchIngestionQueueGrowing",
            "VizsearchTritonQueueTimeHigh"} <= set(alerts)
    for expression in expressions + list(alerts.values()):
        for metric in re.findall(r"\b(vizsearch_[a-z_]+)", expression):
            assert metric in exported, f"{metric} is not a metric the services export"
    adapter = yaml.safe_load(kinds(docs, "ConfigMap")["vs-vizsearch-prometheus-adapter-rules"]["data"]["config.yaml"])
    assert adapter["rules"][0]["name"]["as"] == yaml.safe_load(
        (CHART / "values.yaml").read_text())["triton"]["autoscaling"]["queueMetricName"]
