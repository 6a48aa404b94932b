//! The job lists: `/jobs` (live jobs, any state) and `/dead-letters` (the dead-letter table).
//! The filter lives in the URL; actions act on a selection or on everything the filter matches.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::PageHeading;
use crate::api::{act_on_jobs, act_on_matching, count_matching, list_jobs};
use crate::app::use_user;
use crate::components::{ErrorNotice, Loading, StateBadge, Time, thousands, urlencode, use_live};
use crate::model::{ActionReport, GRAPHILE, JobAction, JobFilter, JobPage, JobRow, State, StateLabel as _};
use crate::mount;

/// Counting what a filter matches stops here; above it the console says "100,000+".
const COUNT_LIMIT: i64 = 100_000;

/// A list URL: `base`, the filter, and the page cursor.
fn list_href(base: &str, filter: &JobFilter, before: Option<&str>) -> String {
    let mut pairs: Vec<(&str, String)> = filter.query_pairs();
    if base == "/dead-letters" {
        pairs.retain(|(name, _)| *name != "state");
    }
    if let Some(before) = before {
        pairs.push(("before", before.to_owned()));
    }
    let query: Vec<String> =
        pairs.iter().map(|(name, value)| format!("{name}={}", urlencode(value))).collect();
    if query.is_empty() { base.to_owned() } else { format!("{base}?{}", query.join("&")) }
}

/// What an action is about to act on, while the console asks for confirmation.
#[derive(Clone, Debug, PartialEq)]
enum Scope {
    /// The ticked rows.
    Selected(Vec<i64>),
    /// Everything the filter matches; the number is the count shown when asking.
    Matching(i64),
}

/// The live jobs (`dead` false) or the dead-letter table (`dead` true).
#[component]
pub fn JobsPage(#[prop(optional)] dead: bool) -> impl IntoView {
    let base = if dead { "/dead-letters" } else { "/jobs" };
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let query = query.read();
        let mut filter = JobFilter::from_query(|name| query.get(name));
        if dead {
            filter.state = Some(State::Dead);
        } else if filter.state == Some(State::Dead) {
            filter.state = None; // dead jobs have their own page
        }
        filter
    });
    let before = Memo::new(move |_| query.read().get("before"));
    let live = use_live();
    let page = Resource::new(
        move || (filter.get(), before.get(), live.tick.get()),
        |(filter, before, _)| list_jobs(filter, before),
    );

    let selected = RwSignal::new(Vec::<i64>::new());
    // A new filter or page starts with nothing ticked.
    Effect::new(move |_| {
        filter.track();
        before.track();
        selected.set(Vec::new());
    });

    let (title, subtitle) = if dead {
        ("Dead letters", "Jobs that ran out of attempts, failed for good, or were cancelled. Newest first.")
    } else {
        ("Jobs", "Live jobs: scheduled, queued, running and retrying. Newest first.")
    };

    view! {
        <Title text=title />
        <PageHeading title subtitle />
        <FilterForm base dead filter />
        <ActionBar filter selected />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => view! { <JobTable base page filter=filter.get_untracked() selected /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The filter, as a GET form: submitting it changes the URL, which changes the list.
#[component]
fn FilterForm(base: &'static str, dead: bool, filter: Memo<JobFilter>) -> impl IntoView {
    let field = "mt-1 w-full rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm shadow-sm dark:border-slate-700 dark:bg-slate-900";
    let label = "block text-xs font-medium text-slate-600 dark:text-slate-400";
    let current = move || filter.get();
    view! {
        <mount::GetForm action=base attr:class="mt-6 grid grid-cols-2 gap-3 rounded-xl border border-slate-200 bg-white p-4 shadow-sm sm:grid-cols-4 lg:grid-cols-8 dark:border-slate-800 dark:bg-slate-900" attr:role="search" attr:aria-label="Filter jobs">
            {(!dead).then(|| view! {
                <div>
                    <label for="filter-state" class=label>"State"</label>
                    <select id="filter-state" name="state" class=field prop:value=move || current().state.map(|s| s.as_str()).unwrap_or_default()>
                        <option value="">"Any live state"</option>
                        {[State::Scheduled, State::Queued, State::Running, State::Retrying].into_iter().map(|state| view! {
                            <option value=state.as_str() selected=move || current().state == Some(state)>{state.label()}</option>
                        }).collect_view()}
                    </select>
                </div>
            })}
            <div>
                <label for="filter-source" class=label>"Source"</label>
                <select id="filter-source" name="source" class=field prop:value=move || current().source.unwrap_or_default()>
                    <option value="" selected=move || !current().is_graphile()>"Backstop"</option>
                    <option value=GRAPHILE selected=move || current().is_graphile()>"graphile-worker"</option>
                </select>
            </div>
            <div>
                <label for="filter-queue" class=label>"Queue"</label>
                <input id="filter-queue" name="queue" class=field prop:value=move || current().queue.unwrap_or_default() placeholder="any" />
            </div>
            <div>
                <label for="filter-kind" class=label>"Kind"</label>
                <input id="filter-kind" name="kind" class=field prop:value=move || current().kind.unwrap_or_default() placeholder="any" />
            </div>
            <div>
                <label for="filter-payload" class=label>"Payload contains (JSON)"</label>
                <input id="filter-payload" name="payload" class=field prop:value=move || current().payload.unwrap_or_default() placeholder=r#"{"user_id": 42}"# />
            </div>
            <div>
                <label for="filter-error" class=label>"Error text"</label>
                <input id="filter-error" name="error" type="search" class=field prop:value=move || current().error.unwrap_or_default() placeholder="words in the error" />
            </div>
            <div>
                <label for="filter-from" class=label>{if dead { "Died from (UTC)" } else { "Enqueued from (UTC)" }}</label>
                <input id="filter-from" name="from" type="datetime-local" class=field prop:value=move || current().from.unwrap_or_default() />
            </div>
            <div>
                <label for="filter-to" class=label>"Until (UTC)"</label>
                <input id="filter-to" name="to" type="datetime-local" class=field prop:value=move || current().to.unwrap_or_default() />
            </div>
            // The error group (from the triage page) stays while the other filters change.
            {move || current().group.map(|group| view! {
                <input type="hidden" name="group" value=group.to_string() />
                <div class="flex items-end">
                    <a href=mount::href(&format!("/triage/{group}")) data-testid="group-chip" class="rounded-full bg-red-100 px-3 py-1.5 text-xs font-medium text-red-800 hover:underline dark:bg-red-950 dark:text-red-300">
                        {format!("Error group #{group}")}
                    </a>
                </div>
            })}
            <div class="flex items-end gap-2">
                <button type="submit" class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 max-md:min-h-10">"Filter"</button>
                <a href=mount::href(base) class="rounded-md px-3 py-1.5 text-sm font-medium max-md:py-2.5 text-slate-600 hover:bg-slate-100 dark:text-slate-400 dark:hover:bg-slate-800">"Clear"</a>
            </div>
        </mount::GetForm>
    }
}

/// Actions on the ticked jobs or on everything matching, for operators; a note for viewers.
#[component]
pub(super) fn ActionBar(filter: Memo<JobFilter>, selected: RwSignal<Vec<i64>>) -> impl IntoView {
    let user = use_user();
    let live = use_live();
    let pending = RwSignal::new(None::<(JobAction, Scope)>);
    let report = RwSignal::new(None::<Result<String, String>>);
    // The state actions apply to: the filter's, or for "any live state" any waiting state.
    let state = move || filter.get().state.unwrap_or(State::Queued);

    // Rows done so far by a bulk action on everything matching, shown while it runs.
    let progress = RwSignal::new(None::<ActionReport>);
    let run = Action::new(move |(action, scope): &(JobAction, Scope)| {
        let (action, scope, filter) = (*action, scope.clone(), filter.get_untracked());
        let state = filter.state.unwrap_or(State::Queued);
        async move {
            let result: Result<ActionReport, ServerFnError> = match scope {
                Scope::Selected(ids) => act_on_jobs(action, state, ids, filter.source.clone()).await,
                Scope::Matching(_) => act_on_all_matching(action, filter, progress).await,
            };
            (action, result)
        }
    });
    Effect::new(move |_| {
        if let Some((action, result)) = run.value().get() {
            report.set(Some(match result {
                Ok(done) => Ok(done.summary(action)),
                Err(error) => Err(error.to_string()),
            }));
            pending.set(None);
            selected.set(Vec::new());
            live.refresh();
        }
    });

    let ask = move |action: JobAction, everything: bool| {
        report.set(None);
        if everything {
            let filter = filter.get_untracked();
            leptos::task::spawn_local(async move {
                match count_matching(filter, COUNT_LIMIT).await {
                    Ok(count) => pending.set(Some((action, Scope::Matching(count)))),
                    Err(error) => report.set(Some(Err(error.to_string()))),
                }
            });
        } else {
            let ids = selected.get_untracked();
            if action.is_destructive() {
                pending.set(Some((action, Scope::Selected(ids))));
            } else {
                run.dispatch((action, Scope::Selected(ids)));
            }
        }
    };

    let progress_text = move || {
        let done = progress.get()?;
        let total = match pending.get() {
            Some((_, Scope::Matching(count))) if count < COUNT_LIMIT => thousands(count),
            _ => "all".to_owned(),
        };
        run.pending()
            .get()
            .then(|| format!("Working… {} of {total} jobs done.", thousands(done.matched as i64)))
    };
    let button = "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium shadow-sm hover:bg-slate-50 max-md:min-h-10 disabled:cursor-not-allowed disabled:opacity-40 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800";
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let user = user.await;
                let can_act = user.as_ref().is_ok_and(|u| u.can_act());
                if !can_act {
                    return view! {
                        <p data-testid="read-only" class="mt-4 text-sm text-slate-500 dark:text-slate-400">
                            "Read-only: your role can see jobs but not change them."
                        </p>
                    }.into_any();
                }
                view! {
                    // Two even columns on a phone: "selected" and "all matching" side by side.
                    <div class="mt-4 flex flex-wrap items-center gap-2 max-md:grid max-md:grid-cols-2" role="toolbar" aria-label="Job actions">
                        {move || {
                            let state = state();
                            let actions = JobAction::for_state(state);
                            if actions.is_empty() {
                                return view! { <span class="text-sm max-md:col-span-2 text-slate-500 dark:text-slate-400">"Running jobs cannot be changed."</span> }.into_any();
                            }
                            actions.iter().map(|&action| {
                                let count = move || selected.read().len();
                                view! {
                                    <button type="button" class=button disabled=move || count() == 0 || run.pending().get()
                                        on:click=move |_| ask(action, false)>
                                        {move || format!("{} selected ({})", action.label(), count())}
                                    </button>
                                    <button type="button" class=button disabled=move || run.pending().get()
                                        on:click=move |_| ask(action, true)>
                                        {format!("{} all matching…", action.label())}
                                    </button>
                                }
                            }).collect_view().into_any()
                        }}
                    </div>
                }.into_any()
            })}
        </Transition>
        {move || pending.get().map(|(action, scope)| {
            let question = match &scope {
                Scope::Selected(ids) => format!("{} {} selected job{}?", action.label(), ids.len(), if ids.len() == 1 { "" } else { "s" }),
                Scope::Matching(count) if *count >= COUNT_LIMIT => format!("{} all {}+ jobs matching this filter?", action.label(), thousands(*count)),
                Scope::Matching(count) => format!("{} all {} jobs matching this filter?", action.label(), thousands(*count)),
            };
            let note = if matches!(scope, Scope::Matching(_)) {
                "The server re-runs the filter now; jobs that start running meanwhile are skipped."
            } else if action.is_destructive() {
                "This cannot be undone."
            } else {
                ""
            };
            view! {
                <div role="alertdialog" aria-label="Confirm action" class="mt-3 flex flex-wrap items-center gap-3 rounded-lg border border-amber-300 bg-amber-50 p-3 text-sm dark:border-amber-800 dark:bg-amber-950">
                    <span data-testid="confirm-question" class="font-medium">{question}</span>
                    <span class="text-slate-600 dark:text-slate-400">{note}</span>
                    <button type="button" class="rounded-md bg-indigo-600 px-3 py-1.5 font-medium text-white hover:bg-indigo-500 max-md:min-h-10 disabled:opacity-50"
                        disabled=move || run.pending().get()
                        on:click=move |_| { progress.set(None); run.dispatch((action, scope.clone())); }>
                        {move || if run.pending().get() { "Working…".to_owned() } else { format!("Yes, {}", action.label().to_lowercase()) }}
                    </button>
                    <span role="status" data-testid="action-progress" class="tabular-nums">{progress_text}</span>
                    <button type="button" class="rounded-md px-3 py-1.5 font-medium hover:bg-amber-100 max-md:min-h-10 dark:hover:bg-amber-900" on:click=move |_| pending.set(None)>
                        "Cancel"
                    </button>
                </div>
            }
        })}
        {move || report.get().map(|report| match report {
            Ok(text) => view! { <p role="status" data-testid="action-report" class="mt-3 text-sm font-medium text-emerald-700 dark:text-emerald-400">{text}</p> }.into_any(),
            Err(text) => view! { <p role="alert" class="mt-3 text-sm font-medium text-red-700 dark:text-red-400">{text}</p> }.into_any(),
        })}
    }
}

/// Runs a bulk action on everything `filter` matches, step by step, updating `progress` after
/// each step; the report is the sum of all steps.
async fn act_on_all_matching(
    action: JobAction,
    filter: JobFilter,
    progress: RwSignal<Option<ActionReport>>,
) -> Result<ActionReport, ServerFnError> {
    let mut total = ActionReport { matched: 0, changed: 0 };
    let (mut after, mut audit_id) = (None, None);
    loop {
        let step = act_on_matching(action, filter.clone(), after, audit_id).await?;
        total.matched += step.matched;
        total.changed += step.changed;
        progress.set(Some(total));
        match step.next {
            Some(next) => (after, audit_id) = (Some(next), Some(step.audit_id)),
            None => return Ok(total),
        }
    }
}

/// The rows, with a checkbox each for operators, and the link to the next page.
#[component]
pub(super) fn JobTable(
    base: &'static str,
    page: JobPage,
    filter: JobFilter,
    selected: RwSignal<Vec<i64>>,
) -> impl IntoView {
    let notice = page.notice.clone().map(|text| view! {
        <p data-testid="source-notice" role="note" class="mt-4 rounded-lg border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900 dark:border-amber-800 dark:bg-amber-950 dark:text-amber-200">{text}</p>
    });
    if page.rows.is_empty() {
        let text = if filter.group.is_some() && !filter.is_narrowed_beyond_group() {
            "No dead jobs left in this group: they were retried, discarded or deleted."
        } else if filter.is_narrowed() {
            "No jobs match this filter. Clear it, or check the spelling of the queue or kind."
        } else if filter.is_graphile() && filter.state == Some(State::Dead) {
            "No permanently failed graphile-worker jobs: none has used up its attempts."
        } else if filter.is_graphile() {
            "No graphile-worker jobs here: graphile-worker deletes jobs when they succeed."
        } else if filter.state == Some(State::Dead) {
            "The dead-letter table is empty: no job has run out of attempts. Jobs land here after their last retry fails."
        } else {
            "No live jobs. Every job enqueued so far has completed or died."
        };
        return view! {
            {notice}
            <p data-testid="empty" class="mt-6 rounded-xl border border-dashed border-slate-300 p-10 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">{text}</p>
        }
        .into_any();
    }
    let user = use_user();
    let ids: Vec<i64> = page.rows.iter().map(|row| row.id).collect();
    let all_ticked = {
        let ids = ids.clone();
        move || !ids.is_empty() && ids.iter().all(|id| selected.read().contains(id))
    };
    let toggle_all = move |_| {
        let everything = ids.clone();
        selected.update(|sel| {
            if everything.iter().all(|id| sel.contains(id)) { sel.clear() } else { *sel = everything }
        });
    };
    let can_act = move || user.get().and_then(Result::ok).is_some_and(|u| u.can_act());
    let next = page.next.clone().map(|cursor| list_href(base, &filter, Some(&cursor)));
    let first = list_href(base, &filter, None);
    let dead = filter.state == Some(State::Dead);
    view! {
        {notice}
        <div class="mt-4 overflow-x-auto rounded-xl border border-slate-200 bg-white shadow-sm dark:border-slate-800 dark:bg-slate-900">
            // On a phone (below md) the table is a list of cards, one per job: a table scrolled
            // sideways would hide the error, the column that matters, off screen. The head is
            // then just the select-all box.
            <table class="w-full text-left text-sm max-md:block" data-testid="job-table">
                <thead class="border-b border-slate-200 text-xs text-slate-500 uppercase max-md:block dark:border-slate-800 dark:text-slate-400">
                    <tr class="max-md:block">
                        <th scope="col" class="w-8 px-3 py-2 max-md:block max-md:w-auto max-md:py-0">
                            <Show when=can_act>
                                <label data-testid="select-all" class="inline-flex items-center gap-3 max-md:min-h-11 max-md:text-sm max-md:font-normal max-md:normal-case">
                                    <input type="checkbox" class="max-md:size-5" aria-label="Select every job on this page" prop:checked=all_ticked.clone() on:change=toggle_all.clone() />
                                    <span class="md:hidden" aria-hidden="true">"Select all on this page"</span>
                                </label>
                            </Show>
                        </th>
                        <th scope="col" class="px-3 py-2 font-semibold max-md:hidden">"Job"</th>
                        <th scope="col" class="px-3 py-2 font-semibold max-md:hidden">"State"</th>
                        <th scope="col" class="px-3 py-2 font-semibold max-md:hidden">"Attempts"</th>
                        <th scope="col" class="px-3 py-2 font-semibold max-md:hidden">"Age"</th>
                        <th scope="col" class="px-3 py-2 font-semibold max-md:hidden">{if dead { "Died" } else { "Runs" }}</th>
                        <th scope="col" class="px-3 py-2 font-semibold max-md:hidden">"Last error · payload"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100 max-md:block dark:divide-slate-800">
                    {page.rows.into_iter().map(|row| view! { <JobRowView row dead selected can_act /> }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav aria-label="Pages" class="mt-3 flex gap-4 text-sm">
            <a href=mount::href(&first) class="font-medium text-indigo-600 hover:underline max-md:py-2.5 dark:text-indigo-400">"First page"</a>
            {next.map(|href| view! { <a href=mount::href(&href) rel="next" class="font-medium text-indigo-600 hover:underline max-md:py-2.5 dark:text-indigo-400">"Next page →"</a> })}
        </nav>
    }
    .into_any()
}

/// A job as a table row; below md a card: the box, the job and its state, then its error and
/// payload, then attempts and times (the columns a phone has no room for). The whole card opens
/// the job.
#[component]
fn JobRowView(
    row: JobRow,
    dead: bool,
    selected: RwSignal<Vec<i64>>,
    can_act: impl Fn() -> bool + Send + Sync + Clone + 'static,
) -> impl IntoView {
    let id = row.id;
    let ticked = move || selected.read().contains(&id);
    let toggle = move |_| {
        selected.update(|sel| {
            if let Some(at) = sel.iter().position(|x| *x == id) {
                sel.remove(at);
            } else {
                sel.push(id);
            }
        })
    };
    let attempts = format!("{}/{}", row.attempts, row.max_attempts);
    view! {
        <tr data-testid="job-row" data-job-id=id.to_string() class="align-top hover:bg-slate-50 max-md:relative max-md:grid max-md:grid-cols-[auto_minmax(0,1fr)_auto] max-md:gap-x-2 max-md:gap-y-1 max-md:px-2 max-md:py-2 dark:hover:bg-slate-800/50">
            <td class="px-3 py-2 max-md:row-span-2 max-md:p-0">
                <Show when=can_act.clone()>
                    // Above the card's link, and a thumb's size on a phone.
                    <label data-testid="select-job" class="inline-flex items-center justify-center max-md:relative max-md:z-10 max-md:size-11">
                        <input type="checkbox" class="max-md:size-5" aria-label=format!("Select job {id}") prop:checked=ticked on:change=toggle />
                    </label>
                </Show>
            </td>
            <td class="px-3 py-2 max-md:col-start-2 max-md:p-0 max-md:pt-1">
                <a href=mount::href(&row.href) data-job-link="" class="font-medium text-indigo-600 hover:underline focus:outline-2 focus:outline-indigo-500 max-md:after:absolute max-md:after:inset-0 dark:text-indigo-400">
                    {format!("#{id}")}
                </a>
                <div class="font-mono text-xs wrap-anywhere">{row.kind}</div>
                <div class="text-xs text-slate-500 wrap-anywhere dark:text-slate-400">{row.queue}</div>
            </td>
            <td class="px-3 py-2 max-md:p-0 max-md:pt-1"><StateBadge state=row.state /></td>
            <td class="px-3 py-2 tabular-nums max-md:hidden">{attempts.clone()}</td>
            <td class="px-3 py-2 max-md:hidden"><Time moment=row.created_at.clone() /></td>
            <td class="px-3 py-2 max-md:hidden"><Time moment=row.when.clone() /></td>
            <td class="max-w-md px-3 py-2 max-md:col-span-2 max-md:col-start-2 max-md:max-w-none max-md:p-0">
                {row.error_line.map(|line| { let title = line.clone(); view! { <div data-testid="error-line" class="truncate text-red-700 max-md:line-clamp-3 max-md:whitespace-normal max-md:wrap-anywhere dark:text-red-400" title=title>{line}</div> } })}
                <code data-testid="payload-preview" class="block truncate text-xs text-slate-500 dark:text-slate-400">{row.payload_preview}</code>
                <div class="mt-1 flex flex-wrap gap-x-3 text-xs text-slate-500 md:hidden dark:text-slate-400">
                    <span class="tabular-nums">{attempts}" attempts"</span>
                    <span>"enqueued " <Time moment=row.created_at /></span>
                    <span>{if dead { "died " } else { "runs " }} <Time moment=row.when /></span>
                </div>
            </td>
        </tr>
    }
    // Erased: keeps the list's type shallow (see the recursion limit in lib.rs).
    .into_any()
}
