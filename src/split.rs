//! Cutting one mutable slice into consecutive parts of given lengths, so
//! that parallel workers each fill their own part of a presized buffer
//! (parse's chunk slots, aggregation's merchants, the index writer's sort
//! passes and buckets). This module must not know what the parts hold.

/// `slice` cut into consecutive parts of `lengths`, which must not add up
/// to more than its length; a rest beyond them is left out.
pub fn by_lengths<T>(slice: &mut [T], lengths: impl IntoIterator<Item = usize>) -> Vec<&mut [T]> {
    let lengths = lengths.into_iter();
    let mut parts = Vec::with_capacity(lengths.size_hint().0);
    let mut rest = slice;
    for length in lengths {
        let (head, tail) = rest.split_at_mut(length);
        parts.push(head);
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_consecutive_and_of_the_given_lengths() {
        let mut values = [1, 2, 3, 4, 5, 6];
        let parts = by_lengths(&mut values, [2, 0, 3]);
        assert_eq!(parts.len(), 3);
        assert_eq!(&*parts[0], &[1, 2]);
        assert!(parts[1].is_empty());
        assert_eq!(&*parts[2], &[3, 4, 5]);
    }

    #[test]
    #[should_panic]
    fn lengths_beyond_the_slice_are_refused() {
        let mut values = [1, 2];
        by_lengths(&mut values, [3]);
    }
}
