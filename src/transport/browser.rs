//! The browser transport (being written).
