//! The API's Kubernetes authenticator against the real API server: ServiceAccount tokens
//! (TokenRequest) reviewed by a TokenReview, their access decided by RBAC on
//! `policies.congress.dev` through SubjectAccessReviews.

use crate::harness::{API_RBAC as RBAC, Cluster, service_account_token};
use congress_drivers::api_auth::{Access, AuthError, Authenticator, KubernetesAuth, KubernetesAuthConfig};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_get_the_access_their_rbac_gives() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    cluster.apply(RBAC);
    let reader = service_account_token(&cluster, "reader").await;
    let admin = service_account_token(&cluster, "admin").await;
    let nobody = service_account_token(&cluster, "nobody").await;
    let auth = KubernetesAuth::new(cluster.client().await, KubernetesAuthConfig::default());
    assert_eq!(auth.name(), "kubernetes");

    let started = Instant::now();
    let id = auth.authenticate(Some(&reader), Access::Read).await.expect("a reader may read");
    eprintln!("first review (TokenReview + 2 SubjectAccessReviews): {:?}", started.elapsed());
    assert_eq!(
        (id.user.as_str(), id.project.clone(), id.access),
        ("system:serviceaccount:default:reader", None, Access::Read)
    );
    assert!(id.roles.contains(&"system:serviceaccounts:default".to_string()), "groups: {:?}", id.roles);
    let e = auth.authenticate(Some(&reader), Access::Admin).await.unwrap_err();
    assert!(matches!(e, AuthError::Forbidden { need: Access::Admin }), "{e:?}");
    assert_eq!(auth.reviews(), 1, "the answer is cached");

    let id = auth.authenticate(Some(&admin), Access::Admin).await.expect("an admin may write");
    assert_eq!((id.user.as_str(), id.access), ("system:serviceaccount:default:admin", Access::Admin));
    assert_eq!(auth.authenticate(Some(&admin), Access::Read).await.expect("and read").access, Access::Admin);

    let e = auth.authenticate(Some(&nobody), Access::Read).await.unwrap_err();
    assert!(matches!(e, AuthError::Forbidden { need: Access::Read }), "no RBAC, no access: {e:?}");
    assert_eq!(e.status(), 403);

    // Garbage (shaped like a JWT, so the API server is asked), and no token.
    let garbage = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl";
    for _ in 0..3 {
        let e = auth.authenticate(Some(garbage), Access::Read).await.unwrap_err();
        assert!(matches!(e, AuthError::Invalid), "{e:?}");
    }
    assert!(matches!(auth.authenticate(None, Access::Read).await, Err(AuthError::Missing)));
    assert_eq!(auth.reviews(), 4, "reader, admin, nobody, garbage once");

    // RBAC granted later counts once the cached answer expires (10 s).
    cluster.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: congress-api-nobody}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: congress-api-reader}
subjects:
- {kind: ServiceAccount, name: nobody, namespace: default}
"#,
    );
    assert!(auth.authenticate(Some(&nobody), Access::Read).await.is_err(), "still the cached answer");
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    let id = auth.authenticate(Some(&nobody), Access::Read).await.expect("read granted, cache expired");
    assert_eq!(id.access, Access::Read);

    // An authenticator whose own client may not create TokenReviews: unavailable (503), and
    // the token is not in the message.
    let weak =
        KubernetesAuth::new(cluster.client_of(&cluster.operator_kubeconfig()).await, KubernetesAuthConfig::default());
    let e = weak.authenticate(Some(&reader), Access::Read).await.unwrap_err();
    assert!(matches!(e, AuthError::Unavailable(_)), "{e:?}");
    assert_eq!((e.status(), e.code()), (503, "Unavailable"));
    assert!(e.to_string().contains("TokenReview") && !e.to_string().contains(&reader), "{e}");
}
