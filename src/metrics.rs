//! Every metric name and description, registered in one place, and the recording helpers the
//! other layers call. Labels are bounded: transport, route template, status, reason.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CONNECTIONS: &str = "switchboard_connections";
pub const CONNECTIONS_TOTAL: &str = "switchboard_connections_opened_total";
pub const SUBSCRIPTIONS: &str = "switchboard_subscriptions";
pub const MESSAGES_IN: &str = "switchboard_messages_in_total";
pub const MESSAGES_OUT: &str = "switchboard_messages_out_total";
pub const PUBLISHES: &str = "switchboard_publishes_total";
pub const FANOUT_SECONDS: &str = "switchboard_fanout_seconds";
pub const HTTP_REQUESTS: &str = "switchboard_http_requests_total";
pub const HTTP_SECONDS: &str = "switchboard_http_request_duration_seconds";
pub const DISCONNECTS: &str = "switchboard_disconnects_total";
pub const CONNECTIONS_REFUSED: &str = "switchboard_connections_refused_total";
pub const BROKER_UP: &str = "switchboard_broker_up";
pub const DATABASE_UP: &str = "switchboard_database_up";
pub const CHAT_MESSAGES_STORED: &str = "switchboard_chat_messages_stored_total";
pub const CHAT_WRITE_BATCH: &str = "switchboard_chat_write_batch_messages";
pub const CHAT_WRITE_SECONDS: &str = "switchboard_chat_write_seconds";
pub const PUSH_SENT: &str = "switchboard_push_notifications_total";
pub const PUSH_DROPPED: &str = "switchboard_push_dropped_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process (tests run several servers in one).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(FANOUT_SECONDS.into()),
                    &[0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(HTTP_SECONDS.into()),
                        &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
                    )
                })
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            Some(recorder)
        })
        .clone()
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open client connections, by transport.");
    describe_counter!(CONNECTIONS_TOTAL, "Client connections opened, by transport.");
    describe_gauge!(SUBSCRIPTIONS, "Channel subscriptions held by open connections.");
    describe_counter!(MESSAGES_IN, "Frames received from clients, by transport.");
    describe_counter!(MESSAGES_OUT, "Event deliveries queued to subscribers.");
    describe_counter!(PUBLISHES, "Events published, by source.");
    describe_histogram!(FANOUT_SECONDS, "Time to queue one event for every local subscriber.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by route template and status.");
    describe_histogram!(HTTP_SECONDS, "HTTP request duration, by route template.");
    describe_counter!(DISCONNECTS, "Connections closed by the server, by reason.");
    describe_counter!(CONNECTIONS_REFUSED, "TCP connections refused at accept, by reason (capacity).");
    describe_gauge!(BROKER_UP, "1 when the broker accepts publishes.");
    describe_gauge!(DATABASE_UP, "1 when the database answered the last health check.");
    describe_counter!(CHAT_MESSAGES_STORED, "Chat messages committed (direct and group).");
    describe_histogram!(CHAT_WRITE_BATCH, "Chat messages per transaction of the group-commit writer.");
    describe_histogram!(CHAT_WRITE_SECONDS, "Time of one transaction of the chat message writer.");
    describe_counter!(
        PUSH_SENT,
        "Push notifications per device, by service (fcm, web_push) and outcome (delivered, gone, failed)."
    );
    describe_counter!(PUSH_DROPPED, "Push notifications dropped because the push queue was full.");
}

/// `transport` is the transport's label (`pusher`, `notif`, …): metrics know no core types.
pub fn connection_opened(transport: &'static str) {
    gauge!(CONNECTIONS, "transport" => transport).increment(1.0);
    counter!(CONNECTIONS_TOTAL, "transport" => transport).increment(1);
}

pub fn connection_closed(transport: &'static str) {
    gauge!(CONNECTIONS, "transport" => transport).decrement(1.0);
}

pub fn subscriptions_changed(delta: i32) {
    gauge!(SUBSCRIPTIONS).increment(f64::from(delta));
}

pub fn message_in(transport: &'static str) {
    counter!(MESSAGES_IN, "transport" => transport).increment(1);
}

pub fn published(source: &'static str) {
    counter!(PUBLISHES, "source" => source).increment(1);
}

pub fn fanned_out(deliveries: usize, took: Duration) {
    counter!(MESSAGES_OUT).increment(deliveries as u64);
    histogram!(FANOUT_SECONDS).record(took.as_secs_f64());
}

pub fn http_request(route: &str, status: u16, took: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.to_owned(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_SECONDS, "route" => route.to_owned()).record(took.as_secs_f64());
}

pub fn disconnect(reason: &'static str) {
    counter!(DISCONNECTS, "reason" => reason).increment(1);
}

pub fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// One committed transaction of the chat message writer.
pub fn chat_batch_written(messages: usize, took: Duration) {
    counter!(CHAT_MESSAGES_STORED).increment(messages as u64);
    histogram!(CHAT_WRITE_BATCH).record(messages as f64);
    histogram!(CHAT_WRITE_SECONDS).record(took.as_secs_f64());
}

pub fn health(broker_up: bool, database_up: bool) {
    gauge!(BROKER_UP).set(if broker_up { 1.0 } else { 0.0 });
    gauge!(DATABASE_UP).set(if database_up { 1.0 } else { 0.0 });
}

pub fn push_sent(service: &'static str, outcome: &'static str) {
    counter!(PUSH_SENT, "service" => service, "outcome" => outcome).increment(1);
}

pub fn push_dropped() {
    counter!(PUSH_DROPPED).increment(1);
}
