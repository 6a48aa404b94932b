//! Browser-facing protections: cross-site request refusal for every write, and the security
//! headers every response carries.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware: refuses state-changing requests that a browser says come from another site.
///
/// Every console write is a `POST` (server functions). Browsers send `Sec-Fetch-Site` on every
/// request (all current ones) and `Origin` on every cross-origin `POST`; a request with either
/// saying "another site" is refused. One with neither is not from a browser (curl, scripts), so
/// it cannot ride on a signed-in user's browser, which is what cross-site request forgery
/// needs. This is the check Go's `http.CrossOriginProtection` makes, and it needs no token in
/// every form.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if is_safe_method(request.method()) || is_same_origin(request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "Cross-site request refused: console actions must come from the console's own pages.",
        )
            .into_response()
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // "none": typed in the address bar or a bookmark, by the user themselves.
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
            host.is_some() && origin_host == host
        }
    }
}

/// Middleware: the headers every response carries. The page's Content-Security-Policy is set by
/// the app itself (`app::shell`), because it includes the nonce of that page's inline scripts.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; object-src 'none'"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn same_origin_requests_pass() {
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(is_same_origin(&headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")])));
        assert!(is_same_origin(&headers(&[("host", "127.0.0.1:8080")])), "no browser headers: not a browser");
    }

    #[test]
    fn cross_site_requests_are_refused() {
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!is_same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:8080")])));
    }
}
