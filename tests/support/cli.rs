//! Running the built `congress` binary from a CLI test.

use assert_cmd::Command;

/// The binary, run from the crate root so that paths in its output are relative: exit
/// code, stdout, stderr. A panic on stderr fails the test.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("congress")
        .expect("the congress binary is built")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("congress runs");
    let (code, out, err) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    (code, out, err)
}
