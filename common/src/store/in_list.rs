//! Values for an SQL `IN (…)` or `NOT IN (…)` list, padded to one of a few lengths so that
//! the statement's text, and so its prepared statement, repeats from batch to batch.
//!
//! sqlx keeps each connection's prepared statements by their SQL text, and a list of 13
//! values is a different text from one of 14. Batches of varying size each prepared their
//! own reads, and those crowded the cache (100 statements per connection) out for the rest
//! (docs/performance.md, 2026-12-08, late). Repeating the last value changes no result:
//! `IN` is a set.

/// Beyond this many values a list grows in steps of this many rather than doubling, so
/// that padding never takes a list near SQLite's limit of 32,766 parameters.
const STEP: usize = 1024;

/// `values` lengthened by repeating the last one: to the next power of two, or beyond
/// [`STEP`] values to the next multiple of it.
pub fn padded<T: Clone>(mut values: Vec<T>) -> Vec<T> {
    let len = match values.len() {
        n if n <= STEP => n.next_power_of_two(),
        n => n.div_ceil(STEP) * STEP,
    };
    if let Some(last) = values.last().cloned() {
        values.resize(len, last);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::padded;

    #[test]
    fn lengths_are_powers_of_two_and_the_values_are_the_same_set() {
        let cases: [(Vec<u32>, Vec<u32>); 5] = [
            (vec![], vec![]),
            (vec![7], vec![7]),
            (vec![1, 2], vec![1, 2]),
            (vec![1, 2, 3], vec![1, 2, 3, 3]),
            (vec![1, 2, 3, 4, 5], vec![1, 2, 3, 4, 5, 5, 5, 5]),
        ];
        for (values, expected) in cases {
            assert_eq!(padded(values.clone()), expected, "padding {values:?}");
        }
    }

    #[test]
    fn long_lists_grow_in_steps_not_doubling() {
        for (len, padded_len) in [(1024, 1024), (1025, 2048), (2049, 3072), (16385, 17408)] {
            let values: Vec<usize> = (0..len).collect();
            let out = padded(values);
            assert_eq!(out.len(), padded_len, "a list of {len}");
            assert!(out[len..].iter().all(|&v| v == len - 1), "only the last value repeats");
        }
    }
}
