//! The admin page at `/ui`, through the gateway's public port, in Debian's headless Chromium
//! driven over the DevTools protocol (chromiumoxide): a wrong key is refused with the API's
//! message, the master key signs in, the key list shows the keys made through the API with
//! their spend, a key made with the form works at once, one key is blocked (and the gateway
//! then refuses it) and one deleted, the spend page draws its charts per day, key and model,
//! and the usage page its spend per day stacked by model and its latency per day (p50, p95,
//! requests). Screenshots of the key list, the spend page and the usage page go to
//! target/ui-screenshots/ (docs/images/admin-*.png are copies).
//!
//! Today's spend comes from real chat requests with the keys. Earlier days' spend cannot come
//! from real requests, so it is posted to the sidecar's internal spend API as a gateway would
//! have reported it on those days.
//!
//! Needs Chromium at /usr/bin/chromium (`apt-get install -y chromium`; .ci/run installs it) or
//! at $SWITCHYARD_CHROMIUM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use switchyard_config::sidecar_api::{SpendBatch, SpendEvent, SPEND_PATH};
use switchyard_tests::artefacts::target_dir;
use switchyard_tests::{marker, Client, FakeProvider, Switchyard};

use crate::common::{chat, deployment, yaml, FAKE_KEY};

const MASTER_KEY: &str = "sk-admin-ui-master-0001";
/// `openai/gpt-4o-mini`, priced at $0.02 for the fake's 13 + 9 tokens.
const SMALL: &str = "chat-small";
/// `openai/gpt-4o`, priced at $0.20 for the fake's 13 + 9 tokens.
const LARGE: &str = "chat-large";
const DAY_MS: u64 = 86_400_000;
/// How long the page gets to show what a step expects.
const UI_TIMEOUT: Duration = Duration::from_secs(15);
const VIEWPORT: (u32, u32) = (1280, 800);

fn priced(name: &str, model: &str, fake: &FakeProvider, input: f64, output: f64) -> Value {
    deployment(
        name,
        json!({
            "model": model,
            "api_base": fake.url("/v1"),
            "api_key": "os.environ/FAKE_KEY",
            "input_cost_per_token": input,
            "output_cost_per_token": output,
        }),
    )
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("SWITCHYARD_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: install Chromium with `apt-get install -y chromium` (.ci/run does), or point SWITCHYARD_CHROMIUM at one",
        path.display()
    );
    path
}

/// A headless Chromium showing one page, with helpers that wait for what the page shows.
struct Ui {
    browser: Browser,
    page: Page,
    handler: tokio::task::JoinHandle<()>,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Ui {
    async fn open(url: &str) -> Ui {
        let profile = tempfile::Builder::new()
            .prefix("switchyard-ui-chromium-")
            .tempdir()
            .unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(chromium())
            .new_headless_mode()
            .no_sandbox()
            // Slow to start when every other e2e test runs beside it.
            .launch_timeout(Duration::from_secs(60))
            .user_data_dir(profile.path())
            .window_size(VIEWPORT.0, VIEWPORT.1)
            .viewport(Viewport {
                width: VIEWPORT.0,
                height: VIEWPORT.1,
                device_scale_factor: Some(1.0),
                ..Viewport::default()
            })
            // The gateway is local: no proxy from the environment, no GPU, no /dev/shm limits.
            .args([
                "--no-proxy-server",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
            ])
            .build()
            .unwrap();
        let (browser, mut events) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium().display()));
        // The connection is served by polling the handler; a message it cannot read is no
        // reason to stop.
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        let page = browser.new_page(url).await.unwrap();
        let shots = target_dir().join("ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let ui = Ui {
            browser,
            page,
            handler,
            shots,
            _profile: profile,
        };
        ui.wait(
            "the sign-in form",
            "!!document.getElementById('login-form')",
        )
        .await;
        ui
    }

    /// The value of a JavaScript expression (null when it throws or is undefined).
    async fn eval(&self, expression: &str) -> Value {
        let js = format!(
            "(() => {{ try {{ return JSON.stringify(({expression}) ?? null); }} catch (e) {{ return JSON.stringify(null); }} }})()"
        );
        let text: String = self
            .page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    /// Waits until `expression` is truthy and returns it; on timeout fails with what the page
    /// shows (and a screenshot).
    async fn wait(&self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            let value = self.eval(expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let shot = self.shot("failure").await;
                let body = self.eval("document.body.innerText").await;
                panic!(
                    "the page did not show {what} within {} s ({expression}).\nscreenshot: {}\npage text:\n{}",
                    UI_TIMEOUT.as_secs(),
                    shot.display(),
                    body.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element like a user (mouse events at its centre).
    async fn click(&self, selector: &str) {
        self.page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    }

    /// Empties an input and types `text` into it, key by key.
    async fn type_into(&self, selector: &str, text: &str) {
        self.eval(&format!("document.querySelector({selector:?}).value = ''"))
            .await;
        self.click(selector).await;
        self.page
            .find_element(selector)
            .await
            .unwrap()
            .type_str(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
    }

    async fn shot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        self.page
            .save_screenshot(ScreenshotParams::builder().build(), &path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        path
    }

    /// Closes Chromium and waits for it; kills it if it does not go.
    async fn close(mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            let _ = self.browser.close().await;
            self.browser.wait().await
        })
        .await;
        if !matches!(closed, Ok(Ok(_))) {
            let _ = self.browser.kill().await;
        }
        self.handler.abort();
    }
}

/// The rows of the key table: alias, key name, models, spend, budget, status, expires, actions.
async fn key_rows(ui: &Ui) -> Vec<Value> {
    let rows = ui
        .eval(
            "[...document.querySelectorAll('#keys-body tr')].map(tr => ({
                alias: tr.dataset.alias,
                token: tr.dataset.token,
                key: tr.querySelector('.key-name').innerText,
                models: [...tr.querySelectorAll('.models .tag')].map(t => t.innerText),
                spend: tr.querySelector('.spend').innerText,
                budget: tr.querySelector('.budget').innerText,
                status: tr.querySelector('.status').innerText,
                expires: tr.querySelector('.expires').innerText,
                actions: [...tr.querySelectorAll('.actions button')].map(b => b.innerText),
            }))",
        )
        .await;
    rows.as_array().cloned().unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], alias: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("no row for {alias} in {rows:#?}"))
}

/// The bars of a chart: label → value.
async fn bars(ui: &Ui, chart: &str) -> Vec<(String, f64)> {
    let bars = ui
        .eval(&format!(
            "[...document.querySelectorAll('#{chart} svg rect.bar')].map(r => [r.dataset.label, Number(r.dataset.value)])"
        ))
        .await;
    bars.as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b[0].as_str().unwrap_or_default().to_string(),
                b[1].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

/// The marks of a chart (SVG elements with data-day, data-series, data-value): day, series,
/// value.
async fn marks(ui: &Ui, selector: &str) -> Vec<(String, String, f64)> {
    let marks = ui
        .eval(&format!(
            "[...document.querySelectorAll('{selector}')].map(m => [m.dataset.day, m.dataset.series, Number(m.dataset.value)])"
        ))
        .await;
    marks
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m[0].as_str().unwrap_or_default().to_string(),
                m[1].as_str().unwrap_or_default().to_string(),
                m[2].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

fn bar(bars: &[(String, f64)], label: &str) -> f64 {
    bars.iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no bar {label} in {bars:?}"))
        .1
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `YYYY-MM-DD` of a time, UTC.
fn utc_day(ms: u64) -> String {
    // Civil from days (Howard Hinnant's algorithm).
    let z = (ms / DAY_MS) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Spend as gateways would have reported it on the days before today: (days ago, key hash,
/// model group, cost).
async fn backfill(sy: &Switchyard, earlier: &[(u64, &str, &str, f64)]) {
    let now = now_ms();
    let events = earlier
        .iter()
        .enumerate()
        .map(|(i, (days_ago, key_hash, model, cost))| {
            let start = now - days_ago * DAY_MS;
            SpendEvent {
                request_id: format!("admin-ui-backfill-{i}"),
                key_hash: (*key_hash).to_string(),
                requested_model: (*model).to_string(),
                model_group: (*model).to_string(),
                provider: "openai".into(),
                endpoint: "/v1/chat/completions".into(),
                prompt_tokens: 1300,
                completion_tokens: 900,
                cost: *cost,
                start_ms: start,
                end_ms: start + 800,
                status: "success".into(),
                http_status: 200,
                ..SpendEvent::default()
            }
        })
        .collect();
    let sidecar = format!("http://127.0.0.1:{}", sy.sidecar_port());
    let ack = Client::new(&sidecar)
        .post(
            SPEND_PATH,
            &serde_json::to_value(SpendBatch { events }).unwrap(),
        )
        .await
        .expect_json(200);
    assert_eq!(ack["stored"], earlier.len(), "{ack}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_page_in_chromium() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [
            priced(SMALL, "openai/gpt-4o-mini", &fake, 0.0005, 0.0015),
            priced(LARGE, "openai/gpt-4o", &fake, 0.005, 0.015),
        ],
        "general_settings": {"master_key": MASTER_KEY},
    });
    // Its own store: the key list must hold only this test's keys.
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("switchyard.db");
    let sy = Switchyard::try_start(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY)],
        &["--database-path", db.to_str().unwrap()],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let _logs = sy.dump_logs_on_failure();
    let admin = Client::new(&sy.base_url()).with_key(MASTER_KEY);

    // Keys made through the API, each used for some chat requests.
    let mut made = std::collections::BTreeMap::new();
    for (alias, models, budget) in [
        ("search-team", json!([SMALL, LARGE]), json!(25)),
        ("batch-jobs", json!([SMALL]), json!(null)),
        ("staging", json!([]), json!(5)),
        ("old-laptop", json!([]), json!(null)),
    ] {
        let reply = admin
            .post(
                "/key/generate",
                &json!({"key_alias": alias, "models": models, "max_budget": budget}),
            )
            .await
            .expect_json(200);
        let key = reply["key"].as_str().unwrap().to_string();
        let token = reply["token_id"].as_str().unwrap().to_string();
        made.insert(alias, (key, token));
    }
    let uses = [
        ("search-team", LARGE, 3),
        ("search-team", SMALL, 2),
        ("batch-jobs", SMALL, 4),
        ("staging", LARGE, 1),
    ];
    for (alias, model, times) in uses {
        for _ in 0..times {
            let m = marker("admin-ui");
            Client::new(&sy.base_url())
                .with_key(&made[alias].0)
                .post("/v1/chat/completions", &chat(model, &m))
                .await
                .expect_json(200);
        }
    }
    let requests: usize = uses.iter().map(|u| u.2).sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = admin.get("/spend/logs").await.expect_json(200);
        if logs.as_array().map_or(0, Vec::len) >= requests {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not report the spend of {requests} requests: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = |alias: &str| made[alias].1.clone();
    backfill(
        &sy,
        &[
            (1, &token("search-team"), LARGE, 1.40),
            (1, &token("batch-jobs"), SMALL, 0.35),
            (2, &token("search-team"), LARGE, 2.10),
            (2, &token("search-team"), SMALL, 0.25),
            (3, &token("batch-jobs"), SMALL, 0.80),
            (4, &token("search-team"), LARGE, 1.75),
            (5, &token("staging"), LARGE, 0.60),
            (6, &token("search-team"), SMALL, 0.45),
            (6, &token("batch-jobs"), SMALL, 0.50),
        ],
    )
    .await;

    let ui = Ui::open(&sy.url("/ui")).await;

    // A wrong key: the API's own message, and still the sign-in form.
    ui.type_into("#master-key", "sk-not-the-master-key").await;
    ui.click("#login-submit").await;
    let error = ui
        .wait(
            "the wrong key's error",
            "!document.getElementById('login-error').hidden && document.getElementById('login-error').innerText",
        )
        .await;
    let error = error.as_str().unwrap();
    assert!(
        error.contains("invalid key") && error.contains("401"),
        "{error}"
    );
    assert_eq!(
        ui.eval("document.getElementById('keys-view').hidden").await,
        true
    );
    assert_eq!(
        ui.eval("sessionStorage.getItem('switchyard.masterKey')")
            .await,
        Value::Null
    );

    // The master key: the key list.
    ui.type_into("#master-key", MASTER_KEY).await;
    ui.click("#login-submit").await;
    ui.wait(
        "the four keys",
        "document.querySelectorAll('#keys-body tr').length === 4",
    )
    .await;
    assert_eq!(
        ui.eval("document.getElementById('login-view').hidden")
            .await,
        true
    );
    assert_eq!(
        ui.eval("sessionStorage.getItem('switchyard.masterKey')")
            .await,
        MASTER_KEY
    );
    let rows = key_rows(&ui).await;
    let listed = admin
        .get("/key/list?return_full_object=true&size=100")
        .await
        .expect_json(200);
    for (alias, (key, token)) in &made {
        let r = row(&rows, alias);
        assert_eq!(r["token"], token.as_str());
        assert_eq!(r["key"], format!("sk-...{}", &key[key.len() - 4..]));
        assert_eq!(r["status"], "Active");
        assert_eq!(r["expires"], "never");
        assert_eq!(r["actions"], json!(["Block", "Delete"]));
        let api = listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["token"] == token.as_str())
            .unwrap();
        assert_eq!(r["models"], api["models"], "{alias}");
    }
    let search = row(&rows, "search-team");
    assert_eq!(search["budget"], "$25.00");
    // 3 × $0.20 + 2 × $0.02 today, and $5.95 on earlier days.
    assert_eq!(search["spend"], "$6.59");
    assert_eq!(row(&rows, "batch-jobs")["spend"], "$1.73");
    assert_eq!(row(&rows, "batch-jobs")["budget"], "—");
    assert_eq!(row(&rows, "old-laptop")["spend"], "$0");

    // A key made with the form: shown once, listed, and it works.
    ui.type_into("#new-alias", "ui-made").await;
    ui.type_into("#new-models", SMALL).await;
    ui.type_into("#new-budget", "10").await;
    ui.eval("document.getElementById('new-duration').value = '30d'")
        .await;
    ui.click("#create-submit").await;
    let new_key = ui
        .wait(
            "the new key",
            "!document.getElementById('new-key').hidden && document.getElementById('new-key-value').innerText",
        )
        .await;
    let new_key = new_key.as_str().unwrap().to_string();
    assert!(
        new_key.starts_with("sk-") && new_key.len() > 20,
        "{new_key}"
    );
    ui.wait(
        "five keys",
        "document.querySelectorAll('#keys-body tr').length === 5",
    )
    .await;
    let rows = key_rows(&ui).await;
    let ui_made = row(&rows, "ui-made");
    assert_eq!(ui_made["models"], json!([SMALL]));
    assert_eq!(ui_made["budget"], "$10.00");
    assert_eq!(ui_made["status"], "Active");
    assert_ne!(ui_made["expires"], "never");
    let info = admin
        .get(&format!("/key/info?key={new_key}"))
        .await
        .expect_json(200);
    assert_eq!(info["info"]["key_alias"], "ui-made");
    assert_eq!(info["info"]["max_budget"], 10.0);
    Client::new(&sy.base_url())
        .with_key(&new_key)
        .post("/v1/chat/completions", &chat(SMALL, &marker("admin-ui")))
        .await
        .expect_json(200);

    // Block one key: the row and the API say so (the gateway's refusal is checked last).
    ui.click("tr[data-alias='staging'] button[data-action='block']")
        .await;
    ui.wait(
        "staging blocked",
        "document.querySelector(\"tr[data-alias='staging'] .status\")?.innerText === 'Blocked'",
    )
    .await;
    let rows = key_rows(&ui).await;
    assert_eq!(
        row(&rows, "staging")["actions"],
        json!(["Unblock", "Delete"])
    );
    let info = admin
        .get(&format!("/key/info?key={}", made["staging"].0))
        .await
        .expect_json(200);
    assert_eq!(info["info"]["blocked"], true);

    // Delete one: the button asks for confirmation first.
    ui.click("tr[data-alias='old-laptop'] button[data-action='delete']")
        .await;
    ui.wait(
        "the confirmation",
        "document.querySelector(\"tr[data-alias='old-laptop'] button[data-action='delete']\").innerText === 'Confirm delete'",
    )
    .await;
    assert_eq!(
        ui.eval("document.querySelectorAll('#keys-body tr').length")
            .await,
        5
    );
    ui.click("tr[data-alias='old-laptop'] button[data-action='delete']")
        .await;
    ui.wait(
        "four keys after the delete",
        "document.querySelectorAll('#keys-body tr').length === 4 && !document.querySelector(\"tr[data-alias='old-laptop']\")",
    )
    .await;
    let listed = admin
        .get("/key/list?return_full_object=true&size=100")
        .await
        .expect_json(200);
    let aliases: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["key_alias"].as_str())
        .collect();
    assert!(
        !aliases.contains(&"old-laptop") && aliases.len() == 4,
        "{aliases:?}"
    );
    ui.eval("window.scrollTo(0, 0)").await;
    let keys_shot = ui.shot("admin-keys").await;

    // Spend: per day, key and model, as the report has it.
    ui.click("#tab-spend").await;
    ui.wait(
        "the day chart",
        "document.querySelectorAll('#chart-days svg rect.bar').length === 30",
    )
    .await;
    ui.wait(
        "the key and model charts",
        "document.querySelectorAll('#chart-keys svg rect.bar').length === 4 && document.querySelectorAll('#chart-models svg rect.bar').length === 2",
    )
    .await;
    let days = bars(&ui, "chart-days").await;
    let now = now_ms();
    let today = 3.0 * 0.20 + 2.0 * 0.02 + 4.0 * 0.02 + 0.20 + 0.02;
    assert_eq!(days.last().unwrap().0, utc_day(now));
    assert!(close_to(bar(&days, &utc_day(now)), today), "{days:?}");
    assert!(
        close_to(bar(&days, &utc_day(now - DAY_MS)), 1.75),
        "{days:?}"
    );
    assert!(
        close_to(bar(&days, &utc_day(now - 2 * DAY_MS)), 2.35),
        "{days:?}"
    );
    assert!(
        close_to(bar(&days, &utc_day(now - 5 * DAY_MS)), 0.60),
        "{days:?}"
    );
    assert!(
        close_to(bar(&days, &utc_day(now - 20 * DAY_MS)), 0.0),
        "{days:?}"
    );
    // The bars are drawn to scale: the day with most spend has the tallest.
    let heights = ui
        .eval("[...document.querySelectorAll('#chart-days svg rect.bar')].map(r => Number(r.getAttribute('height')))")
        .await;
    let heights: Vec<f64> = heights
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_f64().unwrap())
        .collect();
    let tallest = heights
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(days[tallest].0, utc_day(now - 2 * DAY_MS), "{heights:?}");

    let by_key = bars(&ui, "chart-keys").await;
    assert!(close_to(bar(&by_key, "search-team"), 6.59), "{by_key:?}");
    assert!(close_to(bar(&by_key, "batch-jobs"), 1.73), "{by_key:?}");
    assert!(close_to(bar(&by_key, "staging"), 0.80), "{by_key:?}");
    assert!(close_to(bar(&by_key, "ui-made"), 0.02), "{by_key:?}");
    let by_model = bars(&ui, "chart-models").await;
    let large = 4.0 * 0.20 + 1.40 + 2.10 + 1.75 + 0.60;
    let small = 7.0 * 0.02 + 0.35 + 0.25 + 0.80 + 0.45 + 0.50;
    assert!(close_to(bar(&by_model, LARGE), large), "{by_model:?}");
    assert!(close_to(bar(&by_model, SMALL), small), "{by_model:?}");
    let total = ui
        .wait(
            "the total",
            "document.getElementById('stat-total').innerText !== '–' && document.getElementById('stat-total').innerText",
        )
        .await;
    assert_eq!(total, format!("${:.2}", large + small));
    assert_eq!(
        ui.eval("document.getElementById('stat-keys').innerText")
            .await,
        "3 of 4"
    );
    // Every request so far: today's, the form's key's one, and the 9 of earlier days.
    let logged = ui
        .eval("document.querySelectorAll('#logs-body tr').length")
        .await;
    assert_eq!(logged, requests + 1 + 9);
    assert_eq!(
        ui.eval("document.getElementById('spend-error').hidden")
            .await,
        true
    );
    let spend_shot = ui.shot("admin-spend").await;

    // Usage: spend per day stacked by model, and latency per day from the logs.
    ui.click("#tab-usage").await;
    ui.wait(
        "the usage charts",
        "document.querySelectorAll('#chart-usage-spend svg rect.seg').length > 0 && document.querySelectorAll('#chart-latency svg circle.point').length > 0",
    )
    .await;
    let segments = marks(&ui, "#chart-usage-spend svg rect.seg").await;
    let segment = |days_ago: u64, model: &str| {
        let day = utc_day(now - days_ago * DAY_MS);
        segments
            .iter()
            .find(|m| m.0 == day && m.1 == model)
            .unwrap_or_else(|| panic!("no {model} on {day} in {segments:?}"))
            .2
    };
    assert!(close_to(segment(0, LARGE), 4.0 * 0.20), "{segments:?}");
    assert!(close_to(segment(0, SMALL), 7.0 * 0.02), "{segments:?}");
    assert!(close_to(segment(1, LARGE), 1.40), "{segments:?}");
    assert!(close_to(segment(2, SMALL), 0.25), "{segments:?}");
    assert!(close_to(segment(5, LARGE), 0.60), "{segments:?}");
    // One mark per model and day with spend: 7 days of spend, both models on 3 of them.
    assert_eq!(segments.len(), 10, "{segments:?}");
    let legend = ui
        .eval("[...document.querySelectorAll('#legend-usage-spend li')].map(li => li.innerText.trim())")
        .await;
    // Largest first.
    assert_eq!(legend, json!([LARGE, SMALL]));
    let points = marks(&ui, "#chart-latency svg circle.point").await;
    let point = |days_ago: u64, series: &str| {
        let day = utc_day(now - days_ago * DAY_MS);
        points
            .iter()
            .find(|m| m.0 == day && m.1 == series)
            .unwrap_or_else(|| panic!("no {series} on {day} in {points:?}"))
            .2
    };
    // The earlier days' requests each took 800 ms; today's are real.
    for days_ago in 1..=6 {
        assert_eq!(point(days_ago, "p50"), 800.0, "{points:?}");
        assert_eq!(point(days_ago, "p95"), 800.0, "{points:?}");
    }
    assert!(point(0, "p50") <= point(0, "p95"), "{points:?}");
    assert_eq!(points.len(), 2 * 7, "{points:?}");
    let counts = ui
        .eval("Object.fromEntries([...document.querySelectorAll('#chart-latency svg rect.count-bar')].map(r => [r.dataset.day, Number(r.dataset.value)]))")
        .await;
    assert_eq!(counts[utc_day(now)], requests + 1, "{counts}");
    assert_eq!(counts[utc_day(now - DAY_MS)], 2, "{counts}");
    assert_eq!(counts[utc_day(now - 6 * DAY_MS)], 2, "{counts}");
    let latency_legend = ui
        .eval("[...document.querySelectorAll('#legend-latency li')].map(li => li.innerText.trim())")
        .await;
    assert_eq!(latency_legend, json!(["p50", "p95", "Requests"]));
    // Named for assistive technology.
    for chart in ["chart-usage-spend", "chart-latency"] {
        let title = ui
            .eval(&format!(
                "document.querySelector('#{chart} svg > title').textContent"
            ))
            .await;
        assert!(
            title.as_str().is_some_and(|t| t.contains("per day")),
            "{chart}: {title}"
        );
    }
    assert_eq!(
        ui.eval("document.getElementById('stat-requests').innerText")
            .await,
        (requests + 1 + 9).to_string()
    );
    assert_eq!(
        ui.eval("document.getElementById('stat-usage-spend').innerText")
            .await,
        format!("${:.2}", large + small)
    );
    assert_eq!(
        ui.eval("document.getElementById('usage-error').hidden")
            .await,
        true
    );
    ui.eval("window.scrollTo(0, 0)").await;
    let usage_shot = ui.shot("admin-usage").await;

    // Signing out forgets the key.
    ui.click("#logout").await;
    ui.wait(
        "the sign-in form again",
        "!document.getElementById('login-view').hidden",
    )
    .await;
    assert_eq!(
        ui.eval("sessionStorage.getItem('switchyard.masterKey')")
            .await,
        Value::Null
    );
    ui.close().await;

    // The gateway refuses the key blocked on the page (once the change reaches it).
    let staging = Client::new(&sy.base_url()).with_key(&made["staging"].0);
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let reply = staging
            .post("/v1/chat/completions", &chat(LARGE, &marker("admin-ui")))
            .await;
        if reply.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway still serves the blocked key: {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for shot in [&keys_shot, &spend_shot, &usage_shot] {
        assert_png(shot);
    }
}

/// A PNG of the viewport's size.
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        path.display()
    );
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), VIEWPORT, "{}", path.display());
}
