//! Compiles `proto/services.proto` with protox (pure Rust: no protoc on any machine) and writes
//! the descriptor set that the servers' reflection serves.
use prost::Message;
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = proto_dir.join("services.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let fds = protox::compile([&proto], [&proto_dir])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("services_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds.clone())?;

    // The server traits again, every method with a default that answers UNIMPLEMENTED, for
    // test fakes (feature `stubs`); the messages are the ones above. The services implement
    // the traits above, which have no defaults, so an RPC a service forgets does not compile.
    let stubbed = out.join("stubbed");
    fs::create_dir_all(&stubbed)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .extern_path(".services", "crate::services")
        .out_dir(stubbed)
        .compile_fds(fds)?;
    Ok(())
}
