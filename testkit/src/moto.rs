//! moto_server for the tests: one server per test binary on a free 127.0.0.1
//! port, started on first use, stopped when the test process exits.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
    // Holding the child keeps its stdin open; the OS closes it when we exit.
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The running server (started on first call).
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(start)
}

fn start() -> Moto {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "moto is not installed: run ./scripts/test (it installs moto[server]==5.2.5), or `python3 -m pip install 'moto[server]==5.2.5'`");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Found from any crate of the workspace: walk up to the directory holding shared/.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("testkit/support/moto_server.py"))
        .find(|p| p.exists())
        .expect("testkit/support/moto_server.py not found above the crate");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "moto_server did not start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    }
}

/// An S3 client for the emulator (static test credentials, path-style).
pub fn s3_client() -> aws_sdk_s3::Client {
    let creds =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "curlew-tests");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto().endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Create a bucket with a unique name and return it.
pub async fn new_bucket(client: &aws_sdk_s3::Client, hint: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{hint}-{}-{n}", std::process::id());
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

/// An IAM user's key pair on moto.
#[derive(Debug, Clone)]
pub struct UserKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Create IAM users with these inline policy statements (and `admin`,
/// allowed everything), then turn this server's access control on: from
/// here on every request is checked against its caller's policies (moto
/// enforces actions and resources, not conditions). Server-wide: only for a
/// test binary whose every test expects it.
pub fn enable_auth_with_users(
    users: &serde_json::Value,
) -> std::collections::BTreeMap<String, UserKeys> {
    use std::io::Write;
    let script = crate::data::workspace_root().join("testkit/support/moto_iam_users.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&moto().endpoint)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run moto_iam_users.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(users.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "moto_iam_users.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("it prints JSON");
    v.as_object()
        .unwrap()
        .iter()
        .map(|(name, k)| {
            let s = |f: &str| k[f].as_str().unwrap().to_owned();
            (
                name.clone(),
                UserKeys {
                    access_key_id: s("access_key_id"),
                    secret_access_key: s("secret_access_key"),
                },
            )
        })
        .collect()
}

/// A new customer-managed KMS key on moto (boto3, before any auth): its ARN.
pub fn kms_key() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import boto3, sys\nk = boto3.client('kms', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing').create_key(Description='curlew test')\nprint(k['KeyMetadata']['Arn'])",
        ])
        .arg(&moto().endpoint)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "create a KMS key on moto: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
