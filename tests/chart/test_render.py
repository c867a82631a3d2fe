"""The chart rendered offline (helm lint / helm template): defaults, schema, security, RBAC, contract with the app."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from executioner.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "executioner"
LOCAL_VALUES = REPO / "hack" / "chart" / "values-local.yaml"

# the same variants are checked for security and limits: the defaults and every optional branch switched on
VARIANTS = {
    "defaults": {},
    "local-cluster": yaml.safe_load(LOCAL_VALUES.read_text()),
    "no-persistence+ingress": {
        "redis": {"persistence": {"enabled": False}},
        "ingress": {"enabled": True, "tls": [{"secretName": "tls", "hosts": ["executioner.example.com"]}]},
    },
    "keda+servicemonitor": {
        "worker": {"autoscaling": {"keda": {"enabled": True}}},
        "metrics": {"serviceMonitor": {"enabled": True}},
    },
    "external-redis+gvisor": {
        "redis": {"enabled": False, "externalUrl": "rediss://:pw@redis.example:6380/0"},
        "sandbox": {"runtimeClassName": "gvisor"},
    },
    "no-operator+no-auth": {"operator": {"enabled": False}, "auth": {"enabled": False}},
}


def is_hook(doc: dict) -> bool:
    return "helm.sh/hook" in (doc["metadata"].get("annotations") or {})


@pytest.fixture(scope="module")
def default(render):
    return render()


def test_helm_lint_strict(helm):
    for extra in ([], ["-f", str(LOCAL_VALUES)]):
        p = subprocess.run([helm, "lint", "--strict", str(CHART), *extra], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_default_render_has_every_component(render, default):
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in default)
    assert kinds == sorted(
        [
            "ClusterRole/executioner-executioner-operator",
            "ClusterRole/executioner-executioner-api",
            "ClusterRole/executioner-executioner-executionrequests-edit",
            "ClusterRole/executioner-executioner-executionrequests-view",
            "ClusterRoleBinding/executioner-executioner-operator",
            "ClusterRoleBinding/executioner-executioner-api",
            "CustomResourceDefinition/executionrequests.executioner.dev",
            "Deployment/executioner-api",
            "Deployment/executioner-operator",
            "Deployment/executioner-worker",
            "LimitRange/executioner-sandbox",
            "Namespace/executioner-sandbox",
            "NetworkPolicy/executioner-api",
            "NetworkPolicy/executioner-operator",
            "NetworkPolicy/executioner-redis",
            "NetworkPolicy/executioner-sandbox-deny-all",
            "NetworkPolicy/executioner-test-hello",
            "NetworkPolicy/executioner-worker",
            "Pod/executioner-test-hello",
            "ResourceQuota/executioner-sandbox",
            "Role/executioner-operator",
            "Role/executioner-worker",
            "RoleBinding/executioner-operator",
            "RoleBinding/executioner-worker",
            "Secret/executioner-api-keys",
            "Secret/executioner-redis",
            "Service/executioner-api",
            "Service/executioner-redis",
            "ServiceAccount/executioner-api",
            "ServiceAccount/executioner-operator",
            "ServiceAccount/executioner-redis",
            "ServiceAccount/executioner-sandbox",
            "ServiceAccount/executioner-worker",
            # the post-delete hook that lets ExecutionRequests go after an uninstall
            "ServiceAccount/executioner-uninstall",
            "ClusterRole/executioner-uninstall",
            "ClusterRoleBinding/executioner-uninstall",
            "Job/executioner-uninstall",
            "NetworkPolicy/executioner-uninstall",
            "StatefulSet/executioner-redis",
        ]
    )
    crds = [d for d in render("--include-crds") if d["kind"] == "CustomResourceDefinition"]
    assert [c["metadata"]["name"] for c in crds] == ["executionrequests.executioner.dev"]


def test_names_follow_the_release(render):
    docs = render(release="prod")
    assert {d["metadata"]["name"] for d in render.find(docs, "Deployment")} == {
        "prod-executioner-api",
        "prod-executioner-worker",
        "prod-executioner-operator",
    }
    long = render(release="a-very-long-release-name-that-goes-on-and-on-forever")
    for d in long:  # DNS labels for namespaced objects; cluster-scoped RBAC names may be longer
        limit = 253 if d["kind"].startswith("Cluster") else 63
        assert len(d["metadata"]["name"]) <= limit, d["metadata"]["name"]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"sandboxImage": {"tag": "latest"}}, "/sandboxImage/tag"),
        ({"redis": {"image": {"tag": "latest"}}}, "/redis/image/tag"),
        ({"bogus": 1}, "additional properties 'bogus'"),
        ({"api": {"replicas": 0}}, "/api/replicas"),
        ({"api": {"resources": {"limits": None}}}, "missing property 'limits'"),
        ({"worker": {"concurrency": "four"}}, "/worker/concurrency"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"sandbox": {"namespace": "Not_A_Namespace"}}, "/sandbox/namespace"),
        ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
        ({"containerSecurityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
        ({"containerSecurityContext": {"capabilities": {"drop": ["NET_RAW"]}}}, "capabilities"),
        ({"redis": {"externalUrl": "http://not-redis"}}, "/redis/externalUrl"),
        ({"api": {"service": {"type": "ExternalName"}}}, "/api/service/type"),
        ({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0"),  # Kubernetes' shape: [{name: regcred}]
        ({"imagePullSecrets": [{"secret": "regcred"}]}, "/imagePullSecrets/0"),
        ({"redis": {"persistence": {"storageClass": "fast"}}}, "additional properties 'storageClass'"),
        ({"redis": {"persistence": {"size": "a lot"}}}, "/redis/persistence/size"),
        ({"redis": {"maxmemory": "200MB"}}, "/redis/maxmemory"),
        ({"redis": {"maxmemory": 1000}}, "/redis/maxmemory"),
        ({"metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}}, "/metrics/serviceMonitor/interval"),
        (
            {"worker": {"autoscaling": {"keda": {"enabled": True, "maxReplicas": 0}}}},
            "/worker/autoscaling/keda/maxReplicas",
        ),
        (
            {"worker": {"autoscaling": {"keda": {"enabled": True, "listLength": "4"}}}},
            "/worker/autoscaling/keda/listLength",
        ),
    ],
)
def test_schema_rejects_bad_values(render, values, message):
    p = render.run(values=values, check=False)
    assert p.returncode != 0, f"accepted {values}"
    assert message in p.stderr, p.stderr


@pytest.mark.parametrize(
    "values, message",
    [
        ({"redis": {"enabled": False}}, "set redis.externalUrl"),
        ({"sandbox": {"namespace": "executioner"}}, "must differ from the release namespace"),
        ({"auth": {"enabled": False, "existingSecret": "keys"}}, "auth.enabled is false"),
        ({"auth": {"enabled": False}, "ingress": {"enabled": True}}, "Ingress without API keys"),
        ({"redis": {"maxmemory": "240Mi"}}, "must be at most 90% of redis.resources.limits.memory (268435456 bytes)"),
        ({"redis": {"maxmemory": "1Gi", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}}, "at most 90%"),
        ({"redis": {"maxmemory": "512Ki"}}, "must be at least 1Mi"),
        (
            {"worker": {"autoscaling": {"keda": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}},
            "minReplicas must not exceed maxReplicas",
        ),
    ],
)
def test_invalid_combinations_fail(render, values, message):
    p = render.run(values=values, check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_is_restricted_and_bounded(render, variant):
    docs = render(values=VARIANTS[variant])
    specs = render.pod_specs(docs)
    assert specs
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for c in spec["containers"] + spec.get("initContainers", []):
            where = f"{name}/{c['name']}"
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert not sc.get("privileged"), where
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory", "ephemeral-storage"}, where
            # a read-only root needs somewhere to write
            assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, where
            assert c["image"].rsplit(":", 1)[-1] != "latest" and ":" in c["image"], where


def test_image_pull_secrets_reach_every_pod(render, default):
    for variant, values in VARIANTS.items():
        docs = render(values={**values, "imagePullSecrets": [{"name": "regcred"}]})
        specs = render.pod_specs(docs)
        assert set(specs) >= {
            "Deployment/executioner-api",
            "Deployment/executioner-worker",
            "Pod/executioner-test-hello",
        }
        for name, spec in specs.items():
            assert spec["imagePullSecrets"] == [{"name": "regcred"}], f"{variant}: {name}"
    for name, spec in render.pod_specs(default).items():
        assert "imagePullSecrets" not in spec, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_latest_tags_and_default_tags_from_app_version(render, variant):
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    docs = render(values=VARIANTS[variant])
    images = [c["image"] for spec in render.pod_specs(docs).values() for c in spec["containers"]]
    env = {
        e["name"]: e.get("value")
        for d in render.find(docs, "Deployment")
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    images.append(env["EXECUTIONER_SANDBOX_IMAGE"])
    for image in images:
        assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], image
    assert f"executioner/app:{app_version}" in images
    assert f"executioner/sandbox:{app_version}" in images


def test_api_contract(default, render):
    api = render.find(default, "Deployment", "executioner-api")[0]["spec"]["template"]["spec"]
    # its token reviews kubectl users' tokens for ExecutionRequests' artifacts (api.kubernetesArtifactAccess)
    assert api["automountServiceAccountToken"] is True
    container = api["containers"][0]
    assert container["args"] == ["api"]
    env = {e["name"]: e for e in container["env"]}
    assert env["EXECUTIONER_HOST"]["value"] == "0.0.0.0" and env["EXECUTIONER_PORT"]["value"] == "8000"
    assert env["EXECUTIONER_BACKEND"]["value"] == "kubernetes"
    assert env["EXECUTIONER_UI_DIR"]["value"] == "/opt/executioner/ui"
    assert env["EXECUTIONER_KUBERNETES_ARTIFACT_ACCESS"]["value"] == "true"
    assert env["EXECUTIONER_API_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "executioner-api-keys",
        "key": "api-keys",
    }
    # the Redis password never appears in the pod spec: it is expanded from the Secret at container start
    assert (
        env["EXECUTIONER_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@executioner-redis.executioner.svc:6379/0"
    )
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "executioner-redis"
    # ready while Redis answers; alive while the process answers (a Redis outage restarts no API pod)
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


@pytest.mark.parametrize("component", ["worker", "operator"])
def test_worker_and_operator_contract(render, component):
    docs = render(values={"sandbox": {"runtimeClassName": "gvisor", "namespace": "sbx"}, "worker": {"concurrency": 7}})
    spec = render.find(docs, "Deployment", f"executioner-{component}")[0]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["args"] == [component]
    # nothing connects to them; the operator's only port is its liveness endpoint, for the kubelet
    assert container.get("ports", []) == (
        [] if component == "worker" else [{"name": "liveness", "containerPort": 8080, "protocol": "TCP"}]
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EXECUTIONER_BACKEND"] == "kubernetes"
    assert env["EXECUTIONER_SANDBOX_NAMESPACE"] == "sbx"
    assert env["EXECUTIONER_SANDBOX_IMAGE"] == "executioner/sandbox:0.1.0"
    assert env["EXECUTIONER_RUNTIME_CLASS_NAME"] == "gvisor"
    assert env["EXECUTIONER_WORKER_CONCURRENCY"] == "7"
    assert "EXECUTIONER_REDIS_URL" in env
    assert spec["serviceAccountName"] == f"executioner-{component}"
    default_env = {
        e["name"]
        for e in render.find(render(), "Deployment", f"executioner-{component}")[0]["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert "EXECUTIONER_RUNTIME_CLASS_NAME" not in default_env


def test_external_redis_url_comes_from_a_secret(render):
    docs = render(values={"redis": {"enabled": False, "externalUrl": "redis://:pw@redis.example:6379/1"}})
    assert not render.find(docs, "StatefulSet") and not render.find(docs, "Service", "executioner-redis")
    secret = render.find(docs, "Secret", "executioner-redis-url")[0]
    assert secret["stringData"]["redis-url"] == "redis://:pw@redis.example:6379/1"
    for d in render.find(docs, "Deployment"):
        env = {e["name"]: e for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["EXECUTIONER_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "executioner-redis-url"


def test_no_cluster_dns_uses_service_variables(render):
    docs = render(values={"clusterDNS": False})
    for d in render.find(docs, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        assert spec["enableServiceLinks"] is True
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert "$(EXECUTIONER_REDIS_SERVICE_HOST)" in env["EXECUTIONER_REDIS_URL"]
    test_pod = render.find(docs, "Pod")[0]
    assert {e["name"]: e.get("value") for e in test_pod["spec"]["containers"][0]["env"]}[
        "API_URL"
    ] == "http://$(EXECUTIONER_API_SERVICE_HOST):8000"
    # with DNS, the kubelet does not flood the environment with EXECUTIONER_*-looking service variables
    assert all(
        d["spec"]["template"]["spec"]["enableServiceLinks"] is False for d in render.find(render(), "Deployment")
    )


def test_redis_is_protected(default, render):
    sts = render.find(default, "StatefulSet", "executioner-redis")[0]["spec"]
    container = sts["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    assert sts["template"]["spec"]["automountServiceAccountToken"] is False
    policy = render.find(default, "NetworkPolicy", "executioner-redis")[0]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    expressions = {e["key"]: e["values"] for e in rule["from"][0]["podSelector"]["matchExpressions"]}
    assert expressions["app.kubernetes.io/component"] == ["api", "worker", "operator"]
    assert expressions["app.kubernetes.io/instance"] == ["executioner"]


def _redis_sts(docs) -> dict:
    [sts] = [d for d in docs if d["kind"] == "StatefulSet"]
    return sts["spec"]


def _redis_args(docs) -> dict[str, str]:
    """redis-server's `--option value` arguments as a dict."""
    args = _redis_sts(docs)["template"]["spec"]["containers"][0]["args"]
    assert len(args) % 2 == 0 and all(a.startswith("--") for a in args[::2]), args
    return dict(zip(args[::2], args[1::2], strict=True))


def test_redis_keeps_its_data_on_a_claim_by_default(default, render):
    sts = _redis_sts(default)
    args = _redis_args(default)
    assert args["--appendonly"] == "yes" and args["--appendfsync"] == "everysec" and args["--dir"] == "/data"
    assert args["--save"] == ""  # the append-only file is the persistence; no RDB snapshots on top
    [claim] = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default StorageClass
    # the data volume is the claim, not an emptyDir
    assert "data" not in {v["name"] for v in sts["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in sts["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["data"] == "/data"
    # the claim outlives `helm uninstall` (and scale-downs) unless asked otherwise
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}

    chosen = render(
        values={"redis": {"persistence": {"storageClassName": "fast-ssd", "size": "5Gi", "deleteOnUninstall": True}}}
    )
    sts = _redis_sts(chosen)
    assert sts["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}


def test_redis_without_persistence_uses_an_empty_dir(render):
    docs = render(values={"redis": {"persistence": {"enabled": False}}})
    sts = _redis_sts(docs)
    assert "volumeClaimTemplates" not in sts and "persistentVolumeClaimRetentionPolicy" not in sts
    volumes = {v["name"]: v for v in sts["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    args = _redis_args(docs)
    assert args["--appendonly"] == "no" and args["--save"] == "" and "--appendfsync" not in args


@pytest.mark.parametrize(
    "redis, maxmemory",
    [
        ({}, 214748364),  # 80% of the default 256Mi limit
        ({"maxmemory": "200Mi"}, 200 * 1024 * 1024),
        ({"maxmemory": 150000000}, 150000000),
        ({"resources": {"limits": {"cpu": "1", "memory": "1G"}}}, 800000000),
        ({"resources": {"limits": {"cpu": "1", "memory": "2Gi"}}, "maxmemory": "1.5Gi"}, 1610612736),
        ({"persistence": {"enabled": False}}, 214748364),
    ],
)
def test_redis_memory_is_bounded_below_its_limit(render, redis, maxmemory):
    args = _redis_args(render(values={"redis": redis}))
    assert args["--maxmemory"] == str(maxmemory)
    assert args["--maxmemory-policy"] == "noeviction"


def test_redis_readiness_waits_for_the_data(default):
    container = _redis_sts(default)["template"]["spec"]["containers"][0]
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["sh", "-c"] and "redis-cli" in probe[2] and "PONG" in probe[2]
    assert "REDIS_PASSWORD" in probe[2] and "$(REDIS_PASSWORD)" not in probe[2]
    assert container["livenessProbe"]["tcpSocket"] == {"port": "redis"}


def test_monitoring_and_autoscaling_are_off_by_default(default):
    kinds = {d["kind"] for d in default}
    assert not kinds & {"ServiceMonitor", "ScaledObject", "TriggerAuthentication"}
    [worker] = [d for d in default if d["kind"] == "Deployment" and d["metadata"]["name"] == "executioner-worker"]
    assert worker["spec"]["replicas"] == 1


def test_service_monitor_scrapes_the_api(render):
    docs = render(
        values={
            "metrics": {
                "serviceMonitor": {
                    "enabled": True,
                    "interval": "15s",
                    "scrapeTimeout": "5s",
                    "labels": {"release": "kube-prometheus-stack"},
                }
            }
        }
    )
    [monitor] = render.find(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == "executioner-api" and monitor["metadata"]["namespace"] == "executioner"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["executioner"]}
    assert spec["endpoints"] == [
        {"port": "http", "path": "/metrics", "scheme": "http", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    # the selector picks the API Service and nothing else, by its labels and its port name
    [service] = render.find(docs, "Service", "executioner-api")
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
    [redis_service] = render.find(docs, "Service", "executioner-redis")
    assert not all(redis_service["metadata"]["labels"].get(k) == v for k, v in spec["selector"]["matchLabels"].items())
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_keda_scales_the_worker_on_the_celery_queue(render):
    docs = render(
        values={
            "worker": {
                "replicas": 3,
                "autoscaling": {"keda": {"enabled": True, "minReplicas": 0, "maxReplicas": 7, "listLength": 6}},
            }
        }
    )
    [scaled] = render.find(docs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1" and scaled["metadata"]["name"] == "executioner-worker"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "executioner-worker"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 7)
    assert spec["pollingInterval"] == 15 and spec["cooldownPeriod"] == 300
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"] == {
        "address": "executioner-redis.executioner.svc:6379",
        "databaseIndex": "0",
        "enableTLS": "false",
        "listName": "executioner",
        "listLength": "6",
    }
    [auth] = render.find(docs, "TriggerAuthentication")
    assert auth["apiVersion"] == "keda.sh/v1alpha1" and trigger["authenticationRef"] == {
        "name": auth["metadata"]["name"]
    }
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "executioner-redis", "key": "redis-password"}
    ]
    # KEDA's HorizontalPodAutoscaler owns the replica count: Helm no longer sets one
    [worker] = render.find(docs, "Deployment", "executioner-worker")
    assert "replicas" not in worker["spec"]
    # and KEDA's operator may reach Redis through its NetworkPolicy
    [policy] = render.find(docs, "NetworkPolicy", "executioner-redis")
    keda_rule = policy["spec"]["ingress"][1]
    assert keda_rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "keda-operator"}},
        }
    ]
    assert keda_rule["ports"] == [{"port": 6379, "protocol": "TCP"}]


def test_keda_reads_an_external_redis_from_its_url(render):
    url = "rediss://scaler:p%40ss%3Aword@redis.example:6380/2"
    docs = render(
        values={"redis": {"enabled": False, "externalUrl": url}, "worker": {"autoscaling": {"keda": {"enabled": True}}}}
    )
    [scaled] = render.find(docs, "ScaledObject")
    assert scaled["spec"]["triggers"][0]["metadata"] | {"listLength": None} == {
        "address": "redis.example:6380",
        "databaseIndex": "2",
        "enableTLS": "true",
        "listName": "executioner",
        "listLength": None,
    }
    [secret] = render.find(docs, "Secret", "executioner-redis-url")
    assert secret["stringData"] == {"redis-url": url, "redis-username": "scaler", "redis-password": "p@ss:word"}
    [auth] = render.find(docs, "TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "executioner-redis-url", "key": "redis-password"},
        {"parameter": "username", "name": "executioner-redis-url", "key": "redis-username"},
    ]
    plain = render(
        values={
            "redis": {"enabled": False, "externalUrl": "redis://:pw@redis.example/0"},
            "worker": {"autoscaling": {"keda": {"enabled": True}}},
        }
    )
    assert render.find(plain, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"]["address"] == "redis.example:6379"
    assert len(render.find(plain, "TriggerAuthentication")[0]["spec"]["secretTargetRef"]) == 1
    # without KEDA the URL Secret holds only the URL
    none = render(values={"redis": {"enabled": False, "externalUrl": url}})
    assert render.find(none, "Secret", "executioner-redis-url")[0]["stringData"] == {"redis-url": url}


def test_sandbox_namespace_is_locked_down(render):
    docs = render(values={"sandbox": {"namespace": "my-sandbox"}})
    [ns] = render.find(docs, "Namespace")
    assert ns["metadata"]["name"] == "my-sandbox"
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    [policy] = render.find(docs, "NetworkPolicy", "executioner-sandbox-deny-all")
    assert policy["metadata"]["namespace"] == "my-sandbox"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "executioner-sandbox"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    [quota] = render.find(docs, "ResourceQuota")
    assert quota["metadata"]["namespace"] == "my-sandbox" and quota["spec"]["hard"]["pods"]
    [limits] = render.find(docs, "LimitRange")
    assert limits["metadata"]["namespace"] == "my-sandbox"
    assert limits["spec"]["limits"][0]["default"]["memory"] == "128Mi"
    [sa] = [d for d in render.find(docs, "ServiceAccount") if d["metadata"]["namespace"] == "my-sandbox"]
    assert sa["automountServiceAccountToken"] is False
    existing = render(values={"sandbox": {"namespace": "my-sandbox", "createNamespace": False}})
    assert not render.find(existing, "Namespace") and render.find(
        existing, "NetworkPolicy", "executioner-sandbox-deny-all"
    )


def _rules(doc):
    return {(g, r): set(rule["verbs"]) for rule in doc["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


def test_rbac_is_least_privilege_and_namespaced_where_possible(default, render):
    roles = {d["metadata"]["name"]: d for d in render.find(default, "Role")}
    assert {d["metadata"]["namespace"] for d in roles.values()} == {"executioner-sandbox"}
    assert _rules(roles["executioner-worker"]) == {
        ("batch", "jobs"): {"create", "get", "list", "watch", "patch", "delete"},  # patch: resume the suspended Job
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get"},
        ("", "pods/attach"): {"create", "get"},  # the warm pool: the execution goes to a waiting pod's stdin
        ("", "secrets"): {"create", "get", "delete"},
        ("networking.k8s.io", "networkpolicies"): {"get", "list"},
        ("", "serviceaccounts"): {"get"},
    }
    [account_rule] = [r for r in roles["executioner-worker"]["rules"] if r["resources"] == ["serviceaccounts"]]
    assert account_rule["resourceNames"] == ["executioner-sandbox"]
    assert _rules(roles["executioner-operator"]) == {
        ("batch", "jobs"): {"create", "get", "list", "watch", "delete"},  # create: it refills the warm pool
        ("", "pods"): {"get", "list", "watch", "delete"},
        ("", "pods/log"): {"get"},
        ("", "secrets"): {"list", "delete"},
    }
    # the only cluster-wide grants to components: the operator's and the API's, for what cannot be namespaced (the
    # other ClusterRoles are bound to no one: they aggregate into the built-in edit/admin/view roles)
    [api_role] = render.find(default, "ClusterRole", "executioner-executioner-api")
    assert _rules(api_role) == {
        ("authentication.k8s.io", "tokenreviews"): {"create"},
        ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
        ("executioner.dev", "executionrequests"): {"get"},
    }
    [cluster_role] = render.find(default, "ClusterRole", "executioner-executioner-operator")
    assert _rules(cluster_role) == {
        ("executioner.dev", "executionrequests"): {"get", "list", "watch", "patch", "update"},
        ("executioner.dev", "executionrequests/status"): {"get", "patch", "update"},
        ("", "events"): {"create", "patch"},
        ("events.k8s.io", "events"): {"create", "patch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
    }
    bindings = {b["metadata"]["name"]: b for b in render.find(default, "ClusterRoleBinding") if not is_hook(b)}
    assert set(bindings) == {"executioner-executioner-operator", "executioner-executioner-api"}
    for component in ("operator", "api"):
        binding = bindings[f"executioner-executioner-{component}"]
        assert binding["roleRef"]["name"] == f"executioner-executioner-{component}"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"executioner-{component}", "namespace": "executioner"}
        ]
    for d in render.find(default, "RoleBinding"):
        component = d["metadata"]["name"].rsplit("-", 1)[-1]
        assert d["roleRef"]["name"] == d["metadata"]["name"]
        assert d["subjects"] == [
            {"kind": "ServiceAccount", "name": f"executioner-{component}", "namespace": "executioner"}
        ]
    for d in render.find(default, "Role") + render.find(default, "ClusterRole"):
        for rule in d["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], d["metadata"]["name"]
    # one ServiceAccount per component; only the ones that call the Kubernetes API get a token
    accounts = {
        d["metadata"]["name"]: d["automountServiceAccountToken"]
        for d in render.find(default, "ServiceAccount")
        if d["metadata"]["namespace"] == "executioner"
    }
    assert accounts == {
        "executioner-api": True,  # api.kubernetesArtifactAccess
        "executioner-worker": True,
        "executioner-operator": True,
        "executioner-redis": False,
        "executioner-uninstall": False,  # its Job's pod asks for the token itself
    }
    without = render(values={"operator": {"enabled": False}, "api": {"kubernetesArtifactAccess": False}})
    assert not render.find(without, "ClusterRole", "executioner-executioner-operator")
    assert not render.find(without, "ClusterRole", "executioner-executioner-api")
    assert not render.find(without, "ClusterRoleBinding")
    assert [d["metadata"]["name"] for d in render.find(without, "Role")] == ["executioner-worker"]


def _env(docs, component) -> dict[str, str]:
    [deployment] = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"executioner-{component}"
    ]
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_pool_sizes_reach_the_operator_that_fills_and_the_worker_that_claims(render, default, monkeypatch):
    for component in ("worker", "operator"):
        assert json.loads(_env(default, component)["EXECUTIONER_KUBERNETES_POOL_SIZES"]) == {"python": 2}
    assert "EXECUTIONER_KUBERNETES_POOL_SIZES" not in _env(default, "api")
    docs = render(values={"sandbox": {"pool": {"sizes": {"python": 3, "python-data": 1}}}})
    for component in ("worker", "operator"):
        env = _env(docs, component)
        for name in ("BACKEND", "RUNTIMES", "RUNTIME_IMAGES", "KUBERNETES_POOL_SIZES"):
            monkeypatch.setenv(f"EXECUTIONER_{name}", env[f"EXECUTIONER_{name}"])
        assert Settings().kubernetes_pool_sizes == {"python": 3, "python-data": 1}
    # nobody would fill a pool without the operator: the worker then starts a Job for every execution
    without = render(values={"operator": {"enabled": False}})
    assert "EXECUTIONER_KUBERNETES_POOL_SIZES" not in _env(without, "worker")


@pytest.mark.parametrize(
    "values",
    [
        {"sandbox": {"pool": {"sizes": {"python": 0}}}},
        {"sandbox": {"pool": {"sizes": None}}},  # Helm merges {} into the default; null removes it
        {"operator": {"enabled": False}},
    ],
)
def test_without_a_pool_the_worker_may_not_attach_and_the_operator_may_not_create_jobs(render, values):
    roles = {d["metadata"]["name"]: _rules(d) for d in render(values=values) if d["kind"] == "Role"}
    assert ("", "pods/attach") not in roles["executioner-worker"]
    if "executioner-operator" in roles:
        assert roles["executioner-operator"][("batch", "jobs")] == {"get", "list", "watch", "delete"}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"sandbox": {"pool": {"sizes": {"ruby": 1}}}}, "invalid propertyName 'ruby'"),
        ({"sandbox": {"pool": {"sizes": {"python": -1}}}}, "/sandbox/pool/sizes/python"),
        ({"sandbox": {"pool": {"sizes": {"python": "2"}}}}, "/sandbox/pool/sizes/python"),
        ({"sandbox": {"pool": {"size": 2}}}, "additional properties 'size'"),
        (
            {"runtimes": {"offered": ["python"]}, "sandbox": {"pool": {"sizes": {"python-data": 1}}}},
            "sandbox.pool.sizes names the runtime python-data, which runtimes.offered does not offer",
        ),
        (
            {"sandbox": {"pool": {"sizes": {"python": 40, "python-data": 10}}}},
            "asks for 50 pool pods, but sandbox.resourceQuota.hard.pods is 50",
        ),
        (
            {"sandbox": {"pool": {"sizes": {"python": 3}}, "resourceQuota": {"hard": {"count/jobs.batch": "3"}}}},
            "sandbox.resourceQuota.hard.count/jobs.batch is 3",
        ),
    ],
)
def test_bad_pool_sizes_are_refused_naming_them(render, values, message):
    p = render.run(values=values, check=False)
    assert p.returncode != 0, f"accepted {values}"
    assert message in p.stderr, p.stderr


def test_crd_matches_the_contract(render):
    [crd] = [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    spec = crd["spec"]
    assert spec["group"] == "executioner.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "ExecutionRequest" and spec["names"]["shortNames"] == ["exr"]
    assert spec["names"]["plural"] == "executionrequests" and spec["names"]["singular"] == "executionrequest"
    [version] = spec["versions"]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Phase", "Exit", "Duration", "Runtime", "Age"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    s = schema["spec"]
    assert s["required"] == ["code"]
    assert s["x-kubernetes-validations"] == [{"rule": "self == oldSelf", "message": "spec is immutable"}]
    assert (s["properties"]["code"]["minLength"], s["properties"]["code"]["maxLength"]) == (1, 65536)
    assert s["properties"]["stdin"]["default"] == "" and s["properties"]["stdin"]["maxLength"] == 1048576
    limits = s["properties"]["limits"]["properties"]
    assert limits["timeoutSeconds"]["maximum"] == 60 and limits["timeoutSeconds"]["default"] == 5
    assert (limits["memoryMb"]["minimum"], limits["memoryMb"]["maximum"]) == (32, 512)
    files = s["properties"]["files"]["items"]
    assert files["required"] == ["path", "contentBase64"]
    status = schema["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert status["properties"]["phase"]["enum"] == [
        "Pending",
        "Running",
        "Succeeded",
        "Failed",
        "TimedOut",
        "MemoryExceeded",
        "Cancelled",
        "Error",
        "Rejected",
    ]
    assert status["properties"]["exitCode"] == {"type": "integer", "nullable": True}
    assert set(status["properties"]) >= {
        "executionId",
        "stdout",
        "stderr",
        "stdoutTruncated",
        "stderrTruncated",
        "error",
        "startedAt",
        "finishedAt",
        "durationMs",
        "conditions",
        "artifacts",
        "artifactsTruncated",
    }


def test_execution_bounds_shape_the_crd_and_every_component(render):
    values = {
        "executions": {
            "defaultTimeoutSeconds": 3,
            "maxTimeoutSeconds": 10,
            "defaultMemoryMb": 64,
            "minMemoryMb": 48,
            "maxMemoryMb": 256,
            "maxCodeBytes": 2000,
            "maxStdinBytes": 500,
        }
    }
    docs = render(values=values)
    [crd] = render.find(docs, "CustomResourceDefinition")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    limits = spec["limits"]["properties"]
    assert (limits["timeoutSeconds"]["default"], limits["timeoutSeconds"]["maximum"]) == (3, 10)
    assert (limits["memoryMb"]["minimum"], limits["memoryMb"]["maximum"]) == (48, 256)
    assert (spec["code"]["maxLength"], spec["stdin"]["maxLength"]) == (2000, 500)
    expected = {
        "EXECUTIONER_DEFAULT_TIMEOUT_SECONDS": "3",
        "EXECUTIONER_MAX_TIMEOUT_SECONDS": "10",
        "EXECUTIONER_DEFAULT_MEMORY_MB": "64",
        "EXECUTIONER_MIN_MEMORY_MB": "48",
        "EXECUTIONER_MAX_MEMORY_MB": "256",
        "EXECUTIONER_MAX_CODE_BYTES": "2000",
        "EXECUTIONER_MAX_STDIN_BYTES": "500",
    }
    for deployment in render.find(docs, "Deployment"):
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert {k: env.get(k) for k in expected} == expected, deployment["metadata"]["name"]
    assert not render.find(render(values={"crds": {"enabled": False}}), "CustomResourceDefinition")
    [unkept] = render.find(render(values={"crds": {"keep": False}}), "CustomResourceDefinition")
    assert "annotations" not in unkept["metadata"]


def test_helm_test_pod(default, render):
    [pod] = render.find(default, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    container = spec["containers"][0]
    assert container["image"] == "executioner/app:0.1.0" and container["command"][0] == "python"
    assert "import os, sys, time, httpx" in container["args"][0] and "hello world" in container["args"][0]


def test_every_value_is_documented_and_in_the_readme():
    spec = importlib.util.spec_from_file_location("values_table", REPO / "hack" / "chart" / "values-table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (CHART / "values.yaml").read_text()
    documented = {path for path, _ in module.documented_keys(text)}

    def walk(node, prefix=""):
        for key, value in node.items():
            yield prefix + key, value
            if isinstance(value, dict) and value:
                yield from walk(value, f"{prefix}{key}.")

    undocumented = []
    for path, value in walk(yaml.safe_load(text)):
        parts = path.split(".")
        covered = any(".".join(parts[:i]) in documented for i in range(1, len(parts) + 1))
        is_section = (
            isinstance(value, dict)
            and value
            and all(f"{path}.{k}" in documented or isinstance(v, dict) for k, v in value.items())
        )
        if not covered and not is_section:
            undocumented.append(path)
    assert not undocumented, f"values without a '# -- ' comment above them: {undocumented}"
    readme = (CHART / "README.md").read_text()
    assert module.table() in readme, "the values table in the chart README is stale: hack/chart/values-table.py --write"


def test_values_schema_is_strict():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])


def test_executionrequest_access_is_aggregated_into_the_default_roles(render, default):
    roles = {d["metadata"]["name"]: d for d in render.find(default, "ClusterRole")}
    edit = roles["executioner-executioner-executionrequests-edit"]
    view = roles["executioner-executioner-executionrequests-view"]
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {k: v for k, v in edit["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        aggregate + "edit": "true",
        aggregate + "admin": "true",
    }
    assert {k: v for k, v in view["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        aggregate + "view": "true"
    }

    def verbs(role, resource):
        return {
            v
            for rule in role["rules"]
            if rule["apiGroups"] == ["executioner.dev"] and resource in rule["resources"]
            for v in rule["verbs"]
        }

    assert verbs(edit, "executionrequests") == {"create", "delete", "get", "list", "watch", "update", "patch"}
    assert verbs(edit, "executionrequests/status") == {"get"}
    assert verbs(view, "executionrequests") == {"get", "list", "watch"}
    assert verbs(view, "executionrequests/status") == {"get"}
    # nothing else: no other group or resource leaks into the built-in roles
    for role in (edit, view):
        assert {r for rule in role["rules"] for r in rule["resources"]} <= {
            "executionrequests",
            "executionrequests/status",
        }
    off = render(values={"rbac": {"aggregateToDefaultRoles": False}})
    assert {d["metadata"]["name"] for d in render.find(off, "ClusterRole") if not is_hook(d)} == {
        "executioner-executioner-operator",
        "executioner-executioner-api",
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pods_carry_a_checksum_of_their_secrets(render, variant):
    docs = render(values=VARIANTS[variant])
    deployments = render.find(docs, "Deployment")
    assert deployments
    for d in deployments:
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/secrets"]), d["metadata"]["name"]


def test_secrets_checksum_follows_the_rendered_secrets_and_keeps_pod_annotations(render):
    def checksums(values):
        return {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]
            for d in render.find(render(values=values), "Deployment")
        }

    # the external Redis URL is a rendered Secret with no random part: same values, same hash; a new URL, a new hash
    external = {
        "redis": {"enabled": False, "externalUrl": "redis://:one@redis.example:6379/0"},
        "auth": {"enabled": False},
    }
    first, again = checksums(external), checksums(external)
    assert first == again
    changed = checksums({**external, "redis": {"enabled": False, "externalUrl": "redis://:two@redis.example:6379/0"}})
    for name in first:
        assert changed[name]["checksum/secrets"] != first[name]["checksum/secrets"], name
    # a user's pod annotations stay beside it
    mine = checksums({**external, "api": {"podAnnotations": {"example.com/team": "a"}}})
    assert mine["executioner-api"]["example.com/team"] == "a"
    assert mine["executioner-api"]["checksum/secrets"] == first["executioner-api"]["checksum/secrets"]


def test_the_chart_states_the_kubernetes_versions_it_installs_on(render):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.29.0-0"
    assert render()  # offline, helm assumes the Kubernetes version it was built for (1.34 here, as upstream's builds)
    refused = render.run("--kube-version", "1.28.0", check=False)
    assert refused.returncode != 0
    assert "chart requires kubeVersion: >=1.29.0-0 which is incompatible with Kubernetes v1.28.0" in refused.stderr


def _policy(docs, name) -> dict:
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"], name
    return policy["spec"]


REDIS_PEER = {
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "executioner",
            "app.kubernetes.io/instance": "executioner",
            "app.kubernetes.io/component": "redis",
        }
    }
}
DNS_RULE = {
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
}
KUBE_API_RULE = {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}


def test_each_component_may_talk_only_to_what_it_needs(default):
    api = _policy(default, "executioner-api")
    assert api["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert api["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]  # from anywhere, on its port only
    # the Kubernetes API for the reviews of kubectl users' tokens (api.kubernetesArtifactAccess)
    assert api["egress"] == [
        {"to": [REDIS_PEER], "ports": [{"port": 6379, "protocol": "TCP"}]},
        KUBE_API_RULE,
        DNS_RULE,
    ]
    for component in ("worker", "operator"):
        spec = _policy(default, f"executioner-{component}")
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        assert spec["ingress"] == []  # nothing connects to them
        assert spec["egress"] == [
            {"to": [REDIS_PEER], "ports": [{"port": 6379, "protocol": "TCP"}]},
            KUBE_API_RULE,
            DNS_RULE,
        ]
    test = _policy(default, "executioner-test-hello")
    assert test["ingress"] == [] and test["egress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_without_kubernetes_artifact_access_the_api_never_talks_to_kubernetes(render):
    """api.kubernetesArtifactAccess false: no token in the pod, no grant, no path to the Kubernetes API."""
    docs = render(values={"api": {"kubernetesArtifactAccess": False}})
    [deployment] = render.find(docs, "Deployment", "executioner-api")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "EXECUTIONER_KUBERNETES_ARTIFACT_ACCESS" not in {e["name"] for e in pod["containers"][0]["env"]}
    [account] = render.find(docs, "ServiceAccount", "executioner-api")
    assert account["automountServiceAccountToken"] is False
    assert not render.find(docs, "ClusterRole", "executioner-executioner-api")
    assert not render.find(docs, "ClusterRoleBinding", "executioner-executioner-api")
    assert _policy(docs, "executioner-api")["egress"] == [
        {"to": [REDIS_PEER], "ports": [{"port": 6379, "protocol": "TCP"}]},
        DNS_RULE,
    ]


def test_network_policies_follow_the_values(render):
    docs = render(
        values={
            "clusterDNS": False,
            "api": {"port": 8080},
            "networkPolicy": {
                "kubernetesApi": {"ports": [6443], "cidrs": ["192.0.2.2/32"]},
                "apiFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
            },
        }
    )
    api = _policy(docs, "executioner-api")
    assert api["ingress"] == [
        {
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
        }
    ]
    assert all(53 not in {p["port"] for p in rule["ports"]} for rule in api["egress"])  # no DNS without one
    worker = _policy(docs, "executioner-worker")
    assert worker["egress"][1] == {
        "ports": [{"port": 6443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "192.0.2.2/32"}}],
    }
    external = render(values={"redis": {"enabled": False, "externalUrl": "rediss://:pw@redis.example:6380/0"}})
    assert _policy(external, "executioner-api")["egress"][0] == {"ports": [{"port": 6380, "protocol": "TCP"}]}
    plain = render(values={"redis": {"enabled": False, "externalUrl": "redis://:pw@redis.example/0"}})
    assert _policy(plain, "executioner-worker")["egress"][0] == {"ports": [{"port": 6379, "protocol": "TCP"}]}
    off = render(values={"networkPolicy": {"enabled": False}, "operator": {"enabled": False}})
    assert {d["metadata"]["name"] for d in render.find(off, "NetworkPolicy")} == {
        "executioner-redis",
        "executioner-sandbox-deny-all",
    }
    no_operator = render(values={"operator": {"enabled": False}})
    assert not render.find(no_operator, "NetworkPolicy", "executioner-operator")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"networkPolicy": {"kubernetesApi": {"ports": [], "cidrs": []}}}, "/networkPolicy/kubernetesApi/ports"),
        (
            {"networkPolicy": {"kubernetesApi": {"ports": [443], "cidrs": ["10.0.0.1"]}}},
            "/networkPolicy/kubernetesApi/cidrs/0",
        ),
        ({"networkPolicy": {"apiFrom": [{"pods": {}}]}}, "/networkPolicy/apiFrom/0"),
        (
            {"worker": {"resources": {"limits": {"ephemeral-storage": "lots"}}}},
            "/worker/resources/limits/ephemeral-storage",
        ),
        ({"redis": {"resources": {"requests": {"ephemeral-storage": None}}}}, "ephemeral-storage"),
        ({"sandbox": {"ephemeralStorageMb": 0}}, "/sandbox/ephemeralStorageMb"),
        ({"api": {"autoscaling": {"enabled": True, "minReplicas": 0}}}, "/api/autoscaling/minReplicas"),
    ],
)
def test_schema_rejects_bad_policy_storage_and_autoscaling_values(render, values, message):
    p = render.run(values=values, check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr


def test_worker_and_operator_probes_mean_something(default, render):
    worker = render.find(default, "Deployment", "executioner-worker")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    # the probe checks the age of the file the worker's consumer loop touches
    assert env["EXECUTIONER_WORKER_HEARTBEAT_FILE"] == "/tmp/worker-heartbeat"
    command = worker["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"] and "/tmp/worker-heartbeat" in command[2] and "-lt 60" in command[2]
    operator = render.find(default, "Deployment", "executioner-operator")[0]["spec"]["template"]["spec"]["containers"][
        0
    ]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["EXECUTIONER_OPERATOR_LIVENESS_ENDPOINT"] == "http://0.0.0.0:8080/healthz"
    assert operator["ports"] == [{"name": "liveness", "containerPort": 8080, "protocol": "TCP"}]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    none = render(values={"worker": {"livenessProbe": None}})  # null drops Helm's default (an empty map would merge)
    assert (
        "livenessProbe"
        not in render.find(none, "Deployment", "executioner-worker")[0]["spec"]["template"]["spec"]["containers"][0]
    )


def test_sandbox_storage_bound_reaches_the_worker_and_operator(render):
    docs = render(values={"sandbox": {"ephemeralStorageMb": 48}})
    for component in ("worker", "operator"):
        container = render.find(docs, "Deployment", f"executioner-{component}")[0]["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert {e["name"]: e.get("value") for e in container["env"]}["EXECUTIONER_SANDBOX_EPHEMERAL_STORAGE_MB"] == "48"


def test_one_replica_gets_no_disruption_budget_or_spreading(default):
    assert not [d for d in default if d["kind"] in ("PodDisruptionBudget", "HorizontalPodAutoscaler")]
    for d in default:
        if d["kind"] == "Deployment":
            assert "topologySpreadConstraints" not in d["spec"]["template"]["spec"], d["metadata"]["name"]


@pytest.mark.parametrize(
    "values, scaled",
    [
        ({"api": {"replicas": 3}}, {"api"}),
        ({"worker": {"replicas": 2}}, {"worker"}),
        (
            {"api": {"autoscaling": {"enabled": True}}, "worker": {"autoscaling": {"keda": {"enabled": True}}}},
            {"api", "worker"},
        ),
    ],
)
def test_several_replicas_get_a_disruption_budget_and_spread_across_nodes(render, values, scaled):
    docs = render(values=values)
    budgets = {d["metadata"]["name"]: d["spec"] for d in render.find(docs, "PodDisruptionBudget")}
    assert set(budgets) == {f"executioner-{c}" for c in scaled}
    for component in scaled:
        budget = budgets[f"executioner-{component}"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        spec = render.find(docs, "Deployment", f"executioner-{component}")[0]["spec"]["template"]["spec"]
        [spread] = spec["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
        # a single-node cluster still runs every pod
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
        assert spread["labelSelector"]["matchLabels"] == budget["selector"]["matchLabels"]


def test_api_autoscaler_is_off_by_default_and_owns_the_replicas_when_on(render, default):
    assert render.find(default, "Deployment", "executioner-api")[0]["spec"]["replicas"] == 1
    docs = render(
        values={
            "api": {
                "autoscaling": {
                    "enabled": True,
                    "minReplicas": 3,
                    "maxReplicas": 9,
                    "targetCPUUtilizationPercentage": 60,
                }
            }
        }
    )
    [hpa] = render.find(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["metadata"]["name"] == "executioner-api"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "executioner-api"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}
    ]
    assert "replicas" not in render.find(docs, "Deployment", "executioner-api")[0]["spec"]
    p = render.run(values={"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}, check=False)
    assert p.returncode != 0 and "api.autoscaling.minReplicas must not exceed maxReplicas" in p.stderr, p.stderr


def test_uninstall_lets_executionrequests_go_with_least_privilege(render, default):
    """A post-delete hook: the operator, its account and its role are gone by then, so the hook has its own."""
    hooks = [d for d in default if d["metadata"]["labels"].get("app.kubernetes.io/component") == "uninstall"]
    assert sorted(d["kind"] for d in hooks) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Job",
        "NetworkPolicy",
        "ServiceAccount",
    ]
    assert {d["metadata"]["annotations"]["helm.sh/hook"] for d in hooks} == {"post-delete"}
    [role] = [d for d in hooks if d["kind"] == "ClusterRole"]
    assert _rules(role) == {
        ("executioner.dev", "executionrequests"): {"list", "patch"},
        ("executioner.dev", "executionrequests/status"): {"patch"},
    }
    [job] = [d for d in hooks if d["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["release-executionrequests"]
    assert pod["serviceAccountName"] == role["metadata"]["name"]
    assert not [d for d in render(values={"operator": {"enabled": False}}) if d["kind"] == "Job" and is_hook(d)]
    # a sandbox namespace the release did not create outlives it: the hook deletes the warm pool's Jobs there, with a
    # Role there that allows just that (in one the release deletes, every Job goes with it)
    kept = render(values={"sandbox": {"namespace": "sbx", "createNamespace": False}})
    hooks = [d for d in kept if is_hook(d) and d["metadata"]["labels"]["app.kubernetes.io/component"] == "uninstall"]
    [job] = [d for d in hooks if d["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "release-executionrequests",
        "--pool-namespace",
        "sbx",
    ]
    [sandbox_role] = [d for d in hooks if d["kind"] == "Role"]
    [binding] = [d for d in hooks if d["kind"] == "RoleBinding"]
    assert sandbox_role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "sbx"
    assert _rules(sandbox_role) == {("batch", "jobs"): {"list", "delete"}}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": role["metadata"]["name"], "namespace": "executioner"}
    ]


def test_each_release_gets_its_own_sandbox_namespace(render):
    def sandbox_namespace(docs):
        [namespace] = render.find(docs, "Namespace")
        [worker] = render.find(
            docs, "Deployment", next(d["metadata"]["name"] for d in docs if d["metadata"]["name"].endswith("-worker"))
        )
        env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["EXECUTIONER_SANDBOX_NAMESPACE"] == namespace["metadata"]["name"]
        assert {
            d["metadata"]["namespace"] for d in render.find(docs, "NetworkPolicy") if "sandbox" in d["metadata"]["name"]
        } <= {namespace["metadata"]["name"]}
        return namespace["metadata"]["name"]

    assert sandbox_namespace(render()) == "executioner-sandbox"
    assert sandbox_namespace(render(release="team-a", namespace="team-a")) == "team-a-executioner-sandbox"
    assert sandbox_namespace(render(release="team-b", namespace="team-a")) == "team-b-executioner-sandbox"
    assert sandbox_namespace(render(values={"sandbox": {"namespace": "chosen"}})) == "chosen"


def test_an_open_api_answers_to_its_service_names(render):
    """Without keys the API refuses Host names it does not know (DNS rebinding); in-cluster clients use the Service's."""
    [api] = render.find(render(values={"auth": {"enabled": False}}), "Deployment", "executioner-api")
    env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["EXECUTIONER_ALLOWED_HOSTS"].split(",") == [
        "executioner-api",
        "executioner-api.executioner",
        "executioner-api.executioner.svc",
        "executioner-api.executioner.svc.cluster.local",
    ]
    [keyed] = render.find(render(), "Deployment", "executioner-api")
    assert "EXECUTIONER_ALLOWED_HOSTS" not in str(keyed)


def test_runtimes_and_their_images_reach_every_component_and_the_crd(render, monkeypatch):
    docs = render(
        values={"runtimes": {"images": {"python-data": {"repository": "reg.example/sbx-data", "tag": "1.2"}}}}
    )
    for component in ("api", "worker", "operator"):
        container = render.find(docs, "Deployment", f"executioner-{component}")[0]["spec"]["template"]["spec"][
            "containers"
        ][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["EXECUTIONER_RUNTIMES"] == "python,python-data"
        if component != "api":
            assert json.loads(env["EXECUTIONER_RUNTIME_IMAGES"]) == {"python-data": "reg.example/sbx-data:1.2"}
            # what the worker and operator read from it: each runtime's image
            for name in ("BACKEND", "SANDBOX_IMAGE", "RUNTIMES", "RUNTIME_IMAGES"):
                monkeypatch.setenv(f"EXECUTIONER_{name}", env[f"EXECUTIONER_{name}"])
            settings = Settings()
            assert settings.runtime_image("python") == "executioner/sandbox:0.1.0"
            assert settings.runtime_image("python-data") == "reg.example/sbx-data:1.2"
    [crd] = render.find(docs, "CustomResourceDefinition")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["runtime"]["enum"] == ["python", "python-data"] and spec["runtime"]["default"] == "python"
    # unset, the Submitter gives the runtime's own default memory (python-data needs more)
    assert "default" not in spec["limits"]["properties"]["memoryMb"]
    # the default image follows the chart's version
    default = render.find(render(), "Deployment", "executioner-worker")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in default["env"]}
    assert json.loads(env["EXECUTIONER_RUNTIME_IMAGES"]) == {"python-data": "executioner/sandbox-python-data:0.1.0"}


def test_offering_only_python_needs_no_other_image(render):
    docs = render(values={"runtimes": {"offered": ["python"], "images": {}}})
    container = render.find(docs, "Deployment", "executioner-worker")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["EXECUTIONER_RUNTIMES"], env["EXECUTIONER_RUNTIME_IMAGES"]) == ("python", "{}")
    [crd] = render.find(docs, "CustomResourceDefinition")
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["runtime"][
        "enum"
    ] == ["python"]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"runtimes": {"offered": ["python-data"]}}, "/runtimes/offered"),
        ({"runtimes": {"offered": ["python", "python-gpu"]}}, "/runtimes/offered/1"),
        ({"runtimes": {"images": {"python-data": {"repository": "x", "tag": "latest"}}}}, "/runtimes/images"),
        ({"runtimes": {"images": {"python-data": None}}}, "runtimes.images.python-data.repository is not set"),
    ],
)
def test_bad_runtime_values_are_refused_naming_them(render, values, message):
    p = render.run(values=values, check=False)
    assert p.returncode != 0, f"accepted {values}"
    assert message in p.stderr, p.stderr
