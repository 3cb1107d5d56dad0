//! Generates the gRPC messages and services from `proto/ps.proto` with protox (pure Rust, so no
//! `protoc` is needed on a fresh machine) and tonic-prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let proto = proto_dir.join("ps.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let fds = protox::compile([&proto], [&proto_dir])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Channels are built by hand (lazily, with explicit limits); no generated `connect`.
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
