//! The authenticators' memory of tokens already checked: keyed by the token's SHA-256 (the
//! token itself is never kept), each entry until its own expiry, at most a fixed number of
//! entries. A full cache drops what expires soonest (the expired entries first).
//!
//! Time is passed in (`now`), so the rules are tested without waiting.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

/// A token's SHA-256: what a cache keeps instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        TokenDigest(bytes)
    }
}

impl fmt::Debug for TokenDigest {
    /// The first 8 bytes in hex: enough to tell entries apart in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

struct Entry<V> {
    value: V,
    expires: Instant,
    /// Tells apart entries that expire at the same instant in `by_expiry`.
    seq: u64,
}

/// Values by token digest, each until its expiry, at most `capacity` of them.
pub struct TokenCache<V> {
    capacity: usize,
    entries: HashMap<TokenDigest, Entry<V>>,
    by_expiry: BTreeMap<(Instant, u64), TokenDigest>,
    seq: u64,
}

impl<V> fmt::Debug for TokenCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache").field("entries", &self.entries.len()).field("capacity", &self.capacity).finish()
    }
}

impl<V: Clone> TokenCache<V> {
    /// A cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> TokenCache<V> {
        TokenCache { capacity: capacity.max(1), entries: HashMap::new(), by_expiry: BTreeMap::new(), seq: 0 }
    }

    /// The value of `key`, unless it has expired at `now` (then it is dropped).
    pub fn get(&mut self, key: &TokenDigest, now: Instant) -> Option<V> {
        let entry = self.entries.get(key)?;
        if now < entry.expires {
            return Some(entry.value.clone());
        }
        self.remove(key);
        None
    }

    /// Remember `value` for `key` for `ttl` from `now` (a zero `ttl` remembers nothing). Expired
    /// entries go first; when the cache is still full, the entries that expire soonest.
    pub fn insert(&mut self, key: TokenDigest, value: V, ttl: Duration, now: Instant) {
        self.remove(&key);
        if ttl.is_zero() {
            return;
        }
        while let Some((&(expires, _), _)) = self.by_expiry.first_key_value() {
            if expires > now && self.entries.len() < self.capacity {
                break;
            }
            if let Some((_, old)) = self.by_expiry.pop_first() {
                self.entries.remove(&old);
            }
        }
        let expires = now + ttl;
        self.seq += 1;
        self.by_expiry.insert((expires, self.seq), key);
        self.entries.insert(key, Entry { value, expires, seq: self.seq });
    }

    fn remove(&mut self, key: &TokenDigest) {
        if let Some(old) = self.entries.remove(key) {
            self.by_expiry.remove(&(old.expires, old.seq));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn digests_are_sha256_and_never_print_the_token() {
        let d = TokenDigest::of("abc");
        // SHA-256("abc"), FIPS 180-2's example.
        assert_eq!(format!("{d:?}"), "TokenDigest(ba7816bf8f01cfea…)");
        assert_eq!(d, TokenDigest::of("abc"));
        assert_ne!(d, TokenDigest::of("abd"));
        assert!(!format!("{:?}", TokenDigest::of("canary-token")).contains("canary"));
    }

    #[test]
    fn entries_live_until_their_own_expiry() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(10);
        let (a, b) = (TokenDigest::of("a"), TokenDigest::of("b"));
        c.insert(a, "A", 10 * S, t0);
        c.insert(b, "B", 2 * S, t0);
        assert_eq!(c.get(&a, t0 + S), Some("A"));
        assert_eq!(c.get(&b, t0 + S), Some("B"));
        assert_eq!(c.get(&b, t0 + 2 * S), None, "expired exactly at its ttl");
        assert_eq!(c.len(), 1, "an expired entry is dropped when seen");
        assert_eq!(c.get(&a, t0 + 9 * S), Some("A"));
        assert_eq!(c.get(&a, t0 + 10 * S), None);
        assert!(c.is_empty());
    }

    #[test]
    fn a_new_value_replaces_the_old_one_and_its_expiry() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(10);
        let a = TokenDigest::of("a");
        c.insert(a, 1, 10 * S, t0);
        c.insert(a, 2, 2 * S, t0 + S);
        assert_eq!(c.get(&a, t0 + 2 * S), Some(2));
        assert_eq!(c.get(&a, t0 + 3 * S), None);
        c.insert(a, 3, Duration::ZERO, t0);
        assert_eq!(c.get(&a, t0), None, "a zero ttl remembers nothing");
        assert_eq!(c.by_expiry.len(), c.entries.len());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_those_that_expire_soonest() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(3);
        let keys: Vec<TokenDigest> = (0..5).map(|i| TokenDigest::of(&i.to_string())).collect();
        c.insert(keys[0], 0, 5 * S, t0);
        c.insert(keys[1], 1, S, t0);
        c.insert(keys[2], 2, 9 * S, t0);
        // Full: the soonest to expire (1) goes.
        c.insert(keys[3], 3, 7 * S, t0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&keys[1], t0), None);
        assert_eq!((c.get(&keys[0], t0), c.get(&keys[2], t0), c.get(&keys[3], t0)), (Some(0), Some(2), Some(3)));
        // Later, 0 has expired: it goes, even though there would be room after one eviction.
        c.insert(keys[4], 4, S, t0 + 6 * S);
        assert_eq!(c.len(), 3);
        assert!(!c.entries.contains_key(&keys[0]));
        assert_eq!(c.get(&keys[4], t0 + 6 * S), Some(4));
        assert_eq!(c.by_expiry.len(), c.entries.len());
    }

    #[test]
    fn ten_thousand_and_one_tokens_keep_ten_thousand() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(10_000);
        for i in 0..10_001u32 {
            c.insert(TokenDigest::of(&i.to_string()), i, S * (i + 1), t0);
        }
        assert_eq!(c.len(), 10_000);
        assert_eq!(c.get(&TokenDigest::of("0"), t0), None, "the one expiring soonest went");
        assert_eq!(c.get(&TokenDigest::of("10000"), t0), Some(10_000));
    }
}
