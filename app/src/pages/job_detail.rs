//! `/jobs/:id`: one job, live or dead: payload, every failed attempt, and what can be done.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{act_on_jobs, job_detail_for};
use crate::app::use_user;
use crate::components::{ErrorNotice, Loading, StateBadge, Time, use_live};
use crate::model::{ActionReport, AttemptRow, JobAction, JobDetail, State};

/// An action on this job and what it did. Owned by the page, not by the job's view: the view is
/// rebuilt each time the job is re-read (live updates, or right after the action), and the
/// report must outlive that.
type JobActionRun = Action<(JobAction, State, i64), (JobAction, Result<ActionReport, ServerFnError>)>;

#[component]
pub fn JobDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|id| id.parse::<i64>().ok()));
    let live = use_live();
    let job = Resource::new(
        move || (id.get(), live.tick.get()),
        |(id, _)| async move {
            match id {
                Some(id) => job_detail_for(id).await,
                None => Ok(None),
            }
        },
    );

    let run: JobActionRun = Action::new(|(action, state, id): &(JobAction, State, i64)| {
        let (action, state, id) = (*action, *state, *id);
        async move { (action, act_on_jobs(action, state, vec![id]).await) }
    });
    Effect::new(move |_| {
        if run.value().with(Option::is_some) {
            live.refresh();
        }
    });
    let report = move || {
        run.value().get().map(|(action, result)| match result {
            Ok(report) => view! { <p role="status" data-testid="action-report" class="mt-2 text-sm font-medium text-emerald-700 dark:text-emerald-400">{report.summary(action)}</p> }.into_any(),
            Err(error) => view! { <p role="alert" class="mt-2 text-sm font-medium text-red-700 dark:text-red-400">{error.to_string()}</p> }.into_any(),
        })
    };

    view! {
        <Title text=move || id.get().map(|id| format!("Job #{id}")).unwrap_or_else(|| "Job".into()) />
        <a href="/jobs" class="text-sm font-medium text-indigo-600 hover:underline dark:text-indigo-400">"← Jobs"</a>
        {report}
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match job.await {
                    Ok(Some(job)) => view! { <JobView job run /> }.into_any(),
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
fn JobView(job: JobDetail, run: JobActionRun) -> impl IntoView {
    let row = job.row.clone();
    let term = "text-slate-500 dark:text-slate-400";
    view! {
        <div class="mt-2 flex flex-wrap items-center gap-3">
            <h1 class="text-2xl font-semibold tracking-tight">{format!("Job #{}", row.id)}</h1>
            <StateBadge state=row.state />
            {job.discarded.then(|| view! { <span class="text-xs text-slate-500">"(discarded)"</span> })}
        </div>
        <p class="mt-1 font-mono text-sm">{row.kind.clone()}</p>
        <JobActions job=job.clone() run />
        <div class="mt-6 grid gap-6 lg:grid-cols-[1fr_2fr]">
            <dl class="grid h-fit grid-cols-[auto_1fr] gap-x-4 gap-y-2 rounded-xl border border-slate-200 bg-white p-4 text-sm shadow-sm dark:border-slate-800 dark:bg-slate-900">
                <dt class=term>"Queue"</dt><dd>{row.queue.clone()}</dd>
                <dt class=term>"Attempts"</dt><dd data-testid="attempts" class="tabular-nums">{format!("{} of {}", row.attempts, row.max_attempts)}</dd>
                <dt class=term>"Priority"</dt><dd class="tabular-nums">{job.priority}</dd>
                <dt class=term>"Enqueued"</dt><dd><Time moment=row.created_at.clone() /></dd>
                <dt class=term>{if job.dead_reason.is_some() { "Died" } else { "Runs" }}</dt><dd><Time moment=row.when.clone() /></dd>
                {job.dead_reason.clone().map(|reason| view! { <dt class=term>"Why"</dt><dd>{reason}</dd> })}
                {job.unique_key.clone().map(|key| view! { <dt class=term>"Unique key"</dt><dd class="font-mono text-xs break-all">{key}</dd> })}
                {job.locked_by.clone().map(|worker| view! { <dt class=term>"Worker"</dt><dd class="font-mono text-xs break-all">{worker}</dd> })}
            </dl>
            <section aria-labelledby="payload-title">
                <h2 id="payload-title" class="text-sm font-semibold">"Payload"</h2>
                <pre data-testid="payload" class="mt-2 max-h-96 overflow-auto rounded-xl border border-slate-200 bg-slate-900 p-4 text-xs text-slate-100 dark:border-slate-800">{job.payload.clone()}</pre>
            </section>
        </div>
        <Timeline attempts=job.attempts />
    }
}

/// Every failed attempt, newest first: the first line as the summary, the rest as the trace.
#[component]
fn Timeline(attempts: Vec<AttemptRow>) -> impl IntoView {
    view! {
        <section aria-labelledby="attempts-title" class="mt-8">
            <h2 id="attempts-title" class="text-sm font-semibold">{format!("Failed attempts ({})", attempts.len())}</h2>
            {if attempts.is_empty() {
                view! { <p class="mt-2 text-sm text-slate-500 dark:text-slate-400">"No attempt has failed."</p> }.into_any()
            } else {
                view! {
                    <ol class="mt-3 space-y-3 border-l-2 border-slate-200 pl-4 dark:border-slate-800">
                        {attempts.into_iter().rev().map(|attempt| {
                            let (summary, trace) = attempt.message.split_once('\n').map_or((attempt.message.clone(), None), |(first, rest)| (first.to_owned(), Some(rest.to_owned())));
                            view! {
                                <li data-testid="attempt" class="rounded-lg border border-slate-200 bg-white p-3 text-sm shadow-sm dark:border-slate-800 dark:bg-slate-900">
                                    <div class="flex flex-wrap gap-x-3 text-xs text-slate-500 dark:text-slate-400">
                                        <span class="font-semibold">{format!("Attempt {}", attempt.attempt)}</span>
                                        <Time moment=attempt.at />
                                        <span class="font-mono">{attempt.worker}</span>
                                    </div>
                                    <p data-testid="attempt-error" class="mt-1 break-words text-red-700 dark:text-red-400">{summary}</p>
                                    {trace.map(|trace| view! { <pre class="mt-2 overflow-auto text-xs text-slate-600 dark:text-slate-400">{trace}</pre> })}
                                </li>
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
                                on:click=move |_| if action.is_destructive() { confirming.set(Some(action)) } else { run.dispatch((action, state, id)); }
                                class=if action.is_destructive() {
                                    "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium shadow-sm hover:bg-slate-50 disabled:opacity-50 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800"
                                } else {
                                    "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 disabled:opacity-50"
                                }
                            >
                                {action.label()}
                            </button>
                        }).collect_view()}
                        {move || confirming.get().map(|action| view! {
                            <span role="alertdialog" aria-label="Confirm action" class="inline-flex items-center gap-2 rounded-md bg-amber-50 px-3 py-1 text-sm dark:bg-amber-950">
                                {format!("{} this job? This cannot be undone.", action.label())}
                                <button type="button" class="font-semibold text-red-700 dark:text-red-400" on:click=move |_| { confirming.set(None); run.dispatch((action, state, id)); }>
                                    {format!("Yes, {}", action.label().to_lowercase())}
                                </button>
                                <button type="button" on:click=move |_| confirming.set(None)>"No"</button>
                            </span>
                        })}
                    </div>
                })
            })}
        </Transition>
    }
}
