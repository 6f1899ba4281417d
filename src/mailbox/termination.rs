//! How the connection ends, as the handles see it: which streams are
//! dead, whether a close was asked for, whether the driver or every handle
//! is gone. Sends read it before they queue.

use crate::event::StreamRef;

#[derive(Default)]
pub(super) struct Termination {
    /// Streams up to this one were killed by a `Down`.
    pub(super) killed_up_to: Option<StreamRef>,
    /// The peer closed this Websocket: sends to it are refused.
    pub(super) peer_closed: Option<StreamRef>,
    /// A close frame or shutdown was queued: nothing more is accepted.
    pub(super) closing: bool,
    /// The driver has ended.
    pub(super) terminated: bool,
    /// Every `Connection` handle is gone.
    pub(super) abandoned: bool,
}
