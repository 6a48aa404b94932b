//! The console's static files compiled into the binary (see `build.rs`): a release build
//! serves its own wasm, JS and CSS, so deploying it is copying one file.

use axum::body::Body;
use std::path::Path;

use axum::http::{HeaderValue, Response, StatusCode, header};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_site.rs"));
}

/// Whether this binary carries the site.
pub fn embedded() -> bool {
    !embedded::FILES.is_empty()
}

/// The names of the embedded files (`pkg/backstop.js`, ...).
#[cfg(test)]
pub fn names() -> impl Iterator<Item = &'static str> {
    embedded::FILES.iter().map(|(name, _)| *name)
}

/// The name the built site's wasm, JS and CSS go by: `backstop-<hash>` when
/// `scripts/build-site.sh --release` fingerprinted them (its `pkg/site.json` says so), else
/// `backstop`. Read from the embedded site, or else from `site_root` on disk.
pub fn output_name(site_root: &Path) -> String {
    manifest(site_root).map_or_else(|| PLAIN_NAME.to_owned(), |m| m.output_name)
}

/// What `pkg/site.json` says about the built site (`scripts/site-manifest.mjs` writes it).
#[derive(Debug, serde::Deserialize)]
pub struct Manifest {
    /// The name of its wasm, JS and CSS.
    output_name: String,
    /// Whether its wasm was built with `--cfg erase_components`. Sites built before the
    /// manifest said so were not.
    #[serde(default)]
    erase_components: bool,
}

/// The built site's manifest: the embedded one, or else `site_root`'s on disk; `None` if there
/// is none (no site, or one not built by `scripts/build-site.sh`) or it cannot be read.
pub fn manifest(site_root: &Path) -> Option<Manifest> {
    let bytes = match embedded::FILES.iter().find(|(name, _)| *name == SITE_MANIFEST) {
        Some((_, bytes)) => bytes.to_vec(),
        None => std::fs::read(site_root.join(SITE_MANIFEST)).ok()?,
    };
    serde_json::from_slice(&bytes).ok()
}

/// Whether this server was built with `--cfg erase_components`, as .cargo/config.toml sets for
/// the whole workspace.
pub const ERASE_COMPONENTS: bool = cfg!(erase_components);

/// A built site whose wasm does not match this server: with `--cfg erase_components` on one
/// side only, the views the server renders have another shape than those the wasm hydrates, and
/// every page fails to hydrate (buttons, forms and links do nothing). Refused at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "the site's wasm was built {wasm} `--cfg erase_components` but this server {server}: its pages \
     would not hydrate. {fix}",
    wasm = if_erased(.wasm, "with", "without"),
    server = if_erased(.wasm, "was not", "was"),
    fix = if_erased(
        .wasm,
        "Build the server with it: add `[build] rustflags = [\"--cfg\", \"erase_components\"]` to the \
         .cargo/config.toml of the workspace that builds it (Backstop's own has it), and leave \
         RUSTFLAGS unset (it replaces that setting)",
        "Rebuild the site with scripts/build-site.sh, which builds the wasm with the same \
         .cargo/config.toml (`--cfg erase_components`), with RUSTFLAGS unset"
    )
)]
pub struct BuildMismatch {
    /// Whether the site's wasm was built with the cfg.
    wasm: bool,
}

fn if_erased(wasm_erased: &bool, yes: &'static str, no: &'static str) -> &'static str {
    if *wasm_erased { yes } else { no }
}

/// Refuses a site whose wasm was built otherwise than this server (see [`BuildMismatch`]); a
/// site without a manifest cannot be checked and passes.
pub fn check_build(manifest: Option<&Manifest>) -> Result<(), BuildMismatch> {
    check_build_for(manifest, ERASE_COMPONENTS)
}

fn check_build_for(manifest: Option<&Manifest>, server_erased: bool) -> Result<(), BuildMismatch> {
    match manifest {
        Some(m) if m.erase_components != server_erased => Err(BuildMismatch { wasm: m.erase_components }),
        _ => Ok(()),
    }
}

/// The build's manifest, relative to the site root.
pub const SITE_MANIFEST: &str = "pkg/site.json";
/// The site's name without fingerprinting (`--out-name` of wasm-bindgen).
pub const PLAIN_NAME: &str = "backstop";

/// The embedded file at `path` (`/pkg/backstop-<hash>.js`), as a response; `None` if there is
/// none. It goes out precompressed when the request accepts it (brotli, else gzip) and the
/// build made that variant; fingerprinted files are cached for good (`immutable`): a new build
/// has new names.
pub fn response(path: &str, accept_encoding: Option<&HeaderValue>) -> Option<Response<Body>> {
    let name = path.trim_start_matches('/');
    let (_, identity) = embedded::FILES.iter().find(|(file, _)| *file == name)?;
    let variant = |suffix: &str| {
        let compressed = format!("{name}.{suffix}");
        embedded::FILES.iter().find(|(file, _)| *file == compressed).map(|(_, bytes)| *bytes)
    };
    let accepted = accepted_encodings(accept_encoding);
    let has_variants = variant("br").is_some() || variant("gz").is_some();
    let (bytes, encoding) = [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(coding, _)| accepted.contains(coding))
        .find_map(|(coding, suffix)| variant(suffix).map(|bytes| (bytes, Some(coding))))
        .unwrap_or((*identity, None));
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    if let Some(coding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if has_variants {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let fingerprinted = name.starts_with(&format!("pkg/{PLAIN_NAME}-"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if fingerprinted {
            "public, max-age=31536000, immutable"
        } else {
            // Not content-named: let browsers keep a copy but check it on each load.
            "no-cache"
        }),
    );
    Some(response)
}

/// The content codings a request's `Accept-Encoding` allows (`br`, `gzip`; `q=0` refuses one).
fn accepted_encodings(header: Option<&HeaderValue>) -> Vec<&'static str> {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    ["br", "gzip"]
        .into_iter()
        .filter(|coding| {
            value.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let token = parts.next().unwrap_or_default();
                let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
                (token.eq_ignore_ascii_case(coding) || token == "*") && !refused
            })
        })
        .collect()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    #[test]
    fn accept_encoding_is_read_as_clients_write_it() {
        let accepted = |value: &str| super::accepted_encodings(Some(&HeaderValue::from_str(value).unwrap()));
        assert_eq!(accepted("gzip, deflate, br, zstd"), ["br", "gzip"]);
        assert_eq!(accepted("gzip;q=1.0, br;q=0"), ["gzip"]);
        assert_eq!(accepted("br ; q=0.5"), ["br"]);
        assert_eq!(accepted("identity"), Vec::<&str>::new());
        assert_eq!(accepted("*"), ["br", "gzip"]);
        assert!(super::accepted_encodings(None).is_empty());
    }

    #[test]
    fn a_site_built_otherwise_than_the_server_is_refused() {
        use super::{Manifest, check_build_for};
        let manifest = |json: &str| serde_json::from_str::<Manifest>(json).unwrap();
        let erased = manifest(r#"{"output_name":"backstop-0123456789abcdef","erase_components":true}"#);
        let plain = manifest(r#"{"output_name":"backstop","erase_components":false}"#);
        // Written by build-site.sh before the manifest said: those sites were not erased.
        let older = manifest(r#"{"output_name":"backstop-0123456789abcdef"}"#);
        assert!(check_build_for(Some(&erased), true).is_ok());
        assert!(check_build_for(Some(&plain), false).is_ok());
        assert!(check_build_for(Some(&older), false).is_ok());
        assert!(check_build_for(None, true).is_ok() && check_build_for(None, false).is_ok());

        let error = check_build_for(Some(&erased), false).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "the site's wasm was built with `--cfg erase_components` but this server was not"
            )
        );
        // The message names the fix.
        assert!(error.contains(r#"rustflags = ["--cfg", "erase_components"]"#), "{error}");
        assert!(error.contains(".cargo/config.toml"), "{error}");
        let error = check_build_for(Some(&plain), true).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "the site's wasm was built without `--cfg erase_components` but this server was:"
            )
        );
        assert!(error.contains("Rebuild the site with scripts/build-site.sh"), "{error}");
        assert!(check_build_for(Some(&older), true).is_err());
    }

    /// The workspace builds everything with the cfg (.cargo/config.toml): tests included, so a
    /// build that lost it (RUSTFLAGS set) fails here too.
    #[test]
    fn this_build_erases_components() {
        let site = serde_json::from_str(r#"{"output_name":"backstop","erase_components":true}"#).unwrap();
        let checked = super::check_build(Some(&site));
        assert!(checked.is_ok(), "built without --cfg erase_components: is RUSTFLAGS set?");
    }

    #[test]
    fn content_types_fit_what_browsers_require() {
        // Browsers refuse module scripts and streaming wasm compilation with other types.
        assert_eq!(super::content_type("pkg/backstop.js"), "text/javascript; charset=utf-8");
        assert_eq!(super::content_type("pkg/backstop_bg.wasm"), "application/wasm");
        assert_eq!(super::content_type("pkg/backstop.css"), "text/css; charset=utf-8");
    }
}
