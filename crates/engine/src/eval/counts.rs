//! A relation's count per row slot, stored once while every slot holds the same count.
//!
//! Most tables never see two counts: every row of a datasource's table is an explicit
//! fact, every row of a closure is derived once. Four bytes a row saved on those is four
//! bytes a fact; the first slot that differs (a second derivation, a removed row's zero)
//! turns the run into one count per slot, for good.

/// Counts of slots `0..len`.
#[derive(Clone, Debug)]
pub(super) enum Counts {
    /// Every slot holds `value`.
    Same {
        value: u32,
        len: usize,
    },
    Each(Vec<u32>),
}

impl Default for Counts {
    fn default() -> Self {
        Counts::Same { value: 0, len: 0 }
    }
}

impl Counts {
    pub(super) fn len(&self) -> usize {
        match self {
            Counts::Same { len, .. } => *len,
            Counts::Each(v) => v.len(),
        }
    }

    /// The count of slot `id` (`id < len`).
    #[inline]
    pub(super) fn get(&self, id: usize) -> u32 {
        match self {
            Counts::Same { value, len } => {
                debug_assert!(id < *len);
                *value
            }
            Counts::Each(v) => v[id],
        }
    }

    /// One count per slot from now on.
    fn each(&mut self) -> &mut Vec<u32> {
        if let Counts::Same { value, len } = *self {
            *self = Counts::Each(vec![value; len]);
        }
        match self {
            Counts::Each(v) => v,
            Counts::Same { .. } => unreachable!("just replaced"),
        }
    }

    pub(super) fn set(&mut self, id: usize, count: u32) {
        match self {
            Counts::Same { value, .. } if *value == count => {}
            _ => self.each()[id] = count,
        }
    }

    /// Append `n` slots holding `count`.
    pub(super) fn extend(&mut self, n: usize, count: u32) {
        match self {
            Counts::Same { len: 0, .. } => *self = Counts::Same { value: count, len: n },
            Counts::Same { value, len } if *value == count => *len += n,
            _ => {
                let v = self.each();
                v.resize(v.len() + n, count);
            }
        }
    }

    pub(super) fn push(&mut self, count: u32) {
        self.extend(1, count);
    }

    /// Drop every slot (one count for all again).
    pub(super) fn clear(&mut self) {
        *self = Counts::default();
    }

    pub(super) fn reserve(&mut self, n: usize) {
        if let Counts::Each(v) = self {
            v.reserve(n);
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Counts::Same { .. } => 0,
            Counts::Each(v) => v.capacity() * 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain vector through pushes, sets and clears, one count kept while it
    /// lasts.
    #[test]
    fn counts_match_a_vector_and_stay_one_value_while_they_can() {
        let mut c = Counts::default();
        let mut model: Vec<u32> = Vec::new();
        let check = |c: &Counts, model: &[u32]| {
            assert_eq!(c.len(), model.len());
            assert!((0..model.len()).all(|i| c.get(i) == model[i]), "{c:?} vs {model:?}");
        };
        c.extend(3, 7);
        model.extend([7, 7, 7]);
        c.push(7);
        model.push(7);
        c.set(2, 7);
        check(&c, &model);
        assert!(matches!(c, Counts::Same { value: 7, len: 4 }) && c.heap_bytes() == 0);
        c.set(1, 0);
        model[1] = 0;
        check(&c, &model);
        assert!(matches!(c, Counts::Each(_)), "a differing count splits the run");
        c.push(9);
        model.push(9);
        c.extend(2, 1);
        model.extend([1, 1]);
        check(&c, &model);
        c.clear();
        model.clear();
        check(&c, &model);
        c.push(1 << 31);
        model.push(1 << 31);
        check(&c, &model);
        assert!(matches!(c, Counts::Same { .. }), "an emptied table starts with one count again");
    }
}
