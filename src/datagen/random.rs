//! A small deterministic random stream (SplitMix64) and the amount
//! distribution, all in integers.

/// SplitMix64: fast, and good enough for test data.
pub struct Random {
    state: u64,
}

/// `2^(k/16)` for k in 0..16, in units of 1/65536: the fractional powers
/// of two that turn a normal draw into a log-normal amount.
const POW2_SIXTEENTHS: [u64; 16] = [
    65536, 68438, 71468, 74632, 77936, 81386, 84990, 88752, 92682, 96785, 101070, 105545, 110218,
    115098, 120194, 125515,
];

/// The median amount: 80.00 CNY.
const MEDIAN_FEN: u64 = 8_000;

impl Random {
    /// A stream for one block of one seed.
    pub fn new(seed: u64, block: u64) -> Random {
        let mut random = Random {
            state: seed ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        };
        random.next();
        random
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }

    /// A log-normal amount in fen with median 80.00 and σ ≈ 0.9 (in log
    /// space), from 0.01 to 50,000.00.
    pub fn amount_fen(&mut self) -> i64 {
        // Irwin–Hall: the sum of 12 uniform draws in 0..4096, minus 6 × 4096,
        // is close to normal with a standard deviation of 4096.
        let sum: i64 = (0..12).map(|_| self.below(4096) as i64).sum::<i64>() - 6 * 4096;
        // σ ≈ 0.9 in natural log is 1.3 in log2: scale so that one standard
        // deviation is 1.3 × 16 sixteenths of a doubling.
        let sixteenths = sum * 21 / 4096;
        let whole = sixteenths.div_euclid(16);
        let fraction = POW2_SIXTEENTHS[sixteenths.rem_euclid(16) as usize];
        let scaled = (MEDIAN_FEN * fraction) >> 16;
        let amount = if whole >= 0 {
            scaled << whole.min(20)
        } else {
            scaled >> (-whole).min(40)
        };
        amount.clamp(1, 5_000_000) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_the_intended_median_and_range() {
        let mut random = Random::new(7, 0);
        let mut amounts: Vec<i64> = (0..20_001).map(|_| random.amount_fen()).collect();
        amounts.sort_unstable();
        let median = amounts[10_000];
        assert!((6_000..=10_000).contains(&median), "median {median}");
        assert!(amounts[0] >= 1 && amounts[20_000] <= 5_000_000);
        assert!(
            amounts[19_000] > 20_000,
            "a long tail: the 95th percentile is above 200.00"
        );
    }

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Random::new(1, 2).next()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Random::new(1, 2).next(), Random::new(1, 3).next());
    }
}
