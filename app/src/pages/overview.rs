use leptos::prelude::*;
use leptos_meta::Title;

use super::PageHeading;
use crate::api::{alerting_status, overview_data, send_test_alert};
use crate::app::use_user;
use crate::components::{ErrorNotice, Loading, Time, thousands, urlencode, use_live};
use crate::model::{
    GRAPHILE, GRAPHILE_COUNT_LIMIT, GraphileOverview, MinutePoint, Overview as OverviewModel, QueueRow,
    State, StateLabel as _, WorkerRow,
};
use crate::mount;

/// The landing page: jobs per state and queue, the last hour's throughput, worker processes.
#[component]
pub fn Overview() -> impl IntoView {
    let live = use_live();
    let data = Resource::new(move || live.tick.get(), |_| overview_data());

    view! {
        <Title text="Overview" />
        <PageHeading title="Overview" subtitle="Queue health at a glance." />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(overview) => view! { <OverviewBody overview /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
        <AlertsPanel />
    }
}

/// Where graphile-worker's jobs of a state are listed.
fn graphile_href(state: State) -> String {
    match state {
        State::Dead => format!("/dead-letters?source={GRAPHILE}"),
        other => format!("/jobs?source={GRAPHILE}&state={}", other.as_str()),
    }
}

/// graphile-worker's jobs per state, beside Backstop's, each linking to its list.
#[component]
fn GraphileCard(graphile: GraphileOverview) -> impl IntoView {
    view! {
        <section aria-labelledby="graphile-title" data-testid="graphile" class="mt-6 rounded-xl border border-slate-200 bg-white p-5 shadow-sm dark:border-slate-800 dark:bg-slate-900">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 id="graphile-title" class="text-sm font-semibold">"graphile-worker"</h2>
                <span class="text-xs text-slate-500 dark:text-slate-400">{graphile.version}</span>
            </div>
            {graphile.notice.map(|text| view! { <p role="note" class="mt-2 text-sm text-amber-800 dark:text-amber-300">{text}</p> })}
            <div class="mt-3 grid grid-cols-2 gap-3 sm:grid-cols-5">
                {State::ALL.into_iter().zip(graphile.counts).map(|(state, count)| {
                    let shown = if count >= GRAPHILE_COUNT_LIMIT { format!("{}+", thousands(count)) } else { thousands(count) };
                    view! {
                        <a href=mount::href(&graphile_href(state)) data-testid=format!("graphile-{}", state.as_str())
                            class="rounded-lg border border-slate-200 p-3 hover:border-indigo-300 dark:border-slate-800 dark:hover:border-indigo-700">
                            <div class="text-xs font-semibold tracking-wide text-slate-500 uppercase dark:text-slate-400">
                                {if state == State::Dead { "Failed for good" } else { state.label() }}
                            </div>
                            <div class="mt-1 text-xl font-semibold tabular-nums">{shown}</div>
                        </a>
                    }
                }).collect_view()}
            </div>
        </section>
    }
}

/// Slack alerting: the webhooks (broken ones called out), alert jobs waiting or dead, and a
/// test button for operators.
#[component]
fn AlertsPanel() -> impl IntoView {
    let live = use_live();
    let user = use_user();
    let status = Resource::new(move || live.tick.get(), |_| alerting_status());
    let report = RwSignal::new(None::<Result<String, String>>);
    let test = Action::new(move |_: &()| async move { send_test_alert().await });
    Effect::new(move |_| {
        if let Some(result) = test.value().get() {
            report.set(Some(match result {
                Ok(n) => Ok(format!("Test alert queued for {n} webhook{}.", if n == 1 { "" } else { "s" })),
                Err(error) => Err(error.to_string()),
            }));
            live.refresh();
        }
    });
    view! {
        <section aria-labelledby="alerts-title" data-testid="alerts" class="mt-8 rounded-xl border border-slate-200 bg-white p-5 shadow-sm dark:border-slate-800 dark:bg-slate-900">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 id="alerts-title" class="text-sm font-semibold">"Slack alerts"</h2>
                <div class="flex items-center gap-3 text-sm">
                    <a href=mount::href("/triage") class="font-medium text-indigo-600 hover:underline dark:text-indigo-400">"Triage →"</a>
                    // Waits for the user like every role-dependent control, so the server and
                    // the browser render the same thing (a mismatch breaks hydration).
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            user.await.is_ok_and(|u| u.can_act()).then(|| view! {
                                <button type="button" class="rounded-md border border-slate-300 px-3 py-1 text-sm font-medium hover:bg-slate-50 disabled:opacity-40 dark:border-slate-700 dark:hover:bg-slate-800"
                                    disabled=move || test.pending().get() on:click=move |_| { test.dispatch(()); }>
                                    "Send test alert"
                                </button>
                            })
                        })}
                    </Transition>
                </div>
            </div>
            {move || report.get().map(|report| match report {
                Ok(text) => view! { <p role="status" class="mt-2 text-sm text-emerald-700 dark:text-emerald-400">{text}</p> }.into_any(),
                Err(text) => view! { <p role="alert" class="mt-2 text-sm text-red-700 dark:text-red-400">{text}</p> }.into_any(),
            })}
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) if status.webhooks.is_empty() => view! {
                            <p class="mt-2 text-sm text-slate-500 dark:text-slate-400">
                                "Off: no webhook configured. Start the console with "
                                <code>"--slack-webhook https://hooks.slack.com/services/…"</code>
                                " to be told when a job dies of a new error."
                            </p>
                        }.into_any(),
                        Ok(status) => view! {
                            <ul class="mt-3 divide-y divide-slate-100 text-sm dark:divide-slate-800">
                                {status.webhooks.into_iter().map(|hook| view! {
                                    <li data-testid="webhook" class="flex flex-wrap items-center gap-x-4 gap-y-1 py-2">
                                        <span class="font-mono">{hook.label}</span>
                                        <span class="text-slate-500 dark:text-slate-400">{hook.routes}</span>
                                        {match hook.broken {
                                            None if !hook.active => view! {
                                                <span class="rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600 dark:bg-slate-800 dark:text-slate-400">
                                                    "Inactive: no running console is configured with it"
                                                </span>
                                            }.into_any(),
                                            Some(reason) => view! {
                                                <span data-testid="webhook-broken" class="rounded-full bg-red-100 px-2 py-0.5 text-xs font-medium text-red-800 dark:bg-red-950 dark:text-red-300">
                                                    {format!("Broken: {reason}. Checked again every five minutes; alerts resume once it works.")}
                                                </span>
                                            }.into_any(),
                                            None => view! { <span class="rounded-full bg-emerald-100 px-2 py-0.5 text-xs font-medium text-emerald-800 dark:bg-emerald-950 dark:text-emerald-300">"Working"</span> }.into_any(),
                                        }}
                                        <span class="text-slate-500 dark:text-slate-400">
                                            {format!("{} sent", thousands(hook.sent))}
                                            {hook.last_sent.map(|at| view! { ", last " <Time moment=at /> })}
                                        </span>
                                    </li>
                                }).collect_view()}
                            </ul>
                            <p class="mt-2 text-sm text-slate-500 dark:text-slate-400">
                                {format!("{} alert job{} waiting. ", thousands(status.pending), if status.pending == 1 { "" } else { "s" })}
                                {(status.dead > 0).then(|| view! {
                                    <a data-testid="dead-alerts" href=mount::href("/dead-letters?kind=backstop.slack_alert") class="font-medium text-red-700 hover:underline dark:text-red-400">
                                        {format!("{} alert job{} died (Slack unreachable or the webhook broken): they are in Dead letters.", thousands(status.dead), if status.dead == 1 { "" } else { "s" })}
                                    </a>
                                })}
                            </p>
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Where the jobs of a state are listed.
fn state_href(state: State) -> String {
    match state {
        State::Dead => "/dead-letters".to_owned(),
        other => format!("/jobs?state={}", other.as_str()),
    }
}

#[component]
fn OverviewBody(overview: OverviewModel) -> impl IntoView {
    let totals = overview.totals();
    let approx = if overview.exact { "" } else { "≈ " };
    view! {
        {overview.long_transaction.map(|began| view! {
            <p role="status" data-testid="long-transaction" class="mt-6 rounded-xl border border-amber-300 bg-amber-50 p-4 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-200">
                "A transaction in this database began " <Time moment=began /> " and is still open. "
                "Until it ends, PostgreSQL keeps the index entries of every job claimed since, and claims slow down "
                "(a backlog drained at less than half its rate behind one). Find it in "
                <code>"pg_stat_activity"</code> " (oldest " <code>"xact_start"</code> ")."
            </p>
        })}
        <div class="mt-6 grid grid-cols-2 gap-3 sm:grid-cols-5">
            {State::ALL
                .into_iter()
                .zip(totals)
                .map(|(state, total)| {
                    view! {
                        <a
                            href=mount::href(&state_href(state))
                            data-testid=format!("total-{}", state.as_str())
                            class="rounded-xl border border-slate-200 bg-white p-4 shadow-sm hover:border-indigo-300 dark:border-slate-800 dark:bg-slate-900 dark:hover:border-indigo-700"
                        >
                            <div class="text-xs font-semibold tracking-wide text-slate-500 uppercase dark:text-slate-400">
                                {state.label()}
                            </div>
                            <div
                                class="mt-1 text-2xl font-semibold tabular-nums"
                                class=("text-red-600", state == State::Dead && total > 0)
                                class=("dark:text-red-400", state == State::Dead && total > 0)
                            >
                                {format!("{approx}{}", thousands(total))}
                            </div>
                        </a>
                    }
                })
                .collect_view()}
        </div>
        {(!overview.exact).then(|| view! {
            <p class="mt-2 text-xs text-slate-500 dark:text-slate-400">
                "≈ The tables are large: counts are estimated from a sample, not counted row by row."
            </p>
        })}
        {overview.graphile.map(|graphile| view! { <GraphileCard graphile /> })}
        <ThroughputChart points=overview.last_hour />
        <QueueTable queues=overview.queues />
        <WorkerList workers=overview.workers />
    }
}

/// Completed and failed jobs per minute over the last hour, from the queue's counters.
#[component]
fn ThroughputChart(points: Vec<MinutePoint>) -> impl IntoView {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 120.0;
    let completed: i64 = points.iter().map(|p| p.completed).sum();
    let failed: i64 = points.iter().map(|p| p.failed).sum();
    let dead: i64 = points.iter().map(|p| p.dead).sum();
    let peak = points.iter().map(|p| p.completed + p.failed).max().unwrap_or(0).max(1) as f64;
    let bar = WIDTH / points.len().max(1) as f64;
    let bars = points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            let x = i as f64 * bar;
            let ok = point.completed as f64 / peak * HEIGHT;
            let bad = point.failed as f64 / peak * HEIGHT;
            let (x, w) = (format!("{x:.2}"), format!("{:.2}", (bar - 1.0).max(0.5)));
            view! {
                <rect x=x.clone() y=format!("{:.2}", HEIGHT - ok) width=w.clone() height=format!("{ok:.2}") class="fill-indigo-500" />
                <rect x=x y=format!("{:.2}", HEIGHT - ok - bad) width=w height=format!("{bad:.2}") class="fill-red-500" />
            }
        })
        .collect_view();
    let first = points.first().map(|p| p.minute.clone()).unwrap_or_default();
    let last = points.last().map(|p| p.minute.clone()).unwrap_or_default();
    view! {
        <section aria-labelledby="throughput-title" class="mt-8 rounded-xl border border-slate-200 bg-white p-5 shadow-sm dark:border-slate-800 dark:bg-slate-900">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 id="throughput-title" class="text-sm font-semibold">"Last hour"</h2>
                <p data-testid="last-hour" class="text-sm text-slate-500 dark:text-slate-400">
                    <span class="text-indigo-600 dark:text-indigo-400">{format!("{} completed", thousands(completed))}</span>
                    " · "
                    <span class="text-red-600 dark:text-red-400">{format!("{} failed attempts", thousands(failed))}</span>
                    " · "
                    {format!("{} dead", thousands(dead))}
                </p>
            </div>
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=format!("Jobs per minute over the last hour: {completed} completed, {failed} failed attempts")
                class="mt-3 h-28 w-full"
            >
                {bars}
            </svg>
            <div class="mt-1 flex justify-between text-xs text-slate-500 tabular-nums dark:text-slate-400">
                <span>{first}</span>
                <span>{last}</span>
            </div>
        </section>
    }
}

/// Jobs per queue and state.
#[component]
pub fn QueueTable(
    queues: Vec<QueueRow>,
    #[prop(default = None)] actions: Option<Callback<(String, bool)>>,
) -> impl IntoView {
    if queues.is_empty() {
        return view! {
            <p class="mt-8 rounded-xl border border-dashed border-slate-300 p-8 text-center text-sm text-slate-500 dark:border-slate-700 dark:text-slate-400">
                "No queues yet. Queues appear here as soon as a job is enqueued."
            </p>
        }
        .into_any();
    }
    view! {
        <div class="mt-8 overflow-x-auto rounded-xl border border-slate-200 bg-white shadow-sm dark:border-slate-800 dark:bg-slate-900">
            <table class="w-full text-left text-sm">
                <caption class="sr-only">"Jobs per queue and state"</caption>
                <thead class="border-b border-slate-200 text-xs text-slate-500 uppercase dark:border-slate-800 dark:text-slate-400">
                    <tr>
                        <th scope="col" class="px-4 py-2 font-semibold">"Queue"</th>
                        {State::ALL.into_iter().map(|state| view! {
                            <th scope="col" class="px-4 py-2 text-right font-semibold">{state.label()}</th>
                        }).collect_view()}
                        <th scope="col" class="px-4 py-2 font-semibold">"Oldest waiting"</th>
                        <th scope="col" class="px-4 py-2 font-semibold">"Workers"</th>
                        <th scope="col" class="px-4 py-2 font-semibold">"Status"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100 dark:divide-slate-800">
                    {queues.into_iter().map(|queue| {
                        let name = queue.queue.clone();
                        let paused = queue.paused;
                        view! {
                            <tr data-testid=format!("queue-{}", queue.queue)>
                                <th scope="row" class="px-4 py-2 font-medium">
                                    <a class="hover:underline" href=mount::href(&format!("/jobs?queue={}", urlencode(&queue.queue)))>{queue.queue.clone()}</a>
                                </th>
                                {State::ALL.into_iter().zip(queue.counts).map(|(state, count)| view! {
                                    <td data-testid=format!("count-{}", state.as_str()) class="px-4 py-2 text-right tabular-nums">
                                        {thousands(count)}
                                    </td>
                                }).collect_view()}
                                <td class="px-4 py-2">
                                    {queue.oldest_queued.map(|moment| view! { <Time moment /> })}
                                </td>
                                <td data-testid="workers" class="px-4 py-2 whitespace-nowrap">
                                    {if queue.workers == 0 {
                                        view! { <span class="text-amber-700 dark:text-amber-400">"none"</span> }.into_any()
                                    } else {
                                        view! { <span title="worker processes · jobs they run at once">{format!("{} · {} at once", queue.workers, queue.concurrency)}</span> }.into_any()
                                    }}
                                </td>
                                <td class="px-4 py-2">
                                    <span class="inline-flex items-center gap-3">
                                        {if paused {
                                            view! { <span class="rounded-full bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-800 dark:bg-amber-950 dark:text-amber-300">"Paused"</span> }.into_any()
                                        } else {
                                            view! { <span class="text-xs text-slate-500 dark:text-slate-400">"Running"</span> }.into_any()
                                        }}
                                        // Announced by the queue-health check (and sent to Slack), until it sees the problem end.
                                        {queue.problems.into_iter().map(|problem| view! {
                                            <span
                                                data-testid="queue-problem"
                                                title="Alerted by the queue-health check; cleared when it sees the queue healthy again"
                                                class="rounded-full bg-red-100 px-2 py-0.5 text-xs font-medium whitespace-nowrap text-red-800 dark:bg-red-950 dark:text-red-300"
                                            >
                                                {problem}
                                            </span>
                                        }).collect_view()}
                                        {actions.map(|act| view! {
                                            <button
                                                type="button"
                                                on:click=move |_| act.run((name.clone(), !paused))
                                                class="rounded-md border border-slate-300 px-2 py-0.5 text-xs font-medium hover:bg-slate-50 dark:border-slate-700 dark:hover:bg-slate-800"
                                            >
                                                {if paused { "Resume" } else { "Pause" }}
                                            </button>
                                        })}
                                    </span>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// Worker processes and their heartbeats.
#[component]
fn WorkerList(workers: Vec<WorkerRow>) -> impl IntoView {
    view! {
        <section aria-labelledby="workers-title" class="mt-8">
            <h2 id="workers-title" class="text-sm font-semibold">{format!("Worker processes ({})", workers.len())}</h2>
            {if workers.is_empty() {
                view! { <p class="mt-2 text-sm text-slate-500 dark:text-slate-400">"No worker process is running: queued jobs wait until one starts."</p> }.into_any()
            } else {
                view! {
                    <ul class="mt-2 divide-y divide-slate-100 rounded-xl border border-slate-200 bg-white text-sm shadow-sm dark:divide-slate-800 dark:border-slate-800 dark:bg-slate-900">
                        {workers.into_iter().map(|worker| view! {
                            <li class="flex flex-wrap items-center justify-between gap-2 px-4 py-2">
                                <span class="font-mono text-xs">{worker.id}</span>
                                <span class="text-slate-500 dark:text-slate-400">{worker.queues.join(", ")}</span>
                                <span class="text-xs text-slate-500 dark:text-slate-400">
                                    "started " <Time moment=worker.started /> " · seen " <Time moment=worker.last_seen />
                                </span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}
