use leptos::prelude::*;
use leptos_meta::Title;

use super::PageHeading;

/// Shown for any URL no route matches, with HTTP status 404 when rendered on the server.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }

    view! {
        <Title text="Not found" />
        <PageHeading title="Page not found" subtitle="There is nothing at this address." />
        <a href=crate::mount::href("/") class="mt-6 inline-block text-sm font-medium text-indigo-600 hover:underline dark:text-indigo-400">
            "Back to the overview"
        </a>
    }
}
