//! What a root context keeps running between requests, as state machines the glue drives
//! with ticks and call answers: the gateway's spend feed (drain the queue, send a batch,
//! again until the sidecar acknowledges it) and change feed (a long poll of the sidecar's
//! changes, which drops cached records at once), and the provider role's token feed (a
//! Vertex AI access token the sidecar mints, kept fresh in shared data).

use switchyard_config::{
    changes_path, token_path, CachePutBatch, Changes, LimitTotals, SpendBatch, SpendEvent,
    TokenAnswer, CACHE_PUT_PATH, CHANGES_WAIT_S, LIMITS_SYNC_PATH, SPEND_PATH, TOKEN_KEY,
};

use crate::host::Host;
use crate::{cache, keys, limits, spend};

/// A call for the glue to make on the sidecar's cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Spend,
    Cache,
    Limits,
    Changes,
    Token,
}

/// How long to wait before asking again after a failure.
const RETRY_MS: u64 = 2_000;

/// Spend events one worker holds while the sidecar does not take them, at most (about 0.5 KB
/// each). Beyond, new events are dropped and counted: their cost still counts against the
/// budgets at this Envoy, but the store never sees them. Without a bound, an outage would
/// grow Envoy's memory with the request rate until it is killed.
#[cfg(not(test))]
pub const MAX_HELD_EVENTS: usize = 100_000;
/// Small in tests: the bound's behaviour, without 100,000 events to make (and the wasm tests
/// run this too).
#[cfg(test)]
pub const MAX_HELD_EVENTS: usize = 1_000;

/// The gateway's feeds.
#[derive(Debug, Default)]
pub struct GatewayFeeds {
    /// The batch on its way (its token), or waiting to be sent again.
    batch: Vec<SpendEvent>,
    batch_token: Option<u32>,
    /// The last batch failed: the sidecar does not take spend now.
    failing: bool,
    /// Events taken off the queue while failing, to send after the batch.
    held: std::collections::VecDeque<SpendEvent>,
    /// Events dropped because `held` was full, not yet reported.
    dropped: u64,
    changes_token: Option<u32>,
    seq: u64,
    /// No change poll before this (ms since the epoch): after a failure.
    changes_after_ms: u64,
    /// Answers for the response cache on their way. Best effort: a batch the sidecar does
    /// not take is dropped (the next request asks the provider again).
    cache_token: Option<u32>,
    /// Rate limits are shared with the fleet (Redis is configured).
    fleet: bool,
    limits_token: Option<u32>,
    /// No sync before this: the sidecar or Redis did not answer the last one.
    limits_after_ms: u64,
}

/// How long each Envoy counts alone after a sync failed, before it tries again.
const FLEET_RETRY_MS: u64 = 5_000;

impl GatewayFeeds {
    pub fn new(fleet_limits: bool) -> GatewayFeeds {
        GatewayFeeds {
            fleet: fleet_limits,
            ..GatewayFeeds::default()
        }
    }

    /// Called every tick: the calls to make now.
    pub fn on_tick(&mut self, host: &dyn Host) -> Vec<Call> {
        let mut calls = Vec::new();
        if self.failing {
            self.hold(host);
        }
        if self.batch_token.is_none() {
            if self.batch.is_empty() {
                self.batch = self.next_batch(host);
            }
            if !self.batch.is_empty() {
                calls.push(self.spend_call());
            }
        }
        if self.changes_token.is_none() && host.now_ms() >= self.changes_after_ms {
            calls.push(self.changes_call());
        }
        if self.cache_token.is_none() {
            calls.extend(cache_call(host));
        }
        let now = host.now_ms();
        if self.fleet && self.limits_token.is_none() && now >= self.limits_after_ms {
            if let Some(sync) = limits::sync(host, now) {
                calls.push(Call {
                    method: "POST",
                    path: LIMITS_SYNC_PATH.to_string(),
                    body: serde_json::to_vec(&sync).ok(),
                    timeout_ms: 1_000,
                    kind: Kind::Limits,
                });
            }
        }
        calls
    }

    /// The held events first, then the queue's.
    fn next_batch(&mut self, host: &dyn Host) -> Vec<SpendEvent> {
        if self.held.is_empty() {
            return spend::drain(host);
        }
        let n = self.held.len().min(spend::MAX_BATCH);
        self.held.drain(..n).collect()
    }

    /// Takes everything off the queue into `held`, up to [`MAX_HELD_EVENTS`].
    fn hold(&mut self, host: &dyn Host) {
        loop {
            let events = spend::drain(host);
            if events.is_empty() {
                return;
            }
            for e in events {
                if self.held.len() < MAX_HELD_EVENTS {
                    self.held.push_back(e);
                } else {
                    self.dropped += 1;
                }
            }
        }
    }

    /// What the glue should log, once: spend events dropped since the last call.
    pub fn take_warning(&mut self) -> Option<String> {
        if self.dropped == 0 {
            return None;
        }
        let n = std::mem::take(&mut self.dropped);
        Some(format!(
            "the sidecar has not taken spend for a while and this worker holds {MAX_HELD_EVENTS} events already: {n} more were dropped (their cost still counts against budgets here, but not in the spend logs). Check the sidecar and its database."
        ))
    }

    fn spend_call(&self) -> Call {
        let body = serde_json::to_vec(&SpendBatch {
            events: self.batch.clone(),
        })
        .ok();
        Call {
            method: "POST",
            path: SPEND_PATH.to_string(),
            body,
            timeout_ms: 10_000,
            kind: Kind::Spend,
        }
    }

    fn changes_call(&self) -> Call {
        Call {
            method: "GET",
            path: changes_path(self.seq),
            body: None,
            timeout_ms: (CHANGES_WAIT_S + 10) * 1000,
            kind: Kind::Changes,
        }
    }

    /// The glue dispatched a call (`token`), or could not (None).
    pub fn sent(&mut self, kind: Kind, token: Option<u32>, host: &dyn Host) {
        match kind {
            Kind::Spend => self.batch_token = token,
            Kind::Cache => self.cache_token = token,
            Kind::Limits => {
                self.limits_token = token;
                if token.is_none() {
                    self.limits_after_ms = host.now_ms() + FLEET_RETRY_MS;
                }
            }
            Kind::Changes => {
                self.changes_token = token;
                if token.is_none() {
                    self.changes_after_ms = host.now_ms() + RETRY_MS;
                }
            }
            Kind::Token => {}
        }
    }

    /// A call's answer (`status` None: no answer); the calls to make next.
    pub fn on_answer(
        &mut self,
        token: u32,
        status: Option<u16>,
        body: &[u8],
        host: &dyn Host,
    ) -> Vec<Call> {
        if self.batch_token == Some(token) {
            self.batch_token = None;
            self.failing = status != Some(200);
            if status == Some(200) {
                spend::acknowledged(host, &self.batch);
                // A full batch: more are waiting, send them now, so the feed keeps up with any
                // request rate (one batch per tick would cap it at 2,500 events a second per
                // worker, and the queue would grow without end above that). Otherwise wait for
                // the tick: fewer, larger batches cost the sidecar less per event.
                let full = self.batch.len() >= spend::MAX_BATCH || !self.held.is_empty();
                self.batch.clear();
                if full {
                    self.batch = self.next_batch(host);
                    if !self.batch.is_empty() {
                        return vec![self.spend_call()];
                    }
                }
            }
            // Otherwise the batch stays and goes again at the next tick: the sidecar stores
            // each event once, however often it arrives.
            return Vec::new();
        }
        if self.limits_token == Some(token) {
            self.limits_token = None;
            match (status, serde_json::from_slice::<LimitTotals>(body)) {
                (Some(200), Ok(totals)) => limits::apply_totals(host, &totals),
                _ => self.limits_after_ms = host.now_ms() + FLEET_RETRY_MS,
            }
            return Vec::new();
        }
        if self.cache_token == Some(token) {
            self.cache_token = None;
            // More may be waiting: a full batch goes on at once.
            return cache_call(host).into_iter().collect();
        }
        if self.changes_token == Some(token) {
            self.changes_token = None;
            match (status, serde_json::from_slice::<Changes>(body)) {
                (Some(200), Ok(changes)) => {
                    keys::apply_changes(host, &changes);
                    self.seq = changes.seq;
                    return vec![self.changes_call()];
                }
                _ => self.changes_after_ms = host.now_ms() + RETRY_MS,
            }
        }
        Vec::new()
    }
}

/// The answers queued for the response cache, as one call (None: none queued).
fn cache_call(host: &dyn Host) -> Option<Call> {
    let entries = cache::drain(host);
    if entries.is_empty() {
        return None;
    }
    Some(Call {
        method: "POST",
        path: CACHE_PUT_PATH.to_string(),
        body: serde_json::to_vec(&CachePutBatch { entries }).ok(),
        timeout_ms: 5_000,
        kind: Kind::Cache,
    })
}

/// A provider role's access token, minted by the sidecar: fetched at once, then every
/// minute (well within its hour), every two seconds while there is none.
#[derive(Debug)]
pub struct TokenFeed {
    pub deployment: String,
    token: Option<u32>,
    next_ms: u64,
}

/// How often a token is fetched once there is one.
pub const TOKEN_REFRESH_MS: u64 = 60_000;

impl TokenFeed {
    pub fn new(deployment: &str) -> TokenFeed {
        TokenFeed {
            deployment: deployment.to_string(),
            token: None,
            next_ms: 0,
        }
    }

    pub fn on_tick(&mut self, host: &dyn Host) -> Option<Call> {
        if self.token.is_some() || host.now_ms() < self.next_ms {
            return None;
        }
        Some(Call {
            method: "GET",
            path: token_path(&self.deployment),
            body: None,
            timeout_ms: 25_000,
            kind: Kind::Token,
        })
    }

    pub fn sent(&mut self, token: Option<u32>, host: &dyn Host) {
        self.token = token;
        if token.is_none() {
            self.next_ms = host.now_ms() + RETRY_MS;
        }
    }

    /// Stores the token the sidecar answered; an error message for the log when it did not.
    pub fn on_answer(
        &mut self,
        token: u32,
        status: Option<u16>,
        body: &[u8],
        host: &dyn Host,
    ) -> Result<(), String> {
        if self.token != Some(token) {
            return Ok(());
        }
        self.token = None;
        match (status, serde_json::from_slice::<TokenAnswer>(body)) {
            (Some(200), Ok(answer)) => {
                let _ = host.shared_set(
                    &format!("{TOKEN_KEY}{}", self.deployment),
                    answer.access_token.as_bytes(),
                    None,
                );
                self.next_ms = host.now_ms() + TOKEN_REFRESH_MS;
                Ok(())
            }
            _ => {
                self.next_ms = host.now_ms() + RETRY_MS;
                Err(format!(
                    "no access token for deployment {} from the sidecar yet (status {status:?}); see the sidecar's log",
                    self.deployment
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::MemoryHost;

    fn event(id: &str) -> SpendEvent {
        SpendEvent {
            request_id: id.into(),
            key_hash: "k".into(),
            cost: 1.0,
            ..SpendEvent::default()
        }
    }

    #[test]
    fn spend_goes_again_until_acknowledged() {
        let host = MemoryHost::at(0);
        let mut f = GatewayFeeds::default();
        spend::record(&host, &event("a"));
        let calls = f.on_tick(&host);
        assert_eq!(calls.len(), 2, "a batch and the change poll");
        assert_eq!(calls[0].path, SPEND_PATH);
        f.sent(Kind::Spend, Some(1), &host);
        f.sent(Kind::Changes, Some(2), &host);
        spend::record(&host, &event("b"));
        assert!(f.on_tick(&host).is_empty(), "one batch at a time");
        f.on_answer(1, Some(503), b"", &host);
        let again = f.on_tick(&host);
        let batch: SpendBatch = serde_json::from_slice(again[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(batch.events, [event("a")], "the same batch, not more");
        f.sent(Kind::Spend, Some(3), &host);
        let next = f.on_answer(3, Some(200), b"{}", &host);
        let batch: SpendBatch = serde_json::from_slice(next[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(
            batch.events,
            [event("b")],
            "held while failing: sent at once"
        );
        f.sent(Kind::Spend, Some(4), &host);
        spend::record(&host, &event("c"));
        assert!(
            f.on_answer(4, Some(200), b"{}", &host).is_empty(),
            "a batch that was not full, nothing held: the rest waits for the tick"
        );
        let next = f.on_tick(&host);
        let batch: SpendBatch = serde_json::from_slice(next[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(batch.events, [event("c")]);
    }

    #[test]
    fn while_the_sidecar_fails_events_are_held_up_to_a_bound_then_sent_in_order() {
        let host = MemoryHost::at(0);
        let mut f = GatewayFeeds::default();
        spend::record(&host, &event("first"));
        f.on_tick(&host);
        f.sent(Kind::Spend, Some(1), &host);
        f.sent(Kind::Changes, Some(2), &host);
        f.on_answer(1, Some(503), b"", &host);
        for i in 0..MAX_HELD_EVENTS + 7 {
            spend::record(&host, &event(&format!("e{i}")));
        }
        let calls = f.on_tick(&host);
        assert_eq!(spend::drain(&host), [], "the queue is emptied");
        let warning = f.take_warning().unwrap();
        assert!(warning.contains("7 more were dropped"), "{warning}");
        assert_eq!(f.take_warning(), None, "said once");
        let batch: SpendBatch = serde_json::from_slice(calls[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(
            batch.events,
            [event("first")],
            "the failed batch goes first"
        );
        f.sent(Kind::Spend, Some(3), &host);
        let next = f.on_answer(3, Some(200), b"{}", &host);
        let batch: SpendBatch = serde_json::from_slice(next[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(
            batch.events.len(),
            spend::MAX_BATCH,
            "then the held ones, at once"
        );
        assert_eq!(batch.events[0], event("e0"));
    }

    #[test]
    fn after_a_full_batch_the_next_goes_at_once() {
        let host = MemoryHost::at(0);
        let mut f = GatewayFeeds::default();
        for i in 0..spend::MAX_BATCH + 3 {
            spend::record(&host, &event(&format!("e{i}")));
        }
        let calls = f.on_tick(&host);
        f.sent(Kind::Spend, Some(1), &host);
        f.sent(Kind::Changes, Some(2), &host);
        let first: SpendBatch = serde_json::from_slice(calls[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(first.events.len(), spend::MAX_BATCH);
        let next = f.on_answer(1, Some(200), b"{}", &host);
        let rest: SpendBatch = serde_json::from_slice(next[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(rest.events.len(), 3, "without waiting for the tick");
    }

    #[test]
    fn changes_poll_again_at_once_or_after_a_pause() {
        let host = MemoryHost::at(1_000);
        let mut f = GatewayFeeds::default();
        let calls = f.on_tick(&host);
        assert_eq!(calls[0].path, "/internal/v1/changes?after=0");
        f.sent(Kind::Changes, Some(7), &host);
        let body = serde_json::to_vec(&Changes {
            seq: 5,
            keys: vec!["k".into()],
            ..Changes::default()
        })
        .unwrap();
        let next = f.on_answer(7, Some(200), &body, &host);
        assert_eq!(next[0].path, "/internal/v1/changes?after=5");
        f.sent(Kind::Changes, Some(8), &host);
        assert!(f.on_answer(8, None, b"", &host).is_empty());
        assert!(f.on_tick(&host).is_empty(), "not before the pause");
        host.now.set(1_000 + RETRY_MS);
        assert_eq!(f.on_tick(&host)[0].path, "/internal/v1/changes?after=5");
    }

    #[test]
    fn tokens_are_fetched_and_refreshed() {
        let host = MemoryHost::at(0);
        let mut f = TokenFeed::new("v1");
        let call = f.on_tick(&host).unwrap();
        assert_eq!(call.path, "/internal/v1/token/v1");
        f.sent(Some(1), &host);
        assert!(f.on_tick(&host).is_none());
        let body = br#"{"access_token":"ya29.x","expires_in":3599}"#;
        f.on_answer(1, Some(200), body, &host).unwrap();
        assert_eq!(host.shared_get("switchyard.token.v1").unwrap().0, b"ya29.x");
        assert!(f.on_tick(&host).is_none());
        host.now.set(TOKEN_REFRESH_MS);
        assert!(f.on_tick(&host).is_some());
    }
}
