//! What one connection's task and state weigh, in bytes (`size_of`), for
//! the idle-memory budget (issue 23: ≤ 8 KiB per idle connection). Run
//! with `--nocapture` to see the breakdown.

use std::mem::size_of;

use crate::core::Core;
use crate::driver::Driver;
use crate::event::Event;
use crate::mailbox::{EventQueue, Shared};
use crate::options::Options;
use crate::transport::{Platform, Target, Transport};

#[test]
fn the_driver_and_its_parts_weigh() {
    let rows = [
        (
            "Driver<Platform> (the task's future)",
            size_of::<Driver<Platform>>(),
        ),
        ("  Core", size_of::<Core>()),
        ("  Options", size_of::<Options>()),
        ("  Target", size_of::<Target>()),
        ("  tracing::Span", size_of::<tracing::Span>()),
        ("  rt::Timer", size_of::<crate::rt::Timer>()),
        (
            "  Platform::Socket",
            size_of::<<Platform as Transport>::Socket>(),
        ),
        (
            "  Platform::Dialed",
            size_of::<<Platform as Transport>::Dialed>(),
        ),
        ("Shared (the handles' Arc)", size_of::<Shared>()),
        ("EventQueue (the events' Arc)", size_of::<EventQueue>()),
        ("Event", size_of::<Event>()),
    ];
    for (name, size) in rows {
        println!("{name:<40} {size:>6} B");
    }
    // The task's future is allocated whole for every connection, idle or
    // not (2,712 bytes when this bound was set; tests/memory_idle.rs
    // bounds the whole of an idle connection's heap).
    assert!(
        size_of::<Driver<Platform>>() <= 3 * 1024,
        "the driver's future grew past 3 KiB: box what an idle connection does not use"
    );
}
