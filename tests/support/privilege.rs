//! Making the operating system refuse a file, also when the tests run as root (as CI does), where
//! permission bits do not bite: a read-only bind mount, or a child process run as `nobody`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A read-only view of `dir`: as root, a read-only bind mount of it (unmounted on drop); otherwise
/// the directory itself with its write bits removed (restored on drop). `None` when neither can
/// be made (root without the right to mount), with the reason printed.
pub struct ReadOnlyDir {
    pub path: PathBuf,
    mount: Option<tempfile::TempDir>,
    original: PathBuf,
}

impl ReadOnlyDir {
    pub fn of(dir: &Path) -> Option<ReadOnlyDir> {
        if !is_root() {
            set_mode(dir, 0o555);
            return Some(ReadOnlyDir {
                path: dir.to_path_buf(),
                mount: None,
                original: dir.to_path_buf(),
            });
        }
        let target = tempfile::tempdir().unwrap();
        let bind = Command::new("mount")
            .arg("--bind")
            .arg(dir)
            .arg(target.path())
            .status();
        if !matches!(bind, Ok(s) if s.success()) {
            eprintln!("skipped: running as root and `mount --bind` is not allowed here ({bind:?})");
            return None;
        }
        let ro = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(target.path())
            .status();
        if !matches!(ro, Ok(s) if s.success()) {
            let _ = Command::new("umount").arg(target.path()).status();
            eprintln!("skipped: cannot remount the bind read-only ({ro:?})");
            return None;
        }
        Some(ReadOnlyDir {
            path: target.path().to_path_buf(),
            mount: Some(target),
            original: dir.to_path_buf(),
        })
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        match &self.mount {
            Some(t) => {
                let _ = Command::new("umount").arg(t.path()).status();
            }
            None => set_mode(&self.original, 0o755),
        }
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs the test `test` of this test binary in a child process as the user `nobody` (uid 65534)
/// with the environment `env`; returns its stdout, or `None` (printed) when `setpriv` is missing
/// or the child cannot run.
pub fn run_test_as_nobody(test: &str, env: &[(&str, &str)]) -> Option<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            eprintln!(
                "skipped: the child as nobody failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: cannot run setpriv: {e}");
            None
        }
    }
}
