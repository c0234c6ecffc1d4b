//! Surfaces: one adapter per compatibility product. A surface parses its frames and requests,
//! authenticates, calls the core or a service, and answers in its own format. Surfaces never
//! import each other.

pub mod accounts;
pub mod dashboard;
pub mod notif;
pub mod ops;
pub mod pusher;
