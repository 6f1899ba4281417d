//! HTTP/2 connections shared between connections that opt in
//! (`Options::share_http2`): a process-wide pool of sessions, keyed by
//! everything that makes two connections' routes the same (scheme, host,
//! port, TLS settings, proxy or connector, HTTP/2 choice). A dial takes a
//! stream of a pooled session when one has room, or dials a fresh
//! connection and pools it; dials of one key wait for each other, so a
//! reconnect storm opens one connection, not one per Websocket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::dial::Route;
use super::h2::SharedSession;
use super::tls::SettingsKey;
use super::Target;
use crate::options::Http2;
use crate::proxy::{Credentials, Scheme};

/// What must be equal for two connections to share an HTTP/2 connection.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct Key {
    secure: bool,
    host: String,
    port: u16,
    http2: Http2,
    tls: SettingsKey,
    route: RouteKey,
    /// A connection's own group (its siblings'), or `None`: every
    /// connection that opted in to sharing.
    group: Option<u64>,
}

#[derive(PartialEq, Eq, Hash)]
enum RouteKey {
    Direct,
    Proxy {
        scheme: Scheme,
        host: String,
        port: u16,
        credentials: Option<Credentials>,
    },
    /// A connector, by identity (the clones of one `Options::connector`).
    Connector(usize),
}

impl Key {
    pub(super) fn new(
        target: &Target,
        http2: Http2,
        tls: SettingsKey,
        route: &Route,
        group: Option<u64>,
    ) -> Key {
        let route = match route {
            Route::Direct => RouteKey::Direct,
            Route::Proxy(server) => RouteKey::Proxy {
                scheme: server.scheme,
                host: server.host.clone(),
                port: server.port,
                credentials: server.credentials.clone(),
            },
            Route::Connector(connector) => RouteKey::Connector(connector.address()),
        };
        Key {
            secure: target.secure,
            host: target.host.clone(),
            port: target.port,
            // Within a group, the siblings (`Require`) join the
            // connection's own (whatever its choice).
            http2: if group.is_some() {
                Http2::Require
            } else {
                http2
            },
            tls,
            route,
            group,
        }
    }
}

/// The sessions of one key, behind a lock that dials of the key take in
/// turn.
type Slot = Arc<tokio::sync::Mutex<Vec<SharedSession>>>;

fn pool() -> &'static Mutex<HashMap<Key, Slot>> {
    static POOL: OnceLock<Mutex<HashMap<Key, Slot>>> = OnceLock::new();
    POOL.get_or_init(Default::default)
}

/// The key's slot, made if needed; keys whose sessions are all gone are
/// dropped on the way (the pool holds live targets only).
pub(super) fn slot(key: Key) -> Slot {
    let mut pool = pool().lock().unwrap_or_else(|p| p.into_inner());
    pool.retain(|_, slot| {
        Arc::strong_count(slot) > 1
            || slot.try_lock().map_or(true, |sessions| {
                sessions.iter().any(SharedSession::is_alive)
            })
    });
    pool.entry(key).or_default().clone()
}
