//! Faults of the file system under a SQLite store, on a small tmpfs the test mounts (the tests run
//! as root in CI; where mounting is not allowed they say so and return): a full disk and a file
//! system remounted read-only after the store was opened. Each time: a clear error that says what
//! to do, the last committed state intact and readable, and the worker recovers by itself once the
//! space or the write access is back.

#[path = "support/logs.rs"]
mod logs;

use duraflow::prelude::*;
use duraflow::{Client, Store, Worker, WorkerOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

#[activity]
async fn disk_step(x: i64) -> Result<i64, ActivityError> {
    Ok(x + 1)
}

#[workflow]
async fn disk_chain(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    let a = ctx.activity(disk_step, x).await?;
    Ok(ctx.activity(disk_step, a).await?)
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to mount a tmpfs"
            );
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(SmallFs { dir })
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Unmounts `dir`, waiting for a store's writer thread to close its file; lazily after 5 s.
fn unmount(dir: &Path) {
    for _ in 0..200 {
        let out = Command::new("umount").arg(dir).output();
        if out.is_ok_and(|o| o.status.success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = Command::new("umount").arg("-l").arg(dir).status();
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// Fills the file system with one file until it refuses to take more.
fn fill(fs: &SmallFs) -> PathBuf {
    use std::io::Write;
    let p = fs.path().join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    loop {
        if f.write_all(&chunk).and_then(|_| f.sync_all()).is_err() {
            break;
        }
    }
    // Whatever is left is smaller than a chunk: take it too.
    for _ in 0..16 * 1024 {
        if f.write_all(&[0u8]).and_then(|_| f.sync_all()).is_err() {
            break;
        }
    }
    p
}

fn worker(store: &Store) -> duraflow::WorkerHandle {
    let mut opts = WorkerOptions::default();
    opts.poll_interval = Duration::from_millis(100);
    Worker::new(store)
        .register(disk_step)
        .register(disk_chain)
        .options(opts)
        .start()
}

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_the_worker_recovers_when_space_returns() {
    logs::capture();
    let Some(fs) = SmallFs::mount("2m") else {
        return;
    };
    let store = Store::sqlite(fs.path().join("duraflow.db")).unwrap();
    let w = worker(&store);
    let client = Client::new(&store);
    let before = client.start(disk_chain, "before", 1).await.unwrap();
    assert_eq!(before.result().await.unwrap(), 3);

    let filler = fill(&fs);
    // New work cannot be written: the error says the disk is full and what to do.
    let mut refused = None;
    let mut started = Vec::new();
    for i in 0..200 {
        match client.start(disk_chain, format!("during-{i}"), 10).await {
            Ok(h) => started.push(h),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a full disk refuses new work");
    let m = e.to_string();
    assert!(m.contains("full") && m.contains("Free some space"), "{m}");
    assert!(e.is_transient(), "a full disk may pass: {e:?}");
    // The last committed state is intact and readable.
    let d = client.describe("before").await.unwrap();
    assert_eq!(d.result, Some(serde_json::json!(3)));

    // Space returns: the same worker and store go on, without a restart.
    std::fs::remove_file(filler).unwrap();
    let after = client.start(disk_chain, "after", 100).await.unwrap();
    let out = tokio::time::timeout(LIMIT, after.result()).await.unwrap();
    assert_eq!(out.unwrap(), 102);
    for h in started {
        let out = tokio::time::timeout(LIMIT, h.result()).await.unwrap();
        assert_eq!(out.unwrap(), 12, "{}", h.id());
    }
    w.shutdown().await;
}

/// An ext4 file system in a file, loop-mounted with `errors=remount-ro`; unmounted on drop.
struct Ext4 {
    dir: tempfile::TempDir,
    image: PathBuf,
}

impl Ext4 {
    fn make() -> Option<Ext4> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let ok = Command::new("truncate")
            .args(["-s", "16M"])
            .arg(&image)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("mkfs.ext4")
                .arg("-q")
                .arg(&image)
                .status()
                .is_ok_and(|s| s.success());
        let fs = Ext4 { dir, image };
        if !ok || !fs.mount() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to loop-mount an ext4 image"
            );
            eprintln!("skipped: cannot make and loop-mount an ext4 file system here");
            return None;
        }
        Some(fs)
    }
    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
    fn mount(&self) -> bool {
        Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&self.image)
            .arg(self.mnt())
            .output()
            .is_ok_and(|o| o.status.success())
    }
    /// An error of the file system, as a failing disk causes: ext4 remounts itself read-only.
    fn fail(&self) {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(self.mnt())
            .output()
            .unwrap();
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let name = Path::new(&dev)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "1")
            .expect("trigger an ext4 error");
    }
    /// Unmounted (once nothing holds it open), checked and repaired, mounted again.
    fn repair(&self) {
        for i in 0.. {
            if Command::new("umount")
                .arg(self.mnt())
                .output()
                .unwrap()
                .status
                .success()
            {
                break;
            }
            assert!(i < 200, "the file system stays busy");
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = Command::new("e2fsck")
            .args(["-fy"])
            .arg(&self.image)
            .output();
        assert!(self.mount(), "mount again");
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        unmount(&self.mnt());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_turned_read_only_after_open_is_a_clear_error_and_the_state_survives() {
    logs::capture();
    let Some(fs) = Ext4::make() else {
        return;
    };
    let path = fs.mnt().join("duraflow.db");
    let store = Store::sqlite(&path).unwrap();
    let w = worker(&store);
    let client = Client::new(&store);
    let before = client.start(disk_chain, "ro-before", 1).await.unwrap();
    assert_eq!(before.result().await.unwrap(), 3);

    // The kernel turns the file system read-only under the open store (ext4's errors=remount-ro,
    // as after a disk error); Linux will not remount read-only a file system with files open for
    // writing by request, and this one cannot be made writable again without unmounting it.
    fs.fail();
    let e = client
        .start(disk_chain, "ro-during", 5)
        .await
        .err()
        .expect("a read-only file system refuses new work");
    let m = e.to_string();
    assert!(
        m.contains("nothing of this call was written") || m.contains("was not changed"),
        "{m}"
    );
    assert!(!m.contains("corrupt"), "not blamed on the file: {m}");
    let d = client.describe("ro-before").await.unwrap();
    assert_eq!(
        d.result,
        Some(serde_json::json!(3)),
        "the committed state reads"
    );

    // Repaired and mounted again, the store reopens with everything committed, and new work runs.
    w.shutdown().await;
    drop((before, client, store));
    fs.repair();
    let store = Store::sqlite(&path).expect("reopens after the repair");
    let w = worker(&store);
    let client = Client::new(&store);
    let d = client.describe("ro-before").await.unwrap();
    assert_eq!(
        d.result,
        Some(serde_json::json!(3)),
        "the committed state survived"
    );
    let after = client.start(disk_chain, "ro-after", 100).await.unwrap();
    let out = tokio::time::timeout(LIMIT, after.result()).await.unwrap();
    assert_eq!(out.unwrap(), 102);
    w.shutdown().await;
}
