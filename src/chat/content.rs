//! Content and id rules, the same on REST and on the socket (SPEC §6): message contents are
//! trimmed, 1–2048 Unicode scalar values, without NUL; ids are integers or numeric strings in
//! 1..=2^53 (what a JavaScript number holds exactly).

use serde_json::Value;

use super::ChatError;

/// The longest message content, in Unicode scalar values.
pub const MAX_CONTENT_CHARS: usize = 2048;
/// The largest id a client may name: 2^53, the last integer a JavaScript number holds exactly.
pub const MAX_ID: i64 = 1 << 53;

/// A message's content as stored: trimmed, not blank, at most [`MAX_CONTENT_CHARS`], no NUL.
pub fn check_content(raw: &str) -> Result<String, ChatError> {
    let content = raw.trim();
    if content.is_empty() {
        return Err(ChatError::Invalid("Content is required"));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(ChatError::Invalid("Message too long"));
    }
    if content.contains('\0') {
        return Err(ChatError::Invalid("Content may not contain NUL characters"));
    }
    Ok(content.to_owned())
}

pub(super) fn id_from_json(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let id = match n.as_i64() {
                Some(i) => i,
                // A float: whole numbers like `3.0` are ids, fractions are not.
                None => {
                    let f = n.as_f64()?;
                    if f.fract() != 0.0 || !(1.0..=MAX_ID as f64).contains(&f) {
                        return None;
                    }
                    f as i64
                }
            };
            (1..=MAX_ID).contains(&id).then_some(id)
        }
        Value::String(s) => id_from_str(s),
        _ => None,
    }
}

pub(super) fn id_from_str(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = s.parse().ok()?;
    (1..=MAX_ID).contains(&id).then_some(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids() {
        for (v, want) in [
            (json!(1), Some(1)),
            (json!("42"), Some(42)),
            (json!(3.0), Some(3)),
            (json!(MAX_ID), Some(MAX_ID)),
            (json!(MAX_ID + 1), None),
            (json!(0), None),
            (json!(-1), None),
            (json!(1.5), None),
            (json!("1.5"), None),
            (json!("-3"), None),
            (json!("abc"), None),
            (json!(""), None),
            (json!(" 1"), None),
            (json!("9007199254740993"), None),
            (json!(1e300), None),
            (json!(null), None),
            (json!(true), None),
            (json!([1]), None),
        ] {
            assert_eq!(id_from_json(&v), want, "{v}");
        }
    }

    #[test]
    fn contents() {
        assert_eq!(check_content("  hi  ").unwrap(), "hi");
        assert!(matches!(check_content(""), Err(ChatError::Invalid("Content is required"))));
        assert!(matches!(check_content(" \n\t "), Err(ChatError::Invalid("Content is required"))));
        assert!(matches!(check_content("a\0b"), Err(ChatError::Invalid(_))));
        let max = "é".repeat(MAX_CONTENT_CHARS);
        assert_eq!(check_content(&max).unwrap(), max, "2048 scalar values, not bytes");
        assert!(matches!(check_content(&format!("{max}x")), Err(ChatError::Invalid("Message too long"))));
        // Surrounding whitespace does not count.
        assert!(check_content(&format!("  {max}  ")).is_ok());
    }
}
