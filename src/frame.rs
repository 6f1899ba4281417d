//! Frames, close codes and close frames: wstether's own types, the same on
//! both targets (no tungstenite or web-sys type leaks out).

use std::fmt;

use bytes::Bytes;

use crate::utf8_bytes::Utf8Bytes;

/// The longest close reason that fits a control frame (125 bytes minus the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// The largest payload of a ping or pong frame (control frames carry at most 125 bytes).
pub const MAX_CONTROL_PAYLOAD_BYTES: usize = 125;

/// One WebSocket frame (a whole message: wstether never hands out fragments).
///
/// Mirrors Gun's frames: `{text, Data}`, `{binary, Data}`, `ping`, `pong`,
/// `close` and `{close, Code, Reason}`.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UTF-8 text message, as shared bytes: a received one is not
    /// copied on its way to the application.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (at most 125 bytes). Pings from the server are answered by
    /// wstether and hidden unless [`Options::silence_pings`](crate::Options::silence_pings)
    /// is `false`.
    ///
    /// Browser: scripts can neither send nor see pings (the browser answers
    /// them itself); sending one fails with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    Ping(Bytes),
    /// A pong (at most 125 bytes).
    ///
    /// Browser: scripts can neither send nor see pongs; sending one fails
    /// with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    Pong(Bytes),
    /// A close frame. `None` sends a close frame without a status code
    /// (seen by the peer as 1005).
    ///
    /// Browser: a close frame may carry only 1000 or 3000–4999 (see
    /// [`CloseCode::is_sendable_by_browser`]); other codes fail with
    /// [`ErrorKind::InvalidCloseCode`](crate::ErrorKind::InvalidCloseCode) when sent. Received close frames are
    /// the same on both targets.
    Close(Option<CloseFrame>),
}

impl Frame {
    /// A text frame.
    pub fn text(text: impl Into<Utf8Bytes>) -> Frame {
        Frame::Text(text.into())
    }

    /// A binary frame.
    pub fn binary(data: impl Into<Bytes>) -> Frame {
        Frame::Binary(data.into())
    }

    /// A normal closure (1000) with no reason: Gun's bare `close`.
    pub fn close_normal() -> Frame {
        Frame::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: String::new(),
        }))
    }

    /// The payload length in bytes (close frames count code and reason).
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(data) | Frame::Ping(data) | Frame::Pong(data) => data.len(),
            Frame::Close(None) => 0,
            Frame::Close(Some(close)) => 2 + close.reason.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a control frame (ping, pong or close).
    pub fn is_control(&self) -> bool {
        matches!(self, Frame::Ping(_) | Frame::Pong(_) | Frame::Close(_))
    }
}

impl fmt::Debug for Frame {
    // Payloads can be megabytes: show the kind, the length and a short prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn prefix(bytes: &[u8]) -> String {
            let shown = &bytes[..bytes.len().min(32)];
            let text = String::from_utf8_lossy(shown);
            if bytes.len() > shown.len() {
                format!("{text:?}…")
            } else {
                format!("{text:?}")
            }
        }
        match self {
            Frame::Text(text) => {
                write!(f, "Text({} bytes {})", text.len(), prefix(text.as_bytes()))
            }
            Frame::Binary(data) => write!(f, "Binary({} bytes {})", data.len(), prefix(data)),
            Frame::Ping(data) => write!(f, "Ping({})", prefix(data)),
            Frame::Pong(data) => write!(f, "Pong({})", prefix(data)),
            Frame::Close(None) => write!(f, "Close"),
            Frame::Close(Some(close)) => write!(f, "Close({}, {:?})", close.code, close.reason),
        }
    }
}

impl From<&str> for Frame {
    fn from(text: &str) -> Frame {
        Frame::Text(text.into())
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Frame {
        Frame::Text(text.into())
    }
}

impl From<Utf8Bytes> for Frame {
    fn from(text: Utf8Bytes) -> Frame {
        Frame::Text(text)
    }
}

impl From<Vec<u8>> for Frame {
    fn from(data: Vec<u8>) -> Frame {
        Frame::Binary(data.into())
    }
}

impl From<Bytes> for Frame {
    fn from(data: Bytes) -> Frame {
        Frame::Binary(data)
    }
}

/// One frame or many, for [`Connection::ws_send`](crate::Connection::ws_send):
/// built from a [`Frame`], a `Vec<Frame>` or an array of frames.
#[derive(Debug, Clone)]
pub struct Frames(FramesInner);

#[derive(Debug, Clone)]
enum FramesInner {
    One(Frame),
    Many(Vec<Frame>),
}

impl Frames {
    /// The number of frames.
    pub fn len(&self) -> usize {
        match &self.0 {
            FramesInner::One(_) => 1,
            FramesInner::Many(frames) => frames.len(),
        }
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the frames in order.
    pub fn iter(&self) -> impl Iterator<Item = &Frame> {
        let slice: &[Frame] = match &self.0 {
            FramesInner::One(frame) => std::slice::from_ref(frame),
            FramesInner::Many(frames) => frames,
        };
        slice.iter()
    }

    /// The frames in order, to change in place.
    #[cfg(native)]
    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Frame> {
        match &mut self.0 {
            FramesInner::One(frame) => std::slice::from_mut(frame).iter_mut(),
            FramesInner::Many(frames) => frames.iter_mut(),
        }
    }

    /// Calls `f` with each frame, in order, without allocating for one frame
    /// (the common case: [`IntoIterator`] goes through a `Vec`).
    pub(crate) fn for_each(self, mut f: impl FnMut(Frame)) {
        match self.0 {
            FramesInner::One(frame) => f(frame),
            FramesInner::Many(frames) => frames.into_iter().for_each(f),
        }
    }

    /// The frames as a vector, in order.
    pub fn into_vec(self) -> Vec<Frame> {
        match self.0 {
            FramesInner::One(frame) => vec![frame],
            FramesInner::Many(frames) => frames,
        }
    }
}

impl IntoIterator for Frames {
    type Item = Frame;
    type IntoIter = std::vec::IntoIter<Frame>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl From<Frame> for Frames {
    fn from(frame: Frame) -> Frames {
        Frames(FramesInner::One(frame))
    }
}

impl From<Vec<Frame>> for Frames {
    fn from(frames: Vec<Frame>) -> Frames {
        Frames(FramesInner::Many(frames))
    }
}

impl<const N: usize> From<[Frame; N]> for Frames {
    fn from(frames: [Frame; N]) -> Frames {
        Frames(FramesInner::Many(frames.into()))
    }
}

/// A WebSocket close status code (RFC 6455 §7.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub(crate) u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server restart, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (never sent; synthesised locally,
    /// the same on both targets).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: closed without a close frame (never sent; synthesised locally,
    /// the same on both targets).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: invalid payload data (e.g. invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: message too big. Sent natively when a message exceeds
    /// [`Options::max_message_size`](crate::Options::max_message_size); a
    /// browser may not send it, and closes with 1000 and the reason
    /// `"message too big"` instead.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: a required extension was not negotiated.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// A close code as received from a peer or synthesised locally, unchecked.
    pub fn from_wire(code: u16) -> CloseCode {
        CloseCode(code)
    }

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether a client may send this code on the wire (natively; see
    /// [`CloseCode::is_sendable_by_browser`] for a browser).
    pub fn is_sendable(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether a script in a browser may send this code: 1000 and
    /// 3000–4999 only (the WebSocket API's rule).
    pub fn is_sendable_by_browser(code: u16) -> bool {
        code == 1000 || (3000..=4999).contains(&code)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most [`MAX_CLOSE_REASON_BYTES`] bytes of UTF-8.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_from_one_or_many_keep_order() {
        let one: Frames = Frame::text("a").into();
        assert_eq!(one.len(), 1);
        let many: Frames = [
            Frame::text("a"),
            Frame::binary(vec![1]),
            Frame::close_normal(),
        ]
        .into();
        let kinds: Vec<_> = many.iter().map(Frame::is_control).collect();
        assert_eq!(kinds, [false, false, true]);
    }

    #[test]
    fn debug_of_a_large_frame_is_short() {
        let text = format!("{:?}", Frame::binary(vec![b'a'; 1 << 20]));
        assert!(text.len() < 80, "{text}");
    }
}
