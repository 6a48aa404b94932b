//! `/jobs/:id`: one job, live or dead: payload, every failed attempt, and what can be done.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{act_on_jobs, edit_and_retry, job_detail_for, reveal_masked};
use crate::app::use_user;
use crate::components::{ErrorNotice, Loading, StateBadge, Time, use_live};
use crate::model::{ActionReport, AttemptRow, GRAPHILE, JobAction, JobDetail, State, attempts_not_kept};

/// What an operator can do to this job.
#[derive(Clone, Debug, PartialEq)]
enum Command {
    /// Retry, discard, delete or cancel.
    Act(JobAction),
    /// Replace a dead job's payload with this JSON and retry it.
    EditAndRetry(String),
}

impl Command {
    fn summary(&self, report: ActionReport) -> String {
        match self {
            Command::Act(action) => report.summary(*action),
            Command::EditAndRetry(_) if report.changed == 1 => {
                "Saved the new payload and retried the job.".into()
            }
            Command::EditAndRetry(_) => {
                "Not retried: the job left the dead-letter table, or a live job holds its unique key.".into()
            }
        }
    }
}

/// A command on this job and what it did. Owned by the page, not by the job's view: the view is
/// rebuilt each time the job is re-read (live updates, or right after the command), and the
/// report must outlive that.
type JobActionRun = Action<(Command, State, i64), (Command, Result<ActionReport, ServerFnError>)>;

#[component]
pub fn JobDetailPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|id| id.parse::<i64>().ok()));
    // `?source=graphile_worker` for graphile-worker's jobs.
    let source = Memo::new(move |_| query.read().get("source"));
    let live = use_live();
    // While the payload is being edited the job is not re-read: a refresh would rebuild the
    // editor under the operator's cursor.
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let job = Resource::new(
        move || (id.get(), source.get(), (!editing.get()).then(|| live.tick.get())),
        |(id, source, _)| async move {
            match id {
                Some(id) => job_detail_for(id, source).await,
                None => Ok(None),
            }
        },
    );

    let run: JobActionRun = Action::new(move |(command, state, id): &(Command, State, i64)| {
        let (command, state, id, source) = (command.clone(), *state, *id, source.get_untracked());
        async move {
            let result = match &command {
                Command::Act(action) => act_on_jobs(*action, state, vec![id], source).await,
                Command::EditAndRetry(payload) => edit_and_retry(id, payload.clone()).await,
            };
            (command, result)
        }
    });
    Effect::new(move |_| {
        let finished_edit = run.value().with(|done| match done {
            Some((Command::EditAndRetry(_), result)) => Some(result.is_ok()),
            _ => None,
        });
        if finished_edit != Some(false) && run.value().with(Option::is_some) {
            // Done (or an action that is not an edit): show the job as it is now. A rejected
            // edit stays open for the operator to fix.
            editing.set(false);
            live.refresh();
        }
    });
    let report = move || {
        run.value().get().map(|(command, result)| match result {
            Ok(report) => view! { <p role="status" data-testid="action-report" class="mt-2 text-sm font-medium text-emerald-700 dark:text-emerald-400">{command.summary(report)}</p> }.into_any(),
            Err(error) => view! { <p role="alert" class="mt-2 text-sm font-medium text-red-700 dark:text-red-400">{error.to_string()}</p> }.into_any(),
        })
    };

    view! {
        <Title text=move || id.get().map(|id| format!("Job #{id}")).unwrap_or_else(|| "Job".into()) />
        <a href=crate::mount::href("/jobs") class="text-sm font-medium text-indigo-600 hover:underline dark:text-indigo-400">"← Jobs"</a>
        {report}
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match job.await {
                    Ok(Some(job)) => view! { <JobView job run editing draft /> }.into_any(),
                    Ok(None) => view! {
                        <h1 class="mt-2 text-2xl font-semibold tracking-tight">{id.get_untracked().map(|id| format!("Job #{id}")).unwrap_or_else(|| "Job".into())}</h1>
                        <p data-testid="job-gone" class="mt-4 rounded-xl border border-dashed border-slate-300 p-8 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">
                            "This job is not in the queue or the dead-letter table: it completed (finished jobs are not kept) or was deleted."
                        </p>
                    }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn JobView(
    job: JobDetail,
    run: JobActionRun,
    editing: RwSignal<bool>,
    draft: RwSignal<String>,
) -> impl IntoView {
    let row = job.row.clone();
    let term = "text-slate-500 dark:text-slate-400";
    view! {
        <div class="mt-2 flex flex-wrap items-center gap-3">
            <h1 class="text-2xl font-semibold tracking-tight">{format!("Job #{}", row.id)}</h1>
            <StateBadge state=row.state />
            {job.discarded.then(|| view! { <span class="text-xs text-slate-500">"(discarded)"</span> })}
        </div>
        <p class="mt-1 font-mono text-sm wrap-anywhere">{row.kind.clone()}</p>
        <JobActions job=job.clone() run />
        // Columns that never grow past the page (`minmax(0, …)`): a long payload line scrolls in
        // its box instead of widening the page.
        <div class="mt-6 grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,1fr)_minmax(0,2fr)]">
            <dl class="grid h-fit grid-cols-[auto_minmax(0,1fr)] gap-x-4 gap-y-2 rounded-xl border border-slate-200 bg-white p-4 text-sm shadow-sm dark:border-slate-800 dark:bg-slate-900">
                <dt class=term>"Queue"</dt><dd class="wrap-anywhere">{row.queue.clone()}</dd>
                <dt class=term>"Attempts"</dt><dd data-testid="attempts" class="tabular-nums">{format!("{} of {}", row.attempts, row.max_attempts)}</dd>
                <dt class=term>"Priority"</dt><dd class="tabular-nums">{job.priority}</dd>
                <dt class=term>"Enqueued"</dt><dd><Time moment=row.created_at.clone() /></dd>
                <dt class=term>{if job.dead_reason.is_some() { "Died" } else { "Runs" }}</dt><dd><Time moment=row.when.clone() /></dd>
                {job.dead_reason.clone().map(|reason| view! { <dt class=term>"Why"</dt><dd class="wrap-anywhere">{reason}</dd> })}
                {job.unique_key.clone().map(|key| view! { <dt class=term>"Unique key"</dt><dd class="font-mono text-xs break-all">{key}</dd> })}
                {job.locked_by.clone().map(|worker| view! { <dt class=term>"Worker"</dt><dd class="font-mono text-xs break-all">{worker}</dd> })}
            </dl>
            <div>
                <PayloadSection job=job.clone() run editing draft />
                <MaskedValues job=job.clone() />
            </div>
        </div>
        <Timeline attempts=job.attempts />
    }
}

/// Every failed attempt the history kept, newest first: the first line as the summary, the
/// rest as the trace, and where attempts were left out (see [`attempts_not_kept`]), a line
/// saying so.
#[component]
fn Timeline(attempts: Vec<AttemptRow>) -> impl IntoView {
    let gaps = attempts_not_kept(&attempts);
    view! {
        <section aria-labelledby="attempts-title" class="mt-8">
            <h2 id="attempts-title" class="text-sm font-semibold">{format!("Failed attempts ({})", attempts.len())}</h2>
            {if attempts.is_empty() {
                view! { <p class="mt-2 text-sm text-slate-500 dark:text-slate-400">"No attempt has failed."</p> }.into_any()
            } else {
                view! {
                    <ol class="mt-3 space-y-3 border-l-2 border-slate-200 pl-4 dark:border-slate-800">
                        {attempts.into_iter().enumerate().rev().map(|(i, attempt)| {
                            let not_kept = gaps.iter().find(|(at, _)| *at == i).map(|(_, gap)| *gap);
                            let (summary, trace) = attempt.message.split_once('\n').map_or((attempt.message.clone(), None), |(first, rest)| (first.to_owned(), Some(rest.to_owned())));
                            view! {
                                <li data-testid="attempt" class="rounded-lg border border-slate-200 bg-white p-3 text-sm shadow-sm dark:border-slate-800 dark:bg-slate-900">
                                    <div class="flex flex-wrap gap-x-3 text-xs text-slate-500 dark:text-slate-400">
                                        <span class="font-semibold">{format!("Attempt {}", attempt.attempt)}</span>
                                        <Time moment=attempt.at />
                                        <span class="font-mono wrap-anywhere">{attempt.worker}</span>
                                    </div>
                                    <p data-testid="attempt-error" class="mt-1 wrap-anywhere text-red-700 dark:text-red-400">{summary}</p>
                                    // Wrapped on a phone (as the group's latest error), scrolled elsewhere.
                                    {trace.map(|trace| view! { <pre data-testid="attempt-trace" class="mt-2 overflow-auto text-xs text-slate-600 max-md:whitespace-pre-wrap max-md:wrap-anywhere dark:text-slate-400">{trace}</pre> })}
                                </li>
                                {not_kept.map(|gap| view! {
                                    <li data-testid="attempts-not-kept" class="text-xs text-slate-500 dark:text-slate-400">
                                        {if gap.from == gap.to { format!("Attempt {}", gap.from) } else { format!("Attempts {}–{}", gap.from, gap.to) }}
                                        ": errors not kept (a job's history keeps its first failed attempt and its newest)"
                                    </li>
                                })}
                            }
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
        </section>
    }
}

/// The actions that fit the job's state, for operators.
#[component]
fn JobActions(job: JobDetail, run: JobActionRun) -> impl IntoView {
    let user = use_user();
    let (id, state) = (job.row.id, job.row.state);
    let confirming = RwSignal::new(None::<JobAction>);
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let can_act = user.await.is_ok_and(|u| u.can_act());
                let actions = JobAction::for_state(state);
                (can_act && !actions.is_empty()).then(|| view! {
                    <div class="mt-4 flex flex-wrap items-center gap-2" role="toolbar" aria-label="Job actions">
                        {actions.iter().map(|&action| view! {
                            <button
                                type="button"
                                disabled=move || run.pending().get()
                                on:click=move |_| if action.is_destructive() { confirming.set(Some(action)) } else { run.dispatch((Command::Act(action), state, id)); }
                                class=if action.is_destructive() {
                                    "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium shadow-sm hover:bg-slate-50 max-md:min-h-10 disabled:opacity-50 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800"
                                } else {
                                    "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 max-md:min-h-10 disabled:opacity-50"
                                }
                            >
                                {action.label()}
                            </button>
                        }).collect_view()}
                        {move || confirming.get().map(|action| view! {
                            <span role="alertdialog" aria-label="Confirm action" class="inline-flex flex-wrap items-center gap-2 rounded-md bg-amber-50 px-3 py-1 text-sm dark:bg-amber-950">
                                {format!("{} this job? This cannot be undone.", action.label())}
                                <button type="button" class="font-semibold text-red-700 max-md:min-h-10 max-md:px-2 dark:text-red-400" on:click=move |_| { confirming.set(None); run.dispatch((Command::Act(action), state, id)); }>
                                    {format!("Yes, {}", action.label().to_lowercase())}
                                </button>
                                <button type="button" class="max-md:min-h-10 max-md:px-3" on:click=move |_| confirming.set(None)>"No"</button>
                            </span>
                        })}
                    </div>
                })
            })}
        </Transition>
    }
}

/// The payload; for operators on a dead job, editable, to retry it with the fix.
#[component]
fn PayloadSection(
    job: JobDetail,
    run: JobActionRun,
    editing: RwSignal<bool>,
    draft: RwSignal<String>,
) -> impl IntoView {
    let user = use_user();
    let (id, state) = (job.row.id, job.row.state);
    // Only Backstop's own dead jobs can be edited (other sources' have no such function).
    let editable = !job.row.href.contains("?source=");
    let payload = job.payload.clone();
    let start_editing = {
        let payload = payload.clone();
        move |_| {
            draft.set(payload.clone());
            editing.set(true);
        }
    };
    view! {
        <section aria-labelledby="payload-title">
            <div class="flex items-center justify-between gap-2">
                <h2 id="payload-title" class="text-sm font-semibold">"Payload"</h2>
                <Transition fallback=|| ()>
                    {move || {
                        let start_editing = start_editing.clone();
                        Suspend::new(async move {
                        let can_edit = editable && state == State::Dead && user.await.is_ok_and(|u| u.can_act());
                        (can_edit && !editing.get()).then(|| view! {
                            <button type="button" on:click=start_editing
                                class="text-sm font-medium text-indigo-600 hover:underline max-md:min-h-10 dark:text-indigo-400">
                                "Edit and retry"
                            </button>
                        })
                    })}}
                </Transition>
            </div>
            {move || if editing.get() {
                view! {
                    <label for="payload-editor" class="sr-only">"Payload (JSON)"</label>
                    <textarea id="payload-editor" data-testid="payload-editor" rows="12" spellcheck="false"
                        prop:value=move || draft.get()
                        on:input=move |ev| draft.set(event_target_value(&ev))
                        class="mt-2 w-full rounded-xl border border-slate-300 bg-white p-3 font-mono text-xs dark:border-slate-700 dark:bg-slate-900">
                    </textarea>
                    <p class="text-xs text-slate-500 dark:text-slate-400">
                        "Masked values (\"[redacted /path]\") keep their real value, even if you move them, unless you type a new one. Delete a key to drop it."
                    </p>
                    <div class="mt-2 flex gap-2">
                        <button type="button" disabled=move || run.pending().get()
                            on:click=move |_| { run.dispatch((Command::EditAndRetry(draft.get_untracked()), state, id)); }
                            class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500 max-md:min-h-10 disabled:opacity-50">
                            "Save and retry"
                        </button>
                        <button type="button" on:click=move |_| editing.set(false)
                            class="rounded-md px-3 py-1.5 text-sm font-medium hover:bg-slate-100 max-md:min-h-10 dark:hover:bg-slate-800">
                            "Cancel"
                        </button>
                    </div>
                }.into_any()
            } else {
                view! {
                    <pre data-testid="payload" class="mt-2 max-h-96 overflow-auto rounded-xl border border-slate-200 bg-slate-900 p-4 text-xs text-slate-100 dark:border-slate-800">{payload.clone()}</pre>
                }.into_any()
            }}
        </section>
    }
}

/// The payload's masked values, each with a button for operators that reveals it (one at a
/// time, and written to the audit log).
#[component]
fn MaskedValues(job: JobDetail) -> impl IntoView {
    let user = use_user();
    let id = job.row.id;
    let source = job.row.href.contains("?source=").then(|| GRAPHILE.to_owned());
    let masked = job.masked.clone();
    view! {
        <Transition fallback=|| ()>
            {move || {
                let (masked, source) = (masked.clone(), source.clone());
                Suspend::new(async move {
                    let can_act = user.await.is_ok_and(|u| u.can_act());
                    (can_act && !masked.is_empty()).then(|| view! {
                        <details data-testid="masked-values" class="mt-3 text-sm">
                            <summary class="cursor-pointer text-slate-600 max-md:py-2.5 dark:text-slate-400">
                                {format!("Masked values ({})", masked.len())}
                            </summary>
                            <p class="mt-1 text-xs text-slate-500 dark:text-slate-400">"Revealing a value writes your name, the job and the path to the audit log."</p>
                            <ul class="mt-2 space-y-2">
                                {masked.into_iter().map(|path| view! { <MaskedValue id path source=source.clone() /> }).collect_view()}
                            </ul>
                        </details>
                    })
                })
            }}
        </Transition>
    }
}

#[component]
fn MaskedValue(id: i64, path: String, source: Option<String>) -> impl IntoView {
    let reveal = Action::new(move |(path, source): &(String, Option<String>)| {
        let (path, source) = (path.clone(), source.clone());
        async move { reveal_masked(id, path, source).await }
    });
    let request = (path.clone(), source);
    view! {
        <li data-testid="masked-value" class="rounded-lg border border-slate-200 p-2 dark:border-slate-800">
            <div class="flex items-center justify-between gap-2">
                <code class="font-mono text-xs break-all">{path}</code>
                <button type="button" disabled=move || reveal.pending().get() || reveal.value().with(Option::is_some)
                    on:click=move |_| { reveal.dispatch(request.clone()); }
                    class="text-xs font-medium text-indigo-600 hover:underline max-md:min-h-10 max-md:px-2 disabled:opacity-50 dark:text-indigo-400">
                    "Reveal"
                </button>
            </div>
            {move || reveal.value().get().map(|result| match result {
                Ok(value) => view! { <pre data-testid="revealed-value" class="mt-2 overflow-auto rounded bg-slate-900 p-2 text-xs text-slate-100">{value}</pre> }.into_any(),
                Err(error) => view! { <p role="alert" class="mt-1 text-xs text-red-700 dark:text-red-400">{error.to_string()}</p> }.into_any(),
            })}
        </li>
    }
}
