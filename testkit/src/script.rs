//! Parsing a connection's behaviour from the query string of its upgrade request.
//!
//! See the [module documentation](super) for the meaning of every parameter.

use std::time::Duration;

/// Largest `send=N` accepted.
const MAX_SEND: u64 = 1_000_000;
/// Largest `size=BYTES` accepted (64 MiB: wstether's default message limit,
/// so that single frames above the 16 MiB default frame limit can be sent).
const MAX_SIZE: usize = 64 << 20;
/// Size of the `trickle_ms` message when `size` is not given (64 KiB).
pub(crate) const TRICKLE_DEFAULT_SIZE: usize = 64 << 10;
/// Payload of every ping of a `ping_flood` without `size`.
pub(crate) const FLOOD_PING_PAYLOAD: &[u8] = b"flood";
/// The largest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest `delay_ms` / `ping_every` accepted (10 minutes).
const MAX_MS: u64 = 600_000;
/// Largest close reason in bytes (a control frame carries at most 125 bytes).
const MAX_REASON: usize = 123;

/// How the server picks the `Sec-WebSocket-Protocol` of its 101 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolChoice {
    /// The first protocol the client offered, if any (no `protocol` parameter).
    FirstOffered,
    /// None at all (`protocol=`).
    None,
    /// This one, offered or not (`protocol=NAME`).
    Forced(String),
}

/// Kind of the frames sent by `send=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Text,
    Binary,
}

/// A deliberately invalid frame sent right after the upgrade (`bad_frame=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// A text frame whose payload is not UTF-8.
    Utf8,
    /// A ping frame with FIN = 0.
    FragmentedPing,
    /// A frame with the reserved opcode 0x3.
    ReservedOpcode,
    /// A binary frame header announcing 100 MiB, followed by a few bytes.
    Oversize,
    /// A binary message of 512 KiB in 8 fragments of 64 KiB: every frame
    /// is small, the message is not.
    OversizeMessage,
    /// One honest 65,550-byte binary frame whose payload starts with
    /// `\r\n\r\n` and the header of a 64 KiB binary frame, then a close
    /// frame (1000): a reader that looks for the end of the HTTP head in
    /// the frames sees a phantom message.
    PhantomHead,
    /// A close frame (1000), then a binary frame of 70,000 bytes: data
    /// after Close, large enough for the fast path.
    DataAfterCloseLarge,
    /// A close frame (1000), then a binary frame of 1,000 bytes.
    DataAfterCloseSmall,
    /// A masked binary frame (servers never mask, RFC 6455 §5.1).
    Masked,
    /// A binary frame with RSV2 set (no extension defines it, §5.2).
    Rsv2,
    /// A ping of 126 bytes (control frames carry at most 125, §5.5).
    ControlTooLong,
    /// A continuation frame that continues nothing (§5.4).
    ContinuationFirst,
    /// A text fragment, then a new text message inside it (§5.4).
    DataInFragment,
    /// A text message in two fragments with a ping between them (allowed,
    /// §5.4), then a close frame (1000).
    PingBetweenFragments,
    /// A binary frame whose 64-bit length has its top bit set (§5.2).
    LengthTopBit,
    /// A close frame (1001): the client answers it (§5.5.1).
    Close,
}

/// The payload of [`BadFrame::PhantomHead`]'s frame: 65,550 bytes.
pub(crate) const PHANTOM_PAYLOAD: usize = 65_550;

/// An unmasked server frame: FIN, `opcode`, the shortest length, `payload`.
pub(crate) fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = binary_header(payload.len() as u64);
    v[0] = 0x80 | opcode;
    v.extend_from_slice(payload);
    v
}

impl BadFrame {
    /// The raw bytes of this frame as a server (unmasked) would write them.
    pub(crate) fn bytes(self) -> Vec<u8> {
        match self {
            // FIN + text, length 2, "\xC3\x28" is an invalid two-byte sequence.
            BadFrame::Utf8 => vec![0x81, 0x02, 0xC3, 0x28],
            // FIN = 0 + ping, length 2, "hi".
            BadFrame::FragmentedPing => vec![0x09, 0x02, b'h', b'i'],
            // FIN + opcode 3, length 0.
            BadFrame::ReservedOpcode => vec![0x83, 0x00],
            BadFrame::Oversize => {
                let mut v = vec![0x82, 0x7F];
                v.extend_from_slice(&(100u64 << 20).to_be_bytes());
                v.extend(std::iter::repeat_n(0u8, 1024));
                v
            }
            BadFrame::OversizeMessage => {
                const FRAGMENT: usize = 64 << 10;
                let mut v = Vec::with_capacity(8 * (FRAGMENT + 10));
                for i in 0..8 {
                    // Binary first, continuations after; FIN on the last.
                    let opcode = if i == 0 { 0x02 } else { 0x00 };
                    let fin = if i == 7 { 0x80 } else { 0x00 };
                    v.extend_from_slice(&[fin | opcode, 0x7F]);
                    v.extend_from_slice(&(FRAGMENT as u64).to_be_bytes());
                    v.extend(std::iter::repeat_n(b'm', FRAGMENT));
                }
                v
            }
            BadFrame::PhantomHead => {
                let mut payload = b"\r\n\r\n".to_vec();
                payload.extend_from_slice(&binary_header(1 << 16));
                payload.resize(PHANTOM_PAYLOAD, b'p');
                let mut v = server_frame(0x2, &payload);
                v.extend(server_frame(0x8, &1000u16.to_be_bytes()));
                v
            }
            BadFrame::Masked => vec![0x82, 0x82, 1, 2, 3, 4, b'm' ^ 1, b'k' ^ 2],
            BadFrame::Rsv2 => vec![0xa2, 0x01, b'r'],
            BadFrame::ControlTooLong => {
                let mut v = vec![0x89, 126, 0, 126];
                v.extend(std::iter::repeat_n(b'p', 126));
                v
            }
            BadFrame::ContinuationFirst => vec![0x80, 0x01, b'c'],
            BadFrame::DataInFragment => vec![0x01, 0x01, b'a', 0x81, 0x01, b'b'],
            BadFrame::PingBetweenFragments => {
                let mut v = vec![0x01, 0x01, b'a', 0x89, 0x01, b'p', 0x80, 0x01, b'b'];
                v.extend(server_frame(0x8, &1000u16.to_be_bytes()));
                v
            }
            BadFrame::LengthTopBit => {
                let mut v = vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
                v.extend_from_slice(&[0; 16]);
                v
            }
            BadFrame::Close => server_frame(0x8, &1001u16.to_be_bytes()),
            BadFrame::DataAfterCloseLarge | BadFrame::DataAfterCloseSmall => {
                let len = if self == BadFrame::DataAfterCloseLarge {
                    70_000
                } else {
                    1_000
                };
                let mut v = server_frame(0x8, &1000u16.to_be_bytes());
                v.extend(server_frame(0x2, &vec![b'a'; len]));
                v
            }
        }
    }
}

/// The behaviour requested for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    pub protocol: ProtocolChoice,
    pub reject: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub close: Option<(u16, String)>,
    pub close_after: u64,
    pub send: u64,
    pub size: usize,
    pub kind: FrameKind,
    pub ping_every: Option<Duration>,
    pub silent: bool,
    pub drop_after: Option<u64>,
    pub no_upgrade: bool,
    pub garbage: bool,
    pub bad_frame: Option<BadFrame>,
    pub delay: Option<Duration>,
    /// `size` was given explicitly (else `trickle_ms` uses its own default).
    pub size_given: bool,
    pub ping_flood: bool,
    pub never_read: bool,
    pub claim_len: Option<u64>,
    pub trickle: Option<Duration>,
    /// `head_lf=1`: the 101 answer's lines end in a bare LF.
    pub head_lf: bool,
    /// `close_hold=1`: send a close frame (`close=` code, else 1000), then
    /// read and discard, never answering, keeping the TCP open.
    pub close_hold: bool,
    /// `tiny_frames=N`: send N 1-byte binary frames, one write each, then
    /// hold the connection, reading nothing.
    pub tiny_frames: Option<u64>,
    /// `tiny_pace_ms=MS`: wait this long between two `tiny_frames`, so
    /// that each arrives in a read of its own.
    pub tiny_pace: Option<Duration>,
    /// `large_first=1`: before a `bad_frame`, a 70,000-byte binary frame
    /// (the client's fast path for large messages takes it).
    pub large_first: bool,
    /// `bad_101=accept|upgrade|connection`: the 101 answer with a wrong
    /// `Sec-WebSocket-Accept`, or without its `Upgrade` or `Connection`
    /// header.
    pub bad_101: Option<Bad101>,
    /// `h2_reset=1` (HTTP/2 only): once the client sent its first bytes,
    /// the first bytes of a binary frame, then `RST_STREAM(INTERNAL_ERROR)`.
    pub h2_reset: bool,
    /// `h2_goaway=1` (HTTP/2 only): once the client sent its first bytes,
    /// `GOAWAY(NO_ERROR)` with the stream open, and the connection ends.
    pub h2_goaway: bool,
    /// `h2_freeze=1` (HTTP/2 only): once the client sent its first bytes,
    /// the server stops serving the whole HTTP/2 connection (no reads, no
    /// answers to PINGs), its TCP left open for a minute: a hung peer.
    pub h2_freeze: bool,
}

/// What `bad_101=` breaks in the 101 answer (RFC 6455 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad101 {
    Accept,
    Upgrade,
    Connection,
}

/// The size of the `large_first` frame's payload.
pub(crate) const LARGE_FIRST: usize = 70_000;

impl Default for Script {
    fn default() -> Self {
        Script {
            protocol: ProtocolChoice::FirstOffered,
            reject: None,
            headers: Vec::new(),
            close: None,
            close_after: 0,
            send: 0,
            size: 16,
            kind: FrameKind::Text,
            ping_every: None,
            silent: false,
            drop_after: None,
            no_upgrade: false,
            garbage: false,
            bad_frame: None,
            delay: None,
            size_given: false,
            ping_flood: false,
            never_read: false,
            claim_len: None,
            trickle: None,
            head_lf: false,
            close_hold: false,
            tiny_frames: None,
            tiny_pace: None,
            large_first: false,
            bad_101: None,
            h2_reset: false,
            h2_goaway: false,
            h2_freeze: false,
        }
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad value for {name}: {value:?}"))
}

fn bounded_ms(name: &str, value: &str, min: u64) -> Result<Duration, String> {
    let ms: u64 = number(name, value)?;
    if ms < min || ms > MAX_MS {
        return Err(format!("{name} must be in {min}..={MAX_MS}"));
    }
    Ok(Duration::from_millis(ms))
}

fn flag(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "yes" | "" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!("bad value for {name}: {value:?}")),
    }
}

/// Whether `value` can be written as an HTTP header value.
pub(crate) fn valid_header_value(value: &str) -> bool {
    http::HeaderValue::from_str(value).is_ok()
}

impl Script {
    /// Parses the query part of a request target (`path?query`); the path is ignored.
    ///
    /// Unknown parameters are ignored (browsers may add cache-busters); a bad
    /// value gives an error message meant for a `400 Bad Request` body.
    pub(crate) fn from_target(target: &str) -> Result<Script, String> {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut s = Script::default();
        let mut reason = String::new();
        let mut close_code = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.as_ref();
            match name.as_ref() {
                "protocol" if value.is_empty() => s.protocol = ProtocolChoice::None,
                "protocol" => {
                    if !valid_header_value(value) || value.contains(',') {
                        return Err(format!("bad protocol: {value:?}"));
                    }
                    s.protocol = ProtocolChoice::Forced(value.to_owned());
                }
                "reject" => {
                    let status: u16 = number("reject", value)?;
                    if !(200..=599).contains(&status) {
                        return Err("reject must be an HTTP status in 200..=599".into());
                    }
                    s.reject = Some(status);
                }
                "header" => {
                    let (n, v) = value
                        .split_once(':')
                        .ok_or_else(|| format!("header must be NAME:VALUE, got {value:?}"))?;
                    let v = v.trim();
                    if http::HeaderName::from_bytes(n.as_bytes()).is_err() || !valid_header_value(v)
                    {
                        return Err(format!("bad header: {value:?}"));
                    }
                    s.headers.push((n.to_owned(), v.to_owned()));
                }
                "close" => close_code = Some(number::<u16>("close", value)?),
                "reason" => {
                    if value.len() > MAX_REASON {
                        return Err(format!("reason longer than {MAX_REASON} bytes"));
                    }
                    reason = value.to_owned();
                }
                "after" => s.close_after = number("after", value)?,
                "send" => {
                    s.send = number("send", value)?;
                    if s.send > MAX_SEND {
                        return Err(format!("send must be at most {MAX_SEND}"));
                    }
                }
                "size" => {
                    s.size = number("size", value)?;
                    s.size_given = true;
                    if s.size > MAX_SIZE {
                        return Err(format!("size must be at most {MAX_SIZE}"));
                    }
                }
                "kind" => {
                    s.kind = match value {
                        "text" => FrameKind::Text,
                        "binary" => FrameKind::Binary,
                        _ => return Err(format!("kind must be text or binary, got {value:?}")),
                    }
                }
                "ping_every" => s.ping_every = Some(bounded_ms("ping_every", value, 1)?),
                "silent" => s.silent = flag("silent", value)?,
                "drop_after" => s.drop_after = Some(number("drop_after", value)?),
                "no_upgrade" => s.no_upgrade = flag("no_upgrade", value)?,
                "garbage" => s.garbage = flag("garbage", value)?,
                "bad_frame" => {
                    s.bad_frame = Some(match value {
                        "utf8" => BadFrame::Utf8,
                        "fragmented_ping" => BadFrame::FragmentedPing,
                        "reserved_opcode" => BadFrame::ReservedOpcode,
                        "oversize" => BadFrame::Oversize,
                        "oversize_message" => BadFrame::OversizeMessage,
                        "phantom_head" => BadFrame::PhantomHead,
                        "data_after_close_large" => BadFrame::DataAfterCloseLarge,
                        "data_after_close_small" => BadFrame::DataAfterCloseSmall,
                        "masked" => BadFrame::Masked,
                        "rsv2" => BadFrame::Rsv2,
                        "control_too_long" => BadFrame::ControlTooLong,
                        "continuation_first" => BadFrame::ContinuationFirst,
                        "data_in_fragment" => BadFrame::DataInFragment,
                        "ping_between_fragments" => BadFrame::PingBetweenFragments,
                        "length_top_bit" => BadFrame::LengthTopBit,
                        "close" => BadFrame::Close,
                        _ => return Err(format!("unknown bad_frame: {value:?}")),
                    })
                }
                "delay_ms" => s.delay = Some(bounded_ms("delay_ms", value, 0)?),
                "ping_flood" => s.ping_flood = flag("ping_flood", value)?,
                "never_read" => s.never_read = flag("never_read", value)?,
                "claim_len" => s.claim_len = Some(number("claim_len", value)?),
                "trickle_ms" => s.trickle = Some(bounded_ms("trickle_ms", value, 1)?),
                "head_lf" => s.head_lf = flag("head_lf", value)?,
                "h2_reset" => s.h2_reset = flag("h2_reset", value)?,
                "h2_goaway" => s.h2_goaway = flag("h2_goaway", value)?,
                "h2_freeze" => s.h2_freeze = flag("h2_freeze", value)?,
                "close_hold" => s.close_hold = flag("close_hold", value)?,
                "tiny_frames" => {
                    let n = number("tiny_frames", value)?;
                    if n > MAX_SEND {
                        return Err(format!("tiny_frames must be at most {MAX_SEND}"));
                    }
                    s.tiny_frames = Some(n);
                }
                "tiny_pace_ms" => s.tiny_pace = Some(bounded_ms("tiny_pace_ms", value, 1)?),
                "large_first" => s.large_first = flag("large_first", value)?,
                "bad_101" => {
                    s.bad_101 = Some(match value {
                        "accept" => Bad101::Accept,
                        "upgrade" => Bad101::Upgrade,
                        "connection" => Bad101::Connection,
                        _ => return Err(format!("unknown bad_101: {value:?}")),
                    })
                }
                _ => {}
            }
        }
        if s.ping_flood && s.size_given && s.size > MAX_CONTROL_PAYLOAD {
            return Err(format!(
                "with ping_flood, size is the ping payload: at most {MAX_CONTROL_PAYLOAD}"
            ));
        }
        s.close = close_code.map(|c| (c, reason));
        Ok(s)
    }
}

impl Script {
    /// The payload of every ping of a `ping_flood`: `size` bytes of
    /// `floodflood…` if `size` was given, else `flood`.
    pub(crate) fn flood_payload(&self) -> Vec<u8> {
        if self.size_given {
            FLOOD_PING_PAYLOAD
                .iter()
                .copied()
                .cycle()
                .take(self.size)
                .collect()
        } else {
            FLOOD_PING_PAYLOAD.to_vec()
        }
    }

    /// The size of the `trickle_ms` message: `size` if given, else 64 KiB.
    pub(crate) fn trickle_size(&self) -> usize {
        if self.size_given {
            self.size
        } else {
            TRICKLE_DEFAULT_SIZE
        }
    }
}

/// The header of an unmasked, final binary frame announcing `len` payload
/// bytes, in the shortest encoding of RFC 6455 §5.2 (7, 16 or 64 bits).
/// A `len` of 2^63 or more sets the most significant bit of the 64-bit
/// length, which the RFC forbids: a lie of its own.
pub(crate) fn binary_header(len: u64) -> Vec<u8> {
    let mut v = vec![0x82];
    if len < 126 {
        v.push(len as u8);
    } else if len <= u64::from(u16::MAX) {
        v.push(126);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.push(127);
        v.extend_from_slice(&len.to_be_bytes());
    }
    v
}

/// Payload of frame `index` of a `send=N` burst: `"{index} "` padded with `x` to `size`.
pub(crate) fn burst_payload(index: u64, size: usize) -> String {
    let mut p = format!("{index} ");
    if p.len() < size {
        p.extend(std::iter::repeat_n('x', size - p.len()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_echo() {
        assert_eq!(Script::from_target("/").unwrap(), Script::default());
        assert_eq!(Script::from_target("/x?").unwrap(), Script::default());
    }

    #[test]
    fn parses_combined() {
        let s = Script::from_target(
            "/a?protocol=chat&header=X-A:%20b&header=x-c:d&close=1001&reason=bye%20now&after=2\
             &send=3&size=8&kind=binary&ping_every=50&drop_after=4&delay_ms=10&cb=123",
        )
        .unwrap();
        assert_eq!(s.protocol, ProtocolChoice::Forced("chat".into()));
        assert_eq!(
            s.headers,
            vec![("X-A".into(), "b".into()), ("x-c".into(), "d".into())]
        );
        assert_eq!(s.close, Some((1001, "bye now".into())));
        assert_eq!(s.close_after, 2);
        assert_eq!((s.send, s.size, s.kind), (3, 8, FrameKind::Binary));
        assert_eq!(s.ping_every, Some(Duration::from_millis(50)));
        assert_eq!(s.drop_after, Some(4));
        assert_eq!(s.delay, Some(Duration::from_millis(10)));
    }

    #[test]
    fn empty_protocol_means_none() {
        let s = Script::from_target("/?protocol=").unwrap();
        assert_eq!(s.protocol, ProtocolChoice::None);
    }

    #[test]
    fn rejects_bad_values() {
        for q in [
            "/?reject=abc",
            "/?reject=101",
            "/?close=70000",
            "/?header=nocolon",
            "/?header=bad%20name:v",
            "/?header=x:a%0D%0Ab",
            "/?kind=json",
            "/?ping_every=0",
            "/?bad_frame=nope",
            "/?send=-1",
            "/?silent=maybe",
            "/?protocol=a%0Ab",
        ] {
            assert!(Script::from_target(q).is_err(), "{q} should be rejected");
        }
    }

    #[test]
    fn parses_hostile_modes() {
        let s = Script::from_target("/?ping_flood=1&never_read=1&claim_len=68719476736").unwrap();
        assert!(s.ping_flood && s.never_read);
        assert_eq!(s.flood_payload(), b"flood");
        assert_eq!(s.claim_len, Some(1 << 36));
        let s = Script::from_target("/?ping_flood=1&size=7").unwrap();
        assert_eq!(s.flood_payload(), b"floodfl");
        let s = Script::from_target("/?trickle_ms=50").unwrap();
        assert_eq!(s.trickle, Some(Duration::from_millis(50)));
        assert_eq!(s.trickle_size(), TRICKLE_DEFAULT_SIZE);
        let s = Script::from_target("/?trickle_ms=5&size=10").unwrap();
        assert_eq!(s.trickle_size(), 10);
        let s = Script::from_target("/?send=1&size=20971520").unwrap();
        assert_eq!(s.size, 20 << 20);
        let s = Script::from_target("/?claim_len=9223372036854775808").unwrap();
        assert_eq!(s.claim_len, Some(1 << 63));
        for q in [
            "/?ping_flood=2",
            "/?never_read=x",
            "/?claim_len=-1",
            "/?claim_len=18446744073709551616",
            "/?trickle_ms=0",
            "/?size=67108865",
            "/?ping_flood=1&size=126",
        ] {
            assert!(Script::from_target(q).is_err(), "{q} should be rejected");
        }
    }

    #[test]
    fn binary_headers_use_the_shortest_length() {
        assert_eq!(binary_header(5), [0x82, 5]);
        assert_eq!(binary_header(126), [0x82, 126, 0, 126]);
        assert_eq!(binary_header(1 << 16), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(binary_header(1 << 63)[2], 0x80);
    }

    #[test]
    fn payloads() {
        assert_eq!(burst_payload(7, 5), "7 xxx");
        assert_eq!(burst_payload(12345, 2), "12345 ");
    }

    #[test]
    fn parses_the_wire_hostile_modes() {
        let s =
            Script::from_target("/?head_lf=1&close_hold=1&tiny_frames=5&bad_frame=phantom_head")
                .unwrap();
        assert!(s.head_lf && s.close_hold);
        assert_eq!(s.tiny_frames, Some(5));
        assert_eq!(s.bad_frame, Some(BadFrame::PhantomHead));
        let bytes = BadFrame::PhantomHead.bytes();
        // 10 header bytes, the payload, then a 4-byte close frame.
        assert_eq!(bytes.len(), 10 + PHANTOM_PAYLOAD + 4);
        assert_eq!(&bytes[10..14], b"\r\n\r\n");
        let after = BadFrame::DataAfterCloseLarge.bytes();
        assert_eq!(&after[..2], &[0x88, 0x02]);
        assert_eq!(after.len(), 4 + 10 + 70_000);
        assert!(Script::from_target("/?tiny_frames=1000001").is_err());
    }

    #[test]
    fn an_oversize_message_is_eight_small_fragments() {
        let script = Script::from_target("/?bad_frame=oversize_message").unwrap();
        assert_eq!(script.bad_frame, Some(BadFrame::OversizeMessage));
        let bytes = BadFrame::OversizeMessage.bytes();
        assert_eq!(bytes.len(), 8 * (10 + (64 << 10)));
        // Binary without FIN first, FIN + continuation last.
        assert_eq!(bytes[0], 0x02);
        assert_eq!(bytes[7 * (10 + (64 << 10))], 0x80);
    }
}
