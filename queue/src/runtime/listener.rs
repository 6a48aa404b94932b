//! LISTEN for new work and wake the queue's fetcher at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::wake::{Wake, parse_payload};
use super::{Shared, sleep_or_shutdown};
use crate::sql::NOTIFY_CHANNEL;

pub(super) async fn run(
    shared: Arc<Shared>,
    wakers: HashMap<String, Arc<Wake>>,
    shutdown: CancellationToken,
) {
    let wake_all = || wakers.values().for_each(|w| w.announce(None));
    loop {
        match PgListener::connect_with(&shared.pool).await {
            Ok(mut listener) => match listener.listen(NOTIFY_CHANNEL).await {
                Ok(()) => {
                    // Notifications sent while we were not listening are gone: look now.
                    wake_all();
                    loop {
                        let next = tokio::select! {
                            next = listener.try_recv() => next,
                            _ = shutdown.cancelled() => return,
                        };
                        match next {
                            Ok(Some(notification)) => {
                                let (queue, priority) =
                                    parse_payload(notification.payload(), |q| wakers.contains_key(q));
                                if let Some(waker) = wakers.get(queue) {
                                    waker.announce(priority);
                                }
                            }
                            // The connection dropped; the next call reconnects. Anything sent
                            // meanwhile was missed, so every queue looks again.
                            Ok(None) => wake_all(),
                            Err(e) => {
                                tracing::warn!(error = %e, "LISTEN connection failed; polling until it is back");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
            },
            Err(e) => tracing::warn!(error = %e, "could not open the LISTEN connection"),
        }
        if !sleep_or_shutdown(Duration::from_secs(1), &shutdown).await {
            return;
        }
    }
}
