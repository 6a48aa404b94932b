//! The HTML shell, the router and the frame around every page.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::pages::{ComingSoon, NotFound, Overview};

/// The whole HTML document. Only the server renders it; the browser hydrates `<body>`.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

/// The console: a header with the main navigation, and the page for the current URL.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/backstop.css" />
        <Title formatter=|page: String| if page.is_empty() { "Backstop".to_owned() } else { format!("{page} · Backstop") } />

        <Router>
            <Header />
            <main class="mx-auto max-w-6xl px-4 py-8 sm:px-6">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Overview />
                    <Route path=path!("/jobs") view=|| view! { <ComingSoon title="Jobs" /> } />
                    <Route path=path!("/dead-letters") view=|| view! { <ComingSoon title="Dead letters" /> } />
                    <Route path=path!("/queues") view=|| view! { <ComingSoon title="Queues" /> } />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Header() -> impl IntoView {
    view! {
        <header class="sticky top-0 z-10 border-b border-slate-200 bg-white/90 backdrop-blur dark:border-slate-800 dark:bg-slate-900/90">
            <div class="mx-auto flex h-14 max-w-6xl items-center gap-6 px-4 sm:px-6">
                <a href="/" class="flex items-center gap-2 font-semibold tracking-tight">
                    <span
                        aria-hidden="true"
                        class="grid size-7 place-items-center rounded-md bg-indigo-600 text-sm font-bold text-white"
                    >
                        "B"
                    </span>
                    <span data-testid="brand">"Backstop"</span>
                </a>
                <nav aria-label="Main" class="flex items-center gap-1 text-sm">
                    <NavLink href="/" label="Overview" />
                    <NavLink href="/jobs" label="Jobs" />
                    <NavLink href="/dead-letters" label="Dead letters" />
                    <NavLink href="/queues" label="Queues" />
                </nav>
            </div>
        </header>
    }
}

/// A navigation link. The router marks the current section with `aria-current="page"`: the
/// section's own page and the pages below it, except for `/`, which would match everything.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <A
            href=href
            exact=href == "/"
            attr:class="rounded-md px-3 py-1.5 font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900 aria-[current=page]:bg-slate-100 aria-[current=page]:text-slate-900 dark:text-slate-400 dark:hover:bg-slate-800 dark:hover:text-slate-100 dark:aria-[current=page]:bg-slate-800 dark:aria-[current=page]:text-slate-100"
        >
            {label}
        </A>
    }
}
