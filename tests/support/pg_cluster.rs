//! A Postgres server of the test's own, to kill, restart and reconfigure: `initdb` into a temporary
//! directory and `postgres` on a free port, from `/usr/lib/postgresql/*/bin` (as the `postgres`
//! user when the tests run as root). Password authentication over TCP (the URL carries a password,
//! so tests can check it never reaches a log), optionally TLS with a certificate the test made.
//! Never the shared server at 5432.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    pub password: String,
    child: Option<Child>,
    extra: Vec<String>,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists() && p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

/// `program args..`, as the `postgres` user when we are root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(p: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cannot chown {} to postgres", p.display());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A password no log line has any reason to contain.
fn random_password() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("pw{:016x}Zq", h.finish())
}

/// One initdb per test process, in `<tmp>/duraflow-pg-template-<pid>` (the templates of processes
/// that ended are removed here): trust on the local socket, passwords (scram) over TCP.
fn template(bin: &Path) -> PathBuf {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if let Some(pid) = name.strip_prefix("duraflow-pg-template-") {
                        if !Path::new(&format!("/proc/{pid}")).exists() {
                            let _ = std::fs::remove_dir_all(e.path());
                        }
                    }
                }
            }
            let dir =
                std::env::temp_dir().join(format!("duraflow-pg-template-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            chown_to_postgres(&dir);
            let out = command(&bin.join("initdb"))
                .arg("-D")
                .arg(dir.join("data"))
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ])
                .output()
                .expect("run initdb");
            assert!(
                out.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .clone()
}

impl PgCluster {
    /// A new cluster, started; `None` (with a message) when no Postgres binaries are installed,
    /// which fails in CI (`CI` set), where they must be.
    pub fn start() -> Option<PgCluster> {
        Self::start_with(&[])
    }

    /// [`PgCluster::start`] with extra server settings (`-c name=value` each).
    pub fn start_with(settings: &[&str]) -> Option<PgCluster> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: no Postgres server binaries under /usr/lib/postgresql"
            );
            eprintln!("skipped: no Postgres server binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("duraflow-pg-")
            .tempdir()
            .unwrap();
        let password = random_password();
        chown_to_postgres(dir.path());
        // A copy of one initdb per test process (initdb costs seconds; a copy, milliseconds).
        let copied = Command::new("cp")
            .arg("-a")
            .arg(template(&bin).join("data"))
            .arg(dir.path().join("data"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(copied, "cannot copy the initdb template");
        let mut c = PgCluster {
            dir,
            bin,
            port: free_port(),
            password,
            child: None,
            extra: settings.iter().map(|s| s.to_string()).collect(),
        };
        c.launch();
        // This cluster's own password, set through the local socket (trusted).
        let out = Command::new(c.bin.join("psql"))
            .arg("-h")
            .arg(c.dir.path())
            .args([
                "-p",
                &c.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
            ])
            .arg(format!("ALTER USER postgres PASSWORD '{}'", c.password))
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "cannot set the password: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(c)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds `-c name=value` settings for the next (re)start.
    pub fn set(&mut self, setting: &str) {
        self.extra.push(setting.to_string());
    }

    /// Writes a file into the cluster's directory, readable only by the server's user.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown_to_postgres(&p);
        p
    }

    fn launch(&mut self) {
        let mut cmd = command(&self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"]);
        for s in &self.extra {
            cmd.args(["-c", s]);
        }
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start postgres"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            if let Some(Some(st)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                panic!("postgres exited ({st}): {}", self.server_log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/postgres`, plus `extra` query parameters.
    pub fn url(&self, extra: &str) -> String {
        let q = if extra.is_empty() {
            String::new()
        } else {
            format!("?{extra}")
        };
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres{q}",
            self.password, self.port
        )
    }

    /// Stops the server (fast shutdown: sessions are ended, SIGINT) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    signal(child.id(), "KILL");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts the server again on the same port, with the same data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "running");
        self.launch();
    }

    /// A stop and a start.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Runs `sql` as the superuser through `psql`-free means (a fresh tokio-postgres connection).
    pub async fn exec(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let (client, conn) = tokio_postgres::connect(&self.url(""), tokio_postgres::NoTls)
            .await
            .expect("admin connection");
        let h = tokio::spawn(conn);
        let rows = client.query(sql, &[]).await.expect(sql);
        drop(client);
        let _ = h.await;
        rows
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "QUIT");
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
