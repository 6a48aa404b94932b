//! Small pieces every page uses: times, state badges, errors, and the live-update clock.

use leptos::prelude::*;

use crate::model::{GroupState, Moment, State, StateLabel as _};

/// How often the console re-reads the queue while live updates are on.
#[cfg(feature = "hydrate")]
const LIVE_INTERVAL_MS: u64 = 2000;

/// The console's live-update switch and clock: pages read `tick` in their resources, so they
/// re-fetch each time it advances; it only advances in the browser, while `live` is on.
#[derive(Clone, Copy, Debug)]
pub struct Live {
    /// Whether the console follows the queue.
    pub live: RwSignal<bool>,
    /// Advances every 2 s while live (in the browser), and after every action.
    pub tick: RwSignal<u64>,
}

impl Live {
    /// Creates the clock and, in the browser, starts it.
    pub fn start() -> Live {
        let live = Live { live: RwSignal::new(true), tick: RwSignal::new(0) };
        #[cfg(feature = "hydrate")]
        {
            // Runs in the browser only: Effects do not run during server rendering.
            Effect::new(move |_| {
                let handle = set_interval_with_handle(
                    move || {
                        if live.live.get_untracked() {
                            live.tick.update(|n| *n += 1);
                        }
                    },
                    std::time::Duration::from_millis(LIVE_INTERVAL_MS),
                );
                on_cleanup(move || {
                    if let Ok(handle) = handle {
                        handle.clear();
                    }
                });
            });
        }
        live
    }

    /// Makes every page re-read now (after an action).
    pub fn refresh(&self) {
        self.tick.update(|n| *n += 1);
    }
}

/// The console's clock, provided by the app.
pub fn use_live() -> Live {
    expect_context::<Live>()
}

/// A time as "3 min ago", with the exact time on hover.
#[component]
pub fn Time(moment: Moment) -> impl IntoView {
    view! {
        <time title=moment.exact.clone() datetime=moment.exact class="whitespace-nowrap tabular-nums">
            {moment.relative}
        </time>
    }
}

/// A coloured label for a job state.
#[component]
pub fn StateBadge(state: State) -> impl IntoView {
    let colours = match state {
        State::Scheduled => "bg-sky-100 text-sky-800 dark:bg-sky-950 dark:text-sky-300",
        State::Queued => "bg-slate-100 text-slate-700 dark:bg-slate-800 dark:text-slate-300",
        State::Running => "bg-indigo-100 text-indigo-800 dark:bg-indigo-950 dark:text-indigo-300",
        State::Retrying => "bg-amber-100 text-amber-800 dark:bg-amber-950 dark:text-amber-300",
        State::Dead => "bg-red-100 text-red-800 dark:bg-red-950 dark:text-red-300",
    };
    view! {
        <span data-testid="state" class=format!("inline-flex rounded-full px-2 py-0.5 text-xs font-medium {colours}")>
            {state.label()}
        </span>
    }
}

/// A coloured label for an error group's status.
#[component]
pub fn GroupBadge(state: GroupState) -> impl IntoView {
    let colours = match state {
        GroupState::New => "bg-red-100 text-red-800 dark:bg-red-950 dark:text-red-300",
        GroupState::Ongoing => "bg-amber-100 text-amber-800 dark:bg-amber-950 dark:text-amber-300",
        GroupState::Resolved => "bg-emerald-100 text-emerald-800 dark:bg-emerald-950 dark:text-emerald-300",
        GroupState::Ignored => "bg-slate-100 text-slate-600 dark:bg-slate-800 dark:text-slate-400",
    };
    view! {
        <span data-testid="group-state" class=format!("inline-flex rounded-full px-2 py-0.5 text-xs font-medium {colours}")>
            {state.label()}
        </span>
    }
}

/// Arrivals per hour as small bars (an SVG: no script, no inline style, so the CSP holds),
/// with the numbers in the label for screen readers.
#[component]
pub fn Sparkline(values: Vec<i64>, #[prop(default = "h-6 w-28")] class: &'static str) -> impl IntoView {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let total: i64 = values.iter().sum();
    let label = format!(
        "{} in the last {} hours, at most {} in one hour",
        thousands(total),
        values.len(),
        thousands(max)
    );
    let width = values.len().max(1) * 4;
    let bars = values
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0)
        .map(|(i, v)| {
            // At least a sliver for any arrival, so one death in a quiet day still shows.
            let height = ((*v as f64 / max as f64) * 20.0).max(2.0);
            view! { <rect x=(i * 4).to_string() y=format!("{:.1}", 20.0 - height) width="3" height=format!("{height:.1}") /> }
        })
        .collect_view();
    let aria_label = label.clone();
    view! {
        <svg data-testid="sparkline" role="img" aria-label=aria_label viewBox=format!("0 0 {width} 20")
            preserveAspectRatio="none" class=format!("{class} fill-red-500 dark:fill-red-400")>
            <title>{label}</title>
            <rect x="0" y="19.5" width=width.to_string() height="0.5" class="fill-slate-300 dark:fill-slate-700" />
            {bars}
        </svg>
    }
}

/// A server error, shown where the data would have been.
#[component]
pub fn ErrorNotice(error: ServerFnError) -> impl IntoView {
    let message = match error {
        ServerFnError::ServerError(message) => message,
        other => other.to_string(),
    };
    view! {
        <p role="alert" class="mt-4 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-800 dark:border-red-900 dark:bg-red-950 dark:text-red-300">
            {message}
        </p>
    }
}

/// "Loading…", while the first answer is on its way.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="mt-4 text-sm text-slate-500 dark:text-slate-400">"Loading…"</p> }
}

/// The live-updates switch, for the header.
#[component]
pub fn LiveToggle() -> impl IntoView {
    let live = use_live().live;
    view! {
        <button
            type="button"
            aria-pressed=move || live.get().to_string()
            // The name in full, however the label is shortened on screen.
            aria-label=move || if live.get() { "Live updates: on" } else { "Live updates: off" }
            on:click=move |_| live.update(|on| *on = !*on)
            class="inline-flex items-center gap-2 whitespace-nowrap rounded-full border border-slate-300 bg-white px-3 py-1 text-xs font-medium shadow-sm hover:bg-slate-50 max-sm:min-h-10 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800"
        >
            <span
                aria-hidden="true"
                class="size-2 rounded-full"
                class=("bg-emerald-500", move || live.get())
                class=("bg-slate-400", move || !live.get())
            ></span>
            // "Live: on" on a phone; "Live updates: on" elsewhere and for screen readers.
            <span>
                "Live"
                <span class="max-sm:sr-only">" updates"</span>
                {move || if live.get() { ": on" } else { ": off" }}
            </span>
        </button>
    }
}

/// A number with thousands separators: 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Percent-encodes a URL query value (everything but unreserved characters).
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
        assert_eq!(super::thousands(-12_345), "-12,345");
    }
}
