//! Which objects an event announces, whatever carried it: an S3 notification
//! delivered directly, wrapped in SNS, SNS-in-SQS or S3-in-SQS, or an
//! EventBridge "Object Created" event. Keys are URL-decoded as S3 encodes them.

use aws_lambda_events::event::s3::S3Event;
use serde_json::Value;

/// One object an event says was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// The objects of one record, with the SQS message id when it came through SQS
/// (for batch item failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub sqs_message_id: Option<String>,
    pub objects: Result<Vec<ObjectRef>, String>,
}

/// `a+b%3Dc` -> `a b=c` (S3 event keys are form-encoded).
pub fn decode_key(k: &str) -> String {
    let plus = k.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn from_s3_event(v: &Value) -> Result<Vec<ObjectRef>, String> {
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let ev: S3Event = serde_json::from_value(v.clone())
        .map_err(|e| format!("not an S3 event notification: {e}"))?;
    Ok(ev
        .records
        .iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_some_and(|n| n.starts_with("ObjectCreated"))
        })
        .filter_map(|r| {
            Some(ObjectRef {
                bucket: r.s3.bucket.name.clone()?,
                key: decode_key(r.s3.object.key.as_deref()?),
            })
        })
        .collect())
}

/// An SNS envelope (as SQS receives it) or a raw message: the S3 objects inside.
fn from_message_text(text: &str) -> Result<Vec<ObjectRef>, String> {
    let inner = crate::envelope::unwrap_sns(text)?;
    let v: Value = serde_json::from_str(&inner).map_err(|e| format!("message is not JSON: {e}"))?;
    if v.get("detail-type").is_some() {
        return from_eventbridge(&v);
    }
    from_s3_event(&v)
}

fn from_eventbridge(v: &Value) -> Result<Vec<ObjectRef>, String> {
    let d = &v["detail"];
    match (d["bucket"]["name"].as_str(), d["object"]["key"].as_str()) {
        (Some(b), Some(k)) => Ok(vec![ObjectRef {
            bucket: b.into(),
            key: k.into(),
        }]),
        _ => Err("EventBridge event without detail.bucket.name / detail.object.key".into()),
    }
}

/// Everything an invocation's event announces.
pub fn announced(event: &Value) -> Vec<Announced> {
    if event.get("detail-type").is_some() {
        return vec![Announced {
            sqs_message_id: None,
            objects: from_eventbridge(event),
        }];
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return vec![Announced {
            sqs_message_id: None,
            objects: Err("event has no Records".into()),
        }];
    };
    let first = records.first();
    let is_s3 = first.is_some_and(|r| r.get("s3").is_some());
    if is_s3 || records.is_empty() {
        return vec![Announced {
            sqs_message_id: None,
            objects: from_s3_event(event),
        }];
    }
    records
        .iter()
        .map(|r| {
            if let Some(sns) = r.get("Sns") {
                let msg = sns.get("Message").and_then(Value::as_str).unwrap_or("");
                Announced {
                    sqs_message_id: None,
                    objects: from_message_text(msg),
                }
            } else if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
                let id = r
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let body = r.get("body").and_then(Value::as_str).unwrap_or("");
                Announced {
                    sqs_message_id: id,
                    objects: from_message_text(body),
                }
            } else {
                Announced {
                    sqs_message_id: None,
                    objects: Err("unknown record shape".into()),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_as_s3_encodes_them() {
        assert_eq!(
            decode_key("a/BILLING_PERIOD%3D2024-01/my+report.json"),
            "a/BILLING_PERIOD=2024-01/my report.json"
        );
    }
}
