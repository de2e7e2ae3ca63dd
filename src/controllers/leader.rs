//! Leader election on a `coordination.k8s.io/v1` Lease. Every replica runs the engine and
//! its watches (a warm standby); only the holder of the lease writes statuses, reports and
//! events. The holder renews every [`RENEW`]; another replica takes over once the lease
//! has not been renewed for its duration. Writes use the lease's `resourceVersion`, so two
//! replicas racing for an expired lease cannot both win. A replica that shuts down
//! releases the lease so the other takes over at its next try.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;
use tokio::sync::watch;

/// How long a lease holds without renewal.
pub const LEASE_SECONDS: i32 = 10;
/// How often the holder renews, and others retry.
pub const RENEW: Duration = Duration::from_secs(2);

/// Who this replica is and which lease it competes for.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
}

/// One step of the election: what to write, if anything, given the lease as read.
#[derive(Debug, PartialEq)]
enum Step {
    /// Keep or take the lease (renew, or acquire an expired or released one).
    Hold { transition: bool },
    /// Someone else holds a live lease.
    Follow,
}

fn decide(spec: &LeaseSpec, me: &str, now: Timestamp) -> Step {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Step::Hold { transition: false };
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    let expired = match renewed {
        Some(t) => now.as_second() - t.as_second() >= duration,
        None => true,
    };
    if holder.is_empty() || expired { Step::Hold { transition: true } } else { Step::Follow }
}

/// Run the election until `shutdown` fires; `leader` follows whether this replica leads.
/// On shutdown the lease is released if held.
pub async fn run(client: Client, cfg: LeaseConfig, leader: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    loop {
        let leads = match try_hold(&api, &cfg).await {
            Ok(leads) => leads,
            Err(e) => {
                tracing::warn!(lease = %cfg.name, error = %e, "lease update failed");
                false
            }
        };
        if *leader.borrow() != leads {
            tracing::info!(identity = %cfg.identity, leader = leads, "leadership changed");
            leader.send_replace(leads);
        }
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = shutdown.changed() => break,
        }
    }
    if *leader.borrow() {
        leader.send_replace(false);
        if let Err(e) = release(&api, &cfg).await {
            tracing::warn!(lease = %cfg.name, error = %e, "could not release the lease");
        }
    }
}

async fn try_hold(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(cfg.name.clone()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(LEASE_SECONDS),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    match decide(spec, &cfg.identity, now) {
        Step::Follow => Ok(false),
        Step::Hold { transition } => {
            if transition {
                spec.holder_identity = Some(cfg.identity.clone());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.lease_duration_seconds = Some(LEASE_SECONDS);
            spec.renew_time = Some(MicroTime(now));
            // `replace` carries the resourceVersion read above: a concurrent writer wins
            // and this one gets 409 Conflict.
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

async fn release(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&cfg.name).await? else { return Ok(()) };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    api.replace(&cfg.name, &PostParams::default(), &lease).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_secs_ago: Option<i64>, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(LEASE_SECONDS),
            renew_time: renewed_secs_ago.map(|s| MicroTime(Timestamp::from_second(now.as_second() - s).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn the_holder_renews_and_others_wait_for_expiry() {
        let now = Timestamp::now();
        assert_eq!(decide(&spec(Some("a"), Some(1), now), "a", now), Step::Hold { transition: false });
        assert_eq!(decide(&spec(Some("a"), Some(1), now), "b", now), Step::Follow);
        assert_eq!(decide(&spec(Some("a"), Some(10), now), "b", now), Step::Hold { transition: true });
        assert_eq!(decide(&spec(None, Some(1), now), "b", now), Step::Hold { transition: true });
        assert_eq!(decide(&spec(Some("a"), None, now), "b", now), Step::Hold { transition: true });
    }
}
