//! Tag and cost category dimensions: the keys a tenant or connection names
//! (`--tag team --cost-category Environment`) that become rollup dimensions.
//!
//! One rule finds a dimension in every format, by the canonical form of names
//! ([`crate::fields::canonical`]: lower-case ASCII alphanumerics), which is
//! how AWS's own renamings between the formats line up:
//!
//! | format | user tag `team` | cost category `Environment` |
//! |---|---|---|
//! | legacy CUR CSV | column `resourceTags/user:team` | column `costCategory/Environment` |
//! | legacy CUR Parquet (Athena) | column `resource_tags_user_team` | column `cost_category_environment` |
//! | CUR 2.0 | `resource_tags` map, key `user_team` | `cost_category` map, key `environment` |
//! | FOCUS | `Tags` JSON/map, key `team` (or `user:team`) | `x_CostCategories` JSON/map |
//!
//! A tag key with a prefix (`aws:createdBy`) is matched as written; one without
//! is a user-defined tag (`user:` in CUR). A row without the key is untagged:
//! its spend stays in the rollup, in the group without that key.
//!
//! In the rollup, the values are two key columns holding a JSON object of the
//! named keys that the row has: `Tags` (the FOCUS column; keys as the tenant
//! named them) and `x_CostCategories` (AWS's FOCUS extension column), null
//! when the row has none of them.

use crate::fields::canonical;
use std::fmt;

/// At most this many dimensions (tags and cost categories together).
pub const MAX_DIMENSIONS: usize = 4;

/// Tag or cost category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Tag,
    CostCategory,
}

/// One named dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimension {
    pub kind: Kind,
    /// As the tenant named it: the key in the rollup's JSON.
    pub key: String,
}

/// A dimension that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DimensionError {
    #[error("{0:?} is not a dimension: write tag:KEY or cost-category:NAME")]
    Syntax(String),
    #[error("the {kind} key is empty")]
    Empty { kind: &'static str },
    #[error("{0:?} has no letters or digits, so no column can match it")]
    NoAlphanumerics(String),
    #[error("at most {MAX_DIMENSIONS} tag and cost category dimensions; {0} were named")]
    TooMany(usize),
}

impl Dimension {
    pub fn tag(key: &str) -> Result<Dimension, DimensionError> {
        Dimension::new(Kind::Tag, key)
    }

    pub fn cost_category(name: &str) -> Result<Dimension, DimensionError> {
        Dimension::new(Kind::CostCategory, name)
    }

    fn new(kind: Kind, key: &str) -> Result<Dimension, DimensionError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(DimensionError::Empty {
                kind: match kind {
                    Kind::Tag => "tag",
                    Kind::CostCategory => "cost category",
                },
            });
        }
        if canonical(key).is_empty() {
            return Err(DimensionError::NoAlphanumerics(key.into()));
        }
        Ok(Dimension {
            kind,
            key: key.into(),
        })
    }

    /// The canonical name of the key inside its kind's columns or maps, as CUR
    /// writes it: a user tag gains `user`, a prefixed tag stays as it is.
    fn cur_key(&self) -> String {
        match self.kind {
            Kind::Tag if !self.key.contains(':') => format!("user{}", canonical(&self.key)),
            _ => canonical(&self.key),
        }
    }

    /// Whether a flat column (legacy CUR, either style) holds this dimension.
    pub fn is_column(&self, column_name: &str) -> bool {
        let prefix = match self.kind {
            Kind::Tag => "resourcetags",
            Kind::CostCategory => "costcategory",
        };
        canonical(column_name)
            .strip_prefix(prefix)
            .is_some_and(|rest| rest == self.cur_key())
    }

    /// How well a key of a map (CUR 2.0 `resource_tags`, FOCUS `Tags`) names
    /// this dimension: 2 exactly as named, 1 the same canonically (with or
    /// without CUR's `user` prefix, or under the `resourceTags/` or
    /// `costCategory/` prefix of the combined tag maps: CUR 2.0's `tags`,
    /// FOCUS 1.2's `Tags`, which hold cost categories too), 0 not at all.
    /// The best match of a row wins.
    pub fn map_key_match(&self, map_key: &str) -> u8 {
        if map_key == self.key {
            return 2;
        }
        let c = canonical(map_key);
        let (cur, plain) = (self.cur_key(), canonical(&self.key));
        let prefixed = match self.kind {
            Kind::Tag => c
                .strip_prefix("resourcetags")
                .is_some_and(|r| r == cur || r == plain),
            Kind::CostCategory => c.strip_prefix("costcategory").is_some_and(|r| r == plain),
        };
        let direct = match self.kind {
            Kind::Tag => c == cur || c == plain,
            // In a map of cost categories only (`cost_category`, `x_CostCategories`).
            Kind::CostCategory => c == plain,
        };
        u8::from(direct || prefixed)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Tag => write!(f, "tag:{}", self.key),
            Kind::CostCategory => write!(f, "cost-category:{}", self.key),
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = DimensionError;

    /// `tag:KEY` or `cost-category:NAME` (the form stored on a connection).
    fn from_str(s: &str) -> Result<Dimension, DimensionError> {
        if let Some(k) = s.strip_prefix("tag:") {
            Dimension::tag(k)
        } else if let Some(k) = s.strip_prefix("cost-category:") {
            Dimension::cost_category(k)
        } else {
            Err(DimensionError::Syntax(s.into()))
        }
    }
}

impl serde::Serialize for Dimension {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Dimension {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dimension, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// No dimensions (what a reader that groups nothing asks for).
pub static NO_DIMENSIONS: Dimensions = Dimensions(Vec::new());

/// The dimensions of a rollup, in the order named (duplicates dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Dimensions(Vec<Dimension>);

impl Dimensions {
    pub fn new(named: impl IntoIterator<Item = Dimension>) -> Result<Dimensions, DimensionError> {
        let mut v: Vec<Dimension> = Vec::new();
        for d in named {
            if !v.contains(&d) {
                v.push(d);
            }
        }
        if v.len() > MAX_DIMENSIONS {
            return Err(DimensionError::TooMany(v.len()));
        }
        Ok(Dimensions(v))
    }

    /// From `--tag` and `--cost-category` values.
    pub fn from_args(tags: &[String], cost_categories: &[String]) -> Result<Self, DimensionError> {
        let mut named = Vec::new();
        for t in tags {
            named.push(Dimension::tag(t)?);
        }
        for c in cost_categories {
            named.push(Dimension::cost_category(c)?);
        }
        Dimensions::new(named)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dimension> {
        self.0.iter()
    }

    pub fn get(&self, i: usize) -> Option<&Dimension> {
        self.0.get(i)
    }
}

/// Appends `{"k":"v",...}` of the dimensions of `kind` whose value is not
/// empty to `out` (nothing when none has one: the column is then null).
pub fn render_json(dims: &Dimensions, kind: Kind, values: &[&[u8]], out: &mut Vec<u8>) {
    let mut first = true;
    for (d, v) in dims.iter().zip(values) {
        if d.kind != kind || v.is_empty() {
            continue;
        }
        out.push(if first { b'{' } else { b',' });
        first = false;
        json_string(d.key.as_bytes(), out);
        out.push(b':');
        json_string(v, out);
    }
    if !first {
        out.push(b'}');
    }
}

/// A JSON string of (UTF-8) bytes; invalid UTF-8 is replaced, as readers of the
/// rollup would have to.
fn json_string(v: &[u8], out: &mut Vec<u8>) {
    let s = String::from_utf8_lossy(v);
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The value of `key` in a rollup's JSON column (`Tags`, `x_CostCategories`),
/// `None` when untagged.
pub fn value_in(json: &str, key: &str) -> Option<String> {
    if json.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    map.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(s: &[&str]) -> Dimensions {
        Dimensions::new(s.iter().map(|d| d.parse().unwrap())).unwrap()
    }

    #[test]
    fn a_user_tag_is_found_in_every_formats_spelling() {
        let team = Dimension::tag("Team").unwrap();
        assert!(team.is_column("resourceTags/user:Team"));
        assert!(team.is_column("resourceTags/user:team"));
        assert!(team.is_column("resource_tags_user_team"));
        assert!(!team.is_column("resourceTags/aws:team"));
        assert!(!team.is_column("resourceTags/user:teams"));
        assert!(!team.is_column("costCategory/Team"));
        assert_eq!(team.map_key_match("user_team"), 1, "CUR 2.0");
        assert_eq!(team.map_key_match("team"), 1, "FOCUS, other case");
        assert_eq!(team.map_key_match("Team"), 2);
        assert_eq!(team.map_key_match("teams"), 0);
        assert_eq!(
            team.map_key_match("resourceTags/user:team"),
            1,
            "CUR 2.0 tags"
        );
        let env_cc = Dimension::cost_category("AWS Charge Types").unwrap();
        assert_eq!(
            env_cc.map_key_match("a_w_s_charge_types"),
            1,
            "Athena's renaming"
        );
        assert_eq!(env_cc.map_key_match("costCategory/AWS Charge Types"), 1);
        assert!(env_cc.is_column("cost_category_a_w_s_charge_types"));
        let created = Dimension::tag("aws:createdBy").unwrap();
        assert!(created.is_column("resourceTags/aws:createdBy"));
        assert!(created.is_column("resource_tags_aws_created_by"));
        assert!(!created.is_column("resourceTags/user:aws:createdBy"));
        let env = Dimension::cost_category("Environment").unwrap();
        assert!(env.is_column("costCategory/Environment"));
        assert!(env.is_column("cost_category_environment"));
        assert!(!env.is_column("resourceTags/user:Environment"));
    }

    #[test]
    fn dimensions_parse_and_refuse_clearly() {
        let d = dims(&["tag:team", "cost-category:Env", "tag:team"]);
        assert_eq!(d.len(), 2, "a repeated dimension counts once");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"["tag:team","cost-category:Env"]"#
        );
        assert_eq!(
            serde_json::from_str::<Dimensions>(r#"["tag:team","cost-category:Env"]"#).unwrap(),
            d
        );
        assert!(matches!(
            "team".parse::<Dimension>(),
            Err(DimensionError::Syntax(_))
        ));
        assert!(matches!(
            Dimension::tag(" "),
            Err(DimensionError::Empty { .. })
        ));
        assert!(matches!(
            Dimension::tag("::"),
            Err(DimensionError::NoAlphanumerics(_))
        ));
        let five: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
        assert_eq!(
            Dimensions::from_args(&five, &[]),
            Err(DimensionError::TooMany(5))
        );
    }

    #[test]
    fn values_render_as_a_json_object_of_the_tagged_keys() {
        let d = dims(&["tag:team", "cost-category:Env", "tag:app"]);
        let mut out = Vec::new();
        render_json(&d, Kind::Tag, &[b"a\"b", b"prod", b""], &mut out);
        assert_eq!(out, br#"{"team":"a\"b"}"#);
        assert_eq!(
            value_in(std::str::from_utf8(&out).unwrap(), "team").as_deref(),
            Some("a\"b")
        );
        out.clear();
        render_json(&d, Kind::CostCategory, &[b"x", b"", b"y"], &mut out);
        assert!(out.is_empty(), "no value: null, not {{}}");
        assert_eq!(value_in("", "team"), None);
    }
}
