//! The arguments of an event or an ack as they travel: JSON values joined by commas, and the
//! binary attachments their placeholders stand for. Kept as text, so that an echo, a relay or
//! an ack re-sends what came in without parsing it again.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec;
use super::limits::MAX_ATTACHMENTS;

/// Arguments of a Socket.IO event or ack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// JSON values joined by commas, without brackets (`1,"2",{"x":3}`, or empty).
    text: String,
    attachments: Vec<Bytes>,
}

/// An argument could not be added.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("argument is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("more than {MAX_ATTACHMENTS} binary attachments")]
    TooManyAttachments,
}

impl Args {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arguments from their text as a client sent them (already checked by the codec).
    pub(crate) fn from_parts(text: &str, attachments: Vec<Bytes>) -> Self {
        Self { text: text.to_owned(), attachments }
    }

    /// One argument serialised as JSON.
    pub fn json(value: &impl Serialize) -> Result<Self, ArgsError> {
        let mut args = Self::new();
        args.push(value)?;
        Ok(args)
    }

    /// Appends an argument serialised as JSON.
    pub fn push(&mut self, value: &impl Serialize) -> Result<&mut Self, ArgsError> {
        let mark = self.text.len();
        if !self.text.is_empty() {
            self.text.push(',');
        }
        let mut buf = std::mem::take(&mut self.text).into_bytes();
        let res = serde_json::to_writer(&mut buf, value);
        // serde_json writes UTF-8 only; the fallback keeps what was there before.
        self.text = String::from_utf8(buf).unwrap_or_default();
        if let Err(e) = res {
            self.text.truncate(mark);
            return Err(e.into());
        }
        Ok(self)
    }

    /// Appends a binary argument (sent as an attachment, its place held by a placeholder).
    pub fn push_binary(&mut self, data: Bytes) -> Result<&mut Self, ArgsError> {
        if self.attachments.len() >= MAX_ATTACHMENTS {
            return Err(ArgsError::TooManyAttachments);
        }
        if !self.text.is_empty() {
            self.text.push(',');
        }
        self.text.push_str(&codec::placeholder(self.attachments.len()));
        self.attachments.push(data);
        Ok(self)
    }

    /// The JSON text of the arguments, without brackets (placeholders in place of binaries).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The arguments as a JSON array.
    pub fn to_json_array(&self) -> String {
        format!("[{}]", self.text)
    }

    /// Deserialises the arguments as one array: a tuple (`(String, u32)`), a `Vec`, or a
    /// `serde_json::Value`. Binaries appear as their placeholders.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.to_json_array())
    }

    /// Deserialises the first argument.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        Ok(serde_json::from_str::<FirstOf<T>>(&self.to_json_array())?.0)
    }
}

/// The first element of an array, the rest ignored.
struct FirstOf<T>(T);

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for FirstOf<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for V<T> {
            type Value = FirstOf<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a non-empty array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?.ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstOf(first))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_arguments() {
        let mut args = Args::new();
        args.push(&1).unwrap().push(&"two").unwrap().push_binary(Bytes::from_static(b"\x01")).unwrap();
        assert_eq!(args.text(), r#"1,"two",{"_placeholder":true,"num":0}"#);
        assert_eq!(args.attachments().len(), 1);
        assert_eq!(args.first::<u32>().unwrap(), 1);
        let (a, b, _): (u32, String, serde_json::Value) = args.parse().unwrap();
        assert_eq!((a, b.as_str()), (1, "two"));
        assert!(Args::new().first::<u32>().is_err());
        assert_eq!(Args::json(&serde_json::json!({"k": [1]})).unwrap().text(), r#"{"k":[1]}"#);
    }

    #[test]
    fn attachments_are_bounded() {
        let mut args = Args::new();
        for _ in 0..MAX_ATTACHMENTS {
            args.push_binary(Bytes::new()).unwrap();
        }
        assert!(matches!(args.push_binary(Bytes::new()), Err(ArgsError::TooManyAttachments)));
    }
}
