//! What a client's Socket.IO packet may hold, and the error that names the rule it broke. Both
//! the packet codec and the payload check apply these, so they live below the two.

/// Most binary attachments one packet may announce. The client library sends one per `Buffer`
/// argument; a handful is plenty, and each is held until the packet is complete.
pub const MAX_ATTACHMENTS: usize = 16;
/// Longest namespace name, in bytes (the leading `/` included).
pub const MAX_NAMESPACE_LEN: usize = 128;
/// Deepest nesting of arrays and objects a payload may have (the event's own array counts).
/// Real payloads stay far below; serde_json's own limit (128) would refuse a deeper one too, but
/// later and without saying why.
pub const MAX_DEPTH: usize = 32;

/// Why a client's packet was refused. The connection that sent it is closed, as the reference
/// server does on a parse error; these say why in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type")]
    UnknownType,
    #[error("clients do not send this packet type")]
    NotFromClient,
    #[error("malformed attachment count")]
    BadAttachmentCount,
    #[error("more than {MAX_ATTACHMENTS} attachments")]
    TooManyAttachments,
    #[error("namespace longer than {MAX_NAMESPACE_LEN} bytes")]
    NamespaceTooLong,
    #[error("missing or invalid ack id")]
    BadAckId,
    #[error("payload is not valid JSON")]
    BadJson,
    #[error("payload nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("payload has the wrong shape for its packet type")]
    InvalidPayload,
    #[error("event name missing, not a string or reserved")]
    BadEventName,
    #[error("placeholders do not match the announced attachments")]
    AttachmentMismatch,
}
