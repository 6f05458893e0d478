//! What a scenario is made of: seed, length, load and which anomalies to
//! inject. Built in code, then [`Config::validate`]d before generation.

use shadowtap_proto::Timestamp;

use crate::anomaly::AnomalyKind;

/// Nanoseconds in a second.
pub(crate) const SEC: u64 = 1_000_000_000;
/// Nanoseconds in a minute.
pub(crate) const MIN: u64 = 60 * SEC;
/// Nanoseconds in an hour.
pub(crate) const HOUR: u64 = 60 * MIN;

/// Lowest accepted base rate, requests per second.
pub const MIN_RATE: f64 = 0.01;
/// Highest accepted base rate, requests per second.
pub const MAX_RATE: f64 = 2000.0;
/// Longest accepted scenario (a week of packet time).
pub const MAX_DURATION_NS: u64 = 7 * 24 * HOUR;
/// Accepted range of [`Config::body_scale`].
pub const BODY_SCALE: std::ops::RangeInclusive<f64> = 0.01..=10.0;
/// Default start: 2024-03-04T00:00:00Z (a Monday, midnight UTC).
pub const DEFAULT_START: Timestamp = Timestamp(1_709_510_400 * SEC);

/// One scenario. `Config::new(seed, hours, rate)` gives the defaults:
/// no diurnal modulation, every anomaly kind injected twice, warm-up the
/// first 20 % of the scenario or 30 minutes, whichever is longer.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Everything random derives from it; the same config gives the same bytes.
    pub seed: u64,
    /// Packet time of the first request.
    pub start: Timestamp,
    /// Length of the scenario in packet time, nanoseconds.
    pub duration_ns: u64,
    /// Base load in requests per second: the mean rate without diurnal
    /// modulation, and the peak rate with it.
    pub rate: f64,
    /// Load modulation over the day; `None` keeps the rate flat.
    pub diurnal: Option<Diurnal>,
    /// What to inject.
    pub anomalies: AnomalyPlan,
    /// Multiplies every endpoint's median response body size (1 = the
    /// catalogue's sizes). Small values make compact captures, such as the
    /// shipped sample; size-based anomalies stay relative to the scaled sizes.
    /// Scaling stops at a floor of 600 bytes (an endpoint's own median when
    /// that is smaller), so small objects keep their size.
    pub body_scale: f64,
}

/// Sinusoidal load modulation: the rate multiplier moves between `low` and
/// `high` as `low + (high − low)·(1 − cos(2π·(t − start)/period))/2`, so a
/// scenario starts at the trough ("night") and peaks half a period in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diurnal {
    /// Length of one full cycle, nanoseconds (24 h for real days; a
    /// shorter scenario can compress the cycle to its own length).
    pub period_ns: u64,
    /// Multiplier at the trough (default 0.2).
    pub low: f64,
    /// Multiplier at the peak (default 1.0).
    pub high: f64,
}

impl Diurnal {
    /// A day-long cycle between ×0.2 and ×1.0.
    pub fn daily() -> Self {
        Diurnal::compressed(24 * HOUR)
    }

    /// A cycle of `period_ns` between ×0.2 and ×1.0.
    pub fn compressed(period_ns: u64) -> Self {
        Diurnal {
            period_ns,
            low: 0.2,
            high: 1.0,
        }
    }

    /// The multiplier `since_start_ns` into the scenario.
    pub fn factor(&self, since_start_ns: u64) -> f64 {
        let phase = (since_start_ns % self.period_ns.max(1)) as f64 / self.period_ns.max(1) as f64;
        self.low + (self.high - self.low) * (1.0 - (std::f64::consts::TAU * phase).cos()) / 2.0
    }
}

/// Which anomalies to inject, how many of each and after how long.
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyPlan {
    /// Kinds to inject; empty for clean traffic.
    pub kinds: Vec<AnomalyKind>,
    /// Instances of each kind. Kinds with variants alternate them
    /// (the first instance takes the first variant).
    pub per_kind: u32,
    /// Nothing is injected before `start + warmup`; `None` means 20 % of
    /// the scenario or 30 minutes, whichever is longer.
    pub warmup_ns: Option<u64>,
}

impl AnomalyPlan {
    /// Every kind, `per_kind` times, default warm-up.
    pub fn all(per_kind: u32) -> Self {
        AnomalyPlan {
            kinds: AnomalyKind::ALL.to_vec(),
            per_kind,
            warmup_ns: None,
        }
    }

    /// Nothing injected.
    pub fn clean() -> Self {
        AnomalyPlan {
            kinds: Vec::new(),
            per_kind: 0,
            warmup_ns: None,
        }
    }
}

/// A configuration that cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("rate must be between {MIN_RATE} and {MAX_RATE} requests per second, not {0}")]
    Rate(f64),
    #[error("duration must be more than zero and at most a week")]
    Duration,
    #[error("diurnal period must be at least a minute and 0 < low <= high <= 1")]
    Diurnal,
    #[error("the warm-up must end before the scenario does")]
    Warmup,
    #[error("start time must be between 1970 and 2100")]
    Start,
    #[error("body scale must be between 0.01 and 10, not {0}")]
    BodyScale(f64),
}

impl Config {
    /// `hours` of traffic at `rate` requests per second from `seed`, with
    /// the defaults described on [`Config`].
    pub fn new(seed: u64, hours: f64, rate: f64) -> Self {
        Config {
            seed,
            start: DEFAULT_START,
            duration_ns: (hours.max(0.0) * HOUR as f64) as u64,
            rate,
            diurnal: None,
            anomalies: AnomalyPlan::all(2),
            body_scale: 1.0,
        }
    }

    /// Checks the ranges; returns the config unchanged when it is usable.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if !(MIN_RATE..=MAX_RATE).contains(&self.rate) {
            return Err(ConfigError::Rate(self.rate));
        }
        if self.duration_ns == 0 || self.duration_ns > MAX_DURATION_NS {
            return Err(ConfigError::Duration);
        }
        if let Some(d) = self.diurnal {
            let ok = d.period_ns >= MIN && d.low > 0.0 && d.low <= d.high && d.high <= 1.0;
            if !ok {
                return Err(ConfigError::Diurnal);
            }
        }
        if self.warmup_ns() >= self.duration_ns && !self.anomalies.kinds.is_empty() {
            return Err(ConfigError::Warmup);
        }
        if !BODY_SCALE.contains(&self.body_scale) {
            return Err(ConfigError::BodyScale(self.body_scale));
        }
        // pcap seconds are 32-bit; leave room for the scenario itself.
        let latest = 4_102_444_800 * SEC - MAX_DURATION_NS;
        if self.start.as_nanos() > latest {
            return Err(ConfigError::Start);
        }
        Ok(self)
    }

    /// The warm-up actually used (see [`AnomalyPlan::warmup_ns`]).
    pub fn warmup_ns(&self) -> u64 {
        self.anomalies
            .warmup_ns
            .unwrap_or_else(|| (self.duration_ns / 5).max(30 * MIN))
    }

    /// The load multiplier `since_start_ns` into the scenario (1 without
    /// diurnal modulation).
    pub fn load_factor(&self, since_start_ns: u64) -> f64 {
        self.diurnal.map_or(1.0, |d| d.factor(since_start_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diurnal_swings_between_low_and_high() {
        let d = Diurnal::daily();
        assert!((d.factor(0) - 0.2).abs() < 1e-9);
        assert!((d.factor(12 * HOUR) - 1.0).abs() < 1e-9);
        assert!((d.factor(6 * HOUR) - 0.6).abs() < 1e-9);
        assert!((d.factor(24 * HOUR) - 0.2).abs() < 1e-9);
    }

    #[test]
    fn validation_rejects_bad_ranges() {
        assert_eq!(
            Config::new(1, 1.0, 0.0).validate(),
            Err(ConfigError::Rate(0.0))
        );
        assert_eq!(
            Config::new(1, 0.0, 5.0).validate(),
            Err(ConfigError::Duration)
        );
        // One hour: the 30-minute warm-up fits.
        assert!(Config::new(1, 1.0, 5.0).validate().is_ok());
        // Twenty minutes: it does not, unless the plan is clean or shorter.
        let short = Config::new(1, 1.0 / 3.0, 5.0);
        assert_eq!(short.clone().validate(), Err(ConfigError::Warmup));
        let mut clean = short.clone();
        clean.anomalies = AnomalyPlan::clean();
        assert!(clean.validate().is_ok());
        let mut quick = short;
        quick.anomalies.warmup_ns = Some(4 * MIN);
        assert!(quick.validate().is_ok());
        let mut flat = Config::new(1, 1.0, 5.0);
        flat.diurnal = Some(Diurnal {
            period_ns: HOUR,
            low: 0.0,
            high: 1.0,
        });
        assert_eq!(flat.validate(), Err(ConfigError::Diurnal));
        let mut tiny = Config::new(1, 1.0, 5.0);
        tiny.body_scale = 0.0;
        assert_eq!(tiny.validate(), Err(ConfigError::BodyScale(0.0)));
    }
}
