//! The reconnect policy, in one place: what follows a failed dial, a
//! refused upgrade or a `Down` — retry after a backoff delay (at least a
//! `Retry-After`), or stop and why. It owns the backoff, the status
//! decisions ([`Retry::decision`], [`Retry::proxy_decision`]), the close
//! codes that stop, the attempt budget (`max_retries`) and the first
//! connection's budget ([`Retry::first_connection`]). The core asks; it
//! never decides retries itself.

mod backoff;
mod retry_after;

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use backoff::Backoff;
#[cfg(test)]
pub(crate) use backoff::SplitMix64;

use super::later;
use crate::error::{Error, ErrorKind};
use crate::event::StreamRef;
use crate::options::{FirstConnection, Retry, RetryDecision};
use crate::time::Instant;

/// What follows a `Down`, before the close-code rules and the backoff have
/// their say.
#[derive(Debug)]
pub(crate) enum Next {
    /// Reconnect by the backoff.
    Backoff,
    /// Reconnect by the backoff, waiting at least this long (`Retry-After`).
    NotBefore(Duration),
    /// End: the retry policy refused to retry (this error says why).
    Stop(StreamRef, Error),
}

/// The policy and what it remembers: the failures so far, whether a
/// Websocket ever opened, and the first connection's deadline.
#[derive(Debug)]
pub(crate) struct Reconnect {
    backoff: Backoff,
    /// Whether an upgrade provider is set (401 is retried only then).
    has_provider: bool,
    /// A Websocket has been open at least once (connecting, then
    /// reconnecting): from then on the reconnect policy decides, not the
    /// first-connection budget.
    opened_once: bool,
    /// [`FirstConnection::Deadline`]'s instant, while it applies.
    first_deadline: Option<Instant>,
}

impl Reconnect {
    pub(crate) fn new(retry: &Retry, has_provider: bool, seed: u64, now: Instant) -> Reconnect {
        Reconnect {
            backoff: Backoff::new(retry.clone(), seed),
            has_provider,
            opened_once: false,
            first_deadline: match retry.first_connection {
                FirstConnection::Deadline(deadline) => Some(later(now, deadline)),
                _ => None,
            },
        }
    }

    pub(crate) fn retry(&self) -> &Retry {
        self.backoff.retry()
    }

    /// Whether a Websocket has been open at least once.
    pub(crate) fn opened_once(&self) -> bool {
        self.opened_once
    }

    /// A Websocket opened: the first connection succeeded, from now on the
    /// reconnect policy decides, with a fresh count.
    pub(crate) fn on_opened(&mut self) {
        if !self.opened_once {
            self.opened_once = true;
            self.first_deadline = None;
            self.backoff.reset();
        }
    }

    /// A transport went down after `uptime`: one up long enough starts the
    /// delays again (attempt numbers keep counting, so `Up { attempt }`
    /// counts every dial since `open`).
    pub(crate) fn on_down_after(&mut self, uptime: Duration) {
        if uptime >= self.retry().reset_after {
            self.backoff.reset();
        }
    }

    /// Whether the peer's close code ends the connection
    /// ([`Retry::stop_on_close_codes`]).
    pub(crate) fn stops_on_close(&self, code: u16) -> bool {
        self.retry().stop_on_close_codes.contains(&code)
    }

    /// The delay after a failed dial once the first connection is past its
    /// budget's say, or `None` when `max_retries` is spent.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        self.backoff.next_delay()
    }

    /// What the retry policy makes of a refused upgrade; `unix_now` (the
    /// wall clock, since the Unix epoch) reads a `Retry-After` date.
    pub(crate) fn after_refusal(
        &self,
        stream: StreamRef,
        status: StatusCode,
        headers: &HeaderMap,
        unix_now: Duration,
    ) -> Next {
        let decision = self.retry().decision(status);
        let why = match decision {
            RetryDecision::Retry => None,
            RetryDecision::RetryWithProvider if self.has_provider => None,
            RetryDecision::RetryWithProvider => Some(
                "retried only with an upgrade provider (Options::auto_upgrade_with) \
                 that can send fresh credentials",
            ),
            RetryDecision::Stop => Some("the retry policy does not retry it (Retry::on_status)"),
        };
        if let Some(why) = why {
            let error = Error::new(
                ErrorKind::UpgradeRefused,
                format!(
                    "the server answered {}: {why}",
                    crate::redact::status(status)
                ),
            )
            .with_status(status);
            return Next::Stop(stream, error);
        }
        let wait = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry_after::parse(value, unix_now));
        match wait {
            Some(wait) => Next::NotBefore(wait),
            None => Next::Backoff,
        }
    }

    /// What the retry policy makes of a proxy that refused the tunnel
    /// ([`Retry::proxy_decision`]): the error that ends the connection, or
    /// `None` to retry as any failed dial.
    pub(crate) fn after_proxy_refusal(&self, error: &Error) -> Option<Error> {
        let status = error.proxy_status()?;
        match self.retry().proxy_decision(status) {
            RetryDecision::Retry => None,
            _ => {
                let why = match status.as_u16() {
                    401 | 407 => "the proxy refused the credentials, which would be refused again",
                    _ => "the proxy refused the tunnel",
                };
                let message = format!(
                    "{why} ({}): not retried (Retry::on_proxy_status)",
                    crate::redact::status(status)
                );
                // The refusal itself (which proxy, what it said) stays as the source.
                Some(
                    Error::new(ErrorKind::Proxy, message)
                        .with_proxy_status(status)
                        .with_source(error.clone()),
                )
            }
        }
    }

    /// `deadline`, or the first connection's deadline if that comes first.
    pub(crate) fn first_bound(&self, deadline: Instant) -> Instant {
        match self.first_deadline {
            Some(first) if !self.opened_once => deadline.min(first),
            _ => deadline,
        }
    }

    /// A deadline passed: the error says which, the first connection's
    /// ([`FirstConnection::Deadline`]) or the attempt's own (`what`).
    pub(crate) fn timeout_error(&self, what: &str, now: Instant) -> Error {
        let first = !self.opened_once && self.first_deadline.is_some_and(|at| now >= at);
        if first {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{what}: the first connection's deadline passed (FirstConnection::Deadline)"
                ),
            )
        } else {
            Error::new(ErrorKind::Timeout, what)
        }
    }

    /// The delay before attempt `attempt + 1`, at least `floor` (a
    /// `Retry-After`, capped at `max_delay`), or `None` to give up: the
    /// first-connection budget decides until the first Websocket opens,
    /// the reconnect policy after.
    pub(crate) fn retry_delay(
        &mut self,
        attempt: u32,
        floor: Option<Duration>,
        now: Instant,
    ) -> Option<Duration> {
        let budget = self.retry().first_connection;
        let delay = match budget {
            _ if self.opened_once => self.backoff.next_delay()?,
            FirstConnection::Attempts(attempts) if attempt >= attempts => return None,
            FirstConnection::Attempts(_) | FirstConnection::Deadline(_) => {
                self.backoff.next_delay_unbounded()
            }
            FirstConnection::ReconnectPolicy => self.backoff.next_delay()?,
        };
        let delay = match floor {
            Some(floor) => delay.max(floor).min(self.retry().max_delay),
            None => delay,
        };
        match self.first_deadline {
            Some(deadline) if !self.opened_once && later(now, delay) >= deadline => None,
            _ => Some(delay),
        }
    }

    /// Why the first connection gives up after `attempt` attempts, for an
    /// error that ends it.
    pub(crate) fn first_budget_spent(&self, attempt: u32) -> String {
        match self.retry().first_connection {
            FirstConnection::Attempts(1) => {
                "not retried: the first connection has one attempt (Retry::first_connection)".into()
            }
            FirstConnection::Attempts(n) => format!(
                "not retried: the first connection's {n} attempts are spent \
                 (Retry::first_connection)"
            ),
            FirstConnection::Deadline(_) => "not retried: the first connection's deadline \
                 would pass (Retry::first_connection)"
                .into(),
            FirstConnection::ReconnectPolicy => {
                format!("gave up after {attempt} attempts (Retry::max_retries)")
            }
        }
    }
}
