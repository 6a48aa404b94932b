//! `/audit`: every operator action, newest first.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::PageHeading;
use crate::api::audit_log;
use crate::components::{ErrorNotice, Loading, Time, use_live};

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let before = Memo::new(move |_| query.read().get("before").and_then(|b| b.parse::<i64>().ok()));
    let live = use_live();
    let entries = Resource::new(move || (before.get(), live.tick.get()), |(before, _)| audit_log(before));

    view! {
        <Title text="Audit log" />
        <PageHeading title="Audit log" subtitle="Who retried, discarded, deleted, cancelled or paused what, and how many rows it changed." />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(entries) if entries.is_empty() => view! {
                        <p class="mt-6 rounded-xl border border-dashed border-slate-300 p-10 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">
                            "No actions yet. Every retry, discard, delete, cancel and pause in the console is recorded here."
                        </p>
                    }.into_any(),
                    Ok(entries) => {
                        let next = entries.last().map(|e| format!("/audit?before={}", e.id));
                        view! {
                            <div class="mt-6 overflow-x-auto rounded-xl border border-slate-200 bg-white shadow-sm dark:border-slate-800 dark:bg-slate-900">
                                <table class="w-full text-left text-sm">
                                    <thead class="border-b border-slate-200 text-xs text-slate-500 uppercase dark:border-slate-800 dark:text-slate-400">
                                        <tr>
                                            <th scope="col" class="px-3 py-2">"When"</th>
                                            <th scope="col" class="px-3 py-2">"Who"</th>
                                            <th scope="col" class="px-3 py-2">"Action"</th>
                                            <th scope="col" class="px-3 py-2">"Target"</th>
                                            <th scope="col" class="px-3 py-2 text-right">"Changed"</th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100 dark:divide-slate-800">
                                        {entries.into_iter().map(|entry| { let title = entry.target.clone(); view! {
                                            <tr data-testid="audit-row">
                                                <td class="px-3 py-2"><Time moment=entry.at /></td>
                                                <td class="px-3 py-2">{entry.actor}</td>
                                                <td class="px-3 py-2 font-medium">{entry.action}</td>
                                                <td class="max-w-md truncate px-3 py-2 font-mono text-xs" title=title>{entry.target}</td>
                                                <td class="px-3 py-2 text-right tabular-nums">{format!("{} of {}", entry.changed, entry.requested)}</td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {next.map(|href| view! { <a href=href class="mt-3 inline-block text-sm font-medium text-indigo-600 hover:underline dark:text-indigo-400">"Older →"</a> })}
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}
