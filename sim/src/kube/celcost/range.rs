//! Size and cost ranges: cel-go's SizeEstimate and CostEstimate, saturating.

/// A `[min, max]` range, saturating at `u64::MAX` (cel-go's SizeEstimate and CostEstimate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) min: u64,
    pub(super) max: u64,
}

impl Range {
    pub(super) const UNKNOWN: Range = Range { min: 0, max: u64::MAX };
    pub(super) fn fixed(n: u64) -> Range {
        Range { min: n, max: n }
    }
    pub(super) fn add(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }
    pub(super) fn mul(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }
    pub(super) fn factor(self, f: f64) -> Range {
        Range {
            min: by_factor(self.min, f),
            max: by_factor(self.max, f),
        }
    }
    pub(super) fn union(self, o: Range) -> Range {
        Range {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// x * f rounded up, saturating (cel-go's multiplyByCostFactor).
pub(super) fn by_factor(x: u64, f: f64) -> u64 {
    let v = (x as f64 * f).ceil();
    if v >= 18_446_744_073_709_551_616.0 {
        u64::MAX
    } else {
        v as u64
    }
}
