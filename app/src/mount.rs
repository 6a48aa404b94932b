//! Where the console is mounted: at the root of its own server (`backstop serve`), or under a
//! path prefix such as `/admin/jobs` in a host application's axum router.
//!
//! The console's routes, links and server functions are written as paths from the console's
//! root (`/jobs`, `/api/whoami`). One rule turns them into URLs:
//!
//! - everything that is rendered (an `href`, a form's `action`, an asset) and every HTTP
//!   redirect goes through [`href`], which puts the prefix in front;
//! - `navigate(...)` (Leptos' `use_navigate`) takes the path without the prefix: the router,
//!   whose `base` is the prefix, adds it.
//!
//! The server knows the prefix from the [`Mount`] context it provides to every render; it writes
//! it into the page (`<meta name="backstop-mount">`), where the browser reads it once before it
//! hydrates, and points the server functions' client at it.

use leptos::prelude::*;

/// The path prefix the console is served under: `""` at the root of its own server,
/// `"/admin/jobs"` when a host application nests it there. No trailing slash.
///
/// The server provides it as context to every page it renders and every server function it
/// runs; without it the prefix is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mount(pub &'static str);

/// The name of the `<meta>` element that carries the prefix to the browser.
pub const META_NAME: &str = "backstop-mount";

/// The prefix the console is served under (see [`Mount`]).
pub fn prefix() -> &'static str {
    #[cfg(feature = "ssr")]
    {
        use_context::<Mount>().map_or("", |mount| mount.0)
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        browser::prefix()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        ""
    }
}

/// The URL of the console's `path` (which starts with `/`): `path` under the prefix. The
/// console's root under a prefix is the prefix itself (`/admin/jobs`, as the router resolves it),
/// not `/admin/jobs/`.
pub fn href(path: &str) -> String {
    under(prefix(), path)
}

/// A `GET` form (a search, a filter) for the console's `action` path: it works before the page
/// is interactive (the browser submits it to the prefixed URL) and, once hydrated, navigates
/// in the page instead, as the router's `<Form>` does. Not that `<Form>`: it hands its rendered
/// (prefixed) `action` to `navigate`, which puts the router's base in front a second time.
/// Attributes given as `attr:` go on the `<form>`.
#[component]
pub fn GetForm(action: &'static str, children: Children) -> impl IntoView {
    let navigate = leptos_router::hooks::use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            let Some(form) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok()) else {
                return;
            };
            let Ok(query) = web_sys::FormData::new_with_form(&form)
                .and_then(|data| web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data))
            else {
                return;
            };
            ev.prevent_default();
            let query = String::from(query.to_string());
            let path = if query.is_empty() { action.to_owned() } else { format!("{action}?{query}") };
            navigate(&path, Default::default());
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, &navigate);
    };
    view! {
        <form method="GET" action=href(action) on:submit=submit>
            {children()}
        </form>
    }
}

fn under(prefix: &str, path: &str) -> String {
    match path.strip_prefix('/') {
        Some(rest) if !prefix.is_empty() && (rest.is_empty() || rest.starts_with(['?', '#'])) => {
            format!("{prefix}{rest}")
        }
        _ => format!("{prefix}{path}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_go_under_the_prefix() {
        assert_eq!(super::under("", "/"), "/");
        assert_eq!(super::under("", "/jobs?queue=a"), "/jobs?queue=a");
        assert_eq!(super::under("/admin/jobs", "/"), "/admin/jobs");
        assert_eq!(super::under("/admin/jobs", "/?x=1"), "/admin/jobs?x=1");
        assert_eq!(super::under("/admin/jobs", "/jobs/7"), "/admin/jobs/jobs/7");
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod browser {
    use std::sync::OnceLock;

    static PREFIX: OnceLock<&'static str> = OnceLock::new();

    /// Read from the page once; leaked once, as the router and the server functions' client
    /// keep it for the page's lifetime anyway.
    pub fn prefix() -> &'static str {
        PREFIX.get_or_init(|| {
            let selector = format!(r#"meta[name="{}"]"#, super::META_NAME);
            let content = leptos::prelude::document()
                .query_selector(&selector)
                .ok()
                .flatten()
                .and_then(|meta| meta.get_attribute("content"))
                .unwrap_or_default();
            let content = content.trim_end_matches('/');
            if content.is_empty() { "" } else { Box::leak(content.to_owned().into_boxed_str()) }
        })
    }
}
