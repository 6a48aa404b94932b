use leptos::prelude::*;
use leptos_meta::Title;

use super::PageHeading;
use crate::api::{ServerStatus, console_status};

/// The landing page: queue health at a glance (for now: the server itself).
#[component]
pub fn Overview() -> impl IntoView {
    view! {
        <Title text="Overview" />
        <PageHeading title="Overview" subtitle="Queue health at a glance.">
            <LiveUpdatesToggle />
        </PageHeading>
        <div class="mt-6 grid gap-4 md:grid-cols-2">
            <ServerCard />
        </div>
    }
}

/// Whether the console follows the queue live. Only the switch exists so far; nothing streams
/// yet.
#[component]
fn LiveUpdatesToggle() -> impl IntoView {
    let (live, set_live) = signal(true);

    view! {
        <button
            type="button"
            aria-pressed=move || live.get().to_string()
            on:click=move |_| set_live.update(|live| *live = !*live)
            class="inline-flex items-center gap-2 rounded-full border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium shadow-sm hover:bg-slate-50 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800"
        >
            <span
                aria-hidden="true"
                class="size-2 rounded-full"
                class=("bg-emerald-500", move || live.get())
                class=("bg-slate-400", move || !live.get())
            ></span>
            {move || if live.get() { "Live updates: on" } else { "Live updates: off" }}
        </button>
    }
}

/// The server's version and clock, from the `console_status` server function: rendered on the
/// server for the first paint, fetched over HTTP when refreshed in the browser.
#[component]
fn ServerCard() -> impl IntoView {
    let (refreshes, set_refreshes) = signal(0_u32);
    let (refreshing, set_refreshing) = signal(false);
    let status = Resource::new(move || refreshes.get(), |_| console_status());

    view! {
        <section
            aria-labelledby="server-card-title"
            class="rounded-xl border border-slate-200 bg-white p-5 shadow-sm dark:border-slate-800 dark:bg-slate-900"
        >
            <div class="flex items-center justify-between gap-4">
                <h2 id="server-card-title" class="text-sm font-semibold text-slate-500 uppercase tracking-wide dark:text-slate-400">
                    "Server"
                </h2>
                <button
                    type="button"
                    on:click=move |_| set_refreshes.update(|n| *n += 1)
                    disabled=refreshing
                    class="rounded-md px-2.5 py-1 text-sm font-medium text-indigo-600 hover:bg-indigo-50 disabled:opacity-50 dark:text-indigo-400 dark:hover:bg-indigo-950"
                >
                    {move || if refreshing.get() { "Refreshing…" } else { "Refresh" }}
                </button>
            </div>
            <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500">"Loading…"</p> } set_pending=set_refreshing>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => view! { <StatusList status /> }.into_any(),
                        Err(error) => view! {
                            <p role="alert" class="mt-4 text-sm text-red-600 dark:text-red-400">
                                {format!("Server unavailable: {error}")}
                            </p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn StatusList(status: ServerStatus) -> impl IntoView {
    view! {
        <dl class="mt-4 grid grid-cols-[auto_1fr] gap-x-6 gap-y-2 text-sm">
            <dt class="text-slate-500 dark:text-slate-400">"Version"</dt>
            <dd data-testid="server-version" class="font-mono">{status.version}</dd>
            <dt class="text-slate-500 dark:text-slate-400">"Server time"</dt>
            <dd data-testid="server-time" class="font-mono tabular-nums">{status.server_time}</dd>
        </dl>
    }
}
