//! Outputs the operator can live without: policy reports and events.
//!
//! A Policy's status is what users and tools watch, so it is always written. Reports need
//! the `wgpolicyk8s.io` CRDs, and reports and events need permissions a cluster may not
//! grant. When one of them is refused for such a reason (the CRDs are not installed: 404 on
//! the resource type; or 403), the operator records an [`Outage`], says so once in the log
//! and in every Policy's `Reports` or `Events` condition, and carries on. Reports are probed
//! every [`PROBE_INTERVAL`] while they are off, and every Policy is published again as soon as
//! they are back (the CRDs installed, the permission granted), without a restart. Events are
//! tried again with the next violation that appears or clears.

use kube::Error as KubeError;
use std::sync::Mutex;
use std::time::Duration;

/// How often reports are probed while they are off.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// An optional output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Reports,
    Events,
}

impl Output {
    /// The Policy condition type that tells about this output.
    pub fn condition(self) -> &'static str {
        match self {
            Output::Reports => "Reports",
            Output::Events => "Events",
        }
    }
}

/// Why an output is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// `CRDNotInstalled`, `Forbidden` or `NotFound`: the condition's reason.
    pub reason: &'static str,
    pub message: String,
}

impl Outage {
    /// The outage `error` means for `output`, if it is one (an error of any other kind is
    /// an ordinary failure, retried).
    pub fn of(output: Output, error: &KubeError) -> Option<Outage> {
        let KubeError::Api(status) = error else { return None };
        match (output, status.code) {
            // An unknown API group answers `404 page not found` (not even a Status), an
            // unknown resource of a known group "the server could not find the requested
            // resource"; a 404 for a missing namespace or object names it instead.
            (Output::Reports, 404)
                if status.message.contains("page not found")
                    || status.message.contains("could not find the requested resource") =>
            {
                Some(Outage {
                    reason: "CRDNotInstalled",
                    message: "the wgpolicyk8s.io PolicyReport CRDs are not installed; reports are off until they \
                              are (helm: --set policyReportCRDs.install=true)"
                        .into(),
                })
            }
            (Output::Reports, 403) => Some(Outage {
                reason: "Forbidden",
                message: format!(
                    "writing policy reports is forbidden ({}); grant the operator's ClusterRole access to \
                     wgpolicyk8s.io policyreports and clusterpolicyreports",
                    status.message
                ),
            }),
            (Output::Events, 403) => Some(Outage {
                reason: "Forbidden",
                message: format!(
                    "recording events is forbidden ({}); grant the operator `create` on events",
                    status.message
                ),
            }),
            (Output::Events, 404) => {
                Some(Outage { reason: "NotFound", message: format!("events cannot be recorded ({})", status.message) })
            }
            _ => None,
        }
    }
}

/// The state of the optional outputs of this replica.
#[derive(Debug, Default)]
pub struct Outputs {
    reports: Mutex<Option<Outage>>,
    events: Mutex<Option<Outage>>,
}

impl Outputs {
    fn slot(&self, output: Output) -> &Mutex<Option<Outage>> {
        match output {
            Output::Reports => &self.reports,
            Output::Events => &self.events,
        }
    }

    /// Why `output` is off, if it is.
    pub fn outage(&self, output: Output) -> Option<Outage> {
        super::lock(self.slot(output)).clone()
    }

    /// Record that `output` is off (logged once per change of reason).
    pub fn off(&self, output: Output, outage: Outage) {
        let mut slot = super::lock(self.slot(output));
        if slot.as_ref().map(|o| o.reason) != Some(outage.reason) {
            tracing::warn!(output = output.condition(), reason = outage.reason, message = %outage.message, "output off; policy status is still written");
        }
        *slot = Some(outage);
    }

    /// Record that `output` works; true when it was off.
    pub fn on(&self, output: Output) -> bool {
        let was = super::lock(self.slot(output)).take();
        if let Some(o) = &was {
            tracing::info!(output = output.condition(), was = o.reason, "output back on");
        }
        was.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> KubeError {
        KubeError::Api(Box::new(Status { message: message.into(), code, ..Status::default() }))
    }

    #[test]
    fn missing_crds_and_refusals_are_outages_other_errors_are_not() {
        let missing = api(404, "the server could not find the requested resource");
        assert_eq!(Outage::of(Output::Reports, &missing).map(|o| o.reason), Some("CRDNotInstalled"));
        let no_group = api(404, "404 page not found");
        assert_eq!(Outage::of(Output::Reports, &no_group).map(|o| o.reason), Some("CRDNotInstalled"));
        let forbidden = api(403, "clusterpolicyreports is forbidden: User \"op\" cannot list");
        let o = Outage::of(Output::Reports, &forbidden).expect("an outage");
        assert_eq!(o.reason, "Forbidden");
        assert!(o.message.contains("cannot list"), "{}", o.message);
        assert_eq!(Outage::of(Output::Events, &forbidden).map(|o| o.reason), Some("Forbidden"));
        // A namespace that is gone, a conflict, a server error: ordinary failures.
        assert_eq!(Outage::of(Output::Reports, &api(404, "namespaces \"x\" not found")), None);
        assert_eq!(Outage::of(Output::Reports, &api(409, "conflict")), None);
        assert_eq!(Outage::of(Output::Events, &api(500, "etcd")), None);
    }

    #[test]
    fn outputs_go_off_and_come_back() {
        let outputs = Outputs::default();
        assert_eq!(outputs.outage(Output::Reports), None);
        let o = Outage { reason: "CRDNotInstalled", message: "m".into() };
        outputs.off(Output::Reports, o.clone());
        assert_eq!(outputs.outage(Output::Reports), Some(o));
        assert_eq!(outputs.outage(Output::Events), None);
        assert!(outputs.on(Output::Reports));
        assert!(!outputs.on(Output::Reports));
        assert_eq!(outputs.outage(Output::Reports), None);
    }
}
