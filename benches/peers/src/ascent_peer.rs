//! ascent: the three programs as `ascent!` structs.

use crate::Policy;
use ascent::ascent;

ascent! {
    struct Tc;
    relation edge(u32, u32);
    relation path(u32, u32);
    path(x, y) <-- edge(x, y);
    path(x, z) <-- path(x, y), edge(y, z);
}

ascent! {
    struct Sg;
    relation parent(u32, u32);
    relation sg(u32, u32);
    sg(x, y) <-- parent(x, p), parent(y, p), if x != y;
    sg(x, y) <-- parent(x, a), sg(a, b), parent(y, b);
}

ascent! {
    struct Pol;
    relation servers(u32, u32, u32, bool, u32);
    relation ports(u32, u32, u32, u32);
    relation networks(u32, u32, u32, u32, u32);
    relation tenants(u32, u32);
    relation images(u32, u32);
    relation has_port(u32);
    relation on_shared(u32);
    relation approved(u32);
    relation known_tenant(u32);
    relation cross_tenant(u32, u32);
    relation error(u32, &'static str);
    has_port(vm) <-- ports(_, vm, _, _);
    on_shared(vm) <-- ports(_, vm, net, _), networks(net, _, 1, _, _);
    approved(img) <-- images(img, 1);
    known_tenant(t) <-- tenants(t, _);
    cross_tenant(vm, net) <-- servers(vm, t1, _, _, _), ports(_, vm, net, _), networks(net, t2, 0, _, _), if t1 != t2;
    error(vm, "cross_tenant_network") <-- cross_tenant(vm, _);
    error(vm, "active_without_port") <-- servers(vm, _, _, true, _), !has_port(vm);
    error(vm, "unapproved_image_on_shared_net") <-- on_shared(vm), servers(vm, _, img, _, _), !approved(img);
    error(vm, "ip_outside_subnet") <-- ports(_, vm, net, ip), networks(net, _, _, lo, _), if ip < lo;
    error(vm, "ip_outside_subnet") <-- ports(_, vm, net, ip), networks(net, _, _, _, hi), if ip > hi;
    error(vm, "active_in_disabled_tenant") <-- servers(vm, t, _, true, _), tenants(t, 0);
    error(vm, "unknown_tenant") <-- servers(vm, t, _, _, _), !known_tenant(t);
}

pub fn tc(edges: &[(u32, u32)]) -> usize {
    let mut p = Tc { edge: edges.to_vec(), ..Default::default() };
    p.run();
    p.path.len()
}

pub fn sg(parents: &[(u32, u32)]) -> usize {
    let mut p = Sg { parent: parents.to_vec(), ..Default::default() };
    p.run();
    p.sg.len()
}

pub fn policy(d: &Policy) -> usize {
    let mut p = Pol {
        servers: d.servers.clone(),
        ports: d.ports.clone(),
        networks: d.networks.clone(),
        tenants: d.tenants.clone(),
        images: d.images.clone(),
        ..Default::default()
    };
    p.run();
    p.error.len()
}
