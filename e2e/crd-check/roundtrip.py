import sys, json, subprocess, yaml
# Apply-then-read-back: every spec field written must come back (apiserver prunes silently).
plural = {"Policy": "policies", "LibraryPolicy": "librarypolicies", "Datasource": "datasources", "ActionRequest": "actionrequests"}
def sub(a, b, path="spec"):
    """Every key/value of a must be in b (b may add defaults)."""
    errs = []
    if isinstance(a, dict):
        if not isinstance(b, dict): return [f"{path}: {a!r} -> {b!r}"]
        for k, v in a.items():
            if k not in b: errs.append(f"{path}.{k}: PRUNED ({v!r})")
            else: errs += sub(v, b[k], f"{path}.{k}")
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b): return [f"{path}: {a!r} -> {b!r}"]
        for i, (x, y) in enumerate(zip(a, b)): errs += sub(x, y, f"{path}[{i}]")
    elif a != b: errs.append(f"{path}: {a!r} -> {b!r}")
    return errs
bad = 0
for f in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(f)):
        if not doc or doc.get("apiVersion") != "congress.dev/v1alpha1": continue
        name = doc["metadata"]["name"]
        got = json.loads(subprocess.check_output(["kubectl", "get", plural[doc["kind"]], name, "-o", "json"]))
        errs = sub(doc.get("spec"), got.get("spec"))
        added = {k: got["spec"][k] for k in got["spec"] if k not in (doc.get("spec") or {})}
        print(f"{doc['kind']}/{name}: {'OK' if not errs else 'FAIL'}" + (f"  (server defaults added: {added})" if added else ""))
        for e in errs: print("   ", e); bad += 1
sys.exit(1 if bad else 0)
