//! `/triage`: dead jobs grouped by error, one line per problem; `/triage/:id`: one group, its
//! status actions (resolve, ignore, reopen), and its dead jobs with the usual bulk actions.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use super::PageHeading;
use super::jobs::{ActionBar, JobTable};
use crate::api::{change_group, get_group, list_groups, list_jobs, merge_group, split_group};
use crate::app::use_user;
use crate::components::{ErrorNotice, GroupBadge, Loading, Sparkline, Time, thousands, use_live};
use crate::model::{GRAPHILE, GROUP_DEAD_COUNT_LIMIT, GroupChange, GroupRow, JobFilter, SplitPart, State};
use crate::mount;

/// The status tabs: URL value and label.
const TABS: [(&str, &str); 4] =
    [("", "All"), ("open", "Open"), ("resolved", "Resolved"), ("ignored", "Ignored")];

#[component]
pub fn TriagePage() -> impl IntoView {
    let query = use_query_map();
    let status = Memo::new(move |_| query.read().get("status").filter(|s| !s.is_empty()));
    let before = Memo::new(move |_| query.read().get("before"));
    let live = use_live();
    let groups = Resource::new(
        move || (status.get(), before.get(), live.tick.get()),
        |(status, before, _)| list_groups(status, before),
    );
    let tab = "rounded-md px-3 py-1.5 text-sm font-medium max-md:py-2.5 text-slate-600 hover:bg-slate-100 aria-[current=page]:bg-slate-900 aria-[current=page]:text-white dark:text-slate-400 dark:hover:bg-slate-800 dark:aria-[current=page]:bg-slate-100 dark:aria-[current=page]:text-slate-900";

    view! {
        <Title text="Triage" />
        <PageHeading title="Triage" subtitle="Dead jobs grouped by their error (ids, numbers, times and addresses masked): one line per problem, most recently seen first." />
        <nav aria-label="Group status" class="mt-6 flex gap-1">
            {TABS.into_iter().map(|(value, label)| {
                let href = if value.is_empty() { "/triage".to_owned() } else { format!("/triage?status={value}") };
                let current = move || (status.get().as_deref().unwrap_or("") == value).then_some("page");
                view! { <a href=mount::href(&href) class=tab aria-current=current>{label}</a> }
            }).collect_view()}
        </nav>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match groups.await {
                    Ok(page) if page.rows.is_empty() => view! {
                        <p data-testid="empty" class="mt-6 rounded-xl border border-dashed border-slate-300 p-10 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">
                            "No error groups here. When a job dies, it joins the group of every other job that died of the same error, and the group appears here."
                        </p>
                    }.into_any(),
                    Ok(page) => {
                        let next = page.next.map(|cursor| match status.get_untracked() {
                            Some(status) => format!("/triage?status={status}&before={cursor}"),
                            None => format!("/triage?before={cursor}"),
                        });
                        view! {
                            // Below md, a card per group (as the job lists): the error first, in full.
                            <div class="mt-4 overflow-x-auto rounded-xl border border-slate-200 bg-white shadow-sm dark:border-slate-800 dark:bg-slate-900">
                                <table class="w-full text-left text-sm max-md:block" data-testid="group-table">
                                    <thead class="border-b border-slate-200 text-xs text-slate-500 uppercase max-md:hidden dark:border-slate-800 dark:text-slate-400">
                                        <tr>
                                            <th scope="col" class="px-3 py-2 font-semibold">"Error"</th>
                                            <th scope="col" class="px-3 py-2 font-semibold">"Status"</th>
                                            <th scope="col" class="px-3 py-2 text-right font-semibold">"Jobs"</th>
                                            <th scope="col" class="px-3 py-2 font-semibold">"Last 24 h"</th>
                                            <th scope="col" class="px-3 py-2 font-semibold">"First seen"</th>
                                            <th scope="col" class="px-3 py-2 font-semibold">"Last seen"</th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100 max-md:block dark:divide-slate-800">
                                        {page.rows.into_iter().map(|row| view! { <GroupRowView row /> }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {next.map(|href| view! { <a href=mount::href(&href) rel="next" class="mt-3 inline-block text-sm font-medium text-indigo-600 hover:underline dark:text-indigo-400">"Next page →"</a> })}
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A group as a table row; below md a card (the error, what and where, then its status, size
/// and times) that opens the group wherever it is tapped.
#[component]
fn GroupRowView(row: GroupRow) -> impl IntoView {
    let first_line = row.message.lines().next().unwrap_or("").to_owned();
    let title = row.message.clone();
    let total = thousands(row.total);
    view! {
        <tr data-testid="group-row" data-group-id=row.id.to_string() class="align-top hover:bg-slate-50 max-md:relative max-md:grid max-md:grid-cols-[minmax(0,1fr)_auto] max-md:gap-x-3 max-md:gap-y-1 max-md:p-3 dark:hover:bg-slate-800/50">
            <td class="max-w-xl px-3 py-2 max-md:max-w-none max-md:p-0">
                <a href=mount::href(&format!("/triage/{}", row.id)) title=title class="block truncate font-mono text-xs font-medium text-red-700 hover:underline max-md:line-clamp-3 max-md:whitespace-normal max-md:wrap-anywhere max-md:after:absolute max-md:after:inset-0 dark:text-red-400">
                    {first_line}
                </a>
                <div class="text-xs text-slate-500 wrap-anywhere dark:text-slate-400">
                    <span class="font-mono">{row.kind}</span>" · "{row.queue}" · "{row.source}
                </div>
                <div class="mt-1 flex flex-wrap items-center gap-x-3 text-xs text-slate-500 md:hidden dark:text-slate-400">
                    <span class="tabular-nums">{format!("{total} {}", if row.total == 1 { "job" } else { "jobs" })}</span>
                    <Sparkline values=row.sparkline.clone() class="h-4 w-20" />
                    <span>"last seen " <Time moment=row.last_seen.clone() /></span>
                </div>
            </td>
            <td class="px-3 py-2 max-md:p-0">
                <GroupBadge state=row.state />
                {row.ignored_note.map(|note| view! { <div class="text-xs text-slate-500 dark:text-slate-400">{note}</div> })}
            </td>
            <td class="px-3 py-2 text-right tabular-nums max-md:hidden">{total}</td>
            <td class="px-3 py-2 max-md:hidden"><Sparkline values=row.sparkline /></td>
            <td class="px-3 py-2 max-md:hidden"><Time moment=row.first_seen /></td>
            <td class="px-3 py-2 max-md:hidden"><Time moment=row.last_seen /></td>
        </tr>
    }
    // Erased: keeps the list's type shallow (see the recursion limit in lib.rs).
    .into_any()
}

#[component]
pub fn GroupPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|v| v.parse::<i64>().ok()));
    let live = use_live();
    let user = use_user();
    let group = Resource::new(
        move || (id.get(), live.tick.get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_group(id).await,
                None => Ok(None),
            }
        },
    );
    // Whose jobs the group holds (Backstop's or graphile-worker's), known once it loads; the
    // server works it out from the group too, for the first render.
    let source = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(Some(detail))) = group.get() {
            let of_group = (detail.row.source == GRAPHILE).then(|| GRAPHILE.to_owned());
            if source.get_untracked() != of_group {
                source.set(of_group);
            }
        }
    });
    let filter = Memo::new(move |_| JobFilter {
        state: Some(State::Dead),
        group: id.get(),
        source: source.get(),
        ..JobFilter::default()
    });
    let jobs = Resource::new(move || (filter.get(), live.tick.get()), |(filter, _)| list_jobs(filter, None));
    let selected = RwSignal::new(Vec::<i64>::new());

    // Status changes live here, outside the part live refresh rebuilds, so a click's result is
    // never lost to a refresh.
    let report = RwSignal::new(None::<Result<String, String>>);
    let change = Action::new(move |change: &GroupChange| {
        let (change, id) = (*change, id.get_untracked());
        async move {
            let result = match id {
                Some(id) => change_group(id, change).await,
                None => Err(ServerFnError::new("no group")),
            };
            (change, result)
        }
    });
    Effect::new(move |_| {
        if let Some((change, result)) = change.value().get() {
            report.set(Some(match result {
                Ok(()) => Ok(match change {
                    GroupChange::Resolve => {
                        "Resolved. The next job that dies of this error reopens the group and alerts."
                            .to_owned()
                    }
                    GroupChange::Reopen => "Reopened.".to_owned(),
                    GroupChange::IgnoreHours(h) => format!("Ignored for {h} hours: no digests until then."),
                    GroupChange::IgnoreArrivals(n) => format!("Ignored until {n} more jobs die of it."),
                }),
                Err(error) => Err(error.to_string()),
            }));
            live.refresh();
        }
    });
    let button = "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium shadow-sm hover:bg-slate-50 max-md:min-h-10 disabled:opacity-40 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800";
    // Merging with another group (one problem the grouper kept apart): the page then shows the
    // group that survives, the older of the two.
    let merge_with = RwSignal::new(String::new());
    let merge = Action::new(move |other: &String| {
        let (other, id) = (other.trim().trim_start_matches('#').parse::<i64>(), id.get_untracked());
        async move {
            match (other, id) {
                (Ok(other), Some(id)) => merge_group(id, other).await.map_err(|e| e.to_string()),
                _ => Err("Give the number of the group to merge with, such as 12.".to_owned()),
            }
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(result) = merge.value().get() {
            match result {
                Ok(survivor) => {
                    report.set(Some(Ok(format!("Merged: group #{survivor} holds both now."))));
                    merge_with.set(String::new());
                    navigate(&format!("/triage/{survivor}"), Default::default());
                    live.refresh();
                }
                Err(error) => report.set(Some(Err(error))),
            }
        }
    });

    // Splitting by what varies at one wildcard (each value its own problem): the page stays on
    // this group, which keeps the most common value, and lists the groups made.
    let split_parts = RwSignal::new(Vec::<SplitPart>::new());
    let split = Action::new(move |wildcard: &u32| {
        let (wildcard, id) = (*wildcard, id.get_untracked());
        async move {
            match id {
                Some(id) => split_group(id, wildcard).await.map_err(|e| e.to_string()),
                None => Err("no group".to_owned()),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = split.value().get() {
            match result {
                Ok(parts) => {
                    report.set(Some(Ok(match parts.len() {
                        1 => "Fixed: every dead job has this value there; other values will be groups of their own.".to_owned(),
                        n => format!("Split into {n} groups, one per value:"),
                    })));
                    split_parts.set(parts);
                }
                Err(error) => {
                    report.set(Some(Err(error)));
                    split_parts.set(Vec::new());
                }
            }
            live.refresh();
        }
    });

    // Another group's page (a link in the list a split made, say) starts without this one's
    // reports.
    Effect::new(move |previous: Option<Option<i64>>| {
        let now = id.get();
        if previous.is_some_and(|previous| previous != now) {
            report.set(None);
            split_parts.set(Vec::new());
        }
        now
    });

    view! {
        <Title text="Error group" />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match group.await {
                    Ok(Some(detail)) => {
                        let row = detail.row;
                        view! {
                            <div class="flex flex-wrap items-start justify-between gap-4">
                                <div class="min-w-0">
                                    <p class="text-sm text-slate-500 dark:text-slate-400">
                                        <a href=mount::href("/triage") class="hover:underline">"Triage"</a>
                                        {format!(" / group #{}", row.id)}
                                    </p>
                                    <h1 data-testid="group-message" class="mt-1 font-mono text-lg font-semibold max-md:text-base wrap-anywhere whitespace-pre-wrap text-red-700 dark:text-red-400"><TemplateText text=row.message /></h1>
                                    <p class="mt-1 text-sm text-slate-600 wrap-anywhere dark:text-slate-400">
                                        <span class="font-mono">{row.kind}</span>" · queue "{row.queue}" · source "{row.source}
                                    </p>
                                </div>
                                <div class="flex items-center gap-2">
                                    <GroupBadge state=row.state />
                                    {row.ignored_note.map(|note| view! { <span class="text-xs text-slate-500">{note}</span> })}
                                </div>
                            </div>
                            <dl class="mt-4 grid grid-cols-2 gap-4 rounded-xl border border-slate-200 bg-white p-4 text-sm shadow-sm sm:grid-cols-5 dark:border-slate-800 dark:bg-slate-900">
                                <div><dt class="text-xs text-slate-500">"Dead now"</dt><dd data-testid="group-dead-now" class="text-xl font-semibold tabular-nums">{if detail.dead_now >= GROUP_DEAD_COUNT_LIMIT { format!("{}+", thousands(detail.dead_now)) } else { thousands(detail.dead_now) }}</dd></div>
                                <div><dt class="text-xs text-slate-500">"Joined, ever"</dt><dd class="text-xl font-semibold tabular-nums">{thousands(row.total)}</dd></div>
                                <div><dt class="text-xs text-slate-500">"First seen"</dt><dd><Time moment=row.first_seen /></dd></div>
                                <div><dt class="text-xs text-slate-500">"Last seen"</dt><dd><Time moment=row.last_seen /></dd></div>
                                <div class="max-sm:col-span-2"><dt class="text-xs text-slate-500">"Last 24 h"</dt><dd><Sparkline values=row.sparkline class="h-8 w-full" /></dd></div>
                            </dl>
                            <details class="mt-3 text-sm">
                                <summary class="cursor-pointer text-slate-600 max-md:py-2.5 dark:text-slate-400">
                                    "Latest error, as it happened (job "
                                    <a href=mount::href(&format!("/jobs/{}", detail.sample_job_id)) class="text-indigo-600 hover:underline dark:text-indigo-400">{format!("#{}", detail.sample_job_id)}</a>
                                    ")"
                                </summary>
                                // Scrolls sideways on a wide screen; wraps on a phone, where a 300-character id
                                // would otherwise take many swipes to read.
                                <pre data-testid="sample-error" class="mt-2 overflow-x-auto rounded-lg bg-slate-900 p-3 text-xs text-slate-100 max-md:whitespace-pre-wrap max-md:wrap-anywhere">{detail.sample_error}</pre>
                            </details>
                        }.into_any()
                    }
                    Ok(None) => view! {
                        <PageHeading title="No such group" subtitle="This error group does not exist. Groups are never deleted, so the link may be mistyped." />
                    }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                user.await.is_ok_and(|u| u.can_act()).then(|| view! {
                    <div class="mt-4 flex flex-wrap gap-2" role="toolbar" aria-label="Group status">
                        <button type="button" class=button disabled=move || change.pending().get() on:click=move |_| { change.dispatch(GroupChange::Resolve); }>"Resolve"</button>
                        <button type="button" class=button disabled=move || change.pending().get() on:click=move |_| { change.dispatch(GroupChange::IgnoreHours(24)); }>"Ignore for 24 h"</button>
                        <button type="button" class=button disabled=move || change.pending().get() on:click=move |_| { change.dispatch(GroupChange::IgnoreArrivals(100)); }>"Ignore until 100 more"</button>
                        <button type="button" class=button disabled=move || change.pending().get() on:click=move |_| { change.dispatch(GroupChange::Reopen); }>"Reopen"</button>
                        <form class="flex flex-wrap items-center gap-2" on:submit=move |ev| { ev.prevent_default(); merge.dispatch(merge_with.get_untracked()); }>
                            <label class="text-sm text-slate-600 dark:text-slate-400" for="merge-with">"Same problem as group #"</label>
                            <input id="merge-with" data-testid="merge-with" inputmode="numeric" class="w-24 rounded-md border border-slate-300 px-2 py-1 text-sm max-md:py-2 dark:border-slate-700 dark:bg-slate-900"
                                prop:value=move || merge_with.get() on:input=move |ev| merge_with.set(event_target_value(&ev)) />
                            <button type="submit" class=button disabled=move || merge.pending().get()>"Merge"</button>
                        </form>
                    </div>
                })
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let can_act = user.await.is_ok_and(|u| u.can_act());
                let labels = match group.await {
                    Ok(Some(detail)) if can_act => detail.split_by,
                    _ => Vec::new(),
                };
                (!labels.is_empty()).then(|| view! {
                    <div class="mt-3 flex flex-wrap items-center gap-2" role="toolbar" aria-label="Split the group">
                        <span class="text-sm text-slate-600 dark:text-slate-400" title="One group per value its dead jobs have there: for a part that names the problem, not an id">"Each value its own problem:"</span>
                        {labels.into_iter().enumerate().map(|(wildcard, label)| view! {
                            <button type="button" class=button data-testid="split-by" disabled=move || split.pending().get()
                                on:click=move |_| { split.dispatch(wildcard as u32); }>
                                "Split by " <span class="font-mono">{label}</span>
                            </button>
                        }).collect_view()}
                    </div>
                })
            })}
        </Transition>
        {move || report.get().map(|report| match report {
            Ok(text) => view! { <p role="status" data-testid="group-report" class="mt-3 text-sm font-medium text-emerald-700 dark:text-emerald-400">{text}</p> }.into_any(),
            Err(text) => view! { <p role="alert" class="mt-3 text-sm font-medium text-red-700 dark:text-red-400">{text}</p> }.into_any(),
        })}
        {move || (!split_parts.get().is_empty()).then(|| view! {
            <ul data-testid="split-parts" class="mt-2 space-y-1 text-sm">
                {split_parts.get().into_iter().map(|part| view! {
                    <li>
                        <a href=mount::href(&format!("/triage/{}", part.id)) class="text-indigo-600 hover:underline dark:text-indigo-400">{format!("#{}", part.id)}</a>
                        " " <span class="font-mono">{part.value}</span>
                        {format!(" · {} dead {}", thousands(part.jobs as i64), if part.jobs == 1 { "job" } else { "jobs" })}
                    </li>
                }).collect_view()}
            </ul>
        })}
        <h2 class="mt-8 text-lg font-semibold">"Its dead jobs"</h2>
        <p class="text-sm text-slate-500 dark:text-slate-400">
            "Retry all of them once the cause is fixed, or "
            <a href=move || mount::href(&format!("/dead-letters?group={}", id.get().unwrap_or_default())) class="text-indigo-600 hover:underline dark:text-indigo-400">"narrow them down in Dead letters"</a>
            "."
        </p>
        <ActionBar filter selected />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match jobs.await {
                    Ok(page) => view! { <JobTable base="/dead-letters" page filter=filter.get_untracked() selected /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A group's template, its wildcards (the places where its messages differ) set apart.
#[component]
fn TemplateText(text: String) -> impl IntoView {
    let mut parts = Vec::new();
    for (i, piece) in text.split(WILDCARD).enumerate() {
        if i > 0 {
            parts.push(view! {
                <span data-testid="wildcard" title="varies between occurrences" class="rounded bg-amber-100 px-1 text-amber-900 dark:bg-amber-900 dark:text-amber-100">{WILDCARD}</span>
            }.into_any());
        }
        parts.push(view! { <span>{piece.to_owned()}</span> }.into_any());
    }
    parts
}

/// What a template shows where its messages differ (as `backstop::triage::WILDCARD`).
const WILDCARD: &str = "<*>";
