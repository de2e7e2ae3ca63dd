//! crepe: one `crepe!` runtime per module, run with the Fx hasher.

use crate::Policy;
use rustc_hash::FxBuildHasher;

mod tc {
    use crepe::crepe;
    crepe! {
        @input
        pub struct Edge(pub u32, pub u32);
        @output
        pub struct Path(pub u32, pub u32);
        Path(x, y) <- Edge(x, y);
        Path(x, z) <- Path(x, y), Edge(y, z);
    }
}

mod sg {
    use crepe::crepe;
    crepe! {
        @input
        pub struct Parent(pub u32, pub u32);
        @output
        pub struct Sg(pub u32, pub u32);
        Sg(x, y) <- Parent(x, p), Parent(y, p), (x != y);
        Sg(x, y) <- Parent(x, a), Sg(a, b), Parent(y, b);
    }
}

mod pol {
    use crepe::crepe;
    crepe! {
        @input
        pub struct Servers(pub u32, pub u32, pub u32, pub bool, pub u32);
        @input
        pub struct Ports(pub u32, pub u32, pub u32, pub u32);
        @input
        pub struct Networks(pub u32, pub u32, pub u32, pub u32, pub u32);
        @input
        pub struct Tenants(pub u32, pub u32);
        @input
        pub struct Images(pub u32, pub u32);
        struct HasPort(u32);
        struct OnShared(u32);
        struct Approved(u32);
        struct KnownTenant(u32);
        struct CrossTenant(u32, u32);
        @output
        pub struct Error(pub u32, pub &'static str);
        HasPort(vm) <- Ports(_, vm, _, _);
        OnShared(vm) <- Ports(_, vm, net, _), Networks(net, _, 1, _, _);
        Approved(img) <- Images(img, 1);
        KnownTenant(t) <- Tenants(t, _);
        CrossTenant(vm, net) <- Servers(vm, t1, _, _, _), Ports(_, vm, net, _), Networks(net, t2, 0, _, _), (t1 != t2);
        Error(vm, "cross_tenant_network") <- CrossTenant(vm, _);
        Error(vm, "active_without_port") <- Servers(vm, _, _, true, _), !HasPort(vm);
        Error(vm, "unapproved_image_on_shared_net") <- OnShared(vm), Servers(vm, _, img, _, _), !Approved(img);
        Error(vm, "ip_outside_subnet") <- Ports(_, vm, net, ip), Networks(net, _, _, lo, _), (ip < lo);
        Error(vm, "ip_outside_subnet") <- Ports(_, vm, net, ip), Networks(net, _, _, _, hi), (ip > hi);
        Error(vm, "active_in_disabled_tenant") <- Servers(vm, t, _, true, _), Tenants(t, 0);
        Error(vm, "unknown_tenant") <- Servers(vm, t, _, _, _), !KnownTenant(t);
    }
}

pub fn tc(edges: &[(u32, u32)]) -> usize {
    let mut rt = tc::Crepe::new();
    rt.extend(edges.iter().map(|&(a, b)| tc::Edge(a, b)));
    let (paths,) = rt.run_with_hasher::<FxBuildHasher>();
    paths.len()
}

pub fn sg(parents: &[(u32, u32)]) -> usize {
    let mut rt = sg::Crepe::new();
    rt.extend(parents.iter().map(|&(a, b)| sg::Parent(a, b)));
    let (sgs,) = rt.run_with_hasher::<FxBuildHasher>();
    sgs.len()
}

pub fn policy(d: &Policy) -> usize {
    let mut rt = pol::Crepe::new();
    rt.extend(d.servers.iter().map(|&(a, b, c, s, h)| pol::Servers(a, b, c, s, h)));
    rt.extend(d.ports.iter().map(|&(a, b, c, e)| pol::Ports(a, b, c, e)));
    rt.extend(d.networks.iter().map(|&(a, b, c, e, f)| pol::Networks(a, b, c, e, f)));
    rt.extend(d.tenants.iter().map(|&(a, b)| pol::Tenants(a, b)));
    rt.extend(d.images.iter().map(|&(a, b)| pol::Images(a, b)));
    let (errors,) = rt.run_with_hasher::<FxBuildHasher>();
    errors.len()
}
