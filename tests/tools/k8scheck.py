#!/usr/bin/python3
"""Check deploy/kubernetes/pinwarden.yaml for what pinwarden needs on a node.

usage: k8scheck.py MANIFEST POLICY_OUT

Loads every document with PyYAML and checks: a DaemonSet (apps/v1) whose selector
matches its pods; hostPID; a privileged container; the host paths the daemon uses
(/sys/fs/bpf, /sys/fs/cgroup, /sys/kernel/btf, /run/pinwarden) mounted at the same
paths; every mount naming a declared volume; the policy read from a ConfigMap in the
same namespace, mounted read-only at the directory `--policy` names, not writable by
group or others; a service account without a token. Writes that policy to
POLICY_OUT (for `pinwarden check`). Exit 1 with every problem found, one per line.
"""
import os
import sys

import yaml

HOST_PATHS = ["/sys/fs/bpf", "/sys/fs/cgroup", "/sys/kernel/btf", "/run/pinwarden"]
problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)
    return cond


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1], encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    if not need(len(by_kind.get("DaemonSet", [])) == 1, "exactly one DaemonSet"):
        return
    ds = by_kind["DaemonSet"][0]
    ns = ds["metadata"].get("namespace")
    need(ds.get("apiVersion") == "apps/v1", "DaemonSet apiVersion apps/v1")
    need(ns and any(n["metadata"]["name"] == ns for n in by_kind.get("Namespace", [])),
         f"the namespace {ns!r} is declared")
    spec = ds["spec"]
    tmpl = spec["template"]
    labels = tmpl["metadata"].get("labels", {})
    need(spec["selector"]["matchLabels"].items() <= labels.items(),
         "the selector matches the pod template's labels")
    pod = tmpl["spec"]
    need(pod.get("hostPID") is True, "hostPID: true")
    need(pod.get("automountServiceAccountToken") is False, "no service account token")
    need(any(t.get("operator") == "Exists" and "key" not in t for t in pod.get("tolerations", [])),
         "tolerates every taint (runs on every node)")
    need(pod.get("priorityClassName") == "system-node-critical", "system-node-critical")
    sa = pod.get("serviceAccountName")
    need(any(a["metadata"]["name"] == sa and a["metadata"].get("namespace") == ns
             for a in by_kind.get("ServiceAccount", [])), f"service account {sa!r} declared")

    if not need(len(pod.get("containers", [])) == 1, "one container"):
        return
    c = pod["containers"][0]
    need(c.get("securityContext", {}).get("privileged") is True, "a privileged container")
    argv = c.get("command", []) + c.get("args", [])
    need(argv[:2] == ["pinwarden", "run"], "runs `pinwarden run`")
    need(c.get("readinessProbe", {}).get("exec", {}).get("command", [])[:2] ==
         ["pinwarden", "status"], "readiness from `pinwarden status`")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path, m in mounts.items():
        need(m["name"] in volumes, f"mount {path} names a declared volume")
    for path in HOST_PATHS:
        m = mounts.get(path)
        if need(m is not None, f"{path} is mounted"):
            v = volumes.get(m["name"], {})
            need(v.get("hostPath", {}).get("path") == path,
                 f"{path} is the node's {path} (hostPath)")

    # --policy names a file in a read-only ConfigMap volume of this namespace
    if not need("--policy" in argv, "--policy is given"):
        return
    policy_path = argv[argv.index("--policy") + 1]
    dirname, key = os.path.split(policy_path)
    m = mounts.get(dirname)
    if not need(m is not None, f"{dirname} (the policy's directory) is mounted"):
        return
    need(m.get("readOnly") is True, f"{dirname} is mounted read-only")
    vol = volumes.get(m["name"], {})
    cm_ref = vol.get("configMap")
    if not need(cm_ref is not None, f"{dirname} is a ConfigMap volume"):
        return
    need(not (cm_ref.get("defaultMode", 0o644) & 0o022), "the policy file is not group/other-writable")
    cms = [cm for cm in by_kind.get("ConfigMap", [])
           if cm["metadata"]["name"] == cm_ref["name"] and cm["metadata"].get("namespace") == ns]
    if not need(len(cms) == 1, f"ConfigMap {cm_ref['name']!r} declared in {ns!r}"):
        return
    data = cms[0].get("data", {})
    if need(key in data, f"the ConfigMap has the key {key!r}"):
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            f.write(data[key])
        os.chmod(sys.argv[2], 0o600)

    # --metrics, when given, goes to a mounted host directory
    if "--metrics" in argv:
        mdir = os.path.dirname(argv[argv.index("--metrics") + 1])
        need(mdir in mounts and "hostPath" in volumes.get(mounts[mdir]["name"], {}),
             f"the metrics directory {mdir} is a host directory")


main()
if problems:
    print("\n".join(f"k8scheck: missing: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print("k8scheck: ok")
