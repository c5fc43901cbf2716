//! Spinners for operations that may take a while (indicatif); hidden when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A spinner on stderr with `message`, ticking until `finish_and_clear`.
pub(crate) fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A progress bar of `len` steps on stderr, with `prefix` and a message per step.
pub(crate) fn bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}
