//! The reconnect policy: backoff, the first connection's budget and what
//! each refused status means.

use std::time::Duration;

use http::StatusCode;

use super::limits::{check_duration, check_positive_duration, invalid, MIN_RETRY_DELAY};
use crate::error::Error;
use crate::redact;

/// The default connect timeout (a browser accepts only this one: it has no
/// connection below the WebSocket).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The reconnect policy: exponential backoff with jitter, and how long the
/// first connection may take ([`Retry::first_connection`]).
///
/// The delay before retry *n* (1-based) is `initial_delay * multiplier^(n-1)`,
/// capped at `max_delay`, then reduced by a random part of up to `jitter`
/// of it, so that many clients do not come back at once. The count starts
/// again once a connection has stayed up for `reset_after`.
///
/// # The first connection
///
/// Until the first Websocket is open (the first
/// [`Event::Upgraded`](crate::Event::Upgraded)), the first-connection
/// budget ([`FirstConnection`], default: one attempt) decides whether a
/// failed attempt is tried again, instead of
/// [`Retry::max_retries`]; the delays between attempts, the status
/// decisions ([`Retry::decision`], [`Retry::proxy_decision`]) and the
/// timeouts are the same. Once it is open, this reconnect policy applies.
///
/// When the first connection gives up, whatever the reason (a refused or
/// unresolved dial, TLS, a proxy, an HTTP status, a timeout, a failing
/// upgrade provider, or the budget spent), the events end the same way,
/// on both targets:
///
/// 1. [`Event::UpgradeFailed`](crate::Event::UpgradeFailed) for the
///    upgrade in flight or waiting, if any (with the status and headers of
///    a refusal, natively);
/// 2. [`Event::Error`](crate::Event::Error) `{ stream: None, error }`,
///    where `error` is the last real error (its kind says which:
///    [`ErrorKind::Connect`](crate::ErrorKind::Connect), [`ErrorKind::Tls`](crate::ErrorKind::Tls), [`ErrorKind::Proxy`](crate::ErrorKind::Proxy),
///    [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), [`ErrorKind::Upgrade`](crate::ErrorKind::Upgrade),
///    [`ErrorKind::UpgradeRefused`](crate::ErrorKind::UpgradeRefused) with [`Error::status`](crate::Error::status),
///    [`ErrorKind::Provider`](crate::ErrorKind::Provider));
/// 3. [`Event::Down`](crate::Event::Down) `{ will_reconnect: false, .. }`
///    with every frame that was queued in `unsent` and no `killed_streams`
///    (no Websocket was open; the upgrade had its `UpgradeFailed`); its
///    `reason` is [`DownReason::Error`](crate::DownReason::Error) with
///    the same error, or [`DownReason::UpgradeRejected`](crate::DownReason::UpgradeRejected)
///    after a status;
/// 4. the end of the [`Events`](crate::Events) stream.
///
/// [`connect`](crate::connect) fails with that same `error`. Attempts
/// before the last show as they do later in a connection's life (an
/// `Error` for a failed dial, `Up`, `UpgradeFailed` and `Down` for a
/// failed upgrade, then `Reconnecting`). A shutdown, or every handle
/// dropped, before the first success is not a failure: it ends as it
/// always does. In a browser every attempt shows `Up` first (there is no
/// connection below the WebSocket) and the error is
/// [`ErrorKind::Upgrade`](crate::ErrorKind::Upgrade) or [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), since a browser does
/// not tell scripts why a WebSocket did not open.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub(crate) max_retries: Option<u32>,
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
    pub(crate) reset_after: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stop_on_close_codes: Vec<u16>,
    pub(crate) on_status: Vec<(u16, RetryDecision)>,
    pub(crate) on_proxy_status: Vec<(u16, RetryDecision)>,
    pub(crate) first_connection: FirstConnection,
}

/// How long the first connection may take before it gives up
/// ([`Retry::first_connection`]): see [`Retry`]'s "The first connection"
/// for what counts and what the events show.
///
/// ```
/// use std::time::Duration;
/// use wstether::{FirstConnection, Retry};
/// // Wait up to a minute for a server that is still starting.
/// let retry = Retry::default().first_connection(FirstConnection::Deadline(Duration::from_secs(60)));
/// # let _ = retry;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstConnection {
    /// At most this many attempts (dial and upgrade), the default being 1,
    /// as `await websockets.connect()` and tokio-tungstenite do. At least
    /// 1 ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`).
    Attempts(u32),
    /// Attempts until this long after `open`: an attempt still in progress
    /// then fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), and no attempt starts whose
    /// backoff delay would end past it. Longer than zero and at most 24
    /// days ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`).
    Deadline(Duration),
    /// The reconnect policy ([`Retry::max_retries`], by default unlimited)
    /// applies from the first attempt: with [`Retry::default`], wait for
    /// the server forever (wstether 0.1's behaviour).
    ReconnectPolicy,
}

impl Default for FirstConnection {
    /// One attempt.
    fn default() -> FirstConnection {
        FirstConnection::Attempts(1)
    }
}

impl Default for Retry {
    /// Retry forever once connected, but give the first connection one
    /// attempt ([`FirstConnection::Attempts`]`(1)`); 100 ms doubling up to 30 s, half of it jittered;
    /// reset after 10 s up; 10 s connect timeout; stop on close codes
    /// 1003, 1007, 1008 and 1010, which a reconnect would only meet again;
    /// after a refused upgrade, decide by its status (see
    /// [`Retry::decision`]: 3xx and most 4xx stop); after a proxy refused
    /// the credentials (407 or 401), stop (see [`Retry::proxy_decision`]).
    fn default() -> Retry {
        Retry {
            max_retries: None,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(10),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stop_on_close_codes: vec![1003, 1007, 1008, 1010],
            on_status: Vec::new(),
            on_proxy_status: Vec::new(),
            first_connection: FirstConnection::default(),
        }
    }
}

impl Retry {
    /// Never reconnect: the first time the connection goes down, it ends
    /// (and the first connection has its default budget, one attempt).
    pub fn never() -> Retry {
        Retry::default().max_retries(0)
    }

    /// How many consecutive retries before giving up, once the first
    /// connection succeeded (default: no limit; see
    /// [`Retry::unlimited_retries`]). Any value is accepted; counts
    /// saturate rather than overflow.
    pub fn max_retries(mut self, retries: u32) -> Retry {
        self.max_retries = Some(retries);
        self
    }

    /// Retry forever once connected (the default).
    pub fn unlimited_retries(mut self) -> Retry {
        self.max_retries = None;
        self
    }

    /// How long the first connection may take before it gives up: a number
    /// of attempts or a deadline (default: one attempt). See
    /// [`FirstConnection`], and [`Retry`]'s "The first connection" for the
    /// events.
    pub fn first_connection(mut self, budget: FirstConnection) -> Retry {
        self.first_connection = budget;
        self
    }

    /// The first delay (default 100 ms). From 1 ms (a zero delay would
    /// hammer a refused port tens of thousands of times per second) to
    /// 24 days, and at most `max_delay`; [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption)
    /// otherwise, at `open`.
    pub fn initial_delay(mut self, delay: Duration) -> Retry {
        self.initial_delay = delay;
        self
    }

    /// The largest delay (default 30 s). At most 24 days
    /// ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`), and every delay
    /// is capped by it, however many retries came before.
    pub fn max_delay(mut self, delay: Duration) -> Retry {
        self.max_delay = delay;
        self
    }

    /// The growth factor per retry (default 2.0): a finite number of at
    /// least 1.0 ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`). Huge
    /// factors are fine: the delay stops growing at `max_delay`.
    pub fn multiplier(mut self, multiplier: f64) -> Retry {
        self.multiplier = multiplier;
        self
    }

    /// The random share taken off each delay, from 0.0 (none) to 1.0 (the
    /// delay is uniform between zero and its value). Default 0.5. Other
    /// values (NaN included) make `open` fail with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    pub fn jitter(mut self, jitter: f64) -> Retry {
        self.jitter = jitter;
        self
    }

    /// How long a connection must stay up before the retry count starts
    /// again (default 10 s). At most 24 days ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption)
    /// otherwise, at `open`).
    pub fn reset_after(mut self, uptime: Duration) -> Retry {
        self.reset_after = uptime;
        self
    }

    /// How long one connect attempt (TCP and TLS) may take (default 10 s).
    /// Longer than zero and at most 24 days ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption)
    /// otherwise, at `open`).
    ///
    /// Native only: a browser has no connection below the WebSocket, so
    /// [`Connection::open`](crate::Connection::open) refuses any value but
    /// the default there with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported); use
    /// [`Options::upgrade_timeout`](crate::Options::upgrade_timeout), which bounds the whole opening.
    pub fn connect_timeout(mut self, timeout: Duration) -> Retry {
        self.connect_timeout = timeout;
        self
    }

    /// Close codes from the server after which wstether does not reconnect.
    pub fn stop_on_close_codes(mut self, codes: impl Into<Vec<u16>>) -> Retry {
        self.stop_on_close_codes = codes.into();
        self
    }

    /// What to do after the server refuses an upgrade with `status`,
    /// instead of the default (see [`Retry::decision`]). The last call for
    /// a status wins.
    ///
    /// ```
    /// use http::StatusCode;
    /// use wstether::{Retry, RetryDecision};
    /// // A server that answers 404 while it deploys: keep trying.
    /// let retry = Retry::default().on_status(StatusCode::NOT_FOUND, RetryDecision::Retry);
    /// assert_eq!(retry.decision(StatusCode::NOT_FOUND), RetryDecision::Retry);
    /// ```
    pub fn on_status(mut self, status: StatusCode, decision: RetryDecision) -> Retry {
        self.on_status.retain(|(code, _)| *code != status.as_u16());
        self.on_status.push((status.as_u16(), decision));
        self
    }

    /// What this policy does after the server refuses an upgrade with
    /// `status`: the decision set by [`Retry::on_status`], else the default:
    ///
    /// | status | default |
    /// |---|---|
    /// | 401 | [`RetryDecision::RetryWithProvider`]: retried only when an upgrade provider ([`Options::auto_upgrade_with`](crate::Options::auto_upgrade_with)) can send fresh credentials |
    /// | 408, 429, 500–599 | [`RetryDecision::Retry`], honouring `Retry-After` |
    /// | any other (3xx, other 4xx, an unexpected 1xx or 2xx) | [`RetryDecision::Stop`] |
    ///
    /// A retried refusal waits at least what the answer's `Retry-After`
    /// asks (delta-seconds or an HTTP-date), but never longer than
    /// [`Retry::max_delay`]: `max_delay` is the longest the client waits
    /// between attempts, whatever a server says (raise it to honour long
    /// `Retry-After`s). A retry counts against [`Retry::max_retries`] as
    /// any other.
    ///
    /// **Browser:** the browser hides the status of a refused upgrade from
    /// scripts, so this policy never applies there: a failed upgrade is
    /// retried by the backoff like any other failure.
    pub fn decision(&self, status: StatusCode) -> RetryDecision {
        let code = status.as_u16();
        if let Some((_, decision)) = self.on_status.iter().find(|(c, _)| *c == code) {
            return *decision;
        }
        match code {
            401 => RetryDecision::RetryWithProvider,
            408 | 429 | 500..=599 => RetryDecision::Retry,
            _ => RetryDecision::Stop,
        }
    }

    /// What to do after a proxy refuses the tunnel with `status`
    /// ([`Error::proxy_status`](crate::Error::proxy_status)), instead of the
    /// default (see [`Retry::proxy_decision`]). The last call for a status
    /// wins.
    ///
    /// ```
    /// use http::StatusCode;
    /// use wstether::{Retry, RetryDecision};
    /// // A proxy whose credentials are rotated under it: keep trying.
    /// let retry = Retry::default()
    ///     .on_proxy_status(StatusCode::PROXY_AUTHENTICATION_REQUIRED, RetryDecision::Retry);
    /// assert_eq!(
    ///     retry.proxy_decision(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
    ///     RetryDecision::Retry
    /// );
    /// ```
    pub fn on_proxy_status(mut self, status: StatusCode, decision: RetryDecision) -> Retry {
        self.on_proxy_status
            .retain(|(code, _)| *code != status.as_u16());
        self.on_proxy_status.push((status.as_u16(), decision));
        self
    }

    /// What this policy does after a proxy ([`Proxy`](crate::Proxy))
    /// refuses the tunnel with `status`: the decision set by
    /// [`Retry::on_proxy_status`], else the default:
    ///
    /// | proxy status | default |
    /// |---|---|
    /// | 407, 401 (the credentials were missing or refused) | [`RetryDecision::Stop`]: a wrong password does not fix itself, and asking again only hammers the proxy |
    /// | any other (403 for a target the proxy does not allow, 502 when it could not reach the target...) | [`RetryDecision::Retry`], by the backoff |
    ///
    /// A SOCKS5 proxy that refuses the user name and password (or asks for
    /// credentials that were not given) has no HTTP status; it is reported
    /// as 407 so that one policy covers both kinds of proxy.
    /// [`RetryDecision::RetryWithProvider`] is [`RetryDecision::Stop`]
    /// here: an upgrade provider sets the upgrade's headers, not the
    /// proxy's credentials.
    ///
    /// A stop is the failed attempt's [`Event::Error`](crate::Event::Error)
    /// (kind [`ErrorKind::Proxy`](crate::ErrorKind::Proxy), with the status), then a last
    /// `Event::Error` of the same kind and status saying that it is not
    /// retried, with the frames that were waiting; the events end there.
    pub fn proxy_decision(&self, status: StatusCode) -> RetryDecision {
        let code = status.as_u16();
        if let Some((_, decision)) = self.on_proxy_status.iter().find(|(c, _)| *c == code) {
            return match decision {
                RetryDecision::RetryWithProvider => RetryDecision::Stop,
                other => *other,
            };
        }
        match code {
            401 | 407 => RetryDecision::Stop,
            _ => RetryDecision::Retry,
        }
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(invalid(format!(
                "retry.multiplier must be a finite number of at least 1.0, got {}",
                redact::Float(self.multiplier)
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(invalid(format!(
                "retry.jitter must be from 0.0 to 1.0, got {}",
                redact::Float(self.jitter)
            )));
        }
        check_duration("retry.initial_delay", self.initial_delay, MIN_RETRY_DELAY)?;
        check_duration("retry.max_delay", self.max_delay, MIN_RETRY_DELAY)?;
        if self.initial_delay > self.max_delay {
            return Err(invalid(format!(
                "retry.initial_delay ({}) must not exceed retry.max_delay ({})",
                redact::Dur(self.initial_delay),
                redact::Dur(self.max_delay)
            )));
        }
        check_duration("retry.reset_after", self.reset_after, Duration::ZERO)?;
        check_positive_duration("retry.connect_timeout", self.connect_timeout)?;
        match self.first_connection {
            FirstConnection::Attempts(0) => Err(invalid(
                "retry.first_connection: FirstConnection::Attempts must be at least 1, got 0",
            )),
            FirstConnection::Deadline(deadline) => {
                check_positive_duration("retry.first_connection deadline", deadline)
            }
            _ => Ok(()),
        }
    }
}

/// What a connection does after the server refused its upgrade with an
/// HTTP status: see [`Retry::decision`] for the defaults and
/// [`Retry::on_status`] to change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Reconnect by the backoff, waiting at least what `Retry-After` asks
    /// (up to [`Retry::max_delay`]).
    Retry,
    /// Reconnect (as [`RetryDecision::Retry`]) only when an upgrade
    /// provider is set ([`Options::auto_upgrade_with`](crate::Options::auto_upgrade_with)), which can send
    /// fresh credentials; otherwise stop, as the same request would be
    /// refused again.
    RetryWithProvider,
    /// End the connection: [`Event::UpgradeFailed`](crate::Event::UpgradeFailed),
    /// then [`Event::Error`](crate::Event::Error) with
    /// [`ErrorKind::UpgradeRefused`](crate::ErrorKind::UpgradeRefused), then the final
    /// [`Event::Down`](crate::Event::Down) (`UpgradeRejected`,
    /// `will_reconnect: false`).
    Stop,
}
