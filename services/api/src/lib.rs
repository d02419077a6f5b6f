//! The Aula API: the types, clients and servers generated from `proto/services.proto`
//! (package `services`), and the encoded descriptor set that gRPC reflection serves.
#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

/// Everything in package `services`.
pub mod services {
    tonic::include_proto!("services");
}

pub use services::*;

pub mod limits;

/// The encoded `FileDescriptorSet` of the API (with its imports), for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/services_descriptor.bin"));
