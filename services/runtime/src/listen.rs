//! Binding a listener with an error that says what to change: the address, the variable that
//! set it, and the OS error ("Address already in use" alone does not say how to move).

use std::{io, net::SocketAddr};
use tokio::net::TcpListener;

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("{var}={addr}: {source}{hint}")]
pub struct BindError {
    /// The variable (or flag) that chose the address: `AULA_LISTEN`, `AULA_METRICS_LISTEN`, ...
    pub var: &'static str,
    pub addr: SocketAddr,
    pub source: io::Error,
    hint: &'static str,
}

impl BindError {
    pub fn in_use(&self) -> bool {
        self.source.kind() == io::ErrorKind::AddrInUse
    }
}

/// Binds `addr`, which the variable `var` chose.
pub async fn bind(addr: SocketAddr, var: &'static str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => {
                " (another process holds this port: stop it, or set this variable to a free \
                 address; `aula up --port-offset N` moves every port of a stack)"
            }
            io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges: use another)",
            io::ErrorKind::AddrNotAvailable => " (no interface of this machine has that address)",
            _ => "",
        };
        BindError {
            var,
            addr,
            source,
            hint,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_names_the_variable_and_the_os_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr, "AULA_LISTEN").await.unwrap_err();
        assert!(err.in_use());
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("AULA_LISTEN={addr}: ")), "{msg}");
        assert!(msg.to_lowercase().contains("in use"), "{msg}");
        assert!(msg.contains("--port-offset"), "{msg}");
    }
}
