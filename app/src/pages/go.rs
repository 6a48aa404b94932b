//! `/go?q=...`: the header's jump box. A number (or `#123`) opens that job; anything else
//! searches the dead letters' errors for it.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::urlencode;

/// Where the jump box sends `q`.
pub fn go_target(q: &str) -> String {
    let q = q.trim();
    match q.trim_start_matches('#').parse::<i64>() {
        Ok(id) => format!("/jobs/{id}"),
        Err(_) if q.is_empty() => "/jobs".to_owned(),
        Err(_) => format!("/dead-letters?error={}", urlencode(q)),
    }
}

#[component]
pub fn GoPage() -> impl IntoView {
    let query = use_query_map();
    let target = move || go_target(&query.read().get("q").unwrap_or_default());
    // Rendered on the server: an HTTP redirect. Navigated to in the browser: a replace.
    #[cfg(feature = "ssr")]
    leptos_axum::redirect(&crate::mount::href(&target()));
    #[cfg(feature = "hydrate")]
    {
        let navigate = leptos_router::hooks::use_navigate();
        Effect::new(move |_| {
            navigate(&target(), leptos_router::NavigateOptions { replace: true, ..Default::default() })
        });
    }
    view! { <p class="text-sm text-slate-500">"Opening…"</p> }
}

#[cfg(test)]
mod tests {
    use super::go_target;

    #[test]
    fn numbers_open_jobs_and_words_search_errors() {
        assert_eq!(go_target("42"), "/jobs/42");
        assert_eq!(go_target(" #42 "), "/jobs/42");
        assert_eq!(go_target(""), "/jobs");
        assert_eq!(go_target("connection refused"), "/dead-letters?error=connection%20refused");
    }
}
