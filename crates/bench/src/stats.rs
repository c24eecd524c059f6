//! Latency summaries: exact percentiles over every sample (nearest rank), in milliseconds.

use std::time::Duration;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (nanoseconds); all zero when there are none.
    pub fn of(mut samples: Vec<u64>) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| -> f64 {
            let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            millis(samples[index])
        };
        let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Summary {
            count: samples.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            p999: rank(0.999),
            max: millis(samples[samples.len() - 1]),
            mean: total as f64 / samples.len() as f64 / 1e6,
        }
    }

    /// The same summary with `offset` taken off every figure (never below zero): what is left of
    /// a round trip when the fakes' added latency is removed.
    pub fn minus(&self, offset: Duration) -> Summary {
        let off = offset.as_secs_f64() * 1e3;
        let sub = |value: f64| (value - off).max(0.0);
        Summary {
            count: self.count,
            p50: sub(self.p50),
            p90: sub(self.p90),
            p99: sub(self.p99),
            p999: sub(self.p999),
            max: sub(self.max),
            mean: sub(self.mean),
        }
    }
}

fn millis(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=1000).map(|ms| ms * 1_000_000).collect();
        let summary = Summary::of(samples);
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.p50, 500.0);
        assert_eq!(summary.p99, 990.0);
        assert_eq!(summary.p999, 999.0);
        assert_eq!(summary.max, 1000.0);
        assert_eq!(summary.minus(Duration::from_millis(600)).p50, 0.0);
    }
}
