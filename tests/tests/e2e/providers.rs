//! Providers other than OpenAI itself: Azure (deployment in the path, api-version query,
//! `api-key` header) and OpenAI-compatible families on a custom api_base.

use std::sync::OnceLock;

use serde_json::json;
use switchyard_tests::fake::CHAT_CONTENT;
use switchyard_tests::{marker, shared, Client, FakeProvider, Recorded, Switchyard};

use crate::common::{chat, chat_stream, deployment, yaml};

const AZURE_KEY: &str = "azure-fake-key-0002";
const GROQ_KEY: &str = "gsk_fake_key_0003";
const VLLM_KEY: &str = "vllm-fake-key-0004";
const AZURE_API_VERSION: &str = "2024-10-21";

struct Stack {
    sy: Switchyard,
    azure: FakeProvider,
    groq: FakeProvider,
    vllm: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let azure = FakeProvider::start();
        let groq = FakeProvider::start();
        let vllm = FakeProvider::start();
        let azure_params = |model: &str| {
            json!({
                "model": model,
                "api_base": azure.base_url(),
                "api_version": AZURE_API_VERSION,
                "api_key": "os.environ/AZURE_FAKE_KEY",
            })
        };
        let config = json!({
            "model_list": [
                deployment("azure-chat", azure_params("azure/my-deploy")),
                deployment("azure-embed", azure_params("azure/my-embed-deploy")),
                deployment("groq-chat", json!({
                    "model": "groq/llama-3.1-8b-instant",
                    "api_base": groq.url("/openai/v1"),
                    "api_key": "os.environ/GROQ_FAKE_KEY",
                })),
                deployment("vllm-chat", json!({
                    "model": "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
                    "api_base": vllm.url("/v1"),
                    "api_key": "os.environ/VLLM_FAKE_KEY",
                })),
            ],
        });
        let sy = Switchyard::start_with_env(
            &yaml(&config),
            &[
                ("AZURE_FAKE_KEY", AZURE_KEY),
                ("GROQ_FAKE_KEY", GROQ_KEY),
                ("VLLM_FAKE_KEY", VLLM_KEY),
            ],
        );
        Stack {
            sy,
            azure,
            groq,
            vllm,
        }
    })
}

fn assert_azure_upstream(got: &Recorded, deployment: &str, endpoint: &str) {
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.uri,
        format!("/openai/deployments/{deployment}/{endpoint}?api-version={AZURE_API_VERSION}")
    );
    assert_eq!(got.header("api-key"), Some(AZURE_KEY));
    assert_eq!(
        got.header("authorization"),
        None,
        "Azure takes api-key, not authorization"
    );
    assert_eq!(
        got.headers_starting_with("x-switchyard"),
        Vec::<&str>::new()
    );
}

#[tokio::test]
async fn azure_chat() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("azure");
    let body = chat("azure-chat", &m);
    let answer = Client::new(&s.sy.base_url())
        .post("/v1/chat/completions", &body)
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "azure-chat");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);

    let got = s.azure.only(&m);
    assert_azure_upstream(&got, "my-deploy", "chat/completions");
    assert_eq!(got.json()["messages"], body["messages"]);
}

#[tokio::test]
async fn azure_chat_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("azure-stream");
    let reply = Client::new(&s.sy.base_url())
        .stream("/v1/chat/completions", &chat_stream("azure-chat", &m, true))
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert!(
        reply
            .json_chunks()
            .iter()
            .all(|c| c["model"] == "azure-chat"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.content(), CHAT_CONTENT);
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(22))
    );

    let got = s.azure.only(&m);
    assert_azure_upstream(&got, "my-deploy", "chat/completions");
    assert_eq!(got.json()["stream"], true);
}

#[tokio::test]
async fn azure_embeddings() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("azure-embed");
    let answer = Client::new(&s.sy.base_url())
        .post(
            "/v1/embeddings",
            &json!({"model": "azure-embed", "input": m}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "azure-embed");
    assert_eq!(answer["data"][0]["object"], "embedding");

    let got = s.azure.only(&m);
    assert_azure_upstream(&got, "my-embed-deploy", "embeddings");
    assert_eq!(got.json()["input"], json!(m));
}

#[tokio::test]
async fn groq_on_custom_api_base() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("groq");
    let answer = Client::new(&s.sy.base_url())
        .post("/v1/chat/completions", &chat("groq-chat", &m))
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "groq-chat");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);

    let got = s.groq.only(&m);
    assert_eq!(got.uri, "/openai/v1/chat/completions");
    assert_eq!(got.json()["model"], "llama-3.1-8b-instant");
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {GROQ_KEY}").as_str())
    );
    assert_eq!(
        got.headers_starting_with("x-switchyard"),
        Vec::<&str>::new()
    );
}

#[tokio::test]
async fn hosted_vllm_keeps_slashes_in_the_model() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("vllm");
    let reply = Client::new(&s.sy.base_url())
        .stream("/v1/chat/completions", &chat_stream("vllm-chat", &m, false))
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert!(
        reply
            .json_chunks()
            .iter()
            .all(|c| c["model"] == "vllm-chat"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.content(), CHAT_CONTENT);

    let got = s.vllm.only(&m);
    assert_eq!(got.uri, "/v1/chat/completions");
    assert_eq!(got.json()["model"], "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {VLLM_KEY}").as_str())
    );
}
