//! `congress approve`: approve ActionRequests waiting for a person (policies whose
//! `spec.actions.approval` is `manual`, and requests made by hand), in the cluster of the
//! current kubeconfig. The same as `kubectl patch actionrequest NAME --type merge -p
//! '{"spec":{"approved":true}}'`, with a check that the request exists and is not finished.

use congress_model::resources::ActionRequest;
use kube::api::{Api, Patch, PatchParams};
use std::process::ExitCode;

/// Arguments of `congress approve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  congress approve bad-flavors-3f2a9c01de-1\n  kubectl get actionrequests\n")]
pub struct ApproveArgs {
    /// The ActionRequests to approve.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Why one request was not approved.
#[derive(Debug, thiserror::Error)]
enum ApproveError {
    #[error("no ActionRequest named `{0}`")]
    NotFound(String),
    #[error("ActionRequest `{0}` has finished ({1}): approving it changes nothing")]
    Finished(String, &'static str),
    #[error("ActionRequest `{0}`: {1}")]
    Api(String, #[source] kube::Error),
}

async fn approve(api: &Api<ActionRequest>, name: &str) -> Result<bool, ApproveError> {
    let current = api.get_opt(name).await.map_err(|e| ApproveError::Api(name.to_string(), e))?;
    let request = current.ok_or_else(|| ApproveError::NotFound(name.to_string()))?;
    if let Some(phase) = request.status.as_ref().and_then(|s| s.phase).filter(|p| p.is_finished()) {
        return Err(ApproveError::Finished(name.to_string(), phase.as_str()));
    }
    if request.spec.approved {
        return Ok(false);
    }
    let patch = serde_json::json!({"spec": {"approved": true}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| ApproveError::Api(name.to_string(), e))?;
    Ok(true)
}

pub fn run(args: ApproveArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: no cluster: {e}");
                return ExitCode::from(2);
            }
        };
        let api: Api<ActionRequest> = Api::all(client);
        let mut failed = false;
        for name in &args.names {
            match approve(&api, name).await {
                Ok(true) => println!("actionrequest/{name} approved"),
                Ok(false) => println!("actionrequest/{name} was already approved"),
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
        if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
    })
}
