//! The upgrade: asked for by the application or made by the core itself
//! (`auto_upgrade`, the provider), sent once a transport is up, and
//! answered (accepted, refused, timed out).

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use super::*;

impl Core {
    pub(super) fn on_upgrade_request(
        &mut self,
        stream: StreamRef,
        request: ValidUpgrade,
        original: Upgrade,
        now: Instant,
    ) {
        if self.close_queued && !matches!(self.phase, Phase::Terminated) {
            let error = Error::new(ErrorKind::Closed, "the connection is closing");
            self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
            return;
        }
        self.last_upgrade = Some(original);
        match &self.phase {
            // A transport being dropped cannot be upgraded: wait for the next one.
            Phase::Connected if self.pending_loss.is_none() => {
                self.begin_upgrade(stream, request, now)
            }
            Phase::Connected | Phase::Dialing { .. } | Phase::Backoff { .. } => {
                if let Some((old, _)) = self.pending_upgrade.replace((stream, request)) {
                    // The frames queued so far were sent on the old stream:
                    // they must not go out on the new one.
                    let unsent = self.delivery.take_queued();
                    let error = Error::new(
                        ErrorKind::Upgrade,
                        format!("superseded by upgrade {stream}"),
                    )
                    .with_unsent(unsent);
                    self.upgrade_failed_event(old, None, HeaderMap::new(), error);
                }
            }
            Phase::Upgrading {
                stream: current, ..
            }
            | Phase::Open { stream: current }
            | Phase::Closing {
                stream: current, ..
            }
            | Phase::Failing {
                stream: current, ..
            } => {
                let error = Error::new(
                    ErrorKind::Upgrade,
                    format!(
                        "the connection already carries Websocket {current}: one per connection \
                         over HTTP/1.1 (over HTTP/2, see Options::http2, each upgrade is a stream)"
                    ),
                );
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
            }
            Phase::Terminated => {
                let error = Error::new(ErrorKind::Closed, "the connection has terminated");
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
            }
        }
    }

    pub(super) fn on_dialed(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Dialing { .. }) {
            return;
        }
        self.phase = Phase::Connected;
        self.up_since = Some(now);
        self.close_received = None;
        self.ups += 1;
        let duration = self.dial_duration(now);
        tracing::debug!(
            attempt = self.attempt,
            duration = ?duration,
            "wstether: connected"
        );
        let (connection, attempt) = (self.connection, self.attempt);
        self.observe
            .call(|o| o.connect_end(connection, attempt, duration, None));
        self.events.push_back(Event::Up {
            attempt: self.attempt,
        });
        if let Some((stream, request)) = self.pending_upgrade.take() {
            self.begin_upgrade(stream, request, now);
            return;
        }
        let request = match &self.auto_upgrade {
            AutoUpgrade::Off => return,
            AutoUpgrade::RepeatLast => match &self.last_upgrade {
                Some(last) => last.clone(),
                None => return,
            },
            AutoUpgrade::Provider(_) => {
                // The provider may do I/O: the driver runs it. Its time
                // counts as the upgrade's, bounded by the upgrade timeout.
                let stream = self.stream_ids.next();
                self.providing = true;
                self.phase = Phase::Upgrading {
                    stream,
                    offered: Vec::new(),
                    deadline: self.reconnect.first_bound(later(now, self.upgrade_timeout)),
                };
                self.actions.push_back(Action::Provide);
                return;
            }
        };
        let stream = self.stream_ids.next();
        self.upgrade_checked(stream, request, now);
    }

    /// Sends an upgrade the core made itself, checked as the application's
    /// are; one that fails the checks fails alone (the transport stays).
    pub(super) fn upgrade_checked(&mut self, stream: StreamRef, request: Upgrade, now: Instant) {
        let checked = request
            .validate()
            .and_then(|valid| (self.check_upgrade)(&valid).map(|()| valid));
        match checked {
            Ok(valid) => self.begin_upgrade(stream, valid, now),
            Err(error) => {
                // The transport stays, without a Websocket.
                self.phase = Phase::Connected;
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error)
            }
        }
    }

    /// The upgrade provider answered (the driver ran its future). A
    /// provider that failed fails the upgrade with [`ErrorKind::Provider`]
    /// and drops the transport, so the retry policy decides what follows.
    pub(super) fn on_provided(
        &mut self,
        provided: Result<Upgrade, crate::options::ProviderError>,
        now: Instant,
    ) {
        let (true, Phase::Upgrading { stream, .. }) = (self.providing, &self.phase) else {
            return;
        };
        let stream = *stream;
        self.providing = false;
        match provided {
            Ok(request) => self.upgrade_checked(stream, request, now),
            Err(source) => {
                let error = Error::new(ErrorKind::Provider, "the upgrade provider failed")
                    .with_boxed_source(source);
                tracing::warn!(%stream, %error, "wstether: upgrade provider failed");
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error.clone());
                self.kill(stream);
                self.disconnect(Loss::Down(DownReason::Error(error)));
            }
        }
    }

    pub(super) fn on_upgraded(
        &mut self,
        protocol: Option<String>,
        headers: HeaderMap,
        version: Option<http::Version>,
        now: Instant,
    ) {
        let Phase::Upgrading {
            stream, offered, ..
        } = &self.phase
        else {
            return;
        };
        let stream = *stream;
        // RFC 8441: an extended CONNECT is answered with 200, not 101.
        let status = match version {
            Some(http::Version::HTTP_2) => StatusCode::OK,
            _ => StatusCode::SWITCHING_PROTOCOLS,
        };
        if let Some(chosen) = &protocol {
            if !offered.contains(chosen) {
                let error = Error::new(
                    ErrorKind::Upgrade,
                    format!("the server chose subprotocol {chosen:?}, which was not offered"),
                );
                self.upgrade_answered(
                    Some(StatusCode::SWITCHING_PROTOCOLS),
                    protocol.as_deref(),
                    Some(&error),
                    now,
                );
                self.upgrade_failed_event(stream, None, headers, error.clone());
                self.kill(stream);
                self.disconnect(Loss::Down(DownReason::Error(error)));
                return;
            }
        }
        self.upgrade_answered(Some(status), protocol.as_deref(), None, now);
        self.open_since = Some(now);
        self.phase = Phase::Open { stream };
        self.reconnect.on_opened();
        self.write_stalled_since = None;
        self.keepalive = self
            .keepalive_config
            .clone()
            .map(|config| KeepaliveState::new(config, now));
        self.events.push_back(Event::Upgraded {
            stream,
            protocol,
            headers,
            #[cfg(native)]
            http_version: version.unwrap_or(http::Version::HTTP_11),
        });
        #[cfg(browser)]
        let _ = version;
        // What connecting left in the queues is freed once they are empty.
        self.trim = true;
    }

    /// The upgrade failed; natively the transport is gone with it. A
    /// refusal with a status is judged by the retry policy
    /// ([`Retry::decision`](crate::Retry::decision)); `unix_now` (the wall
    /// clock, since the Unix epoch) reads a `Retry-After` date.
    pub(super) fn on_upgrade_failed(
        &mut self,
        status: Option<StatusCode>,
        headers: HeaderMap,
        error: Error,
        now: Instant,
        unix_now: Duration,
    ) {
        let Phase::Upgrading { stream, .. } = &self.phase else {
            return;
        };
        let stream = *stream;
        self.upgrade_answered(status, None, Some(&error), now);
        let next = match status {
            Some(status) => self
                .reconnect
                .after_refusal(stream, status, &headers, unix_now),
            None => Next::Backoff,
        };
        self.upgrade_failed_event(stream, status, headers, error.clone());
        self.kill(stream);
        let reason = match status {
            Some(status) => {
                self.refused_status = Some(status);
                DownReason::UpgradeRejected
            }
            None => DownReason::Error(error),
        };
        self.go_down_then(reason, next, now);
    }

    pub(super) fn begin_upgrade(&mut self, stream: StreamRef, request: ValidUpgrade, now: Instant) {
        tracing::debug!(
            %stream,
            path = %crate::redact::url(request.path.as_str()),
            protocols = ?request.protocols,
            "wstether: upgrade sent"
        );
        self.upgrade_started = Some((stream, now));
        self.observe.call(|o| o.upgrade_sent(stream));
        self.flow = Flow::new(request.flow);
        self.phase = Phase::Upgrading {
            stream,
            offered: request.protocols.clone(),
            deadline: self.reconnect.first_bound(later(now, self.upgrade_timeout)),
        };
        self.actions.push_back(Action::Upgrade(request));
    }

    /// The current upgrade failed: the stream is dead, the connection stays
    /// (until the transport, which the failure used up, is reported lost).
    pub(super) fn kill(&mut self, stream: StreamRef) {
        self.killed_up_to = self.killed_up_to.max(Some(stream));
        // A connection whose upgrade failed was not a stable one: its time
        // up must not reset the backoff.
        self.up_since = None;
        self.phase = Phase::Connected;
    }

    /// The upgrade in flight was answered (or given up): trace and observe.
    pub(super) fn upgrade_answered(
        &mut self,
        status: Option<StatusCode>,
        protocol: Option<&str>,
        error: Option<&Error>,
        now: Instant,
    ) {
        let Some((stream, sent)) = self.upgrade_started.take() else {
            return;
        };
        let duration = now.saturating_duration_since(sent);
        let status_code = status.map(|s| s.as_u16());
        match error {
            None => tracing::info!(
                %stream,
                status = status_code,
                protocol,
                ?duration,
                "wstether: upgraded"
            ),
            Some(error) => tracing::warn!(
                %stream,
                status = status_code,
                ?duration,
                %error,
                "wstether: upgrade failed"
            ),
        }
        self.observe
            .call(|o| o.upgrade_answered(stream, status, protocol, duration, error));
    }

    pub(super) fn upgrade_failed_event(
        &mut self,
        stream: StreamRef,
        status: Option<StatusCode>,
        headers: HeaderMap,
        error: Error,
    ) {
        self.events.push_back(Event::UpgradeFailed {
            stream,
            status,
            headers,
            error,
        });
    }
}
