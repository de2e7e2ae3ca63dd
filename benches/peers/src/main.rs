//! The Rust Datalog peers on the shared bench workloads: `congress-peers ENGINE
//! WORKLOAD DIR` with ENGINE ascent | crepe | dd (differential-dataflow, 1 worker) and
//! WORKLOAD a | b | c, reading DIR's `.facts` files. Prints the shared bench's lines:
//! `RESULT engine=.. workload=.. n=.. phase=eval secs=.. rows=..` (reading the files
//! is not timed; the evaluation includes building the engine's input relations).

mod ascent_peer;
mod crepe_peer;
mod dd_peer;

use std::path::Path;
use std::time::Instant;

/// Workload a's tables (servers' status column as "is ACTIVE").
pub struct Policy {
    pub servers: Vec<(u32, u32, u32, bool, u32)>,
    pub ports: Vec<(u32, u32, u32, u32)>,
    pub networks: Vec<(u32, u32, u32, u32, u32)>,
    pub tenants: Vec<(u32, u32)>,
    pub images: Vec<(u32, u32)>,
}

fn read(dir: &Path, stem: &str) -> Vec<Vec<String>> {
    let path = dir.join(format!("{stem}.facts"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

fn num(s: &str) -> u32 {
    s.trim().parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

pub fn pairs(dir: &Path, stem: &str) -> Vec<(u32, u32)> {
    read(dir, stem).iter().map(|r| (num(&r[0]), num(&r[1]))).collect()
}

fn policy(dir: &Path) -> Policy {
    Policy {
        servers: read(dir, "servers")
            .iter()
            .map(|r| (num(&r[0]), num(&r[1]), num(&r[2]), r[3] == "ACTIVE", num(&r[4])))
            .collect(),
        ports: read(dir, "ports").iter().map(|r| (num(&r[0]), num(&r[1]), num(&r[2]), num(&r[3]))).collect(),
        networks: read(dir, "networks")
            .iter()
            .map(|r| (num(&r[0]), num(&r[1]), num(&r[2]), num(&r[3]), num(&r[4])))
            .collect(),
        tenants: pairs(dir, "tenants"),
        images: pairs(dir, "images"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, engine, workload, dir] = args.as_slice() else {
        eprintln!("usage: congress-peers ascent|crepe|dd a|b|c DIR");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let (rows, n, start) = match workload.as_str() {
        "a" => {
            let p = policy(dir);
            let n = p.servers.len();
            let start = Instant::now();
            let rows = match engine.as_str() {
                "ascent" => ascent_peer::policy(&p),
                "crepe" => crepe_peer::policy(&p),
                "dd" => dd_peer::policy(&p),
                e => panic!("unknown engine {e}"),
            };
            (rows, n, start)
        }
        "b" | "c" => {
            let stem = if workload == "b" { "edge" } else { "parent" };
            let e = pairs(dir, stem);
            let n = e.len();
            let start = Instant::now();
            let rows = match (engine.as_str(), workload.as_str()) {
                ("ascent", "b") => ascent_peer::tc(&e),
                ("ascent", _) => ascent_peer::sg(&e),
                ("crepe", "b") => crepe_peer::tc(&e),
                ("crepe", _) => crepe_peer::sg(&e),
                ("dd", "b") => dd_peer::tc(&e),
                ("dd", _) => dd_peer::sg(&e),
                (e, _) => panic!("unknown engine {e}"),
            };
            (rows, n, start)
        }
        w => panic!("unknown workload {w}"),
    };
    let secs = start.elapsed().as_secs_f64();
    println!("RESULT engine={engine} workload={workload} n={n} phase=eval secs={secs:.6} rows={rows}");
}
