//! Whether a service's database can take a write, as its health check reports it.
//!
//! A service whose storage cannot write (a full disk, a read-only file system, a database that
//! is down or locked) must say so: health NOT_SERVING, so a load balancer or Kubernetes stops
//! sending it work, and SERVING again by itself once the condition clears, with nobody
//! restarting it. A probe does a small committed write every [`INTERVAL`] (and, on SQLite,
//! checks the free space under the file: in WAL mode small writes can keep succeeding in the
//! log's already allocated space while anything larger fails with "database or disk is full").
//!
//! The state is also the gauge `aula_db_writable` (1 or 0).

use crate::{db::Db, metrics::Metrics};
use std::{path::Path, time::Duration};
use tokio_util::sync::CancellationToken;
use tonic_health::{server::HealthReporter, ServingStatus};

/// How often the probe writes.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe write may take before the database counts as unable to write.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Below this much free space under the SQLite file, the database counts as full.
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// Probes `db` until `drain` is cancelled, turning `service` (and the server's overall
/// status) NOT_SERVING while it cannot write and SERVING when it can again.
pub fn watch(
    db: Db,
    metrics: &Metrics,
    reporter: HealthReporter,
    service: &'static str,
    drain: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let gauge = metrics.gauge("aula_db_writable", vec![]);
    probe_until_drained(db, gauge, reporter, service, drain)
}

async fn probe_until_drained(
    db: Db,
    gauge: crate::metrics::Gauge,
    reporter: HealthReporter,
    service: &'static str,
    drain: CancellationToken,
) {
    let mut writable = true;
    let mut ticks = crate::host::Ticks::every(INTERVAL);
    while ticks.next(drain.cancelled()).await {
        let problem = probe(&db).await;
        gauge.set(if problem.is_none() { 1.0 } else { 0.0 });
        match (&problem, writable) {
            (Some(why), true) => {
                tracing::error!(problem = %why, "the database cannot write: health NOT_SERVING");
            }
            (None, false) => tracing::info!("the database writes again: health SERVING"),
            _ => continue,
        }
        writable = problem.is_none();
        // Draining owns the status from here on (NOT_SERVING until the end).
        if drain.is_cancelled() {
            return;
        }
        let status = if writable {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status(service, status).await;
        reporter.set_service_status("", status).await;
    }
}

/// What keeps the database from writing now, if anything.
pub async fn probe(db: &Db) -> Option<String> {
    if let Some(dir) = db.sqlite_dir() {
        match free_bytes(dir) {
            Ok(free) if free < MIN_FREE_BYTES => {
                return Some(format!(
                    "{} has {free} bytes free (less than {MIN_FREE_BYTES})",
                    dir.display()
                ))
            }
            Ok(_) => {}
            Err(e) => return Some(format!("statvfs {}: {e}", dir.display())),
        }
    }
    match tokio::time::timeout(TIMEOUT, db.probe_write()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("a probe write failed: {e}")),
        Err(_) => Some(format!("a probe write took longer than {TIMEOUT:?}")),
    }
}

/// The bytes an unprivileged process may still write on the file system holding `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` a buffer of the right type, which
    // statvfs fills completely when it returns 0.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stat.assume_init()
    };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_space_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::free_bytes(dir.path()).unwrap() > 0);
        assert!(super::free_bytes(&dir.path().join("missing")).is_err());
    }
}
