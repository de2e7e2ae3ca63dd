//! The IP address builtins, as netaddr 1.x computes them: `IPAddress` and `IPNetwork`
//! values compared by version and integer value.
//!
//! Addresses are read strictly (`inet_pton`): four decimal octets without leading zeros
//! for IPv4 (`10.0.0.05` is an error), standard notation for IPv6. An int is an address
//! too (IPv4 up to 2^32 - 1, IPv6 above). A network is `addr`, `addr/prefix`,
//! `addr/netmask` or `addr/hostmask`; host bits are kept but do not matter, since
//! networks compare and contain by their first and last address.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::python::{self, IntError, repr_str, type_name};
use crate::value::Value;

/// An IP address; ordered as netaddr sorts them: every IPv4 before every IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Addr {
    version: u8,
    value: u128,
}

/// An IP network, as the range of addresses it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    version: u8,
    first: u128,
    last: u128,
}

/// One IP version's parsing rules.
struct Family {
    version: u8,
    width: u32,
    parse: fn(&str) -> Option<u128>,
}

const V4: Family = Family { version: 4, width: 32, parse: parse_v4 };
const V6: Family = Family { version: 6, width: 128, parse: parse_v6 };

fn parse_v4(s: &str) -> Option<u128> {
    // netaddr rejects leading zeros itself, whatever the platform's inet_pton does.
    if s.contains(':') || s.split('.').any(|octet| octet.len() > 1 && octet.starts_with('0')) {
        return None;
    }
    s.parse::<Ipv4Addr>().ok().map(|a| u128::from(u32::from(a)))
}

fn parse_v6(s: &str) -> Option<u128> {
    s.parse::<Ipv6Addr>().ok().map(u128::from)
}

/// The mask of the host bits for a prefix length.
fn hostmask(width: u32, prefix: u32) -> u128 {
    let bits = width - prefix;
    if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 }
}

/// `netaddr.IPAddress(v)`.
fn address(v: &Value) -> Result<Addr, String> {
    match v {
        Value::Str(s) => {
            if s.contains('/') {
                return Err("IPAddress() does not support netmasks or subnet prefixes! \
                            See documentation for details."
                    .into());
            }
            [V4, V6]
                .iter()
                .find_map(|f| (f.parse)(s).map(|value| Addr { version: f.version, value }))
                .ok_or_else(|| format!("failed to detect a valid IP address from {}", repr_str(s)))
        }
        Value::Int(i) => match u128::try_from(*i) {
            Ok(value) if value <= u128::from(u32::MAX) => Ok(Addr { version: 4, value }),
            Ok(value) => Ok(Addr { version: 6, value }),
            Err(_) => Err(format!("failed to detect a valid IP address from {i}")),
        },
        Value::Float(_) => Err(format!("argument of type '{}' is not iterable", type_name(v))),
    }
}

/// `netaddr.IPNetwork(v)`: IPv4 first, then IPv6.
fn network(v: &Value) -> Result<Net, String> {
    let Value::Str(s) = v else {
        return Err(format!("unexpected type <class '{}'> for addr arg", type_name(v)));
    };
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (&**s, None),
    };
    [V4, V6].iter().find_map(|f| network_in(f, addr, prefix)).ok_or_else(|| format!("invalid IPNetwork {s}"))
}

/// netaddr's `parse_ip_network` for one family; `None` where it raises `AddrFormatError`.
fn network_in(family: &Family, addr: &str, prefix: Option<&str>) -> Option<Net> {
    let value = (family.parse)(addr)?;
    let prefix = match prefix {
        None => family.width,
        Some(p) => match python::parse_int(p) {
            Ok(n) => u32::try_from(n).ok()?,
            Err(IntError::Overflow) => return None,
            Err(IntError::Invalid) => mask_prefix(family, p)?,
        },
    };
    if prefix > family.width {
        return None;
    }
    let host = hostmask(family.width, prefix);
    Some(Net { version: family.version, first: value & !host, last: value | host })
}

/// The prefix length of a netmask (`255.255.255.0`) or, failing that, of a hostmask
/// (`0.0.0.255`).
fn mask_prefix(family: &Family, mask: &str) -> Option<u32> {
    let value = (family.parse)(mask)?;
    let all = hostmask(family.width, 0);
    let prefixes = 0..=family.width;
    prefixes
        .clone()
        .find(|&p| value == all ^ hostmask(family.width, p))
        .or_else(|| prefixes.into_iter().find(|&p| value == hostmask(family.width, p)))
}

pub(super) fn ips_equal(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(address(x)? == address(y)?)
}

pub(super) fn ips_lt(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(address(x)? < address(y)?)
}

pub(super) fn ips_lteq(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(address(x)? <= address(y)?)
}

pub(super) fn ips_gt(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(address(x)? > address(y)?)
}

pub(super) fn ips_gteq(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(address(x)? >= address(y)?)
}

/// Same version and same range: `10.0.0.1/24` equals `10.0.0.0/24`.
pub(super) fn networks_equal(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(network(x)? == network(y)?)
}

/// Congress's check, kept as it is: true if `y`'s first or last address lies in `x`.
/// It misses `y` strictly containing `x` (so it is not symmetric), and it compares raw
/// integers across IP versions (`0.0.0.0/0` overlaps `::/96`).
pub(super) fn networks_overlap(x: &Value, y: &Value) -> Result<bool, String> {
    let (a, b) = (network(x)?, network(y)?);
    let inside = |v: u128| a.first <= v && v <= a.last;
    Ok(inside(b.first) || inside(b.last))
}

/// IP `x` is in network `y` (of the same version).
pub(super) fn ip_in_network(x: &Value, y: &Value) -> Result<bool, String> {
    let net = network(y)?;
    let ip = address(x)?;
    Ok(ip.version == net.version && net.first <= ip.value && ip.value <= net.last)
}

/// Network `x` lies inside network `y` (same version, every address of `x` in `y`):
/// `network_in_network("10.1.2.0/24", "10.0.0.0/8")`. A network is inside itself.
pub(super) fn network_in_network(x: &Value, y: &Value) -> Result<bool, String> {
    let (inner, outer) = (network(x)?, network(y)?);
    Ok(inner.version == outer.version && outer.first <= inner.first && inner.last <= outer.last)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builtins::test_values::s;

    #[test]
    fn addresses_parse_strictly() {
        assert_eq!(address(&s("10.0.0.5")), Ok(Addr { version: 4, value: 0x0a00_0005 }));
        assert_eq!(address(&s("::1")), Ok(Addr { version: 6, value: 1 }));
        assert_eq!(address(&Value::Int(167_772_161)), Ok(Addr { version: 4, value: 0x0a00_0001 }));
        assert_eq!(address(&Value::Int(1 << 32)), Ok(Addr { version: 6, value: 1 << 32 }));
        for bad in ["10.0.0.05", "010.0.0.1", "10.0.0", "10.0.0.256", " 10.0.0.1", "1.2.3.4/32", "", "fe80::1%eth0"] {
            assert!(address(&s(bad)).is_err(), "{bad:?}");
        }
        assert!(address(&Value::Int(-1)).is_err());
        assert!(address(&Value::Float(1.0)).is_err());
    }

    #[test]
    fn networks_parse_prefixes_and_masks() {
        let net = |first: u128, last: u128| Ok(Net { version: 4, first, last });
        assert_eq!(network(&s("10.0.0.0/24")), net(0x0a00_0000, 0x0a00_00ff));
        assert_eq!(network(&s("10.0.0.7/24")), net(0x0a00_0000, 0x0a00_00ff));
        assert_eq!(network(&s("10.0.0.0/255.255.255.0")), net(0x0a00_0000, 0x0a00_00ff));
        assert_eq!(network(&s("10.0.0.0/0.0.0.255")), net(0x0a00_0000, 0x0a00_00ff));
        assert_eq!(network(&s("10.0.0.0/ 24")), net(0x0a00_0000, 0x0a00_00ff));
        assert_eq!(network(&s("10.0.0.9")), net(0x0a00_0009, 0x0a00_0009));
        assert_eq!(network(&s("0.0.0.0/0")), net(0, 0xffff_ffff));
        assert_eq!(network(&s("1.2.3.4/0.0.0.0")), net(0, 0xffff_ffff));
        assert_eq!(network(&s("1.2.3.4/255.255.255.255")), net(0x0102_0304, 0x0102_0304));
        assert_eq!(network(&s("fe80::/10")), Ok(Net { version: 6, first: 0xfe80 << 112, last: (0xfec0 << 112) - 1 }));
        assert_eq!(network(&s("::/0")), Ok(Net { version: 6, first: 0, last: u128::MAX }));
        for bad in ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/255.0.255.0", "10.0.0.0/24/8", "x", "::/129"] {
            assert!(network(&s(bad)).is_err(), "{bad:?}");
        }
        assert!(network(&Value::Int(5)).is_err());
    }

    #[test]
    fn comparisons() {
        let (a, b, c) = (s("10.0.0.5"), s("192.168.1.1"), s("::1"));
        assert_eq!(ips_lt(&a, &b), Ok(true));
        assert_eq!(ips_lt(&b, &c), Ok(true));
        assert_eq!(ips_lteq(&a, &a), Ok(true));
        assert_eq!(ips_gt(&c, &a), Ok(true));
        assert_eq!(ips_gteq(&a, &b), Ok(false));
        assert_eq!(ips_equal(&a, &Value::Int(0x0a00_0005)), Ok(true));
        assert_eq!(ips_equal(&s("1.2.3.4"), &s("::1.2.3.4")), Ok(false));
        assert!(ips_equal(&a, &s("10.0.0.05")).is_err());
    }

    #[test]
    fn network_predicates() {
        let (n24, n16, n12) = (s("10.0.0.0/24"), s("10.0.0.0/16"), s("172.16.0.0/12"));
        assert_eq!(networks_equal(&s("10.0.0.1/24"), &n24), Ok(true));
        assert_eq!(networks_equal(&n24, &n16), Ok(false));
        assert_eq!(networks_equal(&s("0.0.0.0/0"), &s("::/96")), Ok(false));
        assert_eq!(networks_overlap(&n24, &n16), Ok(true));
        assert_eq!(networks_overlap(&n16, &n24), Ok(true));
        assert_eq!(networks_overlap(&n24, &n12), Ok(false));
        // The quirk: y strictly containing x is missed, and versions are not compared.
        assert_eq!(networks_overlap(&s("10.0.1.0/24"), &n16), Ok(false));
        assert_eq!(networks_overlap(&s("0.0.0.0/0"), &s("::/96")), Ok(true));
        assert_eq!(ip_in_network(&s("10.0.0.5"), &n24), Ok(true));
        assert_eq!(ip_in_network(&s("10.0.1.5"), &n24), Ok(false));
        assert_eq!(ip_in_network(&s("::1"), &s("0.0.0.0/0")), Ok(false));
        assert_eq!(ip_in_network(&Value::Int(1), &s("::/0")), Ok(false));
        assert!(ip_in_network(&s("10.0.0.05"), &n24).is_err());
        assert!(ip_in_network(&s("10.0.0.5"), &s("10.0.0.0/40")).is_err());
    }

    #[test]
    fn networks_inside_networks() {
        let inside = |x: &str, y: &str| network_in_network(&s(x), &s(y));
        assert_eq!(inside("10.1.2.0/24", "10.0.0.0/8"), Ok(true));
        assert_eq!(inside("10.0.0.0/8", "10.0.0.0/8"), Ok(true));
        assert_eq!(inside("10.0.0.0/8", "10.1.2.0/24"), Ok(false));
        assert_eq!(inside("10.0.0.0/16", "10.0.0.0/24"), Ok(false), "overlapping is not inside");
        assert_eq!(inside("11.0.0.0/24", "10.0.0.0/8"), Ok(false));
        assert_eq!(inside("10.0.0.7", "10.0.0.0/24"), Ok(true), "an address is a /32");
        assert_eq!(inside("10.0.0.0/255.255.255.0", "10.0.0.0/16"), Ok(true));
        assert_eq!(inside("fd00:1::/64", "fd00::/16"), Ok(true));
        assert_eq!(inside("::/96", "0.0.0.0/0"), Ok(false), "versions differ");
        assert_eq!(inside("0.0.0.0/0", "::/0"), Ok(false));
        assert!(inside("10.0.0.0/33", "10.0.0.0/8").is_err());
        assert!(inside("10.0.0.0/8", "x").is_err());
        assert!(network_in_network(&Value::Int(1), &s("10.0.0.0/8")).is_err());
    }
}
