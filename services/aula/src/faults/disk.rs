//! Data directories that can fill up: a small tmpfs per directory, and a ballast file written
//! into it until the kernel answers ENOSPC, removed again to free the space.
//!
//! Mounting needs root; `scripts/faults.sh` runs the harness in a private mount namespace
//! (`unshare -m`), so the mounts vanish with it even if the harness dies.

use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};
use tokio::process::Command;

const BALLAST: &str = ".aula-faults-ballast";

/// A tmpfs mounted by the harness.
pub struct Disk {
    pub path: PathBuf,
    ballast: Option<u64>,
}

impl Disk {
    /// Mounts a tmpfs of `size_mb` on `path` (created if needed), owned by `owner`.
    pub async fn mount(
        path: &Path,
        size_mb: u64,
        owner: Option<(u32, u32)>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        let mut opts = format!("size={size_mb}m,mode=0755");
        if let Some((uid, gid)) = owner {
            opts.push_str(&format!(",uid={uid},gid={gid}"));
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "aula-faults"])
            .arg(path)
            .output()
            .await
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "mount -t tmpfs on {}: {} (disk-full needs root; scripts/faults.sh runs the harness in its own mount namespace)",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            ballast: None,
        })
    }

    /// Writes a ballast file until the file system is full; returns the bytes written.
    pub fn fill(&mut self) -> anyhow::Result<u64> {
        let file = self.path.join(BALLAST);
        let written = aula_runtime::harness::fill_until_full(&file)
            .with_context(|| format!("writing the ballast {}", file.display()))?;
        self.ballast = Some(written);
        Ok(written)
    }

    /// Removes the ballast.
    pub fn free(&mut self) {
        if self.ballast.take().is_some() {
            let _ = std::fs::remove_file(self.path.join(BALLAST));
        }
    }

    pub fn is_full(&self) -> bool {
        self.ballast.is_some()
    }

    pub async fn unmount(&mut self) {
        self.free();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status()
            .await;
    }
}
