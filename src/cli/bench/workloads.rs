//! Bench workloads: workload C generated in-process, the shared generators' `.facts` files
//! read from disk, the rule texts, and plain-Rust reference answers used to check the
//! engine's counts (never timed).

use congress_engine::Schema;
use congress_engine::Value;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// One table's rows.
pub type Rows = Vec<Vec<Value>>;

// ------------------------------------------------------------------------- workload C

/// `nova:servers`, the real nova driver schema.
pub const NOVA_SERVERS: [&str; 11] = [
    "id",
    "name",
    "host_id",
    "status",
    "tenant_id",
    "user_id",
    "image_id",
    "flavor_id",
    "zone",
    "host_name",
    "created_at",
];
/// `neutronv2:ports`, the real neutronv2 driver schema.
pub const NEUTRON_PORTS: [&str; 9] =
    ["id", "tenant_id", "name", "network_id", "mac_address", "admin_state_up", "status", "device_id", "device_owner"];
/// `neutronv2:networks`, the real neutronv2 driver schema.
pub const NEUTRON_NETWORKS: [&str; 6] = ["id", "tenant_id", "name", "status", "admin_state_up", "shared"];

/// Workload C's rules, inserted into policy `classification`.
pub const C_CLASSIFICATION: &str = "\
connected(vm) :- neutronv2:ports(device_id=vm, network_id=net), neutronv2:networks(id=net, status=\"ACTIVE\")
error(vm) :- nova:servers(id=vm, status=\"ACTIVE\"), not connected(vm)
";

/// Workload C's reactive rule (the `--exec` variant), inserted into policy `reactive`.
pub const C_REACTIVE: &str = "execute[nova:servers.pause(vm)] :- classification:error(vm)";

/// Workload C's documented `error` row counts.
pub fn c_expected_errors(n: usize) -> Option<usize> {
    match n {
        1_000 => Some(202),
        10_000 => Some(2031),
        100_000 => Some(20316),
        _ => None,
    }
}

/// The `error` row count workload C should give, computed from the generator's rules.
pub fn c_reference_errors(n: usize) -> usize {
    (0..n).filter(|i| !i.is_multiple_of(9) && (i.is_multiple_of(7) || i.is_multiple_of(10))).count()
}

/// Workload C's data: servers, ports and networks, exactly as the bench README says.
#[cfg(test)]
pub struct CData {
    pub servers: Rows,
    pub ports: Rows,
    pub networks: Rows,
}

fn s(text: String) -> Value {
    Value::str(text)
}

/// One `nova:servers` row of workload C.
pub fn c_server(i: usize) -> Vec<Value> {
    let status = if i.is_multiple_of(9) { "SHUTOFF" } else { "ACTIVE" };
    vec![
        s(format!("vm-{i}")),
        s(format!("server-{i}")),
        s(format!("host-{}", i % 50)),
        Value::str(status),
        s(format!("tenant-{}", i % 20)),
        s(format!("u-{}", i % 100)),
        s(format!("img-{}", i % 5)),
        s(format!("fl-{}", i % 4)),
        Value::str("nova"),
        s(format!("hv-{}", i % 50)),
        Value::str("2019-01-01T00:00:00Z"),
    ]
}

/// A server row for the incremental step: ACTIVE and with no port (`vm-<i>` for i >= N).
pub fn c_active_server_without_port(i: usize) -> Vec<Value> {
    let mut row = c_server(i);
    row[3] = Value::str("ACTIVE");
    row
}

/// Server i's row of one table of workload C, if the table has one.
pub type CRow = fn(usize) -> Option<Vec<Value>>;

/// Workload C's tables in Congress's push order: `(datasource, table, row i)`, where row
/// i is `None` when the table has no row for server i (ports of servers with i % 7 == 0).
pub const C_TABLES: [(&str, &str, CRow); 3] = [
    ("nova", "servers", |i| Some(c_server(i))),
    ("neutronv2", "ports", c_port),
    ("neutronv2", "networks", |i| Some(c_network(i))),
];

/// Workload C's rows of one table for `n` servers, generated lazily (in push order).
pub fn c_rows(row: CRow, n: usize) -> impl Iterator<Item = Vec<Value>> {
    (0..n).filter_map(row)
}

/// Generate workload C for `n` servers.
#[cfg(test)]
pub fn gen_c(n: usize) -> CData {
    CData { servers: c_servers(n), ports: c_ports(n), networks: c_networks(n) }
}

/// Workload C's `nova:servers` rows.
#[cfg(test)]
pub fn c_servers(n: usize) -> Rows {
    (0..n).map(c_server).collect()
}

/// Workload C's `neutronv2:ports` rows (none for servers with i % 7 == 0).
#[cfg(test)]
pub fn c_ports(n: usize) -> Rows {
    c_rows(c_port, n).collect()
}

/// Workload C's `neutronv2:networks` rows.
#[cfg(test)]
pub fn c_networks(n: usize) -> Rows {
    (0..n).map(c_network).collect()
}

/// Server i's `neutronv2:ports` row, if it has one (not when i % 7 == 0).
pub fn c_port(i: usize) -> Option<Vec<Value>> {
    if i.is_multiple_of(7) {
        return None;
    }
    Some(vec![
        s(format!("port-{i}")),
        s(format!("tenant-{}", i % 20)),
        Value::str(""),
        s(format!("net-{i}")),
        s(format!("fa:16:3e:{i:x}")),
        Value::str("True"),
        Value::str("ACTIVE"),
        s(format!("vm-{i}")),
        Value::str("compute:nova"),
    ])
}

/// One `neutronv2:networks` row of workload C.
pub fn c_network(i: usize) -> Vec<Value> {
    let status = if i.is_multiple_of(10) { "DOWN" } else { "ACTIVE" };
    vec![
        s(format!("net-{i}")),
        s(format!("tenant-{}", i % 20)),
        s(format!("n{i}")),
        Value::str(status),
        Value::str("True"),
        Value::str("False"),
    ]
}

/// The schema map of one datasource from `(table, columns)` pairs.
pub fn schema(tables: &[(&str, &[&str])]) -> Schema {
    tables.iter().map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect())).collect()
}

// ------------------------------------------------------------------------- .facts files

/// One `.facts` field: an i64 when it parses as one, else a string.
pub fn parse_field(field: &str) -> Value {
    match field.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::str(field),
    }
}

/// Parse one line of a `.facts` file (tab-separated fields).
pub fn parse_line(line: &str) -> Vec<Value> {
    line.split('\t').map(parse_field).collect()
}

/// Parse the text of a tab-separated `.facts` file (empty lines are skipped).
#[cfg(test)]
pub fn parse_facts(text: &str) -> Rows {
    text.lines().filter(|l| !l.is_empty()).map(parse_line).collect()
}

/// The rows of `<dir>/<name>.facts`, read and parsed one line at a time (the file is
/// never held in memory whole); a row without `arity` fields is an error. Empty lines
/// are skipped.
pub struct FactsReader {
    path: PathBuf,
    reader: BufReader<File>,
    line: String,
    lineno: usize,
    arity: usize,
}

impl FactsReader {
    /// Open `<dir>/<name>.facts`, whose rows must have `arity` fields.
    pub fn open(dir: &Path, name: &str, arity: usize) -> Result<FactsReader, String> {
        let path = dir.join(format!("{name}.facts"));
        let file = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(FactsReader { path, reader: BufReader::with_capacity(1 << 16, file), line: String::new(), lineno: 0, arity })
    }
}

impl Iterator for FactsReader {
    type Item = Result<Vec<Value>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line.clear();
            self.lineno += 1;
            match self.reader.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(format!("cannot read {}: {e}", self.path.display()))),
            }
            let text = self.line.strip_suffix('\n').unwrap_or(&self.line);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                continue;
            }
            let row = parse_line(text);
            if row.len() != self.arity {
                let (path, line, got) = (self.path.display(), self.lineno, row.len());
                return Some(Err(format!("{path} line {line}: {got} fields, expected {}", self.arity)));
            }
            return Some(Ok(row));
        }
    }
}

/// Read all of `<dir>/<name>.facts` (rows of `arity` fields).
pub fn read_facts(dir: &Path, name: &str, arity: usize) -> Result<Rows, String> {
    FactsReader::open(dir, name, arity)?.collect()
}

// ------------------------------------------------------------------------- workload a / d

/// Workload a's datasources: `(datasource, table, columns, file stem)`.
pub const A_TABLES: [(&str, &str, &[&str], &str); 5] = [
    ("nova", "servers", &["id", "tenant", "image", "status", "host"], "servers"),
    ("neutron", "ports", &["id", "server", "network", "ip"], "ports"),
    ("neutron", "networks", &["id", "tenant", "shared", "lo", "hi"], "networks"),
    ("keystone", "tenants", &["id", "enabled"], "tenants"),
    ("glance", "images", &["id", "approved"], "images"),
];

/// Workload a's rules: the rules of the shared `programs/policy.congress`.
pub const A_POLICY: &str = "\
has_port(vm) :- neutron:ports(p, vm, net, ip)
on_shared(vm) :- neutron:ports(p, vm, net, ip), neutron:networks(net, t, 1, lo, hi)
approved(img) :- glance:images(img, 1)
known_tenant(t) :- keystone:tenants(t, e)
cross_tenant(vm, net) :- nova:servers(vm, t1, img, st, h), neutron:ports(p, vm, net, ip), neutron:networks(net, t2, 0, lo, hi), not equal(t1, t2)
error(vm, \"cross_tenant_network\") :- cross_tenant(vm, net)
error(vm, \"active_without_port\") :- nova:servers(vm, t, img, \"ACTIVE\", h), not has_port(vm)
error(vm, \"unapproved_image_on_shared_net\") :- on_shared(vm), nova:servers(vm, t, img, st, h), not approved(img)
error(vm, \"ip_outside_subnet\") :- neutron:ports(p, vm, net, ip), neutron:networks(net, t, s, lo, hi), lt(ip, lo)
error(vm, \"ip_outside_subnet\") :- neutron:ports(p, vm, net, ip), neutron:networks(net, t, s, lo, hi), gt(ip, hi)
error(vm, \"active_in_disabled_tenant\") :- nova:servers(vm, t, img, \"ACTIVE\", h), keystone:tenants(t, 0)
error(vm, \"unknown_tenant\") :- nova:servers(vm, t, img, st, h), not known_tenant(t)
";

/// Workload a's input tables, keyed by file stem.
pub struct AData {
    pub tables: HashMap<&'static str, Rows>,
}

impl AData {
    /// Read the five tables written by `gen_policy.py`.
    pub fn read(dir: &Path) -> Result<AData, String> {
        let mut tables = HashMap::new();
        for (_, _, cols, stem) in A_TABLES {
            tables.insert(stem, read_facts(dir, stem, cols.len())?);
        }
        Ok(AData { tables })
    }

    /// The rows of one table (empty when absent).
    pub fn table(&self, stem: &str) -> &[Vec<Value>] {
        self.tables.get(stem).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{what}: expected an integer, got {other}")),
    }
}

/// Workload a's `error(vm, reason)` row count, computed directly (the reference answer).
pub fn a_reference_errors(
    servers: &[Vec<Value>],
    ports: &[Vec<Value>],
    networks: &[Vec<Value>],
    tenants: &[Vec<Value>],
    images: &[Vec<Value>],
) -> Result<usize, String> {
    // networks: id -> (tenant, shared, lo, hi)
    let mut nets: HashMap<i64, Vec<(i64, i64, i64, i64)>> = HashMap::new();
    for r in networks {
        let id = int(&r[0], "networks.id")?;
        let row = (
            int(&r[1], "networks.tenant")?,
            int(&r[2], "networks.shared")?,
            int(&r[3], "networks.lo")?,
            int(&r[4], "networks.hi")?,
        );
        nets.entry(id).or_default().push(row);
    }
    let mut has_port = HashSet::new();
    let mut on_shared = HashSet::new();
    let mut ports_by_vm: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut errors: HashSet<(i64, &'static str)> = HashSet::new();
    for r in ports {
        let vm = int(&r[1], "ports.server")?;
        let net = int(&r[2], "ports.network")?;
        let ip = int(&r[3], "ports.ip")?;
        has_port.insert(vm);
        ports_by_vm.entry(vm).or_default().push(net);
        for &(_, shared, lo, hi) in nets.get(&net).map(Vec::as_slice).unwrap_or(&[]) {
            if shared == 1 {
                on_shared.insert(vm);
            }
            if ip < lo || ip > hi {
                errors.insert((vm, "ip_outside_subnet"));
            }
        }
    }
    let approved: HashSet<i64> = images
        .iter()
        .filter(|r| matches!(r[1], Value::Int(1)))
        .map(|r| int(&r[0], "images.id"))
        .collect::<Result<_, _>>()?;
    let mut known_tenant = HashSet::new();
    let mut disabled_tenant = HashSet::new();
    for r in tenants {
        let t = int(&r[0], "tenants.id")?;
        known_tenant.insert(t);
        if matches!(r[1], Value::Int(0)) {
            disabled_tenant.insert(t);
        }
    }
    for r in servers {
        let vm = int(&r[0], "servers.id")?;
        let t1 = int(&r[1], "servers.tenant")?;
        let img = int(&r[2], "servers.image")?;
        let active = r[3].as_str() == Some("ACTIVE");
        for net in ports_by_vm.get(&vm).map(Vec::as_slice).unwrap_or(&[]) {
            for &(t2, shared, _, _) in nets.get(net).map(Vec::as_slice).unwrap_or(&[]) {
                if shared == 0 && t1 != t2 {
                    errors.insert((vm, "cross_tenant_network"));
                }
            }
        }
        if active && !has_port.contains(&vm) {
            errors.insert((vm, "active_without_port"));
        }
        if on_shared.contains(&vm) && !approved.contains(&img) {
            errors.insert((vm, "unapproved_image_on_shared_net"));
        }
        if active && disabled_tenant.contains(&t1) {
            errors.insert((vm, "active_in_disabled_tenant"));
        }
        if !known_tenant.contains(&t1) {
            errors.insert((vm, "unknown_tenant"));
        }
    }
    Ok(errors.len())
}

/// `ports` with `delete` removed and `add` appended (set semantics, like the engine).
pub fn apply_delta(base: &[Vec<Value>], add: &[Vec<Value>], delete: &[Vec<Value>]) -> Rows {
    let gone: HashSet<&Vec<Value>> = delete.iter().collect();
    let mut out: Rows = base.iter().filter(|r| !gone.contains(r)).cloned().collect();
    let present: HashSet<Vec<Value>> = out.iter().cloned().collect();
    out.extend(add.iter().filter(|r| !present.contains(*r)).cloned());
    out
}

// ------------------------------------------------------------------------- workload b

/// Workload b's rules (`programs/tc.dl`) over datasource table `graph:edge`.
pub const B_POLICY: &str = "\
path(x, y) :- graph:edge(x, y)
path(x, z) :- path(x, y), graph:edge(y, z)
";

/// The number of `path` rows of the transitive closure of `edges` (BFS from every node).
pub fn b_reference_paths(edges: &[Vec<Value>]) -> usize {
    let mut succ: HashMap<&Value, Vec<&Value>> = HashMap::new();
    for e in edges {
        if let [a, b] = e.as_slice() {
            succ.entry(a).or_default().push(b);
        }
    }
    let mut total = 0;
    for &start in succ.keys() {
        let mut seen: HashSet<&Value> = HashSet::new();
        let mut stack: Vec<&Value> = succ[start].clone();
        while let Some(v) = stack.pop() {
            if seen.insert(v)
                && let Some(next) = succ.get(v)
            {
                stack.extend(next.iter().copied());
            }
        }
        total += seen.len();
    }
    total
}

// ------------------------------------------------------------------------- workload c

/// Workload c's rules (`programs/sg.dl`, same generation) over datasource table
/// `tree:parent(child, parent)`.
pub const C_SG_POLICY: &str = "\
sg(x, y) :- tree:parent(x, p), tree:parent(y, p), not equal(x, y)
sg(x, y) :- tree:parent(x, a), sg(a, b), tree:parent(y, b)
";

/// The number of `sg` rows of `parents` (`(child, parent)` rows), semi-naively.
pub fn c_reference_sg(parents: &[Vec<Value>]) -> usize {
    let mut children: HashMap<&Value, Vec<&Value>> = HashMap::new();
    for e in parents {
        if let [c, p] = e.as_slice() {
            children.entry(p).or_default().push(c);
        }
    }
    let mut sg: HashSet<(&Value, &Value)> = HashSet::new();
    let mut delta = Vec::new();
    for kids in children.values() {
        for &x in kids {
            for &y in kids {
                if x != y && sg.insert((x, y)) {
                    delta.push((x, y));
                }
            }
        }
    }
    while !delta.is_empty() {
        let mut next = Vec::new();
        for (a, b) in delta {
            let (Some(xs), Some(ys)) = (children.get(a), children.get(b)) else { continue };
            for &x in xs {
                for &y in ys {
                    if sg.insert((x, y)) {
                        next.push((x, y));
                    }
                }
            }
        }
        delta = next;
    }
    sg.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_c_row_counts_at_1000() {
        let d = gen_c(1000);
        assert_eq!(d.servers.len(), 1000);
        assert_eq!(d.ports.len(), (0..1000usize).filter(|i| !i.is_multiple_of(7)).count());
        assert_eq!(d.networks.len(), 1000);
        assert!(d.servers.iter().all(|r| r.len() == NOVA_SERVERS.len()));
        assert!(d.ports.iter().all(|r| r.len() == NEUTRON_PORTS.len()));
        assert!(d.networks.iter().all(|r| r.len() == NEUTRON_NETWORKS.len()));
        assert_eq!(d.servers[9][3], Value::str("SHUTOFF"));
        assert_eq!(d.servers[10][3], Value::str("ACTIVE"));
        assert_eq!(d.networks[10][3], Value::str("DOWN"));
        assert_eq!(d.ports[0][7], Value::str("vm-1"));
    }

    #[test]
    fn workload_c_reference_matches_documented_counts() {
        for n in [1_000, 10_000, 100_000] {
            assert_eq!(Some(c_reference_errors(n)), c_expected_errors(n), "n={n}");
        }
    }

    #[test]
    fn facts_fields_are_ints_or_strings() {
        let rows = parse_facts("1\t-7\tACTIVE\n\n2\t3.5\t\t12x\n");
        assert_eq!(
            rows,
            vec![
                vec![Value::Int(1), Value::Int(-7), Value::str("ACTIVE")],
                vec![Value::Int(2), Value::str("3.5"), Value::str(""), Value::str("12x")],
            ]
        );
    }

    #[test]
    fn rule_texts_parse() {
        for (text, rules) in [(C_CLASSIFICATION, 2), (C_REACTIVE, 1), (A_POLICY, 12), (B_POLICY, 2)] {
            let parsed = congress_engine::syntax::parse(text);
            assert!(parsed.is_ok(), "{text}: {:?}", parsed.diagnostics);
            assert_eq!(parsed.rules.len(), rules, "{text}");
        }
    }

    #[test]
    fn reference_closure_and_delta() {
        let e = parse_facts("1\t2\n2\t3\n3\t1\n4\t5\n");
        // the 3-cycle reaches all 3 nodes from each of its nodes, plus 4 -> 5
        assert_eq!(b_reference_paths(&e), 10);
        // 1 and 2 children of 0, 3 of 1, 4 of 2: sg = {1-2, 2-1, 3-4, 4-3}
        let parents: Vec<Vec<Value>> =
            [(1, 0), (2, 0), (3, 1), (4, 2)].iter().map(|&(c, p)| vec![Value::Int(c), Value::Int(p)]).collect();
        assert_eq!(c_reference_sg(&parents), 4);
        let d = apply_delta(&e, &parse_facts("6\t7\n"), &parse_facts("4\t5\n"));
        assert_eq!(d.len(), 4);
        assert!(d.contains(&vec![Value::Int(6), Value::Int(7)]));
    }
}
