//! `congress crds`: the CustomResourceDefinitions of every congress kind, generated from
//! the Rust types in `src/resources/`.

use congress_model::resources;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `congress crds`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  congress crds | kubectl apply -f -\n  congress crds --write crds/")]
pub struct CrdsArgs {
    /// Write one file per CRD (`policies.congress.dev.yaml`, ...) into DIR instead of
    /// printing them.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

/// Print or write the CRDs.
pub fn run(args: CrdsArgs) -> ExitCode {
    match args.write {
        None => {
            print!("{}", resources::all_crds_yaml());
            ExitCode::SUCCESS
        }
        Some(dir) => match write(&dir) {
            Ok(files) => {
                for f in files {
                    println!("wrote {}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::from(2)
            }
        },
    }
}

/// Write every CRD into `dir` (created if missing); returns the files written.
pub fn write(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (name, crd) in resources::crds() {
        let path = dir.join(name);
        std::fs::write(&path, resources::crd_yaml(&crd))?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use congress_model::resources;

    #[test]
    fn committed_crds_are_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        for (name, crd) in resources::crds() {
            let path = dir.join(&name);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == resources::crd_yaml(&crd),
                "crds/{name} is stale or missing: run `congress crds --write crds/` (cargo run -- crds --write crds/)"
            );
        }
    }

    #[test]
    fn crds_are_cluster_scoped_with_status() {
        let all = resources::all_crds_yaml();
        assert_eq!(all.matches("---\n").count(), 4);
        for (_, crd) in resources::crds() {
            assert_eq!(crd.spec.scope, "Cluster");
            assert_eq!(crd.spec.group, "congress.dev");
            let v = &crd.spec.versions[0];
            assert_eq!(v.name, "v1alpha1");
            assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        }
    }
}
