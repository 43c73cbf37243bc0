//! An https provider: Envoy connects with TLS, sends the api_base host as SNI, and verifies
//! the certificate against the CA bundle (litellm_settings.ssl_verify, else the system's).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use switchyard_tests::{artefacts, free_port, marker, Client, Switchyard};

use crate::common::{chat, deployment, yaml, FAKE_KEY};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate for `localhost` signed by it.
fn certificates(dir: &Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=Switchyard test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

/// The TLS provider, stopped by pid when dropped; its request log collected as it comes.
struct TlsProvider {
    child: Child,
    port: u16,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl TlsProvider {
    fn start(dir: &Path) -> TlsProvider {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/tls_provider.py");
        let mut child = Command::new(artefacts::venv_python())
            .arg(script)
            .arg(port.to_string())
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        TlsProvider { child, port, seen }
    }

    fn requests_with(&self, marker: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|r| r["body"].to_string().contains(marker))
            .cloned()
            .collect()
    }
}

impl Drop for TlsProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, ssl_verify: Option<&Path>) -> String {
    let mut config = json!({
        "model_list": [deployment("tls-model", json!({
            "model": "openai/gpt-4o-mini",
            "api_base": format!("https://localhost:{port}/v1"),
            "api_key": "os.environ/FAKE_KEY",
        }))],
        "router_settings": {"num_retries": 0},
    });
    if let Some(ca) = ssl_verify {
        config["litellm_settings"] = json!({"ssl_verify": ca});
    }
    yaml(&config)
}

#[tokio::test]
async fn https_provider_gets_sni_and_a_verified_connection() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let provider = TlsProvider::start(dir.path());

    let sy = Switchyard::start_with_env(
        &config(provider.port, Some(&dir.path().join("ca.pem"))),
        &[("FAKE_KEY", FAKE_KEY)],
    );
    let m = marker("tls");
    let answer: Value = Client::new(&sy.base_url())
        .post("/v1/chat/completions", &chat("tls-model", &m))
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "tls-model");
    assert_eq!(answer["choices"][0]["message"]["content"], "over TLS");
    let got = provider.requests_with(&m);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0]["sni"], "localhost",
        "Envoy must send the api_base host as SNI"
    );
    assert_eq!(got[0]["path"], "/v1/chat/completions");
    assert_eq!(
        got[0]["headers"]["host"],
        format!("localhost:{}", provider.port)
    );
    assert_eq!(
        got[0]["headers"]["authorization"],
        format!("Bearer {FAKE_KEY}")
    );
    assert_eq!(got[0]["body"]["model"], "gpt-4o-mini");
}

/// Without the test CA, the certificate is not trusted: the connection fails (502), nothing
/// is sent to the provider.
#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let provider = TlsProvider::start(dir.path());

    let sy = Switchyard::start_with_env(&config(provider.port, None), &[("FAKE_KEY", FAKE_KEY)]);
    let m = marker("tls-untrusted");
    let reply = Client::new(&sy.base_url())
        .post("/v1/chat/completions", &chat("tls-model", &m))
        .await;
    switchyard_tests::assert_openai_error(&reply, 502);
    assert!(
        provider.requests_with(&m).is_empty(),
        "no request may pass an untrusted connection"
    );
}
