//! differential-dataflow (one timely worker): each program as a dataflow, its inputs
//! inserted at time 0, timed until the output's count is final (error reasons as codes).

use crate::Policy;
use differential_dataflow::input::Input;
use differential_dataflow::operators::*;
use std::cell::Cell;
use std::rc::Rc;
use timely::dataflow::operators::probe::Handle;

pub fn tc(edges: &[(u32, u32)]) -> usize {
    let edges = edges.to_vec();
    timely::execute_directly(move |worker| {
        let total = Rc::new(Cell::new(0isize));
        let seen = total.clone();
        let mut probe = Handle::new();
        let mut input = worker.dataflow::<u32, _, _>(|scope| {
            let (input, edges) = scope.new_collection::<(u32, u32), isize>();
            let paths = edges.clone().iterate(|scope, inner| {
                let edges = edges.enter(scope);
                inner.map(|(x, y)| (y, x)).join_map(edges.clone(), |_, &x, &z| (x, z)).concat(edges).distinct()
            });
            paths
                .map(|_| ())
                .count()
                .inspect(move |(((), c), _, d)| seen.set(seen.get() + c * d))
                .probe_with(&mut probe);
            input
        });
        for e in edges {
            input.insert(e);
        }
        input.advance_to(1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()));
        total.get() as usize
    })
}

pub fn sg(parents: &[(u32, u32)]) -> usize {
    let parents = parents.to_vec();
    timely::execute_directly(move |worker| {
        let total = Rc::new(Cell::new(0isize));
        let seen = total.clone();
        let mut probe = Handle::new();
        let mut input = worker.dataflow::<u32, _, _>(|scope| {
            let (input, parent) = scope.new_collection::<(u32, u32), isize>();
            let by_parent = parent.clone().map(|(c, p)| (p, c));
            let base = by_parent.clone().join_map(by_parent.clone(), |_, &x, &y| (x, y)).filter(|(x, y)| x != y);
            let sg = base.clone().iterate(|scope, inner| {
                let by_parent = by_parent.enter(scope);
                let base = base.enter(scope);
                // sg(x, y) :- parent(x, a), sg(a, b), parent(y, b)
                inner
                    .join_map(by_parent.clone(), |_a, &b, &x| (b, x))
                    .join_map(by_parent, |_b, &x, &y| (x, y))
                    .concat(base)
                    .distinct()
            });
            sg.map(|_| ())
                .count()
                .inspect(move |(((), c), _, d)| seen.set(seen.get() + c * d))
                .probe_with(&mut probe);
            input
        });
        for p in parents {
            input.insert(p);
        }
        input.advance_to(1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()));
        total.get() as usize
    })
}

pub fn policy(d: &Policy) -> usize {
    let (servers, ports, networks) = (d.servers.clone(), d.ports.clone(), d.networks.clone());
    let (tenants, images) = (d.tenants.clone(), d.images.clone());
    timely::execute_directly(move |worker| {
        let total = Rc::new(Cell::new(0isize));
        let seen = total.clone();
        let mut probe = Handle::new();
        let (mut s_in, mut p_in, mut n_in, mut t_in, mut i_in) = worker.dataflow::<u32, _, _>(|scope| {
            let (s_in, servers) = scope.new_collection::<(u32, u32, u32, bool, u32), isize>();
            let (p_in, ports) = scope.new_collection::<(u32, u32, u32, u32), isize>();
            let (n_in, networks) = scope.new_collection::<(u32, u32, u32, u32, u32), isize>();
            let (t_in, tenants) = scope.new_collection::<(u32, u32), isize>();
            let (i_in, images) = scope.new_collection::<(u32, u32), isize>();
            let has_port = ports.clone().map(|p| p.1).distinct();
            let shared_nets = networks.clone().filter(|n| n.2 == 1).map(|n| n.0);
            let on_shared = ports.clone().map(|p| (p.2, p.1)).semijoin(shared_nets).map(|(_, vm)| vm).distinct();
            let approved = images.filter(|i| i.1 == 1).map(|i| i.0).distinct();
            let known_tenant = tenants.clone().map(|t| t.0).distinct();
            let private_nets = networks.clone().filter(|n| n.2 == 0).map(|n| (n.0, n.1));
            let cross = servers
                .clone()
                .map(|s| (s.0, s.1))
                .join_map(ports.clone().map(|p| (p.1, p.2)), |&vm, &t1, &net| (net, (vm, t1)))
                .join_map(private_nets, |&net, &(vm, t1), &t2| (vm, net, t1 != t2))
                .filter(|x| x.2)
                .map(|(vm, _, _)| (vm, 0u8));
            let active = servers.clone().filter(|s| s.3);
            let without_port =
                active.clone().map(|s| (s.0, ())).antijoin(has_port).map(|(vm, ())| (vm, 1u8));
            let unapproved = on_shared
                .map(|vm| (vm, ()))
                .join_map(servers.clone().map(|s| (s.0, s.2)), |&vm, _, &img| (img, vm))
                .antijoin(approved)
                .map(|(_, vm)| (vm, 2u8));
            let outside = ports
                .map(|p| (p.2, (p.1, p.3)))
                .join_map(networks.map(|n| (n.0, (n.3, n.4))), |_, &(vm, ip), &(lo, hi)| (vm, ip < lo || ip > hi))
                .filter(|x| x.1)
                .map(|(vm, _)| (vm, 3u8));
            let disabled = active
                .map(|s| (s.1, s.0))
                .semijoin(tenants.filter(|t| t.1 == 0).map(|t| t.0))
                .map(|(_, vm)| (vm, 4u8));
            let unknown =
                servers.map(|s| (s.1, s.0)).antijoin(known_tenant).map(|(_, vm)| (vm, 5u8));
            cross
                .concat(without_port)
                .concat(unapproved)
                .concat(outside)
                .concat(disabled)
                .concat(unknown)
                .distinct()
                .map(|_| ())
                .count()
                .inspect(move |(((), c), _, d)| seen.set(seen.get() + c * d))
                .probe_with(&mut probe);
            (s_in, p_in, n_in, t_in, i_in)
        });
        servers.into_iter().for_each(|r| s_in.insert(r));
        ports.into_iter().for_each(|r| p_in.insert(r));
        networks.into_iter().for_each(|r| n_in.insert(r));
        tenants.into_iter().for_each(|r| t_in.insert(r));
        images.into_iter().for_each(|r| i_in.insert(r));
        s_in.advance_to(1);
        p_in.advance_to(1);
        n_in.advance_to(1);
        t_in.advance_to(1);
        i_in.advance_to(1);
        for i in [&mut s_in] {
            i.flush();
        }
        p_in.flush();
        n_in.flush();
        t_in.flush();
        i_in.flush();
        worker.step_while(|| probe.less_than(s_in.time()));
        total.get() as usize
    })
}
