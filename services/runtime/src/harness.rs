//! What the fault harness (`aula faults`) and the tests share to cause trouble on purpose: a
//! file system filled to the last byte, and a PostgreSQL of their own (its tools found where
//! Debian installs them). Behind the `harness` feature: service binaries do not contain it.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Appends zeros to `file` (created if needed) until its file system is full (ENOSPC); returns
/// the bytes written.
pub fn fill_until_full(file: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let mut written = 0u64;
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let zeros = vec![0u8; chunk];
        loop {
            match f.write(&zeros) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e),
            }
        }
    }
    let _ = f.flush();
    Ok(written)
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has a `pg_ctl` (Debian's layout);
/// `None` when no version has one.
pub fn newest_postgres_bin() -> std::io::Result<Option<PathBuf>> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    Ok(found.pop().map(|(_, bin)| bin))
}

/// `psql`'s arguments that create the `aula` database on a cluster of one's own listening on
/// 127.0.0.1:`port` (its superuser `postgres`, trusted).
pub fn create_database_args(port: u16) -> Vec<String> {
    let port = port.to_string();
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "postgres",
        "-qc",
        "CREATE DATABASE aula",
    ]
    .map(String::from)
    .to_vec()
}

/// The URL of the `aula` database on such a cluster.
pub fn database_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/aula")
}
