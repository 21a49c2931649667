//! Money as integer fen (分): no floating point anywhere an amount is stored or compared.
//! Rendering as 元 with two decimals happens only at the edges.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in fen (1 元 = 100 分). Negative amounts are representable for arithmetic but
/// intake refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    pub const fn yuan(yuan: i64) -> Self {
        Self(yuan * 100)
    }

    pub fn checked_mul(self, n: i64) -> Option<Self> {
        self.0.checked_mul(n).map(Self)
    }
}

impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, rhs: Fen) -> Fen {
        Fen(self.0 + rhs.0)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02} 元", abs / 100, abs % 100)
    }
}

/// An area in hundredths of a square metre, so areas compare exactly too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CentiSqm(pub i64);

impl CentiSqm {
    pub const fn sqm(m2: i64) -> Self {
        Self(m2 * 100)
    }
}

impl std::iter::Sum for CentiSqm {
    fn sum<I: Iterator<Item = CentiSqm>>(iter: I) -> CentiSqm {
        CentiSqm(iter.map(|a| a.0).sum())
    }
}

impl fmt::Display for CentiSqm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} m²", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_yuan_and_area() {
        assert_eq!(Fen(358_000).to_string(), "3580.00 元");
        assert_eq!(Fen(-5).to_string(), "-0.05 元");
        assert_eq!(Fen::yuan(150_000), Fen(15_000_000));
        assert_eq!(CentiSqm(1_550).to_string(), "15.50 m²");
    }
}
