#!/usr/bin/env python3
"""Convert workload (a) of the shared benchmarks into congress fixtures and manifests.

usage: workload_a_fixtures.py N OUTDIR [SHARED_BENCH]

Runs `gen_policy.py N` (from SHARED_BENCH, default ../shared/bench next to the crate)
into OUTDIR/facts, then writes

  OUTDIR/data/datasources.yaml   Datasource manifests: nova, neutron, keystone, glance
  OUTDIR/data/<ds>.json          one fixture per datasource, positional rows
                                 (JSON: parsed much faster than YAML at 100k rows)
  OUTDIR/policy/policy.yaml      a Policy `classification` whose text is
                                 programs/policy.congress

so that `congress eval -f OUTDIR/policy --data OUTDIR/data` evaluates workload (a).
A .facts field becomes an integer when it parses as one, else a string (as the
`congress bench` reader does).
"""
import json
import os
import subprocess
import sys

# (datasource, table, columns, .facts stem), as congress's bench reads them.
TABLES = [
    ("nova", "servers", ["id", "tenant", "image", "status", "host"], "servers"),
    ("neutron", "ports", ["id", "server", "network", "ip"], "ports"),
    ("neutron", "networks", ["id", "tenant", "shared", "lo", "hi"], "networks"),
    ("keystone", "tenants", ["id", "enabled"], "tenants"),
    ("glance", "images", ["id", "approved"], "images"),
]


def field(s):
    try:
        return int(s)
    except ValueError:
        return s


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    n, out = int(sys.argv[1]), sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    shared = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "..", "shared", "bench")
    facts = os.path.join(out, "facts")
    data = os.path.join(out, "data")
    policy = os.path.join(out, "policy")
    for d in (facts, data, policy):
        os.makedirs(d, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(shared, "gen_policy.py"), str(n), facts], check=True)

    by_ds = {}
    for ds, table, cols, stem in TABLES:
        by_ds.setdefault(ds, []).append((table, cols, stem))

    manifests = []
    for ds, tables in by_ds.items():
        lines = [
            "apiVersion: congress.dev/v1alpha1",
            "kind: Datasource",
            "metadata:",
            f"  name: {ds}",
            "spec:",
            f"  driver: {ds}",
            "  tables:",
        ]
        for table, cols, _ in tables:
            lines.append(f"    - name: {table}")
            lines.append(f"      columns: [{', '.join(cols)}]")
        manifests.append("\n".join(lines) + "\n")

        fixture = {"datasource": ds, "tables": {}}
        for table, cols, stem in tables:
            rows = []
            with open(os.path.join(facts, f"{stem}.facts")) as f:
                for line in f:
                    line = line.rstrip("\n")
                    if line:
                        row = [field(x) for x in line.split("\t")]
                        assert len(row) == len(cols), (stem, row)
                        rows.append(row)
            fixture["tables"][table] = rows
        with open(os.path.join(data, f"{ds}.json"), "w") as f:
            # One row per line keeps the file diffable and error positions useful.
            f.write('{"datasource": %s, "tables": {\n' % json.dumps(ds))
            for i, (table, rows) in enumerate(fixture["tables"].items()):
                f.write("%s: [\n" % json.dumps(table))
                f.write(",\n".join(json.dumps(r, separators=(",", ":")) for r in rows))
                f.write("\n]%s\n" % ("," if i + 1 < len(fixture["tables"]) else ""))
            f.write("}}\n")
    with open(os.path.join(data, "datasources.yaml"), "w") as f:
        f.write("---\n".join(manifests))

    with open(os.path.join(shared, "programs", "policy.congress")) as f:
        rules = [l for l in f.read().splitlines() if l.strip() and not l.lstrip().startswith("//")]
    with open(os.path.join(policy, "policy.yaml"), "w") as f:
        f.write(
            "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: classification\n"
            "spec:\n  description: workload (a) of the shared benchmarks (programs/policy.congress)\n"
            "  text: |\n"
        )
        for r in rules:
            f.write(f"    {r}\n")


if __name__ == "__main__":
    main()
