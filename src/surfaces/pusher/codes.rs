//! Pusher's close and error codes
//! (<https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/#error-codes>),
//! and the one mapping from the core's disconnect reasons to them.

use crate::core::Disconnect;

/// 4000–4099: the client must not reconnect with the same settings.
pub const APP_NOT_FOUND: u16 = 4001;
pub const APP_DISABLED: u16 = 4003;
pub const OVER_QUOTA: u16 = 4004;
pub const PATH_NOT_FOUND: u16 = 4005;
pub const INVALID_VERSION: u16 = 4006;
pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
pub const NO_PROTOCOL: u16 = 4008;
pub const UNAUTHORIZED: u16 = 4009;
/// 4100–4199: reconnect after a backoff.
pub const OVER_CAPACITY: u16 = 4100;
/// 4200–4299: reconnect at once.
pub const RECONNECT_NOW: u16 = 4200;
pub const PONG_TIMEOUT: u16 = 4201;
/// 4300–4399: other errors; the connection stays open.
pub const GENERIC: u16 = 4300;
pub const CLIENT_EVENT_RATE: u16 = 4301;
pub const WATCHLIST_LIMIT: u16 = 4302;

/// Protocol versions accepted in `?protocol=`.
pub const PROTOCOLS: std::ops::RangeInclusive<u32> = 4..=7;

/// Code and message for a connection the core ends.
pub fn for_disconnect(reason: Disconnect) -> (u16, &'static str) {
    match reason {
        Disconnect::SlowConsumer => (OVER_CAPACITY, "Connection is not reading fast enough; reconnect later"),
        Disconnect::AppDisabled => (APP_DISABLED, "Application is disabled"),
        Disconnect::Terminated => (UNAUTHORIZED, "Connection terminated by the application"),
        Disconnect::Shutdown => (RECONNECT_NOW, "Server is restarting; reconnect now"),
    }
}
