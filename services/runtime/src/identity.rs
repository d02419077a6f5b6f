//! Who is calling, as proved at the transport: the service identity taken from a verified client
//! certificate (mTLS, issue #14). The transport puts a [`ServiceIdentity`] into each request's
//! extensions before any layer runs; authorization (per-RPC caller table) and end-user
//! authentication (issue #15) read it from there. No extension means the caller proved nothing
//! (plaintext, or TLS without client auth).

use std::sync::Arc;

/// The name of a verified caller: a catalogue service (`cursos`), `gateway`, or an admin
/// identity such as `operator`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceIdentity(pub Arc<str>);

impl ServiceIdentity {
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// The identity proved on this request, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<&ServiceIdentity> {
        request.extensions().get::<ServiceIdentity>()
    }
}

impl std::fmt::Display for ServiceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
