//! Merchant id → dense index, looked up once per transaction row.
//!
//! An open-addressing table of 16-byte slots that hold short ids (up to
//! `INLINE_BYTES`) inline with their index: a lookup of a short id reads
//! one slot, usually one cache line, and compares 12 bytes without a call.
//! Longer ids are compared against the id buffer. The general-purpose map
//! of boxed ids this replaced cost 14% of a 10M-row run, mostly in cache
//! misses on its buckets and keys. This module must not know what a
//! merchant is.

use std::hash::BuildHasher;

/// Ids of at most this many bytes are kept in their slot.
const INLINE_BYTES: usize = 11;
/// `Slot::len` of an empty slot.
const EMPTY: u8 = 0;
/// `Slot::len` of a slot whose id is longer than `INLINE_BYTES`.
const LONG: u8 = u8::MAX;
const _: () = assert!(INLINE_BYTES < LONG as usize);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Slot {
    /// The id, zero-padded, when it is short.
    key: [u8; INLINE_BYTES],
    /// The id's length (ids are never empty), `EMPTY` or `LONG`.
    len: u8,
    index: u32,
}

/// Every id, and the table that finds them.
#[derive(Debug, Default)]
pub struct IdTable {
    /// Every id, in index order, back to back.
    text: String,
    /// Where id `i` ends in `text` (it starts where `i − 1` ends).
    ends: Vec<u32>,
    /// A power of two long, at most half full, so probes stay short.
    slots: Vec<Slot>,
}

fn hash(id: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x6d65_7263).hash_one(id)
}

/// The slot contents an id would have, index aside.
fn probe_key(id: &[u8]) -> ([u8; INLINE_BYTES], u8) {
    let mut key = [0u8; INLINE_BYTES];
    if id.len() > INLINE_BYTES {
        return (key, LONG);
    }
    key[..id.len()].copy_from_slice(id);
    (key, id.len() as u8)
}

impl IdTable {
    /// A table of `ids`, which must be distinct and not empty; id `i` gets
    /// index `i`.
    pub fn new<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> IdTable {
        let mut table = IdTable {
            text: String::new(),
            ends: Vec::with_capacity(ids.len()),
            slots: vec![Slot::default(); (2 * ids.len()).next_power_of_two().max(2)],
        };
        for id in ids {
            assert!(!id.is_empty(), "merchant ids are not empty");
            table.text.push_str(id);
            let end = u32::try_from(table.text.len()).expect("merchant ids fit 4 GiB");
            table.ends.push(end);
        }
        let mask = table.slots.len() - 1;
        for index in 0..table.ends.len() as u32 {
            let id = table.id(index).as_bytes();
            let (key, len) = probe_key(id);
            let mut at = hash(id) as usize & mask;
            while table.slots[at].len != EMPTY {
                at = (at + 1) & mask;
            }
            table.slots[at] = Slot { key, len, index };
        }
        table
    }

    /// Id `index`.
    pub fn id(&self, index: u32) -> &str {
        let index = index as usize;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize,
        };
        &self.text[start..self.ends[index] as usize]
    }

    /// The index of `id`, if it is in the table.
    pub fn get(&self, id: &[u8]) -> Option<u32> {
        self.get_from(id, self.home(id))
    }

    /// The slot where the probe for `id` starts.
    pub fn home(&self, id: &[u8]) -> usize {
        hash(id) as usize & (self.slots.len() - 1)
    }

    /// Reads the slot at `home`, so that its cache line is loaded before
    /// `get_from` needs it: a batch of lookups that first touches every
    /// home waits on their cache misses together, not one after another.
    pub fn touch(&self, home: usize) -> u8 {
        self.slots[home].len
    }

    /// `get`, the probe starting at `home`, which must be `self.home(id)`.
    pub fn get_from(&self, id: &[u8], home: usize) -> Option<u32> {
        debug_assert_eq!(home, self.home(id), "the probe starts at the id's home");
        if id.is_empty() {
            return None;
        }
        let (key, len) = probe_key(id);
        let mask = self.slots.len() - 1;
        let mut at = home;
        loop {
            let slot = &self.slots[at];
            if slot.len == EMPTY {
                return None;
            }
            if slot.len == len
                && slot.key == key
                && (len != LONG || self.id(slot.index).as_bytes() == id)
            {
                return Some(slot.index);
            }
            at = (at + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_short_and_long_ids_and_nothing_else() {
        let ids: Vec<String> = (0..1000)
            .map(|i| match i % 3 {
                0 => format!("M{i}"),
                1 => format!("a-merchant-id-longer-than-eleven-bytes-{i}"),
                _ => format!("{i:011}"),
            })
            .collect();
        let table = IdTable::new(ids.iter().map(String::as_str));
        for (index, id) in ids.iter().enumerate() {
            assert_eq!(table.get(id.as_bytes()), Some(index as u32));
            let home = table.home(id.as_bytes());
            table.touch(home);
            assert_eq!(table.get_from(id.as_bytes(), home), Some(index as u32));
            assert_eq!(table.id(index as u32), id);
        }
        for missing in [
            "",
            "M1000",
            "M1\0",
            "00000000002x",
            "a-merchant-id-longer-than-eleven-bytes-0",
        ] {
            let expected = ids.iter().position(|id| id == missing).map(|i| i as u32);
            assert_eq!(table.get(missing.as_bytes()), expected, "{missing:?}");
        }
        // A short id padded with zeros is not the id without them.
        let table = IdTable::new(["ab", "ab\0"].into_iter());
        assert_eq!(table.get(b"ab"), Some(0));
        assert_eq!(table.get(b"ab\0"), Some(1));
        assert_eq!(table.get(b"ab\0\0"), None);
        assert_eq!(IdTable::new(std::iter::empty()).get(b"x"), None);
    }
}
