//! The Backstop console, a [Leptos] app.
//!
//! The same components run twice: on the server (feature `ssr`, linked into the `backstop`
//! binary), which renders each page to HTML and answers server functions under `/api`, and in
//! the browser (feature `hydrate`, built to `backstop.wasm`), which takes over that HTML and
//! makes it interactive. `scripts/build-site.sh` builds both halves and the stylesheet.
//!
//! [Leptos]: https://leptos.dev

// Leptos views are nested types; the job and group lists' (cards on a phone, rows elsewhere)
// outgrow the default limit when the compiler lays out their hydration futures.
#![recursion_limit = "256"]

pub mod api;
mod app;
mod components;
pub mod model;
pub mod mount;
mod pages;
#[cfg(feature = "ssr")]
pub mod server;
mod shortcuts;
mod theme;

pub use api::{ServerStatus, console_status};
pub use app::{App, shell};
/// What the server writes outside pages (Slack alerts) encodes query values and numbers as the
/// console's pages do.
pub use components::{thousands, urlencode};

/// The browser entry point, called by the script that [`shell`] puts in `<head>` once the wasm
/// module is loaded.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Mounted under a prefix (a host application's `/admin/jobs`): server functions live there too.
    let prefix = mount::prefix();
    if !prefix.is_empty() {
        leptos::server_fn::client::set_server_url(prefix);
    }
    leptos::mount::hydrate_body(App);
    // Event handlers are attached once `hydrate_body` returns. Browser tests wait for this
    // attribute before they click, instead of guessing how long the wasm takes to load.
    _ = leptos::prelude::document().body().map(|body| body.set_attribute("data-hydrated", "true"));
}

/// Present (as a wasm export) only in a wasm built with `--cfg erase_components`, which changes
/// the shape of every view: the server that renders the pages must be built the same way, or
/// they do not hydrate. Never called: `scripts/site-manifest.mjs` looks for the export and
/// records the answer in `pkg/site.json`, which the server checks against its own build at start.
#[cfg(all(feature = "hydrate", erase_components))]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn built_with_erase_components() {}
