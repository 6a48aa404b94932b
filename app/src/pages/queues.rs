//! `/queues`: every queue's size and backlog, with pause and resume for operators.

use leptos::prelude::*;
use leptos_meta::Title;

use super::PageHeading;
use super::overview::QueueTable;
use crate::api::{overview_data, set_queue_paused};
use crate::app::use_user;
use crate::components::{ErrorNotice, Loading, use_live};

#[component]
pub fn QueuesPage() -> impl IntoView {
    let live = use_live();
    let user = use_user();
    let data = Resource::new(move || live.tick.get(), |_| overview_data());
    let toggle = Action::new(move |(queue, paused): &(String, bool)| {
        let (queue, paused) = (queue.clone(), *paused);
        async move { set_queue_paused(queue, paused).await }
    });
    Effect::new(move |_| {
        if toggle.value().with(Option::is_some) {
            live.refresh();
        }
    });
    let on_toggle = Callback::new(move |(queue, paused): (String, bool)| {
        toggle.dispatch((queue, paused));
    });

    view! {
        <Title text="Queues" />
        <PageHeading title="Queues" subtitle="Size, backlog and status of every queue. Paused queues keep their jobs; workers stop claiming." />
        {move || toggle.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let can_act = user.await.is_ok_and(|u| u.can_act());
                match data.await {
                    Ok(overview) => view! {
                        <QueueTable queues=overview.queues actions=can_act.then_some(on_toggle) />
                    }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}
