//! The committed C header is what cbindgen generates from `src/ffi/`, and the Lua side
//! declares exactly that header (through `cdef`). Regenerate with `ci/gen-header.sh`.

use std::path::Path;

fn generate() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let config =
        cbindgen::Config::from_file(Path::new(root).join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn committed_header_matches_the_rust() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/aws_lambda_native.h");
    let generated = generate();
    if std::env::var_os("AWSL_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/aws_lambda_native.h is stale: run ci/gen-header.sh and commit the result"
    );
    // The library embeds the same text for the Lua side's ffi.cdef.
    assert_eq!(aws_lambda_native::ffi::HEADER, committed);
}
