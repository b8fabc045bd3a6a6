//! infra/template.yaml as CloudFormation reads it, and its IAM statements
//! with the intrinsic functions evaluated for a test's own resources (so a
//! moto_server with access control on can enforce exactly what the template
//! grants).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::process::Command;

/// The deployed template as JSON (cfn-lint's decoder turns the short-form
/// tags into their long form).
pub fn template() -> Value {
    let path = crate::data::workspace_root().join("infra/template.yaml");
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\nassert t is not None, m\nprint(json.dumps(t, default=str))",
        ])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "cfn-lint's decoder (pip install cfn-lint; ./scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The values a test gives the template's parameters, resources
/// (`Ref` names, `Fn::GetAtt` as `Name.Attr`) and conditions.
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    pub values: BTreeMap<String, Value>,
    pub conditions: BTreeMap<String, bool>,
}

impl Bindings {
    /// `AWS::Partition` = aws, `AWS::Region` = us-east-1, `AWS::AccountId` =
    /// moto's account.
    pub fn new() -> Self {
        let mut b = Bindings::default();
        b.set("AWS::Partition", "aws")
            .set("AWS::Region", "us-east-1")
            .set("AWS::AccountId", "123456789012")
            .set("AWS::StackName", "curlew-test");
        b
    }

    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    pub fn condition(&mut self, name: &str, value: bool) -> &mut Self {
        self.conditions.insert(name.to_owned(), value);
        self
    }

    fn lookup(&self, name: &str) -> &Value {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("the test binds no value for {name}"))
    }

    /// `v` with every intrinsic function evaluated.
    pub fn resolve(&self, v: &Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(items.iter().map(|i| self.resolve(i)).collect()),
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().unwrap();
                match k.as_str() {
                    "Ref" => self.lookup(arg.as_str().unwrap()).clone(),
                    "Fn::GetAtt" => {
                        let parts: Vec<&str> = match arg {
                            Value::Array(a) => a.iter().map(|p| p.as_str().unwrap()).collect(),
                            Value::String(s) => s.splitn(2, '.').collect(),
                            _ => panic!("Fn::GetAtt {arg}"),
                        };
                        self.lookup(&parts.join(".")).clone()
                    }
                    "Fn::Sub" => match arg {
                        Value::String(s) => Value::String(self.sub(s)),
                        // [template, {local: value}]: the locals shadow the template's names.
                        Value::Array(a) => {
                            let mut local = self.clone();
                            for (name, v) in a[1].as_object().expect("Fn::Sub variables") {
                                local.values.insert(name.clone(), self.resolve(v));
                            }
                            Value::String(local.sub(a[0].as_str().expect("Fn::Sub string")))
                        }
                        _ => panic!("Fn::Sub {arg}"),
                    },
                    "Fn::Join" => {
                        let sep = arg[0].as_str().unwrap();
                        let items = self.resolve(&arg[1]);
                        let items: Vec<String> = items
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|i| i.as_str().unwrap().to_owned())
                            .collect();
                        Value::String(items.join(sep))
                    }
                    "Fn::Split" => {
                        let sep = arg[0].as_str().unwrap();
                        let s = self.resolve(&arg[1]);
                        Value::Array(
                            s.as_str()
                                .unwrap()
                                .split(sep)
                                .map(|p| Value::String(p.to_owned()))
                                .collect(),
                        )
                    }
                    "Fn::If" => {
                        let cond = arg[0].as_str().unwrap();
                        let which = *self
                            .conditions
                            .get(cond)
                            .unwrap_or_else(|| panic!("the test binds no condition {cond}"));
                        self.resolve(&arg[if which { 1 } else { 2 }])
                    }
                    _ => Value::Object(self.resolve_map(m)),
                }
            }
            Value::Object(m) => Value::Object(self.resolve_map(m)),
            other => other.clone(),
        }
    }

    fn resolve_map(&self, m: &Map<String, Value>) -> Map<String, Value> {
        m.iter()
            .map(|(k, v)| (k.clone(), self.resolve(v)))
            .collect()
    }

    fn sub(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${") + start;
            let name = &rest[start + 2..end];
            match self.lookup(name) {
                Value::String(v) => out.push_str(v),
                other => panic!("${{{name}}} is bound to {other}, not a string"),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The inline policy statements of a function (`Properties.Policies[*].Statement`), as written.
pub fn function_statements(t: &Value, function: &str) -> Vec<Value> {
    let policies = t["Resources"][function]["Properties"]["Policies"]
        .as_array()
        .unwrap_or_else(|| panic!("{function} has no inline Policies"));
    policies
        .iter()
        .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// A statement's actions (a string or a list).
pub fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        Value::String(a) => vec![a.clone()],
        other => panic!("Action {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intrinsics_resolve_like_cloudformation() {
        let mut b = Bindings::new();
        b.set("StoreBucket.Arn", "arn:aws:s3:::store")
            .set("Buckets", json!(["arn:aws:s3:::a", "arn:aws:s3:::b"]))
            .condition("Yes", true);
        assert_eq!(
            b.resolve(&json!({"Fn::Sub": "${StoreBucket.Arn}/curlew/*"})),
            json!("arn:aws:s3:::store/curlew/*")
        );
        // "Every billing bucket's objects": a join by "/*," alone leaves the
        // last bucket without its "/*" (the template had that bug).
        let joined = json!({"Fn::Join": ["/*,", {"Ref": "Buckets"}]});
        assert_eq!(
            b.resolve(&json!({"Fn::Split": [",", joined.clone()]})),
            json!(["arn:aws:s3:::a/*", "arn:aws:s3:::b"])
        );
        let objects = json!({"Fn::Split": [",", {"Fn::Sub": ["${Joined}/*", {"Joined": joined}]}]});
        assert_eq!(
            b.resolve(&objects),
            json!(["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"])
        );
        assert_eq!(
            b.resolve(&json!({"Fn::If": ["Yes", {"Fn::GetAtt": ["StoreBucket", "Arn"]}, "no"]})),
            json!("arn:aws:s3:::store")
        );
    }
}
