//! A small file system a test can fill: a tmpfs of a few MiB mounted on a directory, a ballast
//! file written until the kernel answers ENOSPC, and removed again to free the space. How the
//! disk-full tests (and `aula faults`, services/aula/src/faults/disk.rs) make a disk full.
//!
//! Mounting needs root (CI runs as root). Outside CI a test that cannot mount says so loudly
//! on stderr and is skipped; in CI (`CI` set) it fails instead, so it never silently stops
//! running where it matters.

use std::{
    io::Write,
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

    /// Writes a ballast file until the file system is full; returns the bytes written.
    pub fn fill(&self) -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(BALLAST))
            .expect("the ballast file is created");
        let mut written = 0u64;
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
            let zeros = vec![0u8; chunk];
            loop {
                match f.write(&zeros) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("writing the ballast: {e}"),
                }
            }
        }
        written
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
