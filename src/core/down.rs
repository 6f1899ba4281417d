//! A transport that goes: `Down`, then a reconnect or the end, as the
//! reconnect policy ([`super::reconnect`]) decides.

use std::time::Duration;

use http::HeaderMap;

use super::*;

impl Core {
    pub(super) fn disconnect(&mut self, loss: Loss) {
        self.pending_loss = Some(loss);
        self.actions.push_back(Action::Disconnect);
    }

    pub(super) fn down_reason(&self, error: Option<Error>) -> DownReason {
        if self.close_queued {
            return DownReason::Shutdown;
        }
        if let Some(close) = &self.close_received {
            return DownReason::ClosedByPeer(close.clone());
        }
        DownReason::Error(error.unwrap_or_else(|| {
            Error::new(
                ErrorKind::Io,
                "the connection closed without a close frame (1006)",
            )
        }))
    }

    pub(super) fn dial_failed(&mut self, error: Error, now: Instant) {
        let duration = self.dial_duration(now);
        tracing::warn!(
            attempt = self.attempt,
            duration = ?duration,
            %error,
            "wstether: connect failed"
        );
        let (connection, attempt) = (self.connection, self.attempt);
        self.observe
            .call(|o| o.connect_end(connection, attempt, duration, Some(&error)));
        let stop = self.reconnect.after_proxy_refusal(&error);
        if !self.reconnect.opened_once() && !self.close_queued {
            // The first connection: its budget decides, and giving up has
            // one shape whatever the cause.
            let delay = match &stop {
                Some(_) => None,
                None => self.reconnect.retry_delay(self.attempt, None, now),
            };
            return match delay {
                Some(delay) => {
                    self.events.push_back(Event::Error {
                        stream: None,
                        error,
                    });
                    self.schedule_retry(delay, now);
                }
                None => self.give_up_first(stop.unwrap_or(error), now),
            };
        }
        self.events.push_back(Event::Error {
            stream: None,
            error,
        });
        if self.close_queued {
            return self.terminate_unconnected(Error::new(ErrorKind::Closed, "shut down"), now);
        }
        if let Some(error) = stop {
            tracing::warn!(%error, "wstether: proxy refused, not retried");
            return self.terminate_unconnected(error, now);
        }
        match self.reconnect.next_delay() {
            Some(delay) => self.schedule_retry(delay, now),
            None => {
                let error = Error::new(
                    ErrorKind::RetriesExhausted,
                    format!("gave up after {} connect attempts", self.attempt),
                );
                self.terminate_unconnected(error, now);
            }
        }
    }

    pub(super) fn schedule_retry(&mut self, delay: Duration, now: Instant) {
        self.phase = Phase::Backoff {
            until: later(now, delay),
        };
        let (connection, attempt) = (self.connection, self.attempt.saturating_add(1));
        tracing::info!(
            next_attempt = attempt,
            delay = ?delay,
            "wstether: reconnect scheduled"
        );
        self.observe
            .call(|o| o.reconnect_scheduled(connection, attempt, delay));
        self.events.push_back(Event::Reconnecting {
            attempt: self.attempt.saturating_add(1),
            delay,
        });
    }

    /// The first connection gives up before any transport came up: the
    /// waiting upgrade fails, then `Error`, then the final `Down` with
    /// every queued frame, the same shape as [`Core::go_down_then`] gives.
    pub(super) fn give_up_first(&mut self, error: Error, now: Instant) {
        tracing::warn!(attempt = self.attempt, %error, "wstether: first connection failed");
        if let Some((stream, _)) = self.pending_upgrade.take() {
            self.killed_up_to = self.killed_up_to.max(Some(stream));
            self.upgrade_failed_event(stream, None, HeaderMap::new(), error.clone());
        }
        let unsent = self.delivery.take_unsent();
        let reason = DownReason::Error(error.clone());
        let connection = self.connection;
        self.observe
            .call(|o| o.disconnect(connection, &reason, Duration::ZERO));
        self.events.push_back(Event::Error {
            stream: None,
            error,
        });
        self.events.push_back(Event::Down {
            reason,
            killed_streams: Vec::new(),
            unsent,
            will_reconnect: false,
        });
        self.terminate(now);
    }

    /// Ends a connection that is not up: the waiting upgrade, if any, fails
    /// and its queued frames come back.
    pub(super) fn terminate_unconnected(&mut self, error: Error, now: Instant) {
        self.terminate(now);
        let unsent = self.delivery.take_unsent();
        if let Some((stream, _)) = self.pending_upgrade.take() {
            self.upgrade_failed_event(stream, None, HeaderMap::new(), error.with_unsent(unsent));
        } else {
            self.events.push_back(Event::Error {
                stream: None,
                error: error.with_unsent(unsent),
            });
        }
    }

    pub(super) fn go_down(&mut self, reason: DownReason, now: Instant) {
        self.go_down_then(reason, Next::Backoff, now);
    }

    /// The transport is gone: `Down`, then a reconnect or the end, as
    /// `next`, the close codes, the backoff and a queued close decide.
    pub(super) fn go_down_then(&mut self, reason: DownReason, next: Next, now: Instant) {
        let refused_status = self.refused_status.take();
        self.providing = false;
        if self.upgrade_started.is_some() {
            let error = match &reason {
                DownReason::Error(error) => error.clone(),
                _ => Error::new(
                    ErrorKind::Closed,
                    "the connection went down during the upgrade",
                ),
            };
            self.upgrade_answered(None, None, Some(&error), now);
        }
        let connected_for = self
            .open_since
            .take()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        self.time_connected = self.time_connected.saturating_add(connected_for);
        let killed = match &self.phase {
            Phase::Upgrading { stream, .. }
            | Phase::Open { stream }
            | Phase::Closing { stream, .. }
            | Phase::Failing { stream, .. } => {
                vec![*stream]
            }
            _ => Vec::new(),
        };
        self.killed_up_to = self.killed_up_to.max(killed.last().copied());
        self.keepalive = None;
        self.write_stalled_since = None;
        self.pending_loss = None;
        let uptime = self
            .up_since
            .take()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        self.reconnect.on_down_after(uptime);
        let stop_code = match &reason {
            DownReason::ClosedByPeer(close) => self.reconnect.stops_on_close(close.code.as_u16()),
            _ => false,
        };
        let delay = if self.close_queued || stop_code {
            None
        } else {
            match &next {
                Next::Backoff => self.reconnect.retry_delay(self.attempt, None, now),
                Next::NotBefore(floor) => {
                    self.reconnect.retry_delay(self.attempt, Some(*floor), now)
                }
                Next::Stop(..) => None,
            }
        };
        // The first connection gives up: one error says why, whatever the
        // cause (see `Retry`'s "The first connection").
        let first_failure = match (&next, &reason) {
            _ if delay.is_some() || self.reconnect.opened_once() || self.close_queued => None,
            (Next::Stop(_, error), _) => Some(error.clone()),
            (_, DownReason::Error(error)) => Some(error.clone()),
            (_, DownReason::UpgradeRejected) => Some(match refused_status {
                Some(status) => Error::new(
                    ErrorKind::UpgradeRefused,
                    format!(
                        "the server answered {}: {}",
                        crate::redact::status(status),
                        self.reconnect.first_budget_spent(self.attempt)
                    ),
                )
                .with_status(status),
                None => Error::new(
                    ErrorKind::UpgradeRefused,
                    self.reconnect.first_budget_spent(self.attempt),
                ),
            }),
            (_, other) => Some(Error::new(
                ErrorKind::Closed,
                format!("{other} before the first Websocket opened"),
            )),
        };
        if let (Next::Stop(stream, error), false) = (&next, self.close_queued) {
            tracing::warn!(%stream, %error, "wstether: upgrade refused, not retried");
        }
        // Frames held for the current Websocket wait for the next one; at
        // the end they come back with the rest.
        let unsent = if delay.is_some() && self.hold_while_down {
            self.delivery.take_unsent_but_held()
        } else {
            self.delivery.take_unsent()
        };
        match &reason {
            DownReason::Error(_) | DownReason::PeerDead | DownReason::UpgradeRejected => {
                tracing::warn!(
                    reason = %reason,
                    connected = ?connected_for,
                    will_reconnect = delay.is_some(),
                    "wstether: down"
                )
            }
            _ => tracing::info!(
                reason = %reason,
                connected = ?connected_for,
                will_reconnect = delay.is_some(),
                "wstether: down"
            ),
        }
        let connection = self.connection;
        self.observe
            .call(|o| o.disconnect(connection, &reason, connected_for));
        if let Some(error) = first_failure {
            if let Some((stream, _)) = self.pending_upgrade.take() {
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error.clone());
            }
            self.events.push_back(Event::Error {
                stream: None,
                error,
            });
        } else if let (Next::Stop(stream, error), false) = (next, self.close_queued) {
            self.events.push_back(Event::Error {
                stream: Some(stream),
                error,
            });
        }
        self.events.push_back(Event::Down {
            reason,
            killed_streams: killed,
            unsent,
            will_reconnect: delay.is_some(),
        });
        match delay {
            Some(delay) => self.schedule_retry(delay, now),
            None => {
                self.terminate(now);
                if let Some((stream, _)) = self.pending_upgrade.take() {
                    let error =
                        Error::new(ErrorKind::Closed, "the connection ended before the upgrade");
                    self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
                }
            }
        }
    }

    /// The connection has ended for good.
    pub(super) fn terminate(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Terminated) {
            return;
        }
        if let Some(started) = self.dial_started.take() {
            // Every connect_start has its connect_end.
            let error = Error::new(ErrorKind::Closed, "the connection ended while connecting");
            let duration = now.saturating_duration_since(started);
            let (connection, attempt) = (self.connection, self.attempt);
            self.observe
                .call(|o| o.connect_end(connection, attempt, duration, Some(&error)));
        }
        self.phase = Phase::Terminated;
        let lifetime = now.saturating_duration_since(self.born);
        tracing::info!(
            lifetime = ?lifetime,
            "wstether: terminated"
        );
        let connection = self.connection;
        self.observe.call(|o| o.terminate(connection, lifetime));
    }
}
