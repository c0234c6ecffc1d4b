//! Notif's error and close codes (SPEC §4). Notif reuses Pusher's numbers so one client table
//! reads both; errors arrive as `pusher:error` with the socket kept open, closes as close frames.
//! The one mapping from the core's disconnect reasons lives here too.

use crate::core::Disconnect;

/// Subscribe or sign-in refused: bad or missing signature.
pub const AUTH_FAILED: u16 = 4009;
/// A frame that is not JSON, not Notif-shaped, or names an invalid channel.
pub const BAD_FRAME: u16 = 4300;
/// Client events faster than the app's limit.
pub const RATE_LIMITED: u16 = 4301;
/// Over a limit: channels per connection, presence members, message size, connection quota.
/// Also the close code for a slow consumer (reconnect after a backoff, as in Pusher).
pub const OVER_LIMIT: u16 = 4100;
/// Close: the app was disabled or deleted (clients should not retry as is).
pub const APP_DISABLED: u16 = 4003;
/// Close: the server is restarting; reconnect at once.
pub const RECONNECT_NOW: u16 = 4200;
/// Close: no frame at all (not even a WebSocket Pong) within the liveness timeout.
pub const PONG_TIMEOUT: u16 = 4201;

/// Code and message for a connection the core ends.
pub fn for_disconnect(reason: Disconnect) -> (u16, &'static str) {
    match reason {
        Disconnect::SlowConsumer => (OVER_LIMIT, "Connection is not reading fast enough; reconnect later"),
        Disconnect::AppDisabled => (APP_DISABLED, "Application is disabled"),
        Disconnect::Terminated => (AUTH_FAILED, "Connection terminated by the application"),
        Disconnect::Shutdown => (RECONNECT_NOW, "Server is restarting; reconnect now"),
    }
}
