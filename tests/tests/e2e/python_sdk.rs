//! The official `openai` Python SDK against Switchyard: whole and streamed chat, the model
//! list, and the exception classes it raises for a bad key and an unknown model.

use std::process::Command;

use switchyard_tests::artefacts::{repo_root, venv_python};
use switchyard_tests::fake::CHAT_CONTENT;

use crate::auth::{stack, MASTER_KEY, MODEL};

#[test]
fn openai_python_sdk() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let script = repo_root().join("tests/python/openai_sdk_check.py");
    let output = Command::new(venv_python())
        .arg(&script)
        .args(["--base-url", &s.sy.url("/v1")])
        .args(["--api-key", MASTER_KEY])
        .args(["--model", MODEL])
        // The SDK's HTTP client honours proxy variables; the gateway is local.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .expect("run the openai SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!(
        "exit: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(output.status.success(), "the SDK script failed:\n{report}");

    let line = |key: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {key} line:\n{report}"))
            .to_string()
    };
    assert_eq!(line("CHAT_MODEL"), MODEL, "{report}");
    assert_eq!(line("CHAT_CONTENT"), CHAT_CONTENT, "{report}");
    assert_eq!(line("STREAM_CONTENT"), CHAT_CONTENT, "{report}");
    assert_eq!(line("STREAM_MODELS"), MODEL, "{report}");
    assert_eq!(line("STREAM_USAGE"), "22", "{report}");
    assert_eq!(line("MODELS"), MODEL, "{report}");
    assert_eq!(line("AUTH_ERROR"), "401 AuthenticationError", "{report}");
    assert_eq!(line("BAD_REQUEST"), "400 BadRequestError", "{report}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("DELTA ")).count() >= 5,
        "{report}"
    );
    assert!(stdout.contains("ALL_DONE"), "{report}");
}
