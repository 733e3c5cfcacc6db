//! A stand-in for the HSM that generates new key material. It fails a seeded
//! fraction of attempts, so a run shows failures and retries, and the same
//! seed always fails the same attempts (the integration test relies on it).

use std::sync::Mutex;

/// Why the simulated HSM refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HSM timed out generating a new version of {key} (simulated)")]
pub struct HsmError {
    /// The key whose rotation failed.
    pub key: String,
}

/// The simulated HSM.
#[derive(Debug)]
pub struct SimulatedHsm {
    state: Mutex<u64>,
    failure_rate: f64,
}

impl SimulatedHsm {
    /// An HSM that fails `failure_rate` (0 to 1) of attempts, drawn from `seed`.
    pub fn new(seed: u64, failure_rate: f64) -> Self {
        SimulatedHsm {
            state: Mutex::new(seed),
            failure_rate,
        }
    }

    /// "Generates" a new version of `key`.
    pub fn generate(&self, key: &str) -> Result<(), HsmError> {
        if self.next_unit() < self.failure_rate {
            Err(HsmError {
                key: key.to_owned(),
            })
        } else {
            Ok(())
        }
    }

    /// The next draw in [0, 1): SplitMix64, small and good enough here.
    fn next_unit(&self) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_fails_the_same_attempts() {
        let run = |seed| {
            let hsm = SimulatedHsm::new(seed, 0.25);
            (0..200)
                .map(|_| hsm.generate("k").is_err())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let failures = run(7).iter().filter(|f| **f).count();
        assert!((25..=75).contains(&failures), "{failures} of 200 at 25 %");
        assert!(SimulatedHsm::new(1, 0.0).generate("k").is_ok());
        assert!(SimulatedHsm::new(1, 1.0).generate("k").is_err());
    }
}
