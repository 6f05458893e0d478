//! Small statistics for the detectors: a conservative binomial tail test
//! and robust location/scale on a log scale.

/// Kullback–Leibler divergence of Bernoulli(q) from Bernoulli(p), in nats.
pub(crate) fn kl_bernoulli(q: f64, p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let term = |a: f64, b: f64| if a <= 0.0 { 0.0 } else { a * (a / b).ln() };
    term(q, p) + term(1.0 - q, 1.0 - p)
}

/// Upper bound (Chernoff) on `-ln P(X ≥ k)` for X ~ Binomial(n, p): the
/// "surprise" of seeing `k` or more events. Zero when `k/n ≤ p`.
/// Conservative: the true tail is never more surprising than this says.
pub(crate) fn binomial_surprise(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let q = k as f64 / n as f64;
    if q <= p {
        return 0.0;
    }
    n as f64 * kl_bernoulli(q, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surprise_grows_with_evidence() {
        // One 500 among three requests against a 1 % baseline: unremarkable.
        assert!(binomial_surprise(1, 3, 0.01) < 5.0);
        // 30 of 100 against 1 %: overwhelming.
        assert!(binomial_surprise(30, 100, 0.01) > 50.0);
        // At or below the baseline: nothing.
        assert_eq!(binomial_surprise(1, 100, 0.02), 0.0);
        assert_eq!(binomial_surprise(0, 0, 0.5), 0.0);
        // Exact tail for n = 10, p = 0.5, k = 10 is 2^-10: the bound is
        // ln(2^10) here, the exact value.
        let s = binomial_surprise(10, 10, 0.5);
        assert!((s - 10.0 * 2f64.ln()).abs() < 1e-9);
    }
}
