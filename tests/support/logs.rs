//! Captures this test binary's log lines (INFO and up) in memory, so tests can check what workers
//! say during a fault, and that no secret reaches a log.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

fn buffer() -> &'static Mutex<Vec<u8>> {
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        buffer().lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("DURAFLOW_TEST_ECHO_LOGS").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capture (once per binary): every event of level INFO and up, with its fields.
pub fn capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Everything captured so far.
pub fn text() -> String {
    String::from_utf8_lossy(&buffer().lock().unwrap()).into_owned()
}

/// The captured lines of level WARN that contain `needle`.
pub fn warnings_with(needle: &str) -> Vec<String> {
    text()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains(needle))
        .map(str::to_string)
        .collect()
}
