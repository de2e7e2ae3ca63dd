//! The typed objects in policy and data files: every `Policy`, `LibraryPolicy` and
//! `Datasource` manifest as the resource it describes, and each `.congress` file as a
//! `Policy` of its stem with the file as its `text`. `congress serve -f ... --data ...`
//! serves these (the engine side is built and checked by [`super::build()`], which reports
//! problems at their file positions).

use super::LoadError;
use super::documents::{POLICY_EXTS, collect_files, documents, has_ext, is_congress, metadata_name, read};
use crate::resources::{Datasource, DatasourceSpec, LibraryPolicy, LibraryPolicySpec, Policy, PolicySpec};
use std::path::PathBuf;

/// The objects read from some files, in file order.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub policies: Vec<Policy>,
    pub library: Vec<LibraryPolicy>,
    pub datasources: Vec<Datasource>,
}

/// Read the `Policy`, `LibraryPolicy` and `Datasource` manifests (and `.congress` files)
/// under `paths`. Documents of other kinds are skipped; a malformed one is an error.
pub fn load_objects(paths: &[PathBuf]) -> Result<Objects, Vec<LoadError>> {
    let mut errors = Vec::new();
    let mut out = Objects::default();
    for file in collect_files(paths, POLICY_EXTS, &mut errors) {
        let Some(text) = read(&file, &mut errors) else { continue };
        if has_ext(&file, &["congress"]) {
            let name = file.file_stem().map(|s| s.to_string_lossy().replace('_', "-")).unwrap_or_default();
            out.policies.push(Policy::new(&name, PolicySpec { text: Some(text), ..PolicySpec::default() }));
            continue;
        }
        for doc in documents(&file, &text, &mut errors) {
            let Some(kind) = is_congress(&doc, &mut errors) else { continue };
            let Some(name) = metadata_name(&doc, &mut errors) else { continue };
            let metadata = doc.value.get("metadata").cloned().unwrap_or_default();
            let meta = serde_json::from_value(metadata).unwrap_or_default();
            let spec = doc.value.get("spec").cloned().unwrap_or_else(|| serde_json::json!({}));
            let bad = |e: serde_json::Error| LoadError::Manifest {
                origin: doc.start(),
                message: format!("{kind} {name}: invalid spec: {e}"),
            };
            match kind.as_str() {
                "Policy" => match serde_json::from_value::<PolicySpec>(spec) {
                    Ok(spec) => out.policies.push(Policy { metadata: meta, spec, status: None }),
                    Err(e) => errors.push(bad(e)),
                },
                "LibraryPolicy" => match serde_json::from_value::<LibraryPolicySpec>(spec) {
                    Ok(spec) => out.library.push(LibraryPolicy { metadata: meta, spec, status: None }),
                    Err(e) => errors.push(bad(e)),
                },
                "Datasource" => match serde_json::from_value::<DatasourceSpec>(spec) {
                    Ok(spec) => out.datasources.push(Datasource { metadata: meta, spec, status: None }),
                    Err(e) => errors.push(bad(e)),
                },
                _ => {}
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}
