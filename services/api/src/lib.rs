//! The Aula API: the types, clients and servers generated from `proto/services.proto`
//! (package `services`), and the encoded descriptor set that gRPC reflection serves.
#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

/// Everything in package `services`.
pub mod services {
    tonic::include_proto!("services");
}

pub use services::*;

pub mod limits;

/// The servers of [`services`] whose traits answer UNIMPLEMENTED for every method not
/// implemented: for fakes in tests and benchmarks that serve only what they are called with.
#[cfg(feature = "stubs")]
pub mod stubbed {
    include!(concat!(env!("OUT_DIR"), "/stubbed/services.rs"));
}

/// The encoded `FileDescriptorSet` of the API (with its imports), for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/services_descriptor.bin"));
