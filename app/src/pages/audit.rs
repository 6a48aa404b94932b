//! `/audit`: every operator action and every alert sent, newest first, filterable by who and
//! what (the filter lives in the URL).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::PageHeading;
use crate::api::audit_log;
use crate::components::{ErrorNotice, Loading, Time, urlencode, use_live};
use crate::mount;

/// The actions the filter offers (the log also accepts any other name in the URL).
const ACTIONS: [(&str, &str); 16] = [
    ("retry", "Retry"),
    ("run_now", "Run now"),
    ("discard", "Discard"),
    ("delete", "Delete"),
    ("cancel", "Cancel"),
    ("edit_and_retry", "Edit payload and retry"),
    ("reveal", "Reveal a masked value"),
    ("pause", "Pause queue"),
    ("resume", "Resume queue"),
    ("resolve_group", "Resolve group"),
    ("reopen_group", "Reopen group"),
    ("ignore_group", "Ignore group"),
    ("merge_groups", "Merge groups"),
    ("split_group", "Split group"),
    ("alert_sent", "Slack alert sent"),
    ("test_alert", "Test alert requested"),
];

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let text =
        move |name: &str| query.read().get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let actor = Memo::new(move |_| text("actor"));
    let action = Memo::new(move |_| text("action"));
    let before = Memo::new(move |_| query.read().get("before").and_then(|b| b.parse::<i64>().ok()));
    let live = use_live();
    let entries = Resource::new(
        move || (actor.get(), action.get(), before.get(), live.tick.get()),
        |(actor, action, before, _)| audit_log(actor, action, before),
    );
    let field = "mt-1 w-full rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm shadow-sm dark:border-slate-700 dark:bg-slate-900";
    let label = "block text-xs font-medium text-slate-600 dark:text-slate-400";

    view! {
        <Title text="Audit log" />
        <PageHeading title="Audit log" subtitle="Who retried, discarded, deleted, cancelled, paused or triaged what, how many rows it changed, and every Slack alert sent." />
        <mount::GetForm action="/audit" attr:class="mt-6 flex flex-wrap items-end gap-3 rounded-xl border border-slate-200 bg-white p-4 shadow-sm dark:border-slate-800 dark:bg-slate-900" attr:role="search" attr:aria-label="Filter the audit log">
            <div>
                <label for="audit-actor" class=label>"Who"</label>
                <input id="audit-actor" name="actor" class=field placeholder="anyone (slack: alerts)" prop:value=move || actor.get().unwrap_or_default() />
            </div>
            <div>
                <label for="audit-action" class=label>"Action"</label>
                <select id="audit-action" name="action" class=field prop:value=move || action.get().unwrap_or_default()>
                    <option value="">"Any action"</option>
                    {ACTIONS.into_iter().map(|(value, text)| view! {
                        <option value=value selected=move || action.get().as_deref() == Some(value)>{text}</option>
                    }).collect_view()}
                </select>
            </div>
            <button type="submit" class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-indigo-500">"Filter"</button>
            <a href=mount::href("/audit?action=alert_sent") class="rounded-md px-3 py-1.5 text-sm font-medium text-indigo-600 hover:bg-slate-100 dark:text-indigo-400 dark:hover:bg-slate-800">"Alerts sent"</a>
            <a href=mount::href("/audit") class="rounded-md px-3 py-1.5 text-sm font-medium text-slate-600 hover:bg-slate-100 dark:text-slate-400 dark:hover:bg-slate-800">"Clear"</a>
        </mount::GetForm>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(entries) if entries.is_empty() => view! {
                        <p class="mt-6 rounded-xl border border-dashed border-slate-300 p-10 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">
                            "Nothing recorded here yet. Every retry, discard, delete, cancel, pause and triage action in the console, and every Slack alert sent, is recorded in this log."
                        </p>
                    }.into_any(),
                    Ok(entries) => {
                        let mut keep = String::new();
                        for (name, value) in [("actor", actor.get_untracked()), ("action", action.get_untracked())] {
                            if let Some(value) = value {
                                keep.push_str(&format!("{name}={}&", urlencode(&value)));
                            }
                        }
                        let next = entries.last().map(|e| format!("/audit?{keep}before={}", e.id));
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
                            {next.map(|href| view! { <a href=mount::href(&href) class="mt-3 inline-block text-sm font-medium text-indigo-600 hover:underline dark:text-indigo-400">"Older →"</a> })}
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}
