use leptos::prelude::*;
use leptos_meta::Title;

use super::PageHeading;

/// A section of the console that exists in the navigation but not yet on screen.
#[component]
pub fn ComingSoon(title: &'static str) -> impl IntoView {
    view! {
        <Title text=title />
        <PageHeading title subtitle="This part of the console is not built yet." />
        <div class="mt-6 rounded-xl border border-dashed border-slate-300 p-10 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">
            "Nothing to show here yet."
        </div>
    }
}
