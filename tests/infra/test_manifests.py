"""The Kubernetes manifests (infra/k8s): their structure and the fields radpipe relies on, checked without a cluster.

kubeconform and the JSON schemas of Kubernetes and of the KubeRay and Dask operators' CRDs are not available
offline, so nothing here validates against a schema. Instead the YAML is parsed and checked for what would break on
a cluster: names that must line up across files, settings radpipe refuses to run without, room for the GPU configs,
secrets only by reference, and the image holding what the pods run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from radpipe.cli import build_parser
from radpipe.deid.keys import load_key
from radpipe.errors import ConfigError
from radpipe.model.config import load_config
from radpipe.settings import Settings
from radpipe.train.run import check_cluster_settings

ROOT = Path(__file__).parents[2]
K8S = ROOT / "infra" / "k8s"
NAMESPACE = "radpipe"
EXAMPLE = "secrets.example.yaml"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
# Variables the pods may take from the ConfigMap besides radpipe's own settings: clients radpipe drives read them.
CLIENT_VARIABLES = {"PREFECT_API_URL", "MLFLOW_S3_ENDPOINT_URL"}
SETTINGS = {field.alias for field in Settings.model_fields.values() if field.alias}
CREDENTIAL = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|DEID_KEY")


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name not in {"kustomization.yaml", EXAMPLE})
DOCS = [(path.name, doc) for path in MANIFESTS for doc in _load(path)]
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
EXAMPLE_SECRETS = _load(K8S / EXAMPLE)
PREFECT = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def _one(kind: str) -> dict[str, Any]:
    (doc,) = _of_kind(kind)
    return doc


def _workload(name: str) -> dict[str, Any]:
    (doc,) = [d for _, d in DOCS if d["kind"] in {"Deployment", "StatefulSet"} and d["metadata"]["name"] == name]
    return doc


SETTINGS_MAP = _one("ConfigMap")["data"]


def _pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec in a document, wherever the kind nests it (templates, Ray groups, Dask specs)."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
        for value in node.values():
            yield from _pod_specs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _pod_specs(item)


def _containers(node: Any) -> list[dict[str, Any]]:
    return [c for spec in _pod_specs(node) for c in spec["containers"] + spec.get("initContainers", [])]


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the pod sees it; a secret shows as `<secret name/key>`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == _one("ConfigMap")["metadata"]["name"]
        env.update(SETTINGS_MAP)
    for item in container.get("env", []):
        ref = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in ref:
            env[item["name"]] = SETTINGS_MAP[ref["configMapKeyRef"]["key"]]
        else:
            env[item["name"]] = "<secret {name}/{key}>".format(**ref["secretKeyRef"])
    return env


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _quantity(value: str | int) -> float:
    """A Kubernetes quantity ("10", "500m", "32Gi") as a number."""
    factors = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}
    text = str(value)
    for suffix in sorted(factors, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factors[suffix]
    return float(text)


def _option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _dockerfile() -> tuple[PurePosixPath, set[str], list[str]]:
    """The final stage's WORKDIR, the top-level names it copies into it, and its COPY sources."""
    final = (K8S / "Dockerfile").read_text().split("\nFROM ")[-1]
    workdir = PurePosixPath(re.findall(r"^WORKDIR (\S+)", final, re.M)[-1])
    sources = [src for line in re.findall(r"^COPY (.+)$", final, re.M) for src in line.split()[:-1]]
    return workdir, {PurePosixPath(src).parts[0] for src in sources if src != "."}, sources


RAY_CLUSTERS = [
    pytest.param(_one("RayCluster")["spec"], id="RayCluster"),
    pytest.param(_one("RayJob")["spec"]["rayClusterSpec"], id="RayJob"),
]


@pytest.mark.parametrize(
    ("name", "doc"), DOCS, ids=[f"{n}:{d.get('kind')}/{d.get('metadata', {}).get('name')}" for n, d in DOCS]
)
def test_every_document_names_its_kind_and_namespace(name: str, doc: dict[str, Any]) -> None:
    assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), name
    if doc["kind"] not in CLUSTER_SCOPED:
        assert doc["metadata"].get("namespace") == NAMESPACE, f"{name}: {doc['kind']} outside {NAMESPACE}"


def test_kustomization_applies_exactly_the_manifests_present() -> None:
    assert KUSTOMIZATION["namespace"] == NAMESPACE
    assert sorted(KUSTOMIZATION["resources"]) == [p.name for p in MANIFESTS]
    assert EXAMPLE not in KUSTOMIZATION["resources"]


def test_images_are_pinned_and_retagged_in_one_place() -> None:
    images = [c["image"] for _, doc in DOCS for c in _containers(doc)]
    for image in images:
        tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
        assert "@sha256:" in image or (tag and tag != "latest"), f"{image}: pin a tag (nodes would mix versions)"
    # Driver, Ray and Dask nodes must run one radpipe (and so one Ray and Dask).
    assert len({i for i in images if i.rpartition(":")[0].endswith("/radpipe")}) == 1
    placeholders = {i.rpartition(":")[0] for i in images if "your-org" in i}
    assert placeholders == {entry["name"] for entry in KUSTOMIZATION["images"]}


def test_ray_cluster_has_a_head_and_a_gpu_worker_group() -> None:
    spec = _one("RayCluster")["spec"]
    assert _containers(spec["headGroupSpec"])
    gpus = [
        _quantity(c["resources"]["limits"].get("nvidia.com/gpu", 0))
        for group in spec["workerGroupSpecs"]
        for c in _containers(group)
    ]
    assert gpus and max(gpus) >= 1


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("gpu-*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("cluster", RAY_CLUSTERS)
def test_ray_clusters_have_room_for_the_gpu_configs(cluster: dict[str, Any], config: Path) -> None:
    """Ray Train waits forever for bundles a cluster cannot place; radpipe does not check a remote cluster."""
    scaling = load_config(config).scaling
    nodes = []  # (cpus, gpus) of each Ray node at full scale
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        limits = _containers(group)[0]["resources"]["limits"]
        count = group.get("maxReplicas" if cluster.get("enableInTreeAutoscaling") else "replicas", 1)
        cpus = _quantity(group["rayStartParams"].get("num-cpus", limits["cpu"]))
        nodes += [(cpus, _quantity(limits.get("nvidia.com/gpu", 0)))] * count
    trainers = sum(min(cpus // scaling.cpus_per_worker, gpus if scaling.use_gpu else cpus) for cpus, gpus in nodes)
    assert trainers >= scaling.num_workers
    loader = sum(cpus for cpus, _ in nodes) - scaling.num_workers * scaling.cpus_per_worker
    assert loader >= scaling.loader_cpus, f"{loader} CPUs left for Ray Data; the config reserves {scaling.loader_cpus}"


@pytest.mark.parametrize("cluster", RAY_CLUSTERS)
def test_ray_pods_reach_mlflow_and_shared_checkpoint_storage(cluster: dict[str, Any]) -> None:
    for container in _containers(cluster):
        env = _env(container)
        assert urlsplit(env["MLFLOW_TRACKING_URI"]).scheme in {"http", "https"}, "workers cannot reach a local file"
        assert urlsplit(env["RADPIPE_RAY_STORAGE"]).scheme in {"s3", "gs"}, "every node must reach the checkpoints"
        assert env["AWS_ACCESS_KEY_ID"].startswith("<secret ")
        # What radpipe itself checks before training on a cluster (RAY_ADDRESS is set in the driver by Ray).
        settings = Settings(**{k: v for k, v in env.items() if k in SETTINGS}, RAY_ADDRESS="10.0.0.1:6379")
        check_cluster_settings(settings)


@pytest.mark.parametrize("cluster", RAY_CLUSTERS)
def test_ray_pods_give_the_object_store_shared_memory(cluster: dict[str, Any]) -> None:
    for pod in _pod_specs(cluster):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/dev/shm"]
            shm = volumes[mount["name"]]["emptyDir"]
            assert shm["medium"] == "Memory"
            # Ray sizes its object store at 30% of memory; a smaller /dev/shm sends it to disk.
            assert _quantity(shm["sizeLimit"]) >= 0.3 * _quantity(container["resources"]["limits"]["memory"])


def test_ray_job_trains_on_a_shared_dataset_with_a_shipped_config() -> None:
    spec = _one("RayJob")["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[0] == "radpipe"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "train"
    assert urlsplit(args.dataset).scheme in {"s3", "gs"}, "workers on other nodes cannot read a local path"
    workdir, copied, _ = _dockerfile()
    config = PurePosixPath(args.config).relative_to(workdir)  # the image's copy of the repository's file
    assert config.parts[0] in copied
    assert load_config(ROOT / config).scaling.use_gpu
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["suspend"] is True, "applying the kustomization must not start an 8-GPU run by itself"


def test_configmap_holds_settings_radpipe_reads() -> None:
    for key in SETTINGS_MAP:
        assert key in SETTINGS | CLIENT_VARIABLES or key.startswith("AWS_"), f"{key}: radpipe reads no such setting"
        assert not CREDENTIAL.search(key), f"{key}: credentials belong in a Secret"
    required = {"MLFLOW_TRACKING_URI", "RAY_ADDRESS", "RADPIPE_DASK_ADDRESS", "PREFECT_API_URL", "RADPIPE_RAY_STORAGE"}
    assert required <= set(SETTINGS_MAP)


def test_addresses_point_at_the_services_the_manifests_create() -> None:
    suffix = f".{NAMESPACE}.svc.cluster.local"
    ray = _one("RayCluster")
    head_ports = {p["containerPort"] for c in _containers(ray["spec"]["headGroupSpec"]) for p in c["ports"]}
    ray_address = urlsplit(SETTINGS_MAP["RAY_ADDRESS"])
    assert ray_address.scheme == "ray" and ray_address.port in head_ports
    assert ray_address.hostname == f"{ray['metadata']['name']}-head-svc{suffix}"  # KubeRay's head Service
    dask = _one("DaskCluster")
    dask_address = urlsplit(SETTINGS_MAP["RADPIPE_DASK_ADDRESS"])
    assert dask_address.hostname == f"{dask['metadata']['name']}-scheduler{suffix}"  # the operator's Service
    assert dask_address.port in {p["port"] for p in dask["spec"]["scheduler"]["service"]["ports"]}
    assert SETTINGS_MAP["PREFECT_API_URL"].endswith("/api")


def test_env_references_resolve_to_documented_keys() -> None:
    documented = {(s["metadata"]["name"], key) for s in EXAMPLE_SECRETS for key in s["stringData"]}
    used = set()
    for name, doc in DOCS:
        for container in _containers(doc):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    # The pod sees the variable under the name radpipe reads, and a missing key would block it.
                    assert ref["configMapKeyRef"]["key"] == item["name"] and item["name"] in SETTINGS_MAP, name
                if "secretKeyRef" in ref:
                    used.add((ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]))
    assert used == documented, "secrets.example.yaml must list exactly the Secret keys the pods read"


def test_no_manifest_holds_a_credential() -> None:
    assert not _of_kind("Secret")
    for name, doc in DOCS:
        for container in _containers(doc):
            for item in container.get("env", []):
                if CREDENTIAL.search(item["name"]):
                    assert "secretKeyRef" in item.get("valueFrom", {}), f"{name}: {item['name']} inline"
        for text in _strings(doc):
            assert not re.search(r"://[^/@\s:]+:[^/@\s]+@", text), f"{name}: credentials in a URL"


def test_example_secrets_hold_only_placeholders() -> None:
    for secret in EXAMPLE_SECRETS:
        for key, value in secret["stringData"].items():
            assert not CREDENTIAL.search(key) or "change-me" in value, key
    (deid,) = [s for s in EXAMPLE_SECRETS if "RADPIPE_DEID_KEY" in s["stringData"]]
    with pytest.raises(ConfigError):  # applied unedited, radpipe refuses to pseudonymise with a published key
        load_key(deid["stringData"]["RADPIPE_DEID_KEY"], ROOT / "unused")


def test_only_the_ingest_driver_holds_the_deid_key() -> None:
    holders = {
        doc["metadata"]["name"]
        for _, doc in DOCS
        for container in _containers(doc)
        if "RADPIPE_DEID_KEY" in _env(container)
    }
    assert holders == {"prefect-worker"}
    (container,) = _containers(_workload("prefect-worker"))
    assert _env(container)["RADPIPE_DEID_KEY"].startswith("<secret ")


def test_mlflow_server_stores_runs_in_postgres_and_artifacts_in_object_storage() -> None:
    (container,) = _containers(_workload("mlflow"))
    args = container["command"] + container["args"]
    backend = urlsplit(_option(args, "--backend-store-uri"))
    assert backend.scheme == "postgresql" and backend.password is None
    database = _workload("mlflow-postgres")
    assert backend.hostname == f"{database['spec']['serviceName']}.{NAMESPACE}.svc.cluster.local"
    assert urlsplit(_option(args, "--artifacts-destination")).scheme == "s3"
    assert _option(args, "--host") == "0.0.0.0"
    env = _env(container)
    assert env["PGPASSWORD"].startswith("<secret ") and "MLFLOW_S3_ENDPOINT_URL" in env


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SQLAlchemy's, from importing MLflow's server
def test_tracking_uri_reaches_the_mlflow_service_and_passes_its_host_check() -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    uri = urlsplit(SETTINGS_MAP["MLFLOW_TRACKING_URI"])
    service, namespace = uri.hostname.split(".")[:2]
    (svc,) = [s for s in _of_kind("Service") if s["metadata"]["name"] == service]
    assert namespace == NAMESPACE and uri.port in {p["port"] for p in svc["spec"]["ports"]}
    (container,) = _containers(_workload("mlflow"))
    allowed = _option(container["args"], "--allowed-hosts").split(",")
    assert is_allowed_host_header(allowed, f"{uri.hostname}:{uri.port}"), "MLflow would answer 403"


def test_dask_cluster_defines_a_scheduler_and_workers_on_shared_storage() -> None:
    dask = _one("DaskCluster")
    (scheduler,) = _containers(dask["spec"]["scheduler"]["spec"])
    (worker,) = _containers(dask["spec"]["worker"]["spec"])
    assert dask["spec"]["worker"]["replicas"] >= 1
    assert scheduler["args"][:2] == ["dask", "scheduler"] and worker["args"][:2] == ["dask", "worker"]
    service = dask["spec"]["scheduler"]["service"]
    assert service["selector"] == {"dask.org/cluster-name": dask["metadata"]["name"], "dask.org/component": "scheduler"}
    assert {p["targetPort"] for p in service["ports"]} <= {p["name"] for p in scheduler["ports"]}
    # Workers read the sources and stage batches beside the dataset, on the object store.
    assert _env(worker)["AWS_SECRET_ACCESS_KEY"].startswith("<secret ")


def test_services_select_pods_that_exist() -> None:
    workloads = [d for _, d in DOCS if d["kind"] in {"Deployment", "StatefulSet"}]
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in _of_kind("Service"):
        selector = service["spec"]["selector"].items()
        pods = [
            w["spec"]["template"] for w in workloads if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        ports = {p["name"] for pod in pods for c in _containers(pod) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert not isinstance(port["targetPort"], str) or port["targetPort"] in ports
    services = {s["metadata"]["name"] for s in _of_kind("Service")}
    assert all(s["spec"]["serviceName"] in services for s in _of_kind("StatefulSet"))


def test_volume_mounts_name_volumes_of_their_pod() -> None:
    for name, doc in DOCS:
        claims = {t["metadata"]["name"] for t in doc.get("spec", {}).get("volumeClaimTemplates", [])}
        for pod in _pod_specs(doc):
            volumes = {v["name"] for v in pod.get("volumes", [])} | claims
            for container in pod["containers"]:
                assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes, name


def test_prefect_worker_serves_the_deployments_of_infra_prefect_yaml() -> None:
    (container,) = _containers(_workload("prefect-worker"))
    command = container["command"]
    assert command[:3] == ["prefect", "worker", "start"]
    assert {_option(command, "--pool")} == {d["work_pool"]["name"] for d in PREFECT["deployments"]}
    assert _option(command, "--type") == "process", "flow runs must inherit this pod's settings and secrets"
    env = _env(container)
    assert set(SETTINGS_MAP) <= set(env)
    # The pull steps run the flows from a directory named by environment variables: the image's source tree.
    pull = [PREFECT.get("pull") or []] + [d.get("pull") or [] for d in PREFECT["deployments"]]
    workdir, copied, _ = _dockerfile()
    for variable in set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", yaml.safe_dump(pull))):
        assert PurePosixPath(env[variable]) == workdir
    assert {d["entrypoint"].split("/")[0] for d in PREFECT["deployments"]} <= copied


def test_image_never_copies_the_whole_checkout() -> None:
    """`COPY . .` would bake .radpipe/ (a generated de-identification key) and local data into the image."""
    _, copied, sources = _dockerfile()
    assert "." not in sources and not copied & {".radpipe", ".venv", "demo"}
    assert {"radpipe", "pyproject.toml"} <= copied
