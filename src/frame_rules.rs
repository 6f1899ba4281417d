//! The rules a frame follows to be sent by a client (RFC 6455): close
//! codes, the close reason's and control payloads' lengths. The checked
//! constructors ([`Frame::close`], [`CloseCode::new`], [`CloseFrame::new`])
//! live here, beside the errors they give, so that `frame.rs` (the types,
//! which an [`Error`] carries back) needs no error type: no circle.

use crate::error::{Error, ErrorKind};
use crate::frame::{
    CloseCode, CloseFrame, Frame, MAX_CLOSE_REASON_BYTES, MAX_CONTROL_PAYLOAD_BYTES,
};

impl Frame {
    /// A close frame with a code and a reason, validated for sending.
    ///
    /// Fails with [`ErrorKind::InvalidCloseCode`] for codes a client may not
    /// send (see [`CloseCode::new`]) and with [`ErrorKind::InvalidFrame`] for a
    /// reason longer than [`MAX_CLOSE_REASON_BYTES`].
    ///
    /// Browser: only 1000 and 3000–4999 may be sent; a frame built here
    /// with another code is refused by
    /// [`Connection::ws_send`](crate::Connection::ws_send) with
    /// [`ErrorKind::InvalidCloseCode`].
    pub fn close(code: u16, reason: impl Into<String>) -> Result<Frame, Error> {
        let frame = CloseFrame::new(code, reason)?;
        Ok(Frame::Close(Some(frame)))
    }

    /// Checks that this frame may be sent by a client: control payloads fit in
    /// 125 bytes and close codes are sendable. (What only a browser refuses,
    /// pings, pongs and close codes outside 1000 and 3000–4999, is checked
    /// by `ws_send` in the browser.)
    pub(crate) fn validate_outgoing(&self) -> Result<(), Error> {
        match self {
            Frame::Ping(data) | Frame::Pong(data) if data.len() > MAX_CONTROL_PAYLOAD_BYTES => {
                Err(Error::new(
                    ErrorKind::InvalidFrame,
                    format!(
                        "a ping or pong payload is at most {MAX_CONTROL_PAYLOAD_BYTES} bytes, got {}",
                        data.len()
                    ),
                ))
            }
            Frame::Close(Some(close)) => close.validate(),
            _ => Ok(()),
        }
    }
}

impl CloseCode {
    /// A close code that a client may send: 1000–1003, 1007–1014 and
    /// 3000–4999. Anything else is an [`ErrorKind::InvalidCloseCode`] error.
    ///
    /// Browsers are stricter: they only let scripts send 1000 and 3000–4999;
    /// the browser transport refuses the rest with the same error kind.
    pub fn new(code: u16) -> Result<CloseCode, Error> {
        if Self::is_sendable(code) {
            Ok(CloseCode(code))
        } else {
            Err(Error::new(
                ErrorKind::InvalidCloseCode,
                format!(
                    "close code {code} may not be sent (allowed: 1000-1003, 1007-1014, 3000-4999)"
                ),
            ))
        }
    }
}

impl CloseFrame {
    /// A close frame validated for sending (see [`Frame::close`]).
    pub fn new(code: u16, reason: impl Into<String>) -> Result<CloseFrame, Error> {
        let frame = CloseFrame {
            code: CloseCode::new(code)?,
            reason: reason.into(),
        };
        frame.validate()?;
        Ok(frame)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        CloseCode::new(self.code.0)?;
        if self.reason.len() > MAX_CLOSE_REASON_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidFrame,
                format!(
                    "a close reason is at most {MAX_CLOSE_REASON_BYTES} bytes, got {}",
                    self.reason.len()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_rfc6455() {
        for ok in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(CloseCode::new(ok).is_ok(), "{ok} should be sendable");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, u16::MAX] {
            let err = CloseCode::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidCloseCode, "{bad}");
        }
    }

    #[test]
    fn browser_close_codes_are_stricter() {
        assert!(CloseCode::is_sendable_by_browser(1000));
        assert!(CloseCode::is_sendable_by_browser(4000));
        assert!(!CloseCode::is_sendable_by_browser(1001));
        assert!(!CloseCode::is_sendable_by_browser(1011));
    }

    #[test]
    fn over_long_close_reason_is_refused() {
        let err = Frame::close(1000, "x".repeat(124)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFrame);
        assert!(Frame::close(1000, "x".repeat(123)).is_ok());
    }

    #[test]
    fn oversize_ping_is_refused() {
        let err = Frame::Ping(vec![0; 126].into())
            .validate_outgoing()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFrame);
        assert!(Frame::Ping(vec![0; 125].into()).validate_outgoing().is_ok());
    }
}
