//! The console's static files compiled into the binary (see `build.rs`): a release build
//! serves its own wasm, JS and CSS, so deploying it is copying one file.

use axum::body::Body;
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

/// The embedded file at `path` (`/pkg/backstop.js`), as a response; `None` if there is none.
pub fn response(path: &str) -> Option<Response<Body>> {
    let name = path.trim_start_matches('/');
    let (_, bytes) = embedded::FILES.iter().find(|(file, _)| *file == name)?;
    let mut response = Response::new(Body::from(*bytes));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    // Names are not content-hashed: let browsers keep a copy but check it on each load.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
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
    #[test]
    fn content_types_fit_what_browsers_require() {
        // Browsers refuse module scripts and streaming wasm compilation with other types.
        assert_eq!(super::content_type("pkg/backstop.js"), "text/javascript; charset=utf-8");
        assert_eq!(super::content_type("pkg/backstop_bg.wasm"), "application/wasm");
        assert_eq!(super::content_type("pkg/backstop.css"), "text/css; charset=utf-8");
    }
}
