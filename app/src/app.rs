//! The HTML shell, the router and the frame around every page.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::api::whoami;
use crate::components::{Live, LiveToggle};
use crate::model::{CurrentUser, Role};
use crate::mount;
use crate::pages::{
    AuditPage, GoPage, GroupPage, JobDetailPage, JobsPage, NotFound, Overview, QueuesPage, TriagePage,
};
use crate::shortcuts::Shortcuts;
use crate::theme::ThemeToggle;

/// The signed-in user, read once per page load and shared by every page.
pub type UserResource = OnceResource<Result<CurrentUser, ServerFnError>>;

/// The signed-in user (pages show actions only to operators; the server checks again).
pub fn use_user() -> UserResource {
    expect_context::<UserResource>()
}

/// The whole HTML document. Only the server renders it; the browser hydrates `<body>`.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    let prefix = mount::prefix();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                // Where the console is mounted, for the browser (see `crate::mount`).
                {(!prefix.is_empty()).then(|| view! { <meta name=mount::META_NAME content=prefix /> })}
                <link rel="icon" type="image/svg+xml" href=mount::href("/favicon.svg") />
                // Before anything paints: the dark class, from the stored choice or the system.
                <script src=mount::href("/theme.js")></script>
                // The stylesheet is built with the wasm and named like it (fingerprinted in
                // release builds), so the server names it here, not the app.
                <link rel="stylesheet" id="leptos" href=format!("{prefix}/{}/{}.css", options.site_pkg_dir, options.output_name) />
                <HydrationScripts options root=prefix />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

/// Scripts run only from this site and with this response's nonce (Leptos puts it on its inline
/// hydration scripts), so a payload that smuggled a `<script>` past escaping still could not run.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The console: a header with the main navigation, and the page for the current URL.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context::<UserResource>(OnceResource::new(whoami()));
    provide_context(Live::start());

    view! {
        <Title formatter=|page: String| if page.is_empty() { "Backstop".to_owned() } else { format!("{page} · Backstop") } />

        // Route matching and `navigate` take paths without the prefix; links are rendered with it.
        <Router base=mount::prefix()>
            <Header />
            <Shortcuts />
            <main class="mx-auto max-w-7xl px-4 py-8 sm:px-6">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Overview />
                    <Route path=path!("/jobs") view=|| view! { <JobsPage /> } />
                    <Route path=path!("/jobs/:id") view=JobDetailPage />
                    <Route path=path!("/dead-letters") view=|| view! { <JobsPage dead=true /> } />
                    <Route path=path!("/triage") view=TriagePage />
                    <Route path=path!("/triage/:id") view=GroupPage />
                    <Route path=path!("/queues") view=QueuesPage />
                    <Route path=path!("/audit") view=AuditPage />
                    <Route path=path!("/go") view=GoPage />
                </Routes>
            </main>
        </Router>
    }
}

/// The header: one bar on a wide screen. Where that does not fit it wraps: on a phone the brand
/// and the switches, then the sections as a grid of big targets, then the job search; there it
/// scrolls away with the page instead of staying (three rows would take a fifth of the screen).
#[component]
fn Header() -> impl IntoView {
    view! {
        <header class="top-0 z-10 border-b border-slate-200 bg-white/90 backdrop-blur sm:sticky dark:border-slate-800 dark:bg-slate-900/90">
            <div class="mx-auto flex min-h-14 max-w-7xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-2 sm:px-6">
                <a href=mount::href("/") class="flex items-center gap-2 font-semibold tracking-tight">
                    <span
                        aria-hidden="true"
                        class="grid size-7 place-items-center rounded-md bg-indigo-600 text-sm font-bold text-white"
                    >
                        "B"
                    </span>
                    // On a phone the mark alone: the row keeps its room for the switches.
                    <span data-testid="brand" class="max-sm:sr-only">"Backstop"</span>
                </a>
                <nav aria-label="Main" class="grid grid-cols-3 gap-1 text-sm max-sm:order-last max-sm:w-full sm:flex sm:items-center">
                    <NavLink href="/" label="Overview" />
                    <NavLink href="/jobs" label="Jobs" />
                    <NavLink href="/dead-letters" label="Dead letters" />
                    <NavLink href="/triage" label="Triage" />
                    <NavLink href="/queues" label="Queues" />
                    <NavLink href="/audit" label="Audit log" />
                </nav>
                <JumpBox />
                <div class="ml-auto flex items-center gap-2 sm:ml-0 sm:gap-3">
                    <LiveToggle />
                    <ThemeToggle />
                    <UserBadge />
                </div>
            </div>
        </header>
    }
}

/// The header's jump box: a job id, or words to search dead letters' errors for (`/go?q=...`).
#[component]
fn JumpBox() -> impl IntoView {
    view! {
        <mount::GetForm action="/go" attr:role="search" attr:aria-label="Jump to a job" attr:class="max-sm:order-last max-sm:w-full sm:ml-auto">
            <input
                id="jump"
                name="q"
                type="search"
                aria-label="Job id, or words to search dead letters' errors"
                placeholder="Job id or error…  /"
                class="w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm shadow-sm max-sm:py-2 sm:w-40 dark:border-slate-700 dark:bg-slate-900"
            />
        </mount::GetForm>
    }
}

/// Who is signed in, and as what.
#[component]
fn UserBadge() -> impl IntoView {
    let user = use_user();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                user.await.ok().map(|user| {
                    let role = match user.role {
                        Role::Operator => "operator",
                        Role::Viewer => "viewer",
                    };
                    view! {
                        <span data-testid="user" class="text-xs whitespace-nowrap text-slate-500 dark:text-slate-400">
                            {user.name} " · " {role}
                        </span>
                    }
                })
            })}
        </Transition>
    }
}

/// A navigation link. The router marks the current section with `aria-current="page"`: the
/// section's own page and the pages below it, except for `/`, which would match everything.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <A
            href=mount::href(href)
            exact=href == "/"
            attr:class="whitespace-nowrap rounded-md px-3 py-1.5 text-center font-medium max-sm:py-2.5 text-slate-600 hover:bg-slate-100 hover:text-slate-900 aria-[current=page]:bg-slate-100 aria-[current=page]:text-slate-900 dark:text-slate-400 dark:hover:bg-slate-800 dark:hover:text-slate-100 dark:aria-[current=page]:bg-slate-800 dark:aria-[current=page]:text-slate-100"
        >
            {label}
        </A>
    }
}
