//! The `detail` of an AWS Health event as EventBridge delivers it, every
//! field optional: real events leave out `endTime` while open, entity `tags`
//! and `affectedAccount` on some public events, and `page` / `totalPages`
//! on older ones. Timestamps stay the RFC 1123 strings AWS sends
//! ("Wed, 15 Feb 2023 22:07:07 GMT"); only `lastUpdatedTime` is read as a
//! time (an update older than the one recorded is not news).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// `detail` of an "AWS Health Event" / "AWS Health Abuse Event".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_arn: Option<String>,
    /// Health's service code (`EC2`, `S3`, `RDS`...); see [`super::services`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_code: Option<String>,
    /// `issue`, `scheduledChange`, `accountNotification`, `investigation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_category: Option<String>,
    /// `PUBLIC`, `ACCOUNT_SPECIFIC` or `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_scope_code: Option<String>,
    /// The communication, with the page number as a `-N` suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_time: Option<String>,
    /// `open`, `upcoming` or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    /// The region affected (`global` for global services); the envelope's
    /// `region` is only where the event was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_region: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_description: Vec<EventDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_metadata: Option<BTreeMap<String, serde_json::Value>>,
    /// The account concerned (the envelope's `account` is the receiver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_account: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected_entities: Vec<AffectedEntity>,
    /// Page of a paginated event (AWS sends a string: "1").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_number"
    )]
    pub page: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_number"
    )]
    pub total_pages: Option<String>,
}

/// One language's text of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDescription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_description: Option<String>,
}

/// A resource the event concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_value: Option<String>,
    /// `IMPAIRED`, `UNIMPAIRED`, `UNKNOWN`, `PENDING`, `RESOLVED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// "1" or 1: both are a page number.
fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// What curlew takes from an event's envelope (the Lambda parses
/// `EventBridgeEvent<HealthDetail>`; `curlew health replay` the same files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// `detail-type`: "AWS Health Event" or "AWS Health Abuse Event".
    pub detail_type: Option<String>,
    /// The account the event was sent to.
    pub account: Option<String>,
    /// The region the event was delivered to.
    pub region: Option<String>,
    pub detail: HealthDetail,
}

impl HealthDetail {
    /// `communicationId` without its `-N` page suffix (AWS appends the page
    /// number even to a one-page event): the pages of one communication
    /// share it.
    pub fn communication(&self) -> String {
        let c = self.communication_id.as_deref().unwrap_or("");
        match c.rsplit_once('-') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                base.to_owned()
            }
            _ => c.to_owned(),
        }
    }

    /// (page, total pages), 1 of 1 when the event does not say.
    pub fn pages(&self) -> (u32, u32) {
        let num = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<u32>().ok());
        let total = num(&self.total_pages).unwrap_or(1).max(1);
        let page = num(&self.page).unwrap_or(1).clamp(1, total);
        (page, total)
    }

    /// The English description (or the first one).
    pub fn description(&self) -> Option<&str> {
        self.event_description
            .iter()
            .find(|d| d.language.as_deref() == Some("en_US"))
            .or_else(|| self.event_description.first())
            .and_then(|d| d.latest_description.as_deref())
    }

    /// The affected entities' values (entities without one are left out).
    pub fn entity_values(&self) -> impl Iterator<Item = &str> {
        self.affected_entities
            .iter()
            .filter_map(|e| e.entity_value.as_deref())
    }

    pub fn is_closed(&self) -> bool {
        self.status_code.as_deref() == Some("closed")
    }

    pub fn is_public(&self) -> bool {
        self.event_scope_code.as_deref() == Some("PUBLIC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communication_drops_the_page_suffix_only() {
        let mut d = HealthDetail {
            communication_id: Some("01b0993207d81a09dcd552ebd1e633e36cf1f09a-2".into()),
            ..Default::default()
        };
        assert_eq!(
            d.communication(),
            "01b0993207d81a09dcd552ebd1e633e36cf1f09a"
        );
        d.communication_id = Some("abc-def".into());
        assert_eq!(d.communication(), "abc-def");
        d.communication_id = None;
        assert_eq!(d.communication(), "");
    }

    #[test]
    fn pages_are_strings_or_numbers_and_default_to_one_of_one() {
        let d: HealthDetail = serde_json::from_str(r#"{"page":"2","totalPages":2}"#).unwrap();
        assert_eq!(d.pages(), (2, 2));
        let d: HealthDetail = serde_json::from_str("{}").unwrap();
        assert_eq!(d.pages(), (1, 1));
    }
}
