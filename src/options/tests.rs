//! The options' bounds and defaults.

use super::limits::*;
use super::*;
use crate::error::ErrorKind;
use crate::frame::Frame;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn keepalive(interval: Duration, timeout: Duration) -> Options {
    Options::default().keepalive(Keepalive::every(interval).timeout(timeout))
}

fn retry(retry: Retry) -> Options {
    Options::default().retry(retry)
}

/// The closures an `Options` keeps are `Send + Sync` natively, so the
/// connection's task may run on any thread.
#[cfg(native)]
#[test]
fn options_are_send_and_sync_natively() {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    send_sync::<Options>();
    send_sync::<Heartbeat>();
    send_sync::<dyn ReplyMatcher>();
    send_sync::<dyn UpgradeProvider>();
}

#[test]
fn defaults_are_valid() {
    Options::default().validate().unwrap();
}

#[test]
fn default_frame_limit_equals_the_message_limit() {
    let options = Options::default();
    assert_eq!(options.max_frame_size, options.max_message_size);
    assert_eq!(options.frame_limit(), 64 << 20);
    assert_eq!(options.message_limit(), 64 << 20);
}

#[test]
fn limits_are_finite() {
    let none = Options::default()
        .max_frame_size(MAX_MESSAGE_SIZE_CEILING)
        .max_message_size(MAX_MESSAGE_SIZE_CEILING);
    none.validate().unwrap();
    assert_eq!(none.frame_limit(), MAX_MESSAGE_SIZE_CEILING);
    assert_eq!(none.message_limit(), MAX_MESSAGE_SIZE_CEILING);
    // A frame limit above the message limit: the message limit applies.
    let big_frames = Options::default()
        .max_frame_size(8 << 20)
        .max_message_size(1 << 20);
    big_frames.validate().unwrap();
    assert_eq!(big_frames.frame_limit(), 1 << 20);
    assert_eq!(big_frames.message_limit(), 1 << 20);
}

/// Every option at its bounds and just past them: accepted or refused
/// with `InvalidOption`, as the table says.
#[test]
fn every_option_is_bounded() {
    let ceiling = MAX_MESSAGE_SIZE_CEILING;
    let past = MAX_DURATION + Duration::from_nanos(1);
    let cases: Vec<(&str, Options, bool)> = vec![
        // Durations of the options themselves.
        (
            "upgrade_timeout 0",
            Options::default().upgrade_timeout(Duration::ZERO),
            false,
        ),
        (
            "upgrade_timeout 1ns",
            Options::default().upgrade_timeout(Duration::from_nanos(1)),
            true,
        ),
        (
            "upgrade_timeout max",
            Options::default().upgrade_timeout(MAX_DURATION),
            true,
        ),
        (
            "upgrade_timeout past",
            Options::default().upgrade_timeout(past),
            false,
        ),
        (
            "upgrade_timeout MAX",
            Options::default().upgrade_timeout(Duration::MAX),
            false,
        ),
        (
            "closing_timeout 0",
            Options::default().closing_timeout(Duration::ZERO),
            false,
        ),
        (
            "closing_timeout max",
            Options::default().closing_timeout(MAX_DURATION),
            true,
        ),
        (
            "closing_timeout MAX",
            Options::default().closing_timeout(Duration::MAX),
            false,
        ),
        // Keepalive.
        ("keepalive 0/1", keepalive(Duration::ZERO, SEC), false),
        ("keepalive 1/0", keepalive(SEC, Duration::ZERO), false),
        (
            "keepalive max/max",
            keepalive(MAX_DURATION, MAX_DURATION),
            true,
        ),
        ("keepalive MAX/1", keepalive(Duration::MAX, SEC), false),
        ("keepalive 1/MAX", keepalive(SEC, Duration::MAX), false),
        ("keepalive past/1", keepalive(past, SEC), false),
        // Retry durations.
        (
            "initial_delay 0",
            retry(Retry::default().initial_delay(Duration::ZERO)),
            false,
        ),
        (
            "initial_delay 999us",
            retry(Retry::default().initial_delay(Duration::from_micros(999))),
            false,
        ),
        (
            "initial_delay 1ms",
            retry(Retry::default().initial_delay(MS)),
            true,
        ),
        (
            "max_delay 0",
            retry(Retry::default().initial_delay(MS).max_delay(Duration::ZERO)),
            false,
        ),
        (
            "max_delay max",
            retry(Retry::default().max_delay(MAX_DURATION)),
            true,
        ),
        (
            "max_delay past",
            retry(Retry::default().max_delay(past)),
            false,
        ),
        (
            "max_delay MAX",
            retry(Retry::default().max_delay(Duration::MAX)),
            false,
        ),
        (
            "initial=max=max",
            retry(
                Retry::default()
                    .initial_delay(MAX_DURATION)
                    .max_delay(MAX_DURATION),
            ),
            true,
        ),
        (
            "initial MAX",
            retry(
                Retry::default()
                    .initial_delay(Duration::MAX)
                    .max_delay(Duration::MAX),
            ),
            false,
        ),
        (
            "initial > max",
            retry(Retry::default().initial_delay(5 * SEC).max_delay(SEC)),
            false,
        ),
        (
            "reset_after 0",
            retry(Retry::default().reset_after(Duration::ZERO)),
            true,
        ),
        (
            "reset_after max",
            retry(Retry::default().reset_after(MAX_DURATION)),
            true,
        ),
        (
            "reset_after MAX",
            retry(Retry::default().reset_after(Duration::MAX)),
            false,
        ),
        (
            "connect_timeout 0",
            retry(Retry::default().connect_timeout(Duration::ZERO)),
            false,
        ),
        (
            "connect_timeout max",
            retry(Retry::default().connect_timeout(MAX_DURATION)),
            true,
        ),
        (
            "connect_timeout MAX",
            retry(Retry::default().connect_timeout(Duration::MAX)),
            false,
        ),
        // Retry numbers.
        (
            "max_retries 0",
            retry(Retry::default().max_retries(0)),
            true,
        ),
        (
            "max_retries u32::MAX",
            retry(Retry::default().max_retries(u32::MAX)),
            true,
        ),
        (
            "multiplier 1",
            retry(Retry::default().multiplier(1.0)),
            true,
        ),
        (
            "multiplier 1e300",
            retry(Retry::default().multiplier(1e300)),
            true,
        ),
        (
            "multiplier f64::MAX",
            retry(Retry::default().multiplier(f64::MAX)),
            true,
        ),
        (
            "multiplier 0.5",
            retry(Retry::default().multiplier(0.5)),
            false,
        ),
        (
            "multiplier -1",
            retry(Retry::default().multiplier(-1.0)),
            false,
        ),
        (
            "multiplier NaN",
            retry(Retry::default().multiplier(f64::NAN)),
            false,
        ),
        (
            "multiplier inf",
            retry(Retry::default().multiplier(f64::INFINITY)),
            false,
        ),
        ("jitter 0", retry(Retry::default().jitter(0.0)), true),
        ("jitter 1", retry(Retry::default().jitter(1.0)), true),
        ("jitter 1.5", retry(Retry::default().jitter(1.5)), false),
        ("jitter -0.1", retry(Retry::default().jitter(-0.1)), false),
        (
            "jitter NaN",
            retry(Retry::default().jitter(f64::NAN)),
            false,
        ),
        (
            "jitter inf",
            retry(Retry::default().jitter(f64::INFINITY)),
            false,
        ),
        // Sizes.
        (
            "max_frame_size 0",
            Options::default().max_frame_size(0),
            false,
        ),
        (
            "max_frame_size 1",
            Options::default().max_frame_size(1),
            true,
        ),
        (
            "max_frame_size ceiling",
            Options::default().max_frame_size(ceiling),
            true,
        ),
        (
            "max_frame_size past",
            Options::default().max_frame_size(ceiling + 1),
            false,
        ),
        (
            "max_frame_size usize::MAX",
            Options::default().max_frame_size(usize::MAX),
            false,
        ),
        (
            "max_message_size 0",
            Options::default().max_message_size(0),
            false,
        ),
        (
            "max_message_size ceiling",
            Options::default().max_message_size(ceiling),
            true,
        ),
        (
            "max_message_size usize::MAX",
            Options::default().max_message_size(usize::MAX),
            false,
        ),
        (
            "read_buffer_size 0",
            Options::default().read_buffer_size(0),
            false,
        ),
        (
            "read_buffer_size 63",
            Options::default().read_buffer_size(63),
            false,
        ),
        (
            "read_buffer_size 64",
            Options::default().read_buffer_size(64),
            true,
        ),
        (
            "read_buffer_size max",
            Options::default().read_buffer_size(MAX_READ_BUFFER_SIZE),
            true,
        ),
        (
            "read_buffer_size past",
            Options::default().read_buffer_size(MAX_READ_BUFFER_SIZE + 1),
            false,
        ),
        (
            "read_buffer_size usize::MAX",
            Options::default().read_buffer_size(usize::MAX),
            false,
        ),
        (
            "send_queue_bytes 0",
            Options::default().send_queue_bytes(0),
            false,
        ),
        (
            "send_queue_bytes 1",
            Options::default().send_queue_bytes(1),
            true,
        ),
        (
            "send_queue_bytes usize::MAX",
            Options::default().send_queue_bytes(usize::MAX),
            false,
        ),
        (
            "event_queue_len 0",
            Options::default().event_queue_len(0),
            false,
        ),
        (
            "event_queue_len 1",
            Options::default().event_queue_len(1),
            true,
        ),
        (
            "event_queue_len max",
            Options::default().event_queue_len(MAX_EVENT_QUEUE_LEN),
            true,
        ),
        (
            "event_queue_len past",
            Options::default().event_queue_len(MAX_EVENT_QUEUE_LEN + 1),
            false,
        ),
        (
            "event_queue_len usize::MAX",
            Options::default().event_queue_len(usize::MAX),
            false,
        ),
        // Heartbeats.
        (
            "ping heartbeat message",
            Options::default().keepalive(
                Keepalive::every(SEC)
                    .timeout(SEC)
                    .heartbeat(Heartbeat::echo(Frame::Ping(Default::default()))),
            ),
            false,
        ),
    ];
    for (name, options, valid) in cases {
        match options.validate() {
            Ok(()) => assert!(valid, "{name}: accepted, should be refused"),
            Err(err) => {
                assert!(!valid, "{name}: refused, should be accepted: {err}");
                assert_eq!(err.kind(), ErrorKind::InvalidOption, "{name}: {err}");
            }
        }
    }
}

#[test]
fn errors_name_the_option_and_its_bound() {
    let err = retry(Retry::default().initial_delay(Duration::ZERO))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("retry.initial_delay") && err.contains("1ms"),
        "{err}"
    );
    let err = Options::default()
        .upgrade_timeout(Duration::MAX)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("upgrade_timeout") && err.contains("24 days"),
        "{err}"
    );
    let err = Options::default()
        .max_frame_size(usize::MAX)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_frame_size") && err.contains(&MAX_MESSAGE_SIZE_CEILING.to_string()),
        "{err}"
    );
}

#[test]
fn max_duration_fits_a_browser_timer() {
    assert!(MAX_DURATION.as_millis() <= i32::MAX as u128);
    assert_eq!(MAX_DURATION_TEXT, format!("24 days ({MAX_DURATION:?})"));
}

#[test]
fn milliseconds_from_js_never_panic() {
    for bad in [
        f64::NAN,
        -1.0,
        f64::NEG_INFINITY,
        f64::INFINITY,
        1e300,
        f64::MAX,
    ] {
        let err = duration_from_millis("maxDelayMs", bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption, "{bad}");
        assert!(err.to_string().contains("maxDelayMs"), "{err}");
    }
    assert_eq!(duration_from_millis("x", 0.0).unwrap(), Duration::ZERO);
    assert_eq!(duration_from_millis("x", 1500.0).unwrap(), 1500 * MS);
    // Representable but past the bound: validate refuses it.
    let huge = duration_from_millis("x", 1e15).unwrap();
    let err = retry(Retry::default().max_delay(huge))
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
}
