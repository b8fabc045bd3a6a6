//! Answering CloudFormation: which ResponseURLs may be answered at all, the
//! answer body (at most 4096 bytes, valid JSON), and the one HTTP PUT.
//!
//! A ResponseURL is a presigned S3 URL chosen by whoever published the SNS
//! message. Sending anything to an arbitrary URL would make this function an
//! open request forwarder (SSRF: instance metadata, internal hosts), so only a
//! CloudFormation response bucket of the stack's own region is answered, over
//! https, with the stack's id and the request's id in the path. Everything
//! else is dropped without a single packet. Redirects are never followed.
//! The URL's query is a signature: it is never logged (see [`CheckedUrl`]'s
//! Debug).

use crate::request::Request;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// CloudFormation's limit on a response body.
pub const MAX_BODY: usize = 4096;

/// Which ResponseURLs may be answered. Production is [`ResponsePolicy::aws`];
/// the loopback allowance and the connection re-routing exist for tests only
/// and are set by no environment variable and no event field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponsePolicy {
    loopback_port: Option<u16>,
    connect_to: Option<SocketAddr>,
}

impl ResponsePolicy {
    /// https CloudFormation response buckets of the stack's region only.
    pub fn aws() -> ResponsePolicy {
        ResponsePolicy::default()
    }

    /// Tests: additionally allow exactly `http://127.0.0.1:<port>`.
    pub fn aws_and_loopback_for_tests(port: u16) -> ResponsePolicy {
        ResponsePolicy {
            loopback_port: Some(port),
            connect_to: None,
        }
    }

    /// Tests: send every connection (whatever host the URL names) to `addr`,
    /// so a test server sees anything that would have left the function.
    pub fn connecting_to_for_tests(mut self, addr: SocketAddr) -> ResponsePolicy {
        self.connect_to = Some(addr);
        self
    }

    /// The URL of `req`, if it may be answered.
    pub fn check(&self, req: &Request) -> Result<CheckedUrl, UrlRefused> {
        let u = url::Url::parse(&req.response_url).map_err(|_| UrlRefused::Unparsable)?;
        if u.cannot_be_a_base() {
            return Err(UrlRefused::Unparsable);
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(UrlRefused::UserInfo);
        }
        if u.fragment().is_some() {
            return Err(UrlRefused::Fragment);
        }
        let authority = match (u.scheme(), u.host(), u.port()) {
            ("https", Some(url::Host::Domain(d)), None) => {
                if !response_hosts(&req.stack.region).iter().any(|h| h == d) {
                    return Err(UrlRefused::Host(d.to_owned()));
                }
                d.to_owned()
            }
            ("http", Some(url::Host::Ipv4(ip)), Some(p))
                if ip == Ipv4Addr::LOCALHOST && self.loopback_port == Some(p) =>
            {
                format!("127.0.0.1:{p}")
            }
            ("https", Some(h), _) if !matches!(h, url::Host::Domain(_)) => {
                return Err(UrlRefused::Host(h.to_string()))
            }
            ("https", _, Some(_)) => return Err(UrlRefused::Port),
            ("https", _, None) => return Err(UrlRefused::Unparsable),
            (scheme, ..) => return Err(UrlRefused::NotHttps(scheme.to_owned())),
        };
        let path = percent_decode_str(u.path())
            .decode_utf8()
            .map_err(|_| UrlRefused::Path)?;
        let head = format!("/{}|", req.stack_id);
        let tail = format!("|{}", req.request_id);
        if !(path.starts_with(&head)
            && path.ends_with(&tail)
            && path.len() >= head.len() + tail.len())
        {
            return Err(UrlRefused::Path);
        }
        // Re-assembled from the parsed parts, so what is sent is exactly what was checked.
        let mut s = format!("{}://{authority}{}", u.scheme(), u.path());
        if let Some(q) = u.query() {
            s.push('?');
            s.push_str(q);
        }
        let uri: http::Uri = s.parse().map_err(|_| UrlRefused::Unparsable)?;
        if uri.authority().map(|a| a.as_str()) != Some(authority.as_str()) {
            return Err(UrlRefused::Unparsable);
        }
        Ok(CheckedUrl { uri })
    }

    fn allows_http(&self) -> bool {
        self.loopback_port.is_some()
    }
}

/// The hosts of the CloudFormation response bucket of `region`.
pub fn response_hosts(region: &str) -> Vec<String> {
    let bucket = format!(
        "cloudformation-custom-resource-response-{}",
        region.replace('-', "")
    );
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let mut hosts = vec![
        format!("{bucket}.s3.{suffix}"),
        format!("{bucket}.s3.{region}.{suffix}"),
        format!("{bucket}.s3-{region}.{suffix}"),
    ];
    if region == "us-east-1" {
        hosts.push(format!("{bucket}.s3-external-1.{suffix}"));
    }
    hosts
}

/// Why a ResponseURL is not answered. Never holds the URL's path or query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("not a URL")]
    Unparsable,
    #[error("scheme {0:?} is not https")]
    NotHttps(String),
    #[error("it carries user info")]
    UserInfo,
    #[error("it names a port")]
    Port,
    #[error("it carries a fragment")]
    Fragment,
    #[error("host {0:?} is not a CloudFormation response bucket of the stack's region")]
    Host(String),
    #[error("its path is not the request's StackId|LogicalResourceId|RequestId")]
    Path,
}

/// A ResponseURL that passed [`ResponsePolicy::check`].
#[derive(Clone)]
pub struct CheckedUrl {
    uri: http::Uri,
}

impl CheckedUrl {
    /// Scheme and host, safe to log.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            self.uri.scheme_str().unwrap_or(""),
            self.uri.authority().map(|a| a.as_str()).unwrap_or("")
        )
    }
}

impl std::fmt::Debug for CheckedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckedUrl({}/<presigned>)", self.origin())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Answer {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub no_echo: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

fn cut_at_char(s: &mut String, max: usize) {
    let mut n = max.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s.truncate(n);
}

impl Answer {
    pub fn new(req: &Request, status: Status, physical_resource_id: String) -> Answer {
        Answer {
            status,
            reason: None,
            physical_resource_id,
            stack_id: req.stack_id.clone(),
            request_id: req.request_id.clone(),
            logical_resource_id: req.logical_resource_id.clone(),
            no_echo: false,
            data: BTreeMap::new(),
        }
    }

    pub fn failed(
        req: &Request,
        physical_resource_id: String,
        reason: impl Into<String>,
    ) -> Answer {
        let mut a = Answer::new(req, Status::Failed, physical_resource_id);
        a.reason = Some(reason.into());
        a
    }

    /// The JSON body, at most [`MAX_BODY`] bytes. When it is longer, Reason
    /// and the Data values are all cut to the largest common length that
    /// fits (each cut marked "..."), so a long Reason keeps its beginning
    /// and no value is lost whole. The identifiers are bounded by `request`,
    /// so that always suffices.
    pub fn body(&self) -> Vec<u8> {
        let whole = serde_json::to_vec(self).expect("answer serialises");
        if whole.len() <= MAX_BODY {
            return whole;
        }
        let longest = self
            .reason
            .iter()
            .chain(self.data.values())
            .map(String::len)
            .max()
            .unwrap_or(0);
        // Largest cap that fits: the body grows with the cap.
        let (mut lo, mut hi) = (0usize, longest);
        let mut best = None;
        while lo <= hi {
            let cap = lo + (hi - lo) / 2;
            let b = serde_json::to_vec(&self.capped(cap)).expect("answer serialises");
            if b.len() <= MAX_BODY {
                best = Some(b);
                lo = cap + 1;
            } else if cap == 0 {
                break;
            } else {
                hi = cap - 1;
            }
        }
        best.unwrap_or_else(|| {
            // Cannot happen with bounded identifiers: drop Reason and Data.
            let mut bare = self.capped(0);
            bare.data.clear();
            serde_json::to_vec(&bare).expect("answer serialises")
        })
    }

    /// Reason and Data values cut to at most `cap` bytes each.
    fn capped(&self, cap: usize) -> Answer {
        let cut = |s: &mut String| {
            if s.len() > cap {
                cut_at_char(s, cap.saturating_sub(3));
                if cap >= 3 {
                    s.push_str("...");
                }
            }
        };
        let mut a = self.clone();
        a.reason.iter_mut().for_each(cut);
        a.data.values_mut().for_each(cut);
        a
    }
}

/// The HTTP client for answers: PUT only, no redirects, no pooling of
/// anything but the connection.
#[derive(Clone)]
pub struct Responder {
    client: Client<HttpsConnector<Dial>, Full<Bytes>>,
    attempt_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no TLS roots: {0}")]
    Tls(std::io::Error),
    #[error("the answer was not delivered after {attempts} attempts: {last}")]
    NotDelivered { attempts: u32, last: String },
    #[error("the response URL answered HTTP {0} (redirects are not followed)")]
    Refused(u16),
}

/// Connects where the URL says, or (tests) where the policy re-routes all connections.
#[derive(Clone)]
pub struct Dial {
    http: HttpConnector,
    to: Option<SocketAddr>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Dial {
    type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let uri = match self.to {
            Some(addr) => format!("http://{addr}/")
                .parse()
                .expect("socket address URI"),
            None => uri,
        };
        let fut = self.http.call(uri);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

const ATTEMPTS: u32 = 3;

impl Responder {
    pub fn new(policy: &ResponsePolicy) -> Result<Responder, SendError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
        {
            Ok(b) => b,
            // Tests talk plain http to 127.0.0.1 and need no roots.
            Err(_) if policy.allows_http() => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(
                    rustls::ClientConfig::builder_with_provider(
                        rustls::crypto::aws_lc_rs::default_provider().into(),
                    )
                    .with_safe_default_protocol_versions()
                    .map_err(|e| SendError::Tls(std::io::Error::other(e)))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
                ),
            Err(e) => return Err(SendError::Tls(e)),
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(3)));
        let dial = Dial {
            http,
            to: policy.connect_to,
        };
        let schemes = if policy.allows_http() {
            builder.https_or_http()
        } else {
            builder.https_only()
        };
        let https = schemes.enable_http1().wrap_connector(dial);
        Ok(Responder {
            client: Client::builder(TokioExecutor::new()).build(https),
            attempt_timeout: Duration::from_secs(4),
        })
    }

    /// PUT `body` to `url` with an empty Content-Type. Retries (a few times,
    /// never past `until`) only when the request did not get an answer or got
    /// a 5xx; any 3xx/4xx is final, and a redirect is never followed.
    pub async fn put(
        &self,
        url: &CheckedUrl,
        body: Vec<u8>,
        until: Instant,
    ) -> Result<(), SendError> {
        let body = Bytes::from(body);
        for attempt in 1..=ATTEMPTS {
            let req = http::Request::put(url.uri.clone())
                .header(http::header::CONTENT_TYPE, "")
                .header(http::header::CONTENT_LENGTH, body.len())
                .body(Full::new(body.clone()))
                .expect("request parts are valid");
            let left = until.saturating_duration_since(Instant::now());
            let outcome =
                tokio::time::timeout(self.attempt_timeout.min(left), self.client.request(req))
                    .await;
            let last = match outcome {
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(()),
                Ok(Ok(resp)) if resp.status().is_server_error() => {
                    format!("HTTP {}", resp.status().as_u16())
                }
                Ok(Ok(resp)) => return Err(SendError::Refused(resp.status().as_u16())),
                // The error's Display can name the URI: keep only its kind.
                Ok(Err(e)) if e.is_connect() => "could not connect".to_owned(),
                Ok(Err(_)) => "the connection failed".to_owned(),
                Err(_) => "timed out".to_owned(),
            };
            if attempt == ATTEMPTS || Instant::now() + Duration::from_millis(200) >= until {
                return Err(SendError::NotDelivered {
                    attempts: attempt,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!("the loop returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Kind, StackArn};

    const STACK: &str = "arn:aws:cloudformation:us-east-1:111122223333:stack/curlew-connect/5b6a9d10-abcd-11ee-9f6e-0a1b2c3d4e5f";

    fn req(url: &str, stack_id: &str) -> Request {
        Request {
            kind: Kind::Create,
            stack_id: stack_id.into(),
            stack: StackArn::parse(stack_id).unwrap(),
            request_id: "req-1".into(),
            logical_resource_id: "Conn".into(),
            response_url: url.into(),
            properties: serde_json::Value::Null,
        }
    }

    fn path(stack: &str) -> String {
        format!(
            "/{}%7CConn%7Creq-1?X-Amz-Signature=abc",
            stack.replace(':', "%3A")
        )
    }

    #[test]
    fn only_response_buckets_of_the_stacks_region() {
        let p = ResponsePolicy::aws();
        let ok = |host: &str, stack: &str| {
            p.check(&req(&format!("https://{host}{}", path(stack)), stack))
        };
        for host in [
            "cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3.us-east-1.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3-us-east-1.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3-external-1.amazonaws.com",
            "CLOUDFORMATION-custom-resource-response-useast1.s3.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3.amazonaws.com:443",
        ] {
            let u = ok(host, STACK).unwrap_or_else(|e| panic!("{host}: {e}"));
            assert!(!format!("{u:?}").contains("Signature"));
        }
        let cn = "arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/a/b";
        ok(
            "cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn",
            cn,
        )
        .unwrap();
        for (host, want) in [
            (
                "cloudformation-custom-resource-response-uswest2.s3.amazonaws.com",
                "Host",
            ),
            (
                "cloudformation-custom-resource-response-useast1.s3.amazonaws.com.evil.com",
                "Host",
            ),
            (
                "cloudformation-custom-resource-response-useast1.s3.amazonaws.com.",
                "Host",
            ),
            ("169.254.169.254", "Host"),
            ("[::1]", "Host"),
            (
                "cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443",
                "Port",
            ),
            (
                "x@cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
                "UserInfo",
            ),
            (
                "cloudformation-custom-resource-response-useast1.s3.amazonaws.com@evil.com",
                "UserInfo",
            ),
        ] {
            let e = ok(host, STACK).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{host}: {e:?}");
        }
        let http = format!(
            "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com{}",
            path(STACK)
        );
        assert!(matches!(
            p.check(&req(&http, STACK)),
            Err(UrlRefused::NotHttps(_))
        ));
        // The path must name this stack and this request.
        let other = "arn:aws:cloudformation:us-east-1:111122223333:stack/other/1";
        let wrong = format!(
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com{}",
            path(other)
        );
        assert_eq!(p.check(&req(&wrong, STACK)).unwrap_err(), UrlRefused::Path);
        // Loopback only when a test allows exactly that port.
        let lo = format!("http://127.0.0.1:8080{}", path(STACK));
        assert!(p.check(&req(&lo, STACK)).is_err());
        let t = ResponsePolicy::aws_and_loopback_for_tests(8080);
        assert!(t.check(&req(&lo, STACK)).is_ok());
        let lo2 = format!("http://127.0.0.1:8081{}", path(STACK));
        assert!(t.check(&req(&lo2, STACK)).is_err());
        let frag = format!("{lo}#x");
        assert_eq!(
            t.check(&req(&frag, STACK)).unwrap_err(),
            UrlRefused::Fragment
        );
    }

    #[test]
    fn bodies_are_cut_to_4096_bytes_of_valid_json() {
        let r = req("https://x", STACK);
        for reason in ["é".repeat(5000), "\"".repeat(5000), "x".repeat(4000)] {
            let mut a = Answer::failed(&r, "curlew:acme:111122223333".into(), reason);
            a.data.insert("ConnectionId".into(), "y".repeat(3000));
            a.data.insert("Status".into(), "\u{1F600}".repeat(900));
            let b = a.body();
            assert!(b.len() <= MAX_BODY, "{}", b.len());
            let back: Answer = serde_json::from_slice(&b).unwrap();
            assert_eq!(back.status, Status::Failed);
            assert_eq!(back.physical_resource_id, "curlew:acme:111122223333");
            assert!(back.reason.unwrap().len() > 100);
        }
        let small = Answer::new(&r, Status::Success, "p".into());
        assert_eq!(small.body(), serde_json::to_vec(&small).unwrap());
    }
}
