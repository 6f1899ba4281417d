//! The browser page around a connection (browser only): hooks that drive
//! the connection from page events, not from its socket.
//!
//! When the page becomes visible again or the browser comes back online, a
//! dead connection is most likely and the keepalive interval would find it
//! late, so [`ProbeHooks`] sends a keepalive probe at once, as
//! [`Connection::probe`](crate::Connection::probe) does. They drive the
//! mailbox, as a handle does; the transport knows nothing of them.

use std::sync::Weak;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::Event;

use crate::core::Command;
use crate::mailbox::Shared;

/// Probes the connection when the page becomes visible again or the
/// browser comes back online (where a dead connection is most likely and
/// the keepalive interval would find it late). Dropping it removes the
/// listeners; it holds the connection only weakly.
pub(crate) struct ProbeHooks {
    window: web_sys::Window,
    document: Option<web_sys::Document>,
    on_visibility: Closure<dyn FnMut(Event)>,
    on_online: Closure<dyn FnMut(Event)>,
}

/// Installs the [`ProbeHooks`] of a connection (none outside a window, e.g.
/// in a worker).
pub(crate) fn probe_hooks(shared: Weak<Shared>) -> Option<ProbeHooks> {
    let window = web_sys::window()?;
    let document = window.document();
    let probe = move || {
        if let Some(shared) = shared.upgrade() {
            shared.push_control(Command::Probe);
        }
    };
    let on_visibility = {
        let probe = probe.clone();
        let document = document.clone();
        Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let visible = document
                .as_ref()
                .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Visible);
            if visible {
                probe();
            }
        })
    };
    let on_online = Closure::<dyn FnMut(Event)>::new(move |_: Event| probe());
    if let Some(document) = &document {
        let _ = document.add_event_listener_with_callback(
            "visibilitychange",
            on_visibility.as_ref().unchecked_ref(),
        );
    }
    let _ = window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    Some(ProbeHooks {
        window,
        document,
        on_visibility,
        on_online,
    })
}

impl Drop for ProbeHooks {
    fn drop(&mut self) {
        if let Some(document) = &self.document {
            let _ = document.remove_event_listener_with_callback(
                "visibilitychange",
                self.on_visibility.as_ref().unchecked_ref(),
            );
        }
        let _ = self
            .window
            .remove_event_listener_with_callback("online", self.on_online.as_ref().unchecked_ref());
    }
}
