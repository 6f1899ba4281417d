//! Gun's `flow`: a credit of received messages per Websocket. Each message
//! delivered spends one; at zero the driver stops reading the socket (the
//! server is held back by TCP's window, or by the HTTP/2 stream's), until
//! the application grants more (`Connection::update_flow`).

use super::*;

/// The credit of the current Websocket; `None`: unlimited (no `flow`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flow {
    credit: Option<u64>,
}

impl Flow {
    /// A Websocket's credit as its upgrade asked (`Upgrade::flow`).
    pub(super) fn new(initial: Option<u32>) -> Flow {
        Flow {
            credit: initial.map(u64::from),
        }
    }

    /// A flow with this credit left (for tests).
    #[cfg(test)]
    pub(super) fn with_credit(self, credit: u64) -> Flow {
        Flow {
            credit: Some(credit),
        }
    }

    /// More credit; an unlimited flow stays unlimited.
    pub(super) fn grant(&mut self, messages: u64) {
        if let Some(credit) = &mut self.credit {
            *credit = credit.saturating_add(messages);
        }
    }

    /// One message was delivered.
    pub(super) fn spend(&mut self) {
        if let Some(credit) = &mut self.credit {
            *credit = credit.saturating_sub(1);
        }
    }

    /// How many more messages may be read now.
    pub(super) fn credit(&self) -> usize {
        match self.credit {
            Some(credit) => usize::try_from(credit).unwrap_or(usize::MAX),
            None => usize::MAX,
        }
    }
}

impl Core {
    /// `Command::UpdateFlow`: credit for the current Websocket (or the one
    /// waiting to be upgraded); a grant for any other stream is stale and
    /// does nothing, as Gun's `update_flow` on a finished stream.
    pub(super) fn on_update_flow(&mut self, stream: Option<StreamRef>, messages: u64) {
        let current = self.current_stream();
        match stream {
            None if current.is_some() => self.flow.grant(messages),
            Some(stream) if current == Some(stream) => self.flow.grant(messages),
            Some(stream) => {
                if let Some((pending, request)) = &mut self.pending_upgrade {
                    if *pending == stream {
                        if let Some(flow) = &mut request.flow {
                            *flow =
                                flow.saturating_add(u32::try_from(messages).unwrap_or(u32::MAX));
                        }
                    }
                }
            }
            None => {}
        }
    }

    /// How many messages the driver may read now: the credit while the
    /// Websocket is open; unlimited once the application's close frame is
    /// out (its close must complete) or without a `flow`.
    pub(crate) fn read_credit(&self) -> usize {
        match self.phase {
            Phase::Open { .. } => self.flow.credit(),
            _ => usize::MAX,
        }
    }
}
