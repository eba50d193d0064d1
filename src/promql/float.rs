//! Float helpers shared by functions, aggregations and the test runner, so
//! compensated sums and tolerant comparisons behave the same everywhere.

use crate::model::is_stale_nan;

/// Kahan–Babuška (Neumaier) summation step: adds `inc` to `sum` with
/// compensation `c`; an infinite sum drops the compensation.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus' `almost.Equal`: relative difference below `eps`, NaNs equal.
pub(crate) fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < eps
}
