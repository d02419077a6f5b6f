//! A small file system a test can fill: a tmpfs of a few MiB mounted on a directory, a ballast
//! file written until the kernel answers ENOSPC, and removed again to free the space. How the
//! disk-full tests (and `aula faults`, services/aula/src/faults/disk.rs) make a disk full.
//!
//! Mounting needs root (CI runs as root). Outside CI a test that cannot mount says so loudly
//! on stderr and is skipped; in CI (`CI` set) it fails instead, so it never silently stops
//! running where it matters.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const BALLAST: &str = ".aula-test-ballast";

/// A mounted tmpfs, unmounted when dropped.
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size_kib` on `path` (created if needed). `None` when mounting is not
    /// possible here and the test should be skipped (never in CI: there it panics).
    pub fn mount(path: &Path, size_kib: u64) -> Option<Self> {
        std::fs::create_dir_all(path).expect("the mount point is created");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k,mode=0755")])
            .arg("aula-test")
            .arg(path)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Self {
                    path: path.to_path_buf(),
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("running mount: {e}"),
        };
        let message = format!(
            "cannot mount a small tmpfs on {} ({why}): this test needs root",
            path.display()
        );
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("{message}; CI must run it");
        }
        eprintln!("\n!!! SKIPPED: {message}. Run it as root (CI does).\n");
        None
    }

    /// What a SQLite disk-full test starts from: a temporary directory with a tmpfs of
    /// `size_kib` on its `sub` directory (`""` for itself). `None` when the test is skipped: on
    /// the PostgreSQL run (no SQLite file to fill) or where mounting is not possible.
    pub fn for_sqlite(sub: &str, size_kib: u64) -> Option<(tempfile::TempDir, Self)> {
        if super::sqlite_only("its data directory is what fills") {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = match sub {
            "" => dir.path().to_path_buf(),
            sub => dir.path().join(sub),
        };
        let disk = Self::mount(&path, size_kib)?;
        Some((dir, disk))
    }

    /// Writes a ballast file until the file system is full; returns the bytes written.
    pub fn fill(&self) -> u64 {
        crate::harness::fill_until_full(&self.path.join(BALLAST))
            .unwrap_or_else(|e| panic!("writing the ballast: {e}"))
    }

    /// Removes the ballast.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.path.join(BALLAST));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a service of the test may still hold a file open on it.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// What writers saw while a disk filled and was freed under them.
pub struct UnderLoad<T> {
    /// What each acknowledged write answered, in no particular order.
    pub acked: Vec<T>,
    /// Refusals, by code and message, with how many times each came.
    pub refused: std::collections::BTreeMap<String, usize>,
}

/// Runs `writers` concurrent writers calling `write(n)` (each `n` unique, from 1_000_000 up)
/// against `svc`, whose data lives on `disk`: some writes first, then the disk fills, then it
/// is freed and writes go on. Asserts what must hold meanwhile: health turns NOT_SERVING while
/// the disk is full and SERVING again by itself once it is freed, a write on the full disk is
/// refused with RESOURCE_EXHAUSTED, every refusal names the storage (never INTERNAL), and
/// writes are acknowledged again after the space is back. The caller then checks that every
/// acknowledged write is stored.
pub async fn fill_and_free_under_load<T, F, Fut>(
    svc: &super::TestService,
    disk: &SmallDisk,
    writers: u64,
    write: F,
) -> UnderLoad<T>
where
    T: Send + 'static,
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, tonic::Status>> + Send,
{
    use std::{
        sync::{
            atomic::{AtomicBool, Ordering},
            Arc, Mutex,
        },
        time::{Duration, Instant},
    };
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(UnderLoad {
        acked: Vec::new(),
        refused: Default::default(),
    }));
    let tasks: Vec<_> = (1..=writers)
        .map(|w| {
            let (stop, seen, write) = (stop.clone(), seen.clone(), write.clone());
            tokio::spawn(async move {
                let mut n = w * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let result = write(n).await;
                    let mut seen = seen.lock().unwrap();
                    match result {
                        Ok(t) => seen.acked.push(t),
                        Err(s) => {
                            *seen
                                .refused
                                .entry(format!("{:?}: {}", s.code(), s.message()))
                                .or_default() += 1
                        }
                    }
                }
            })
        })
        .collect();
    let acked = || seen.lock().unwrap().acked.len();
    async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    until("writes before the disk fills", async || acked() >= 50).await;
    let ballast = disk.fill();
    eprintln!("disk filled with {ballast} bytes of ballast");
    until("health NOT_SERVING while the disk is full", async || {
        !svc.is_serving().await
    })
    .await;
    until("a write refused for the full disk", async || {
        let seen = seen.lock().unwrap();
        seen.refused
            .keys()
            .any(|k| k.starts_with("ResourceExhausted"))
    })
    .await;
    // Writers go on against the full disk for a moment: the connections that failed there
    // are the ones that used to be reused inside a transaction.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    disk.free();
    until(
        "health SERVING again after the space is freed",
        async || svc.is_serving().await,
    )
    .await;
    let after_free = acked();
    until("writes acknowledged after the space is freed", async || {
        acked() >= after_free + 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a writer panicked");
    }
    let seen = std::mem::replace(
        &mut *seen.lock().unwrap(),
        UnderLoad {
            acked: Vec::new(),
            refused: Default::default(),
        },
    );
    eprintln!(
        "acknowledged {}; refused: {:#?}",
        seen.acked.len(),
        seen.refused
    );
    for refusal in seen.refused.keys() {
        assert!(
            refusal.starts_with("ResourceExhausted: storage: ")
                || refusal.starts_with("Unavailable: storage: "),
            "a write on the full disk is refused naming the storage, not {refusal}"
        );
    }
    seen
}
