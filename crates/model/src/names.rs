//! Names and times shared by the operator's controllers and drivers.

/// The engine's name for a resource: Kubernetes names may hold `-`, which the policy
/// language's identifiers do not, so `-` becomes `_` (names never hold `_`, so this is
/// one-to-one).
pub fn engine_name(resource: &str) -> String {
    resource.replace('-', "_")
}

/// The resource name of an engine name (see [`engine_name`]).
pub fn resource_name(engine: &str) -> String {
    engine.replace('_', "-")
}

/// The current time, RFC 3339 in UTC with seconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_round_trip() {
        assert_eq!(engine_name("pod-registry"), "pod_registry");
        assert_eq!(resource_name(&engine_name("a-b-c.d")), "a-b-c.d");
    }

    #[test]
    fn times_are_rfc3339_utc_seconds() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    }
}
