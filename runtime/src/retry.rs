//! Retry policies for activities.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a failed activity attempt is retried. The defaults are Temporal's: first retry after 1 s, each
/// interval twice the last, capped at 100 × the initial interval, unlimited attempts.
///
/// ```
/// use duraflow::prelude::*;
/// let policy = RetryPolicy {
///     maximum_attempts: 3,
///     non_retryable_error_types: vec!["InvalidInput".into()],
///     ..RetryPolicy::default()
/// };
/// assert_eq!(policy.backoff(1), Duration::from_secs(1));
/// assert_eq!(policy.backoff(2), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    #[serde(with = "crate::duration::serde_ms")]
    pub initial_interval: Duration,
    /// Each wait is the previous one times this (at least 1.0).
    pub backoff_coefficient: f64,
    /// The longest wait; `None` means 100 × `initial_interval`.
    #[serde(with = "crate::duration::serde_opt_ms")]
    pub maximum_interval: Option<Duration>,
    /// The most attempts, the first included; 0 means unlimited.
    pub maximum_attempts: u32,
    /// Application error types (`ActivityError::Application { error_type, .. }`) that are never retried.
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retries() -> Self {
        RetryPolicy {
            maximum_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1-based) before the next one.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let max = self
            .maximum_interval
            .unwrap_or(self.initial_interval.saturating_mul(100));
        let coeff = if self.backoff_coefficient.is_finite() && self.backoff_coefficient >= 1.0 {
            self.backoff_coefficient
        } else {
            1.0
        };
        let exp = attempt.saturating_sub(1).min(1000) as i32;
        let secs = self.initial_interval.as_secs_f64() * coeff.powi(exp);
        if !secs.is_finite() || secs >= max.as_secs_f64() {
            max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// Whether another attempt may follow failed attempt number `attempt` with this error type.
    pub fn should_retry(&self, attempt: u32, error_type: &str, non_retryable: bool) -> bool {
        if non_retryable
            || self
                .non_retryable_error_types
                .iter()
                .any(|t| t == error_type)
        {
            return false;
        }
        self.maximum_attempts == 0 || attempt < self.maximum_attempts
    }

    /// Checks the values, with a message that says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.backoff_coefficient.is_finite() && self.backoff_coefficient >= 1.0) {
            return Err(format!(
                "retry backoff_coefficient must be a number >= 1.0, got {}",
                self.backoff_coefficient
            ));
        }
        if let Some(max) = self.maximum_interval {
            if max < self.initial_interval {
                return Err(format!(
                    "retry maximum_interval ({max:?}) must not be shorter than initial_interval ({:?})",
                    self.initial_interval
                ));
            }
        }
        Ok(())
    }
}
