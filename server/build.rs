//! Embeds the built site (wasm, JS, CSS, static files) into the `backstop` binary when
//! `BACKSTOP_EMBED_SITE` names its directory, as `scripts/build-site.sh --release` does, so a
//! release binary is the whole console: no loose files to deploy. Without it (debug builds,
//! `cargo test`, clippy) nothing is embedded and the server reads `--site-root` from disk.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=BACKSTOP_EMBED_SITE");
    let mut files = Vec::new();
    if let Some(site) = env::var_os("BACKSTOP_EMBED_SITE").filter(|s| !s.is_empty()) {
        let site = PathBuf::from(site);
        // The directory too: a new build brings new (fingerprinted) names, not just new bytes.
        println!("cargo:rerun-if-changed={}", site.display());
        collect(&site, &site, &mut files);
        assert!(
            files.iter().any(|(name, _)| name.starts_with("pkg/backstop") && name.ends_with("_bg.wasm")),
            "BACKSTOP_EMBED_SITE={} has no pkg/backstop*_bg.wasm: build the site first",
            site.display()
        );
        check_erasure(&site);
    }
    files.sort();
    let entries: String = files
        .iter()
        .map(|(name, path)| {
            println!("cargo:rerun-if-changed={}", path.display());
            format!("    ({name:?}, include_bytes!({:?})),\n", path.display().to_string())
        })
        .collect();
    let code = format!(
        "/// The built site's files, by path relative to the site root (empty when not embedded).\n\
         pub static FILES: &[(&str, &[u8])] = &[\n{entries}];\n"
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_site.rs");
    fs::write(out, code).expect("write embedded_site.rs");
}

/// A binary whose embedded wasm was built with `--cfg erase_components` and server without it
/// (or the other way round) would serve pages that never hydrate: fail the build instead. The
/// server checks the same at start (`assets::check_build`), for sites read from disk too.
fn check_erasure(site: &Path) {
    let manifest = site.join("pkg/site.json");
    let Ok(json) = fs::read_to_string(&manifest) else { return };
    // Written by scripts/site-manifest.mjs (JSON.stringify: no spaces); absent in older sites,
    // which were not erased.
    let wasm = json.contains(r#""erase_components":true"#);
    // Cargo sets CARGO_CFG_<NAME> for each cfg of the target, `--cfg` rustflags included.
    let server = env::var_os("CARGO_CFG_ERASE_COMPONENTS").is_some();
    assert!(
        wasm == server,
        "{} says the wasm was built {} `--cfg erase_components`, but this server is built {} it: \
         its pages would not hydrate. Build both in Backstop's workspace (.cargo/config.toml sets \
         the cfg) with RUSTFLAGS unset",
        manifest.display(),
        if wasm { "with" } else { "without" },
        if server { "with" } else { "without" },
    );
}

/// Every file under `dir`, as (path relative to `root` with `/` separators, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under the root");
            let name =
                relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            files.push((name, fs::canonicalize(&path).expect("canonical path")));
        }
    }
}
