//! The JSON payload of a Socket.IO packet, checked in one pass over the borrowed text: well-formed,
//! at most [`MAX_DEPTH`] deep, the shape its packet type allows, and binary placeholders
//! (`{"_placeholder":true,"num":N}`) that name each announced attachment exactly once. Nothing
//! is built from the client's bytes but the event name when it holds escapes; no
//! `serde_json::Value` tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::limits::{DecodeError, MAX_ATTACHMENTS, MAX_DEPTH};

/// Event names the Socket.IO client library keeps for itself; a client never sends them.
const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// What a walk of the payload learnt: the placeholders seen, and why it stopped.
struct Scan {
    attachments: usize,
    /// Bit `n` set: placeholder `n` was seen ([`MAX_ATTACHMENTS`] fits in the word).
    seen: u32,
    error: Option<DecodeError>,
}

impl Scan {
    fn new(attachments: usize) -> Self {
        Self { attachments, seen: 0, error: None }
    }

    fn fail<E: de::Error>(&mut self, error: DecodeError) -> E {
        self.error.get_or_insert(error);
        E::custom("refused")
    }

    fn placeholder<E: de::Error>(&mut self, num: Option<u64>) -> Result<(), E> {
        match num {
            Some(n) if (n as usize) < self.attachments && self.seen & (1 << n) == 0 => {
                self.seen |= 1 << n;
                Ok(())
            }
            _ => Err(self.fail(DecodeError::AttachmentMismatch)),
        }
    }

    /// Every announced attachment was named once (the client library writes one placeholder
    /// per attachment, numbered from 0).
    fn complete(&self) -> bool {
        self.seen.count_ones() as usize == self.attachments
    }

    /// The outcome of a deserialisation: our own reason when we stopped it, else bad JSON.
    fn result<T>(self, res: Result<T, serde_json::Error>) -> Result<T, DecodeError> {
        let complete = self.complete();
        match (res, self.error) {
            (_, Some(error)) => Err(error),
            (Err(_), None) => Err(DecodeError::BadJson),
            (Ok(_), None) if !complete => Err(DecodeError::AttachmentMismatch),
            (Ok(v), None) => Ok(v),
        }
    }
}

/// What a value turned out to be, as far as placeholders care.
enum Shape {
    True,
    Index(Option<u64>),
    Other,
}

/// Walks one value at `depth` (the number of arrays and objects around it).
struct Walk<'s> {
    depth: usize,
    scan: &'s mut Scan,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Shape, E> {
        Ok(if v { Shape::True } else { Shape::Other })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
        Ok(Shape::Index(Some(v)))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Index(None))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shape, E> {
        // JavaScript has one number type: 1.0 indexes like 1.
        let whole = v >= 0.0 && v.fract() == 0.0 && v < MAX_ATTACHMENTS as f64;
        Ok(Shape::Index(whole.then_some(v as u64)))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.scan.fail(DecodeError::TooDeep));
        }
        while seq.next_element_seed(Walk { depth, scan: &mut *self.scan })?.is_some() {}
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.scan.fail(DecodeError::TooDeep));
        }
        let (mut flagged, mut num) = (false, None);
        while let Some(key) = map.next_key::<Key>()? {
            let shape = map.next_value_seed(Walk { depth, scan: &mut *self.scan })?;
            // As JSON.parse: a repeated key's last value counts.
            match (key, shape) {
                (Key::Placeholder, shape) => flagged = matches!(shape, Shape::True),
                (Key::Num, Shape::Index(n)) => num = Some(n),
                (Key::Num, _) => num = Some(None),
                (Key::Other, _) => {}
            }
        }
        if flagged {
            // The client library's test: `_placeholder === true`; `num` must then name an
            // announced attachment.
            self.scan.placeholder(num.flatten())?;
        }
        Ok(Shape::Other)
    }
}

/// An object key, as far as placeholders care.
enum Key {
    Placeholder,
    Num,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "_placeholder" => Key::Placeholder,
                    "num" => Key::Num,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The first element of an event's array: its name (a string, or a number as the reference
/// parser allows); anything else is refused without being walked.
struct Name<'s>(&'s mut Scan);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Name<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    // The reference parser accepts a number as an event name; it is named by its digits.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.0.fail(DecodeError::BadEventName))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.0.fail(DecodeError::BadEventName))
    }
}

/// The top level of an event or ack payload: an array, walked element by element.
struct Top<'s> {
    /// The first element is the event's name.
    named: bool,
    scan: &'s mut Scan,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut name = None;
        if self.named {
            match seq.next_element_seed(Name(&mut *self.scan))? {
                Some(Some(n)) if !RESERVED_EVENTS.contains(&&*n) => name = Some(n),
                _ => return Err(self.scan.fail(DecodeError::BadEventName)),
            }
        }
        while seq.next_element_seed(Walk { depth: 1, scan: &mut *self.scan })?.is_some() {}
        Ok(name)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.scan.fail(DecodeError::InvalidPayload))
    }
}

/// Runs `visit` over all of `text`, which must hold one JSON value and nothing after it.
fn run<'de, V: Visitor<'de>>(text: &'de str, visit: V) -> Result<V::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = de.deserialize_any(visit)?;
    de.end()?;
    Ok(value)
}

/// `text` with every lone surrogate escape (`\ud800` without its pair) written `\ufffd`, or
/// `None` when it has none. JSON's grammar allows them and `JSON.parse` accepts them, but
/// serde_json refuses them: the check runs on the copy (same length, so offsets hold) and the
/// handler gets the text as sent, to judge as its own malformed input.
fn without_lone_surrogates(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let escape_at = |i: usize| -> Option<u32> {
        let hex = bytes.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut lone = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(i) {
            Some(0xD800..=0xDBFF) if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                lone.push(i);
                i += 6;
            }
            Some(_) => i += 6,
            None => i += 2,
        }
    }
    if lone.is_empty() {
        return None;
    }
    let mut copy = text.as_bytes().to_vec();
    for at in lone {
        copy[at + 2..at + 6].copy_from_slice(b"fffd");
    }
    // Only ASCII hex digits were replaced by ASCII.
    String::from_utf8(copy).ok()
}

/// An event's array: its name, and the text of its arguments (the elements after the name,
/// joined by commas as sent, without the brackets).
pub fn event(text: &str, attachments: usize) -> Result<(Cow<'_, str>, &str), DecodeError> {
    let name = match without_lone_surrogates(text) {
        None => event_name(text, attachments)?,
        Some(copy) => Cow::Owned(event_name(&copy, attachments)?.into_owned()),
    };
    Ok((name, rest_after_first(text)))
}

/// The checked event array's name.
fn event_name(text: &str, attachments: usize) -> Result<Cow<'_, str>, DecodeError> {
    let mut scan = Scan::new(attachments);
    let res = run(text, Top { named: true, scan: &mut scan });
    scan.result(res)?.ok_or(DecodeError::BadEventName)
}

/// An ack's array: the text of its arguments (its elements, without the brackets).
pub fn ack(text: &str, attachments: usize) -> Result<&str, DecodeError> {
    let checked = without_lone_surrogates(text);
    let mut scan = Scan::new(attachments);
    let res = run(checked.as_deref().unwrap_or(text), Top { named: false, scan: &mut scan });
    scan.result(res)?;
    Ok(inside_brackets(text))
}

/// A CONNECT payload: a JSON object (the client's `auth`), without placeholders.
pub fn object(text: &str) -> Result<(), DecodeError> {
    struct Obj<'s>(&'s mut Scan);
    impl<'de> Visitor<'de> for Obj<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
            Walk { depth: 0, scan: self.0 }.visit_map(map).map(drop)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Err(self.0.fail(DecodeError::InvalidPayload))
        }
    }
    let checked = without_lone_surrogates(text);
    let mut scan = Scan::new(0);
    let res = run(checked.as_deref().unwrap_or(text), Obj(&mut scan));
    scan.result(res)
}

/// The elements of a valid JSON array, without its brackets and the space around them.
fn inside_brackets(text: &str) -> &str {
    let t = text.trim_matches(JSON_SPACE);
    t.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or("").trim_matches(JSON_SPACE)
}

/// The elements after the first one of a valid JSON array whose first element is a string or a
/// number (an event's name), without the brackets.
fn rest_after_first(text: &str) -> &str {
    let inner = inside_brackets(text);
    let bytes = inner.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'"') {
        i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
    } else {
        while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            i += 1;
        }
    }
    let after = inner.get(i.min(inner.len())..).unwrap_or("").trim_start_matches(JSON_SPACE);
    after.strip_prefix(',').unwrap_or("").trim_matches(JSON_SPACE)
}

/// JSON's insignificant whitespace (RFC 8259 §2).
const JSON_SPACE: &[char] = &[' ', '\t', '\n', '\r'];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_gives_its_name_and_the_text_of_its_arguments() {
        assert_eq!(event(r#"["message",1,"2",{"3":[true]}]"#, 0).unwrap(), ("message".into(), r#"1,"2",{"3":[true]}"#));
        assert_eq!(event(r#"["a"]"#, 0).unwrap(), ("a".into(), ""));
        assert_eq!(event(" [ \"a\\\"b,\" , [1, 2] ] ", 0).unwrap(), ("a\"b,".into(), "[1, 2]"));
        assert_eq!(event(r#"[42,"x"]"#, 0).unwrap(), ("42".into(), r#""x""#));
        assert!(matches!(event(r#"["\u0041",1]"#, 0).unwrap().0, Cow::Owned(ref s) if s == "A"));
    }

    #[test]
    fn event_payloads_that_are_not_named_arrays_are_refused() {
        assert_eq!(event("{}", 0), Err(DecodeError::InvalidPayload));
        assert_eq!(event(r#""message""#, 0), Err(DecodeError::InvalidPayload));
        assert_eq!(event("[]", 0), Err(DecodeError::BadEventName));
        assert_eq!(event("[null,1]", 0), Err(DecodeError::BadEventName));
        assert_eq!(event(r#"[{"a":1}]"#, 0), Err(DecodeError::BadEventName));
        assert_eq!(event(r#"["disconnect"]"#, 0), Err(DecodeError::BadEventName));
        assert_eq!(event(r#"["a",]"#, 0), Err(DecodeError::BadJson));
        assert_eq!(event(r#"["a"] x"#, 0), Err(DecodeError::BadJson));
        assert_eq!(event("", 0), Err(DecodeError::BadJson));
    }

    #[test]
    fn placeholders_must_name_each_attachment_once() {
        let two = r#"["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert!(event(two, 2).is_ok());
        assert_eq!(event(two, 3), Err(DecodeError::AttachmentMismatch));
        assert_eq!(event(two, 1), Err(DecodeError::AttachmentMismatch));
        assert_eq!(event(two, 0), Err(DecodeError::AttachmentMismatch));
        let twice = r#"["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#;
        assert_eq!(event(twice, 2), Err(DecodeError::AttachmentMismatch));
        assert_eq!(event(r#"["m",{"_placeholder":true,"num":-1}]"#, 1), Err(DecodeError::AttachmentMismatch));
        assert_eq!(event(r#"["m",{"_placeholder":true,"num":"0"}]"#, 1), Err(DecodeError::AttachmentMismatch));
        assert_eq!(event(r#"["m",{"_placeholder":true}]"#, 1), Err(DecodeError::AttachmentMismatch));
        assert!(event(r#"["m",{"a":[{"num":0.0,"_placeholder":true}]}]"#, 1).is_ok());
        // Not a placeholder unless `_placeholder` is true itself.
        assert!(event(r#"["m",{"_placeholder":1,"num":0}]"#, 0).is_ok());
        assert!(ack(r#"[{"_placeholder":true,"num":0}]"#, 1).is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("[\"a\",{}{}]", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(event(&ok, 0).is_ok());
        let deep = format!("[\"a\",{}{}]", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(event(&deep, 0), Err(DecodeError::TooDeep));
        let objects = format!("[\"a\",{}1{}]", r#"{"k":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(event(&objects, 0), Err(DecodeError::TooDeep));
        let bomb = format!("[\"a\",{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(event(&bomb, 0), Err(DecodeError::TooDeep));
        // Unclosed: refused before the missing brackets matter.
        assert_eq!(event(&"[".repeat(100_000), 0), Err(DecodeError::BadEventName));
        assert_eq!(event(&format!("[\"a\",{}", "[".repeat(100_000)), 0), Err(DecodeError::TooDeep));
        assert_eq!(ack(&"[".repeat(100_000), 0), Err(DecodeError::TooDeep));
    }

    #[test]
    fn lone_surrogates_pass_as_json_parse_lets_them() {
        let (name, rest) = event(r#"["sendDM",{"toId":1,"content":"\ud800"}]"#, 0).unwrap();
        assert_eq!((&*name, rest), ("sendDM", r#"{"toId":1,"content":"\ud800"}"#));
        assert_eq!(event(r#"["\udc00x",1]"#, 0).unwrap().0, "\u{fffd}x");
        assert_eq!(ack(r#"["a\udfff\\ud800"]"#, 0), Ok(r#""a\udfff\\ud800""#));
        assert_eq!(object(r#"{"token":"\ud800"}"#), Ok(()));
        // Pairs stay pairs; the other limits still hold.
        assert!(event(r#"["m","\ud83d\ude00"]"#, 0).is_ok());
        assert_eq!(event(r#"["m","\ud800",]"#, 0), Err(DecodeError::BadJson));
        assert_eq!(event(r#"["m","\ud800",{"_placeholder":true,"num":0}]"#, 0), Err(DecodeError::AttachmentMismatch));
        assert_eq!(without_lone_surrogates(r#"["\\ud800"]"#), None, "an escaped backslash, not an escape");
    }

    #[test]
    fn acks_are_arrays() {
        assert_eq!(ack(r#"[1,"2",{"3":[false]}]"#, 0), Ok(r#"1,"2",{"3":[false]}"#));
        assert_eq!(ack("[]", 0), Ok(""));
        assert_eq!(ack("{}", 0), Err(DecodeError::InvalidPayload));
        assert_eq!(ack("1", 0), Err(DecodeError::InvalidPayload));
    }

    #[test]
    fn connect_payloads_are_objects() {
        assert_eq!(object(r#"{"token":"123"}"#), Ok(()));
        assert_eq!(object("[]"), Err(DecodeError::InvalidPayload));
        assert_eq!(object(r#""x""#), Err(DecodeError::InvalidPayload));
        assert_eq!(object("{"), Err(DecodeError::BadJson));
        assert_eq!(object(r#"{"_placeholder":true,"num":0}"#), Err(DecodeError::AttachmentMismatch));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,64}", n in 0usize..4) {
            let _ = event(&s, n);
            let _ = ack(&s, n);
            let _ = object(&s);
        }

        #[test]
        fn arguments_round_trip(args in proptest::collection::vec("[a-z\\\\\"]{0,6}", 0..4)) {
            let list: Vec<String> = args.iter().map(|a| serde_json::to_string(a).unwrap()).collect();
            let text = format!("[\"e\",{}]", list.join(","));
            let text = if args.is_empty() { "[\"e\"]".to_owned() } else { text };
            let (_, rest) = event(&text, 0).unwrap();
            proptest::prop_assert_eq!(rest, list.join(","));
        }
    }
}
