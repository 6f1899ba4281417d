//! The browser transport: the page's `WebSocket`, through web-sys (not
//! gloo-net, which hides `bufferedAmount` and the exact close codes).
//!
//! A browser has no connection below the WebSocket, so [`Transport::dial`]
//! resolves at once and the whole connection is made by the upgrade. The
//! socket's callbacks push what happens into a shared queue and wake the
//! driver; nothing is decided here.
//!
//! What a browser cannot do is refused up front, never ignored: custom
//! upgrade headers, ping and pong frames, ping keepalives, close codes
//! other than 1000 and 3000–4999, extra root certificates.
//!
//! No silent loss: `send` only copies into the browser's buffer, so every
//! frame handed over is kept with its size until `bufferedAmount` shows it
//! has left (see [`InFlight`]); when the socket dies, the frames that may
//! still be in that buffer come back as unsent. Frames that left it but
//! had not reached the server when the connection died are lost, as they
//! are natively once written to the kernel.
//!
//! Two browser rules differ from native: once a close frame was sent
//! (`close()` was called), the browser drops the messages still arriving
//! before the server's close; and the status and headers of a refused
//! upgrade are hidden from scripts (`UpgradeFailed { status: None }`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use gloo_timers::future::TimeoutFuture;
use http::{HeaderMap, HeaderValue};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

mod read;

use super::buffered::InFlight;
use super::{Socket, Target, Transport, UpgradeFailure, Upgraded};
use crate::browser_policy;
use crate::core::{Outgoing, Seq, WireFrame};
use crate::error::{Error, ErrorKind};
use crate::frame::{CloseCode, CloseFrame, Frame};
use crate::options::Options;
use crate::request::ValidUpgrade;
use crate::rt::BoxFuture;

/// Above this many bytes in `bufferedAmount`, no more frames are handed
/// over: they wait in the send queue, where back-pressure applies.
const HIGH_WATER_BYTES: u32 = 4 << 20;
/// How often a full buffer is looked at again (browsers have no drain event).
const DRAIN_RECHECK_MS: u32 = 5;

pub(crate) struct BrowserTransport;

impl Transport for BrowserTransport {
    type Dialed = ();
    type Socket = BrowserSocket;

    fn check_options(options: &Options) -> Result<(), Error> {
        crate::browser_policy::browser_unsupported(options)
    }

    fn check_upgrade(upgrade: &ValidUpgrade) -> Result<(), Error> {
        if !upgrade.headers.is_empty() {
            let names: Vec<&str> = upgrade.headers.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{} (asked: {})",
                    browser_policy::UPGRADE_HEADERS.reason(),
                    names.join(", ")
                ),
            ));
        }
        for (i, protocol) in upgrade.protocols.iter().enumerate() {
            if upgrade.protocols[..i].contains(protocol) {
                return Err(Error::new(
                    ErrorKind::InvalidHeader,
                    format!("subprotocol {protocol:?} is offered twice (browsers refuse that)"),
                ));
            }
        }
        Ok(())
    }

    fn check_frame(frame: &Frame) -> Result<(), Error> {
        match frame {
            Frame::Ping(_) | Frame::Pong(_) => Err(browser_policy::PING_PONG.refuse()),
            Frame::Close(Some(close))
                if !CloseCode::is_sendable_by_browser(close.code.as_u16()) =>
            {
                Err(Error::new(
                    ErrorKind::InvalidCloseCode,
                    format!(
                        "close code {} cannot be sent from a browser ({})",
                        close.code,
                        browser_policy::CLOSE_CODES.reason()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn dial(_target: &Target, _options: &Options) -> BoxFuture<Result<(), Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn upgrade(
        _dialed: (),
        target: &Target,
        upgrade: ValidUpgrade,
        options: &Options,
    ) -> BoxFuture<Result<Upgraded<BrowserSocket>, UpgradeFailure>> {
        let url = target.url_for(&upgrade);
        // A browser hands over whole messages: the message limit applies.
        let limits = Limits {
            message: options.message_limit(),
            unread: options.event_queue_bytes,
        };
        match JsWebSocket::open(&url, &upgrade.protocols, limits) {
            Ok(socket) => Box::pin(Opening {
                socket: Some(socket),
                url,
            }),
            Err(error) => Box::pin(std::future::ready(Err(UpgradeFailure::from(error)))),
        }
    }
}

/// How the socket closed, from its `close` event.
struct Closed {
    code: u16,
    reason: String,
}

/// The bounds on what arrives: a browser cannot pause reading, so a
/// message over the limit, or more unread bytes than the application lets
/// wait, end the connection instead of growing memory.
#[derive(Clone, Copy)]
struct Limits {
    message: usize,
    unread: usize,
}

/// What the callbacks saw, waiting for the driver.
struct SocketState {
    opened: bool,
    /// An `error` event arrived (before `close`, which always follows).
    errored: bool,
    incoming: VecDeque<Frame>,
    incoming_bytes: usize,
    limits: Limits,
    /// A bound was broken: reported once `incoming` is drained.
    overflow: Option<Error>,
    closed: Option<Closed>,
    waker: Option<Waker>,
}

impl SocketState {
    fn new(limits: Limits) -> SocketState {
        SocketState {
            opened: false,
            errored: false,
            incoming: VecDeque::new(),
            incoming_bytes: 0,
            limits,
            overflow: None,
            closed: None,
            waker: None,
        }
    }

    /// Keeps a message for the driver, unless it breaks a bound: then the
    /// message is dropped at once and the error returned (the socket must
    /// be closed; scripts may not send 1009, so it closes with 1000).
    fn accept(&mut self, frame: Frame) -> Option<(Error, &'static str)> {
        if self.overflow.is_some() {
            return None;
        }
        let len = frame.len();
        let broken = if len > self.limits.message {
            Some((
                Error::new(
                    ErrorKind::MessageTooBig,
                    format!(
                        "a {len} byte message exceeds the limit of {} bytes",
                        self.limits.message
                    ),
                ),
                "message too big",
            ))
        } else if self.incoming_bytes > 0 && self.incoming_bytes + len > self.limits.unread {
            Some((
                Error::new(
                    ErrorKind::QueueFull,
                    format!(
                        "more than {} bytes of events waited unread (Options::event_queue_bytes); \
                         a browser cannot pause reading, so the connection ends",
                        self.limits.unread
                    ),
                ),
                "client too slow",
            ))
        } else {
            None
        };
        match broken {
            Some((error, reason)) => {
                self.overflow = Some(error.clone());
                Some((error, reason))
            }
            None => {
                self.incoming_bytes += len;
                self.incoming.push_back(frame);
                None
            }
        }
    }
}

impl SocketState {
    /// Wakes the driver from one of the socket's callbacks: it runs right
    /// here, not in a microtask (`rt::wake_from_event`).
    fn wake(state: &RefCell<SocketState>) {
        // Take the waker out before waking, so no borrow is held meanwhile
        // (the driver reads this state as it runs).
        let waker = state.borrow_mut().waker.take();
        if let Some(waker) = waker {
            crate::rt::wake_from_event(waker);
        }
    }

    fn register(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }
}

/// A `WebSocket` and its callbacks; dropping it clears every handler and
/// closes the socket if it is still connecting or open.
struct JsWebSocket {
    ws: WebSocket,
    state: Rc<RefCell<SocketState>>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl JsWebSocket {
    fn open(url: &str, protocols: &[String], limits: Limits) -> Result<JsWebSocket, Error> {
        let created = if protocols.is_empty() {
            WebSocket::new(url)
        } else {
            let offered: js_sys::Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
            WebSocket::new_with_str_sequence(url, &offered)
        };
        let ws = created.map_err(|e| {
            Error::new(
                ErrorKind::Upgrade,
                format!(
                    "the browser refused to open a WebSocket to {}: {}",
                    crate::redact::url(url),
                    js_message(&e)
                ),
            )
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let state = Rc::new(RefCell::new(SocketState::new(limits)));

        let on_open = {
            let state = state.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                state.borrow_mut().opened = true;
                SocketState::wake(&state);
            })
        };
        let on_message = {
            let state = state.clone();
            let ws = ws.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let frame = read::frame(&event.data());
                let broken = state.borrow_mut().accept(frame);
                if let Some((_, reason)) = broken {
                    let _ = ws.close_with_code_and_reason(1000, reason);
                }
                SocketState::wake(&state);
            })
        };
        let on_error = {
            let state = state.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                state.borrow_mut().errored = true;
                SocketState::wake(&state);
            })
        };
        let on_close = {
            let state = state.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                state.borrow_mut().closed = Some(Closed {
                    code: event.code(),
                    reason: event.reason(),
                });
                SocketState::wake(&state);
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(JsWebSocket {
            ws,
            state,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        })
    }
}

impl Drop for JsWebSocket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        if matches!(
            self.ws.ready_state(),
            WebSocket::CONNECTING | WebSocket::OPEN
        ) {
            // Cannot fail without a code; nothing to do if it did.
            let _ = self.ws.close();
        }
    }
}

fn js_message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// The upgrade in progress: resolves on `open`, or fails on `error` or
/// `close` before it.
struct Opening {
    socket: Option<JsWebSocket>,
    url: String,
}

impl Future for Opening {
    type Output = Result<Upgraded<BrowserSocket>, UpgradeFailure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(socket) = &this.socket else {
            return Poll::Ready(Err(UpgradeFailure::from(Error::new(
                ErrorKind::Upgrade,
                "the upgrade was polled after it finished",
            ))));
        };
        let failed = {
            let mut state = socket.state.borrow_mut();
            if state.opened {
                None
            } else if state.errored || state.closed.is_some() {
                Some(state.closed.as_ref().map(|c| c.code))
            } else {
                state.register(cx);
                return Poll::Pending;
            }
        };
        let Some(socket) = this.socket.take() else {
            return Poll::Pending;
        };
        if let Some(code) = failed {
            let code = code.map_or(String::new(), |code| format!(", close code {code}"));
            return Poll::Ready(Err(UpgradeFailure::from(Error::new(
                ErrorKind::Upgrade,
                format!(
                    "the WebSocket to {} did not open{code}: the server refused the upgrade or \
                     could not be reached (a browser hides the HTTP status and headers from \
                     scripts)",
                    crate::redact::url(&this.url)
                ),
            ))));
        }
        let protocol = Some(socket.ws.protocol()).filter(|p| !p.is_empty());
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (http::header::SEC_WEBSOCKET_PROTOCOL, socket.ws.protocol()),
            (
                http::header::SEC_WEBSOCKET_EXTENSIONS,
                socket.ws.extensions(),
            ),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                if !value.is_empty() {
                    headers.insert(name, value);
                }
            }
        }
        Poll::Ready(Ok(Upgraded {
            socket: BrowserSocket {
                socket,
                in_flight: InFlight::default(),
                drain_timer: None,
                end_reported: false,
                send_budget: 0,
                settled: false,
            },
            protocol,
            headers,
            // The browser chooses its transport and does not say which.
            version: None,
        }))
    }
}

/// An open browser Websocket.
pub(crate) struct BrowserSocket {
    socket: JsWebSocket,
    in_flight: InFlight,
    /// Re-polls a full buffer.
    drain_timer: Option<TimeoutFuture>,
    /// Bytes that may still be sent before `bufferedAmount` is asked again:
    /// one crossing into JavaScript per batch instead of two per frame.
    send_budget: u32,
    /// The close was reported: the next `poll_recv` ends the stream.
    end_reported: bool,
    /// `in_flight` was settled against `bufferedAmount` by the flush and
    /// nothing was handed over since: `written_through` need not ask the
    /// browser again (one crossing per batch, not two).
    settled: bool,
}

impl BrowserSocket {
    fn buffered(&self) -> u32 {
        self.socket.ws.buffered_amount()
    }
}

impl Socket for BrowserSocket {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        let mut state = self.socket.state.borrow_mut();
        if let Some(frame) = state.incoming.pop_front() {
            state.incoming_bytes -= frame.len();
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = state.overflow.take() {
            self.end_reported = true;
            return Poll::Ready(Some(Err(error)));
        }
        if self.end_reported {
            return Poll::Ready(None);
        }
        let Some(closed) = &state.closed else {
            state.register(cx);
            return Poll::Pending;
        };
        self.end_reported = true;
        // Any code but 1006 came in the peer's close frame, even when the
        // browser reports `wasClean: false` (the TCP connection ended
        // abruptly after it): the peer closed, with that code.
        Poll::Ready(Some(match closed {
            Closed { code: 1005, .. } => Ok(Frame::Close(None)),
            Closed { code, reason, .. } if *code != 1006 => Ok(Frame::Close(Some(CloseFrame {
                code: CloseCode::from_wire(*code),
                reason: reason.clone(),
            }))),
            Closed { .. } => Err(Error::new(
                ErrorKind::Io,
                "the WebSocket closed without a close frame (1006)",
            )),
        }))
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        {
            let mut state = self.socket.state.borrow_mut();
            if state.closed.is_some() {
                // What is queued stays queued; the socket ends at once and
                // it comes back unsent.
                state.register(cx);
                return Poll::Pending;
            }
            if self.send_budget > 0 {
                return Poll::Ready(Ok(()));
            }
        }
        // The budget is spent: ask the browser what left its buffer, and
        // only if there is room, whether the socket still sends.
        loop {
            let buffered = self.buffered();
            self.in_flight.settle(u64::from(buffered));
            if buffered <= HIGH_WATER_BYTES {
                // The drain timer, if any, stays armed: one spurious wake
                // costs less than clearing it and making the next one.
                if self.socket.ws.ready_state() != WebSocket::OPEN {
                    // Closing: the close event (which wakes us) ends it.
                    self.socket.state.borrow_mut().register(cx);
                    return Poll::Pending;
                }
                self.send_budget = HIGH_WATER_BYTES - buffered;
                return Poll::Ready(Ok(()));
            }
            let timer = self
                .drain_timer
                .get_or_insert_with(|| TimeoutFuture::new(DRAIN_RECHECK_MS));
            match Pin::new(timer).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => self.drain_timer = None,
            }
        }
    }

    fn start_send(&mut self, out: &Outgoing) -> Result<(), Error> {
        let size = u32::try_from(out.frame.len()).unwrap_or(u32::MAX).max(1);
        self.send_budget = self.send_budget.saturating_sub(size);
        let ws = &self.socket.ws;
        let sent = match &out.frame {
            WireFrame::Text(text) => {
                debug_assert!(std::str::from_utf8(text).is_ok());
                // SAFETY: a `WireFrame::Text` is made from a `Utf8Bytes`,
                // so its bytes are valid UTF-8 (as the native socket relies
                // on too); checking again cost a pass over every text sent.
                ws.send_with_str(unsafe { std::str::from_utf8_unchecked(text) })
            }
            WireFrame::Binary(data) => ws.send_with_u8_array(data),
            WireFrame::Close(None) => ws.close(),
            WireFrame::Close(Some(close)) => {
                ws.close_with_code_and_reason(close.code.as_u16(), &close.reason)
            }
            WireFrame::Ping(_) | WireFrame::Pong(_) => {
                return Err(browser_policy::PING_PONG.refuse());
            }
        };
        // Recorded either way: a frame the browser refused is not known
        // written, so the core gives it back.
        self.in_flight.push(out);
        self.settled = false;
        sent.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("the browser refused the frame: {}", js_message(&e)),
            )
        })
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The browser owns its buffer: there is nothing to flush. Once per
        // batch, learn what left it (frames known sent are forgotten) and
        // how much more may go before asking again.
        let buffered = self.buffered();
        self.in_flight.settle(u64::from(buffered));
        self.send_budget = HIGH_WATER_BYTES.saturating_sub(buffered);
        self.settled = true;
        Poll::Ready(Ok(()))
    }

    fn written_through(&mut self) -> Option<Seq> {
        if !std::mem::take(&mut self.settled) {
            self.in_flight.settle(u64::from(self.buffered()));
        }
        self.in_flight.written_through()
    }

    fn bytes_written(&self) -> u64 {
        // The browser writes for itself; its buffer is bounded by
        // `HIGH_WATER_BYTES` in `poll_ready`, and a flush never blocks.
        0
    }

    fn start_fail_close(&mut self, code: u16) {
        // Scripts may only send 1000 and 3000-4999: say why in the reason.
        let reason = match code {
            1002 => "protocol error",
            1007 => "invalid UTF-8",
            1009 => "message too big",
            _ => "",
        };
        let _ = self.socket.ws.close_with_code_and_reason(1000, reason);
    }
}
