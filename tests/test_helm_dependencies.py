"""The chart rendered with its real dependency charts (the archives in ../shared/charts,
the same versions Chart.lock pins), as `helm install` would: no object twice, no idle
message queue, one MinIO whose credentials reach MinIO, Milvus and the services from one
Secret, volumes sized for a trial, every manifest valid Kubernetes."""

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

from tests.test_helm import CHART, CRDS, KUBE_VERSIONS, REQUIRED, merge

SHARED = CHART.parents[3] / "shared" / "charts"
LOCK = yaml.safe_load((CHART / "Chart.lock").read_text())
ARCHIVES = [SHARED / f"{d['name']}-{d['version']}.tgz" for d in LOCK["dependencies"]]
pytestmark = pytest.mark.skipif(
    not all(a.is_file() for a in ARCHIVES),
    reason=f"the dependency charts are not here ({', '.join(a.name for a in ARCHIVES)} in {SHARED}): "
           "these tests need the archives Chart.lock pins")
STORAGE_SECRET = "vizsearch-storage"
CLUSTER = yaml.safe_load((CHART / "values-milvus-cluster.yaml").read_text())
HUNDRED_MILLION = merge(CLUSTER, yaml.safe_load((CHART / "values-100m.yaml").read_text()))
MESSAGE_QUEUES = ("pulsar", "kafka", "zookeeper", "bookie")


@pytest.fixture(scope="module")
def chart(tmp_path_factory) -> Path:
    """A copy of the chart with the dependency archives in charts/, as `helm dependency build` leaves it."""
    copy = tmp_path_factory.mktemp("chart") / "vizsearch"
    shutil.copytree(CHART, copy)
    (copy / "charts").mkdir(exist_ok=True)
    for archive in ARCHIVES:
        shutil.copy(archive, copy / "charts")
    return copy


def render(chart: Path, values: dict, release: str = "vs") -> list[dict]:
    rendered = helm_python.Chart.load(chart).render(merge(REQUIRED, values), name=release, namespace="search")
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs, kind) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def env_of(workload: dict) -> dict[str, dict]:
    return {e["name"]: e for c in workload["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}


@pytest.mark.parametrize("values, release", [({}, "vs"), (CLUSTER, "vs"), ({}, "milvus-prod")],
                         ids=["standalone", "cluster", "release-named-milvus"])
def test_no_two_objects_share_a_kind_and_name(chart, values, release):
    docs = render(chart, values, release)
    twice = [key for key, n in Counter((d["kind"], d["metadata"]["name"]) for d in docs).items() if n > 1]
    assert twice == []


def test_standalone_runs_no_message_queue_and_one_etcd(chart):
    docs = render(chart, {})
    running = workloads(docs)
    assert not [name for name in running if any(q in name for q in MESSAGE_QUEUES)], sorted(running)
    assert running["vs-etcd"]["spec"]["replicas"] == 1
    assert "vs-milvus-standalone" in running and not [n for n in running if n.startswith("vs-milvus-proxy")]


def test_cluster_mode_turns_on_what_milvus_needs(chart):
    docs = render(chart, CLUSTER)
    running = workloads(docs)
    assert running["vs-etcd"]["spec"]["replicas"] == 3
    assert any("pulsar" in name and "broker" in name for name in running)
    milvus = {n: w for n, w in running.items() if n.startswith("vs-milvus-")}
    assert "vs-milvus-proxy" in milvus and "vs-milvus-standalone" not in milvus
    for name, workload in milvus.items():
        env = env_of(workload)
        assert env["MINIO_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": STORAGE_SECRET, "key": "rootUser"}, name


def test_one_minio_and_its_credentials_reach_everyone_from_one_secret(chart):
    docs = render(chart, {})
    running = workloads(docs)
    minios = [n for n, w in running.items()
              if any("minio/minio" in c["image"] for c in w["spec"]["template"]["spec"]["containers"])]
    assert minios == ["vizsearch-minio"]
    secrets = of_kind(docs, "Secret")
    assert set(secrets[STORAGE_SECRET]["stringData"]) == {"rootUser", "rootPassword"}
    # MinIO itself
    minio_env = env_of(running["vizsearch-minio"])
    assert minio_env["MINIO_ROOT_USER"]["valueFrom"]["secretKeyRef"] == {"name": STORAGE_SECRET, "key": "rootUser"}
    assert minio_env["MINIO_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": STORAGE_SECRET,
                                                                             "key": "rootPassword"}
    # Milvus: the address in its config, the credentials from the Secret
    milvus_env = env_of(running["vs-milvus-standalone"])
    assert milvus_env["MINIO_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": STORAGE_SECRET,
                                                                                 "key": "rootPassword"}
    milvus_config = yaml.safe_load(of_kind(docs, "ConfigMap")["vs-milvus"]["data"]["default.yaml"])["minio"]
    assert (milvus_config["address"], milvus_config["port"], milvus_config["bucketName"]) == (
        "vizsearch-minio", 9000, "milvus")
    assert "vizsearch-minio" in of_kind(docs, "Service")
    # The services and the bucket job
    for name in ("vs-vizsearch-gateway", "vs-vizsearch-worker", "vs-vizsearch-embedder", "vs-vizsearch-indexer"):
        env = env_of(running[name])
        assert env["VIZSEARCH_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": STORAGE_SECRET,
                                                                              "key": "rootPassword"}, name
    buckets = of_kind(docs, "ConfigMap")["vizsearch-minio"]["data"]["initialize"]
    assert "vizsearch" in buckets and "milvus" in buckets
    # No secret value in any ConfigMap
    for config_map in of_kind(docs, "ConfigMap").values():
        assert "storage-secret-value" not in yaml.safe_dump(config_map)


def test_services_reach_the_dependencies_by_their_charts_own_names(chart):
    for release, milvus_host in (("vs", "vs-milvus"), ("milvus-prod", "milvus-prod")):
        docs = render(chart, {}, release)
        services = of_kind(docs, "Service")
        config = next(c for n, c in of_kind(docs, "ConfigMap").items() if n.endswith("vizsearch-config"))["data"]
        assert config["VIZSEARCH_MILVUS_URI"] == f"http://{milvus_host}:19530" and milvus_host in services
        assert config["VIZSEARCH_S3_ENDPOINT"].split(":")[0] in services
    overridden = render(chart, {"milvus": {"fullnameOverride": "vectors"}})
    assert "vectors" in of_kind(overridden, "Service")
    assert of_kind(overridden, "ConfigMap")["vs-vizsearch-config"]["data"]["VIZSEARCH_MILVUS_URI"] == \
        "http://vectors:19530"


def volume_gib(docs) -> float:
    sizes = [pvc["spec"]["resources"]["requests"]["storage"] for pvc in of_kind(docs, "PersistentVolumeClaim").values()]
    sizes += [t["spec"]["resources"]["requests"]["storage"] for s in of_kind(docs, "StatefulSet").values()
              for t in s["spec"].get("volumeClaimTemplates", [])]
    assert all(size.endswith("Gi") for size in sizes), sizes
    return sum(float(size[:-2]) for size in sizes)


def test_the_default_install_fits_a_trial(chart):
    docs = render(chart, {})
    assert volume_gib(docs) == 37  # MinIO 20, Milvus 10, etcd 5, Redis 2
    minio = workloads(docs)["vizsearch-minio"]["spec"]["template"]["spec"]["containers"][0]
    assert minio["resources"]["requests"]["memory"] == "1Gi"


def test_the_hundred_million_values_size_milvus_as_docs_scale_says(chart):
    docs = render(chart, HUNDRED_MILLION)
    running = workloads(docs)
    query_nodes = running["vs-milvus-querynode"]["spec"]
    assert query_nodes["replicas"] == 6
    assert query_nodes["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "64Gi"
    assert running["vs-milvus-indexnode"]["spec"]["replicas"] == 8
    config = of_kind(docs, "ConfigMap")["vs-vizsearch-config"]["data"]
    assert (config["VIZSEARCH_VECTOR_INDEX"], config["VIZSEARCH_MILVUS_REPLICAS"]) == ("HNSW_SQ", "2")
    milvus_config = yaml.safe_load(of_kind(docs, "ConfigMap")["vs-milvus"]["data"]["user.yaml"])
    assert milvus_config["queryNode"]["mmap"]["vectorField"] is True  # the 8-bit index lacks the float32 vectors


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", [{}, CLUSTER, HUNDRED_MILLION], ids=["standalone", "cluster", "100m"])
def test_every_manifest_is_valid_kubernetes(chart, values, kube_version):
    for doc in render(chart, values):
        if doc["kind"] not in CRDS:
            kubernetes_validate.validate(doc, kube_version, strict=True)


def test_chart_lock_pins_what_chart_yaml_asks_for():
    """Helm's digest: sha256 of the JSON of [Chart.yaml's dependencies, the lock's], as Go
    marshals them; `helm dependency build` refuses a lock whose digest differs."""
    wanted = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    fields = ("name", "version", "repository", "condition")
    requested = [{f: d[f] for f in fields if d.get(f)} for d in wanted]
    locked = [{f: d[f] for f in ("name", "version", "repository")} for d in LOCK["dependencies"]]
    data = json.dumps([requested, locked], separators=(",", ":")).encode()
    assert LOCK["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert [(d["name"], d["version"]) for d in wanted] == [(d["name"], d["version"]) for d in LOCK["dependencies"]]


def test_the_chart_sees_its_dependencies_as_built(chart):
    assert [d["status"] for d in helm_python.dependency_list(chart)] == ["ok"] * len(ARCHIVES)


def test_the_milvus_network_policy_selects_milvus_and_lets_the_release_in(chart):
    docs = render(chart, {})
    policy = of_kind(docs, "NetworkPolicy")["vs-vizsearch-milvus"]
    wanted = policy["spec"]["podSelector"]["matchLabels"]
    milvus = workloads(docs)["vs-milvus-standalone"]["spec"]["template"]["metadata"]["labels"]
    assert wanted.items() <= milvus.items()
    indexer = workloads(docs)["vs-vizsearch-indexer"]["spec"]["template"]["metadata"]["labels"]
    peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer.items() <= indexer.items() and peer.items() <= milvus.items()
