//! Pusher's signatures: channel authorization, user authentication and signed HTTP API requests
//! (<https://pusher.com/docs/channels/library_auth_reference/>).

use md5::{Digest, Md5};

use super::{secrets_equal, verify_hmac_hex};

/// Largest accepted clock difference for `auth_timestamp`, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 600;

/// Checks a private/presence/encrypted channel `auth` (`key:hex`) for this socket and channel.
/// Presence channels sign `channel_data` too.
pub fn verify_channel(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    let Some((given_key, signature)) = auth.split_once(':') else {
        return false;
    };
    if !secrets_equal(given_key, key) {
        return false;
    }
    let mut text = format!("{socket_id}:{channel}");
    if let Some(data) = channel_data {
        text.push(':');
        text.push_str(data);
    }
    verify_hmac_hex(secret, text.as_bytes(), signature)
}

/// Notif's channel auth (SPEC §4), more lenient than [`verify_channel`]: `auth` is bare hex or
/// `key:hex`, and a presence subscriber's `channel_data` may have been signed in any of
/// `channel_data_forms` (Notif signed a string in its JSON-quoted form). With no forms the text is
/// `socket_id:channel` alone. Every form is checked, so timing does not tell which one matched.
pub fn verify_channel_notif(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data_forms: &[&str],
    auth: &str,
) -> bool {
    let signature = match auth.split_once(':') {
        Some((given_key, signature)) => {
            if !secrets_equal(given_key, key) {
                return false;
            }
            signature
        }
        None => auth,
    };
    if channel_data_forms.is_empty() {
        return verify_hmac_hex(secret, format!("{socket_id}:{channel}").as_bytes(), signature);
    }
    channel_data_forms.iter().fold(false, |ok, data| {
        verify_hmac_hex(secret, format!("{socket_id}:{channel}:{data}").as_bytes(), signature) | ok
    })
}

/// Checks a `pusher:signin` `auth` (`key:hex` over `socket_id::user::user_data`).
pub fn verify_user(key: &str, secret: &str, socket_id: &str, user_data: &str, auth: &str) -> bool {
    let Some((given_key, signature)) = auth.split_once(':') else {
        return false;
    };
    if !secrets_equal(given_key, key) {
        return false;
    }
    verify_hmac_hex(secret, format!("{socket_id}::user::{user_data}").as_bytes(), signature)
}

/// Why a signed HTTP request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiAuthError {
    #[error("missing {0} parameter")]
    Missing(&'static str),
    #[error("invalid auth_key")]
    WrongKey,
    #[error("unsupported auth_version (expected 1.0)")]
    WrongVersion,
    #[error("auth_timestamp is not a number")]
    BadTimestamp,
    #[error("timestamp expired: auth_timestamp must be within {MAX_CLOCK_SKEW_SECS} seconds of the server time")]
    Stale,
    #[error("body_md5 does not match the body")]
    BodyMd5,
    #[error("invalid signature: the auth_signature does not match")]
    Signature,
}

/// The parts of a request that are signed.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The query parameters, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Verifies a signed API request for an app with `key` and `secret`, `now` being Unix seconds.
pub fn verify_request(key: &str, secret: &str, req: &SignedRequest<'_>, now: i64) -> Result<(), ApiAuthError> {
    verify_head(key, secret, req.method, req.path, req.query, now)?.verify_body(req.body)
}

/// A request whose query checked out; its body is checked against `body_md5` once read.
#[derive(Debug)]
pub struct SignedHead {
    body_md5: Option<String>,
}

impl SignedHead {
    /// `body_md5` is required with a body and checked whenever given (an empty body's MD5 is
    /// well defined too).
    pub fn verify_body(&self, body: &[u8]) -> Result<(), ApiAuthError> {
        match &self.body_md5 {
            None if !body.is_empty() => Err(ApiAuthError::Missing("body_md5")),
            None => Ok(()),
            Some(md5) => {
                let actual = hex::encode(Md5::digest(body));
                if secrets_equal(&md5.to_ascii_lowercase(), &actual) { Ok(()) } else { Err(ApiAuthError::BodyMd5) }
            }
        }
    }
}

/// Verifies everything a signed request carries in its query: key, version, timestamp and the
/// signature, which covers `body_md5`. So a request is authenticated before its body is read;
/// [`SignedHead::verify_body`] then ties the body to it.
pub fn verify_head(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    query: &str,
    now: i64,
) -> Result<SignedHead, ApiAuthError> {
    let mut params = query_pairs(query);
    for p in &mut params {
        p.0.make_ascii_lowercase();
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let auth_key = get("auth_key").ok_or(ApiAuthError::Missing("auth_key"))?;
    let signature = get("auth_signature").ok_or(ApiAuthError::Missing("auth_signature"))?;
    let timestamp = get("auth_timestamp").ok_or(ApiAuthError::Missing("auth_timestamp"))?;
    let version = get("auth_version").ok_or(ApiAuthError::Missing("auth_version"))?;
    if !secrets_equal(auth_key, key) {
        return Err(ApiAuthError::WrongKey);
    }
    if version != "1.0" {
        return Err(ApiAuthError::WrongVersion);
    }
    let ts: i64 = timestamp.trim().parse().map_err(|_| ApiAuthError::BadTimestamp)?;
    if (now - ts).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ApiAuthError::Stale);
    }
    let head = SignedHead { body_md5: get("body_md5").map(str::to_owned) };
    let text = string_to_sign(method, path, &params);
    if verify_hmac_hex(secret, text.as_bytes(), signature) {
        return Ok(head);
    }
    // A key given more than once (`channels[]=a&channels[]=b`): some SDKs sort such pairs by
    // value too, others (Go's `url.Values`) keep them in the order given. Accept either.
    let mut keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        let text = join_signed(method, path, params.iter().filter(|(k, _)| k != "auth_signature"), false);
        if verify_hmac_hex(secret, text.as_bytes(), signature) {
            return Ok(head);
        }
    }
    Err(ApiAuthError::Signature)
}

/// `METHOD\nPATH\nk=v&…` with keys lowercased and sorted, `auth_signature` left out.
pub fn string_to_sign(method: &str, path: &str, params: &[(String, String)]) -> String {
    join_signed(method, path, params.iter().filter(|(k, _)| k != "auth_signature"), true)
}

/// Sorts the pairs by key (and by value where `by_value`; otherwise pairs with one key keep
/// their order) and joins them after the method and path.
fn join_signed<'a>(
    method: &str,
    path: &str,
    params: impl Iterator<Item = &'a (String, String)>,
    by_value: bool,
) -> String {
    let mut sorted: Vec<_> = params.collect();
    if by_value {
        sorted.sort();
    } else {
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{}\n{}", method.to_ascii_uppercase(), path, query.join("&"))
}

/// Signs a request as Pusher's server SDKs do (for the bench tool and tests): returns the
/// full query string including `auth_signature`.
pub fn sign_query(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
    now: i64,
) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("auth_key".into(), key.into()),
        ("auth_timestamp".into(), now.to_string()),
        ("auth_version".into(), "1.0".into()),
    ];
    if !body.is_empty() {
        params.push(("body_md5".into(), hex::encode(Md5::digest(body))));
    }
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let signature = super::hmac_hex(secret, &string_to_sign(method, path, &params));
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        ser.append_pair(k, v);
    }
    ser.append_pair("auth_signature", &signature);
    ser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The worked examples of Pusher's authentication reference.
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn private_channel_example() {
        let auth = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
        assert!(verify_channel(KEY, SECRET, "1234.1234", "private-foobar", None, auth));
        assert!(!verify_channel(KEY, SECRET, "1234.1235", "private-foobar", None, auth));
        assert!(!verify_channel(KEY, "other", "1234.1234", "private-foobar", None, auth));
    }

    #[test]
    fn api_example() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let query = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
        let req = SignedRequest { method: "POST", path: "/apps/3/events", query, body };
        assert_eq!(verify_request(KEY, SECRET, &req, 1353088179), Ok(()));
        assert_eq!(verify_request(KEY, SECRET, &req, 1353088179 + 601), Err(ApiAuthError::Stale));
        let tampered =
            SignedRequest { body: br#"{"name":"fop","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#, ..req };
        assert_eq!(verify_request(KEY, SECRET, &tampered, 1353088179), Err(ApiAuthError::BodyMd5));
    }

    #[test]
    fn sign_query_round_trips() {
        let q =
            sign_query(KEY, SECRET, "GET", "/apps/3/channels", b"", &[("info", "user_count,subscription_count")], 100);
        let req = SignedRequest { method: "GET", path: "/apps/3/channels", query: &q, body: b"" };
        assert_eq!(verify_request(KEY, SECRET, &req, 100), Ok(()));
        let req = SignedRequest { path: "/apps/4/channels", ..req };
        assert_eq!(verify_request(KEY, SECRET, &req, 100), Err(ApiAuthError::Signature));
    }

    #[test]
    fn body_md5_is_checked_whenever_given() {
        let empty_md5 = hex::encode(Md5::digest(b""));
        for (md5, ok) in [(empty_md5.as_str(), true), ("abc", false)] {
            let q = sign_query(KEY, SECRET, "GET", "/apps/3/channels", b"", &[("body_md5", md5)], 100);
            let req = SignedRequest { method: "GET", path: "/apps/3/channels", query: &q, body: b"" };
            let want = if ok { Ok(()) } else { Err(ApiAuthError::BodyMd5) };
            assert_eq!(verify_request(KEY, SECRET, &req, 100), want, "{md5}");
        }
    }

    #[test]
    fn repeated_keys_may_be_signed_in_given_or_value_order() {
        let base = [("auth_key", KEY), ("auth_timestamp", "100"), ("auth_version", "1.0")];
        // Signed with the pairs of one key in the order given (b before a), as Go does.
        let text = "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=100&auth_version=1.0&channels[]=b&channels[]=a";
        let signature = super::super::hmac_hex(SECRET, text);
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in base.iter().chain(&[("channels[]", "b"), ("channels[]", "a"), ("auth_signature", &signature)]) {
            ser.append_pair(k, v);
        }
        let q = ser.finish();
        let req = SignedRequest { method: "POST", path: "/apps/3/events", query: &q, body: b"" };
        assert_eq!(verify_request(KEY, SECRET, &req, 100), Ok(()));
        // Sorted by value as well (what `sign_query` and Ruby do).
        let q =
            sign_query(KEY, SECRET, "POST", "/apps/3/events", b"", &[("channels[]", "b"), ("channels[]", "a")], 100);
        let req = SignedRequest { query: &q, ..req };
        assert_eq!(verify_request(KEY, SECRET, &req, 100), Ok(()));
        let req = SignedRequest { path: "/apps/4/events", ..req };
        assert_eq!(verify_request(KEY, SECRET, &req, 100), Err(ApiAuthError::Signature));
    }

    #[test]
    fn notif_channel_auth_forms() {
        let hex = |text: &str| super::super::hmac_hex(SECRET, text);
        let private = hex("1.1:private-a");
        assert!(verify_channel_notif(KEY, SECRET, "1.1", "private-a", &[], &private));
        assert!(verify_channel_notif(KEY, SECRET, "1.1", "private-a", &[], &format!("{KEY}:{private}")));
        assert!(!verify_channel_notif(KEY, SECRET, "1.1", "private-a", &[], &format!("other:{private}")));
        assert!(!verify_channel_notif(KEY, SECRET, "1.2", "private-a", &[], &private));
        let quoted = hex(r#"1.1:presence-a:"{\"user_id\":\"u\"}""#);
        let forms = [r#"{"user_id":"u"}"#, r#""{\"user_id\":\"u\"}""#];
        assert!(verify_channel_notif(KEY, SECRET, "1.1", "presence-a", &forms, &quoted));
        assert!(!verify_channel_notif(KEY, SECRET, "1.1", "presence-a", &forms[..1], &quoted));
    }

    proptest! {
        #[test]
        fn verifier_never_panics(query in ".{0,300}", body in proptest::collection::vec(any::<u8>(), 0..200), path in ".{0,50}") {
            let req = SignedRequest { method: "POST", path: &path, query: &query, body: &body };
            let _ = verify_request(KEY, SECRET, &req, 1_700_000_000);
        }

        #[test]
        fn channel_auth_never_panics(auth in ".{0,200}", data in proptest::option::of(".{0,100}")) {
            let _ = verify_channel(KEY, SECRET, "1.1", "private-a", data.as_deref(), &auth);
        }
    }
}
