//! The crate docs' example (src/lib.rs; the README's "Reconnect and
//! re-upgrade" follows the same pattern: ask again on each `Down` that will
//! reconnect, and the upgrade waits for the next `Up`), its loop copied as
//! is, against a testkit server: it never reaches its `UpgradeFailed` arm
//! and upgrades exactly once per connection, also when the first dial
//! fails and when the server restarts mid-session.
#![cfg(native)]

mod common;

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;

use futures::StreamExt;

use common::PATIENCE;
use wstether::{Connection, Event, FirstConnection, Frame, Options, Retry, Upgrade};
use wstether_testkit::TestServer;

type Hook = Box<dyn FnMut(&Event) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

fn no_hook() -> Hook {
    Box::new(|_| Box::pin(async {}))
}

/// What the loop did.
#[derive(Debug, Default)]
struct Session {
    /// `ws_upgrade_with` calls.
    upgrades: u32,
    ups: u32,
    upgraded: u32,
    frames: Vec<Frame>,
    downs: Vec<bool>,
}

/// The crate docs' example, its loop body unchanged but for the records
/// kept in `session`, `hook`, which sees each event first (the test's hand
/// on the server), and the options (the example's are the defaults).
/// Fails the test unless the event stream ends within PATIENCE of each
/// event.
async fn readme_main(
    url: &str,
    options: Options,
    mut hook: Hook,
) -> Result<Session, wstether::Error> {
    let mut session = Session::default();
    let (conn, mut events) = Connection::open(url, options)?;
    let upgrade = Upgrade::new("/websocket").protocol("mychat");
    let mut stream = conn.ws_upgrade_with(upgrade.clone())?;
    session.upgrades += 1;
    loop {
        let Some(event) = tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}: {session:?}"))
        else {
            break;
        };
        hook(&event).await;
        match event {
            Event::Up { .. } => session.ups += 1,
            Event::Upgraded { protocol, .. } => {
                session.upgraded += 1;
                println!("upgraded, protocol {protocol:?}");
                // One text frame, one binary frame, and close: no reconnect after it.
                let frames = [
                    Frame::text("Hello!"),
                    Frame::binary(vec![1, 2, 3]),
                    Frame::close_normal(),
                ];
                // A connection that dropped meanwhile gives the frames back.
                if let Err(error) = conn.ws_send(stream, frames) {
                    println!("not sent: {error}");
                }
            }
            Event::UpgradeFailed { error, .. } => return Err(error),
            Event::Frame { frame, .. } => {
                println!("got {frame:?}");
                session.frames.push(frame);
            }
            Event::Down {
                reason,
                unsent,
                will_reconnect,
                ..
            } => {
                session.downs.push(will_reconnect);
                println!("down: {reason}; {} unsent", unsent.len());
                // A reconnect does not upgrade again (as with Gun): ask now;
                // the upgrade waits for the next Up.
                if will_reconnect {
                    stream = conn.ws_upgrade_with(upgrade.clone())?;
                    session.upgrades += 1;
                }
            }
            _ => {}
        }
    }
    Ok(session) // the event stream ends once the connection is closed for good
}

/// The server echoed the session's two frames, then closed.
fn assert_completed(session: &Session) {
    assert_eq!(
        session.frames[..2],
        [Frame::text("Hello!"), Frame::binary(vec![1, 2, 3])],
        "{session:?}"
    );
    assert_eq!(session.downs.last(), Some(&false), "{session:?}");
    assert_eq!(
        (session.upgrades, session.upgraded),
        (session.ups, session.ups),
        "one upgrade per connection: {session:?}"
    );
}

#[tokio::test]
async fn the_readme_example_upgrades_once_sends_and_closes() {
    let server = TestServer::start().await.unwrap();
    let session = readme_main(&server.url(""), Options::default(), no_hook())
        .await
        .unwrap();
    assert_completed(&session);
    assert_eq!(session.ups, 1);
    assert_eq!(server.accepted_connections(), 1);
}

#[tokio::test]
async fn the_readme_example_upgrades_once_when_the_first_dial_fails() {
    // A port where nothing listens yet.
    let addr = {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap()
    };
    let started: std::sync::Arc<std::sync::Mutex<Option<TestServer>>> = Default::default();
    let hook: Hook = {
        let started = started.clone();
        Box::new(move |event| {
            let started = started.clone();
            let first_retry =
                matches!(event, Event::Reconnecting { .. }) && started.lock().unwrap().is_none();
            Box::pin(async move {
                if first_retry {
                    // The first dial failed: now the server comes up.
                    let server = TestServer::start_on(addr).await.unwrap();
                    *started.lock().unwrap() = Some(server);
                }
            })
        })
    };
    // Waiting for a server that is not up yet is a choice: the default
    // first connection has one attempt.
    let options = Options::default()
        .retry(Retry::default().first_connection(FirstConnection::Deadline(PATIENCE)));
    let session = readme_main(&format!("ws://{addr}"), options, hook)
        .await
        .unwrap();
    assert_completed(&session);
    assert_eq!(session.ups, 1, "{session:?}");
    let server = started.lock().unwrap().clone().expect("the server started");
    assert_eq!(server.accepted_connections(), 1);
}

/// The server restarts right after the first upgrade, before the loop
/// sends: `ws_send` on the killed stream fails (`StaleStream`, frames in
/// the error), which the example reports rather than propagates, and the
/// `Down` that follows re-upgrades once.
#[tokio::test]
async fn the_readme_example_re_upgrades_once_after_a_server_restart_mid_session() {
    let server = TestServer::start().await.unwrap();
    let hook: Hook = {
        let server = server.clone();
        let mut restarted = false;
        Box::new(move |event| {
            let restart = matches!(event, Event::Upgraded { .. }) && !restarted;
            restarted |= restart;
            let server = server.clone();
            Box::pin(async move {
                if restart {
                    // The server restarts between the upgrade and the
                    // session's frames; the client reconnects.
                    server.stop().await;
                    server.restart().await.unwrap();
                    tokio::time::timeout(PATIENCE, server.wait_for_connections(2))
                        .await
                        .expect("the client reconnected");
                }
            })
        })
    };
    let session = readme_main(&server.url(""), Options::default(), hook)
        .await
        .unwrap();
    assert_completed(&session);
    assert_eq!(session.ups, 2, "{session:?}");
    assert_eq!(session.upgrades, 2, "{session:?}");
}
