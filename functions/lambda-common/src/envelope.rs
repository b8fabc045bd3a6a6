//! SNS envelopes: a message that reached SQS through an SNS subscription
//! (without raw message delivery) is wrapped in a `Notification` document.

use serde_json::Value;

/// The message inside an SNS `Notification` envelope, or `text` itself when
/// it is not one (raw message delivery, direct invocation).
pub fn unwrap_sns(text: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("message is not JSON: {e}"))?;
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        return v
            .get("Message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "SNS envelope without Message".to_owned());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_notifications_and_passes_raw_messages() {
        let env = r#"{"Type":"Notification","Message":"{\"a\":1}"}"#;
        assert_eq!(unwrap_sns(env).unwrap(), r#"{"a":1}"#);
        assert_eq!(unwrap_sns(r#"{"a":1}"#).unwrap(), r#"{"a":1}"#);
        assert!(unwrap_sns("nope").is_err());
        assert!(unwrap_sns(r#"{"Type":"Notification"}"#).is_err());
    }
}
