//! One module per page, plus the pieces they share.

mod audit;
mod go;
mod job_detail;
mod jobs;
mod not_found;
mod overview;
mod queues;
mod triage;

pub use audit::AuditPage;
pub use go::GoPage;
pub use job_detail::JobDetailPage;
pub use jobs::JobsPage;
pub use not_found::NotFound;
pub use overview::Overview;
pub use queues::QueuesPage;
pub use triage::{GroupPage, TriagePage};

use leptos::prelude::*;

/// A page's title, a line saying what it is for, and an optional slot for actions on the right.
#[component]
fn PageHeading(
    title: &'static str,
    subtitle: &'static str,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="flex flex-wrap items-end justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                <p class="mt-1 text-sm text-slate-500 dark:text-slate-400">{subtitle}</p>
            </div>
            {children.map(|children| children())}
        </div>
    }
}
