//! A `congress serve` process for API tests: started with the given arguments on a free
//! port, its address read from the line it prints when ready, killed when dropped.

#![allow(dead_code)] // each test binary that includes this uses part of it

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Server {
    pub url: String,
    child: Child,
    /// What the server wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_congress"))
}

impl Server {
    /// Start `congress serve --listen 127.0.0.1:0 ARGS` from the crate root.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with environment variables set for the process.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(binary())
            .envs(env.iter().copied())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("congress serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("congress serve: listening on ") {
                    let _ = tx.send(url.to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Server { url, child, log },
            Err(_) => {
                let _ = child.kill();
                panic!("congress serve did not start:\n{}", log.lock().unwrap());
            }
        }
    }

    /// Kill the process at once (SIGKILL: no shutdown work runs).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The virtualenv with python-congressclient and python-openstackclient: `CONGRESS_TEST_VENV`
/// (scripts/test.sh makes it), else made here by scripts/pyclient.sh under target/. `None`
/// (skip) when it cannot be made, unless `CONGRESS_E2E=require`.
pub fn venv_or_skip() -> Option<PathBuf> {
    if let Ok(v) = std::env::var("CONGRESS_TEST_VENV") {
        return Some(PathBuf::from(v));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/pyclient");
    // One maker at a time (the tests of a binary run in parallel under cargo test).
    static MADE: Mutex<()> = Mutex::new(());
    let _one = MADE.lock().unwrap_or_else(|p| p.into_inner());
    let out = Command::new("bash").arg(root.join("scripts/pyclient.sh")).arg(&dir).output();
    match out {
        Ok(o) if o.status.success() => Some(dir),
        other => {
            let why = format!("cannot make the Python clients' venv: {other:?}");
            if std::env::var("CONGRESS_E2E").is_ok_and(|v| v == "require") {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// Run the client checks (tests/api/congress_clients.py) with `args` after the URL.
pub fn run_client_checks(venv: &std::path::Path, url: &str, args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/congress_clients.py");
    let out = Command::new(venv.join("bin/python")).arg(script).arg(url).args(args).output().expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
