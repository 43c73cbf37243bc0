//! What each request cost, and how that reaches the sidecar: the provider role prices the
//! answer's usage with the deployment's prices, counts it against the budgets it touches
//! (see [`crate::keys`]) and puts a [`SpendEvent`] on Envoy's shared queue; the gateway's
//! root context drains the queue on a timer and sends the events in batches, again until the
//! sidecar acknowledges them (it stores each event once, by request id).

use switchyard_config::{Prices, SpendEvent, SPEND_QUEUE};

use crate::host::Host;
use crate::keys::{add_acked, add_spent, Holder};
use crate::openai::Usage;

/// Events sent to the sidecar in one batch at most.
pub const MAX_BATCH: usize = 500;

/// USD for the usage at these prices, plus `seconds` of the answer's time at the price per
/// second, if any. Prompt tokens include cached ones (OpenAI's usage), completion tokens
/// include reasoning ones; each part at its own price when the provider has one.
pub fn cost(prices: &Prices, usage: &Usage, seconds: f64) -> f64 {
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .map_or(0, |d| d.cached_tokens);
    let created = usage.cache_creation_input_tokens.unwrap_or(0);
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .map_or(0, |d| d.reasoning_tokens);
    let plain_prompt = usage.prompt_tokens.saturating_sub(cached + created);
    let plain_completion = usage.completion_tokens.saturating_sub(reasoning);
    plain_prompt as f64 * prices.input
        + cached as f64 * prices.cache_read.unwrap_or(prices.input)
        + created as f64 * prices.cache_creation.unwrap_or(prices.input)
        + plain_completion as f64 * prices.output
        + reasoning as f64 * prices.reasoning.unwrap_or(prices.output)
        + prices.per_second.unwrap_or(0.0) * seconds
}

/// The budget holders an event is charged to.
fn holders(e: &SpendEvent) -> Vec<Holder<'_>> {
    let mut out = Vec::with_capacity(4);
    if !e.key_hash.is_empty() {
        out.push(Holder::Key(&e.key_hash));
    }
    out.extend(e.user_id.as_deref().map(Holder::User));
    out.extend(e.team_id.as_deref().map(Holder::Team));
    out.extend(e.end_user.as_deref().map(Holder::Customer));
    out
}

/// Counts the event against its budgets and queues it for the sidecar. False when the queue
/// is not there (no gateway has started it yet): the spend then counts locally only.
pub fn record(host: &dyn Host, event: &SpendEvent) -> bool {
    // Failures and cache hits cost nothing: no budget to touch.
    if event.cost > 0.0 {
        for h in holders(event) {
            add_spent(host, h, event.cost);
        }
    }
    match serde_json::to_vec(event) {
        Ok(bytes) => host.enqueue(SPEND_QUEUE, &bytes),
        Err(_) => false,
    }
}

/// Takes up to [`MAX_BATCH`] events off the queue.
pub fn drain(host: &dyn Host) -> Vec<SpendEvent> {
    let mut out = Vec::new();
    while out.len() < MAX_BATCH {
        let Some(item) = host.dequeue(SPEND_QUEUE) else {
            break;
        };
        // An item that does not parse cannot be sent either: dropping it is all there is.
        if let Ok(e) = serde_json::from_slice(&item) {
            out.push(e);
        }
    }
    out
}

/// The sidecar stored these events: their spend is in its records from now on.
pub fn acknowledged(host: &dyn Host, events: &[SpendEvent]) {
    for e in events {
        for h in holders(e) {
            add_acked(host, h, e.cost);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::MemoryHost;
    use crate::keys::{lookup_key, store_key, Lookup, Snapshot};
    use crate::openai::{CompletionTokensDetails, PromptTokensDetails};
    use switchyard_config::KeyRecord;

    #[test]
    fn each_kind_of_token_at_its_price() {
        let prices = Prices {
            input: 1.0,
            output: 2.0,
            cache_read: Some(0.1),
            cache_creation: Some(1.25),
            reasoning: None,
            per_second: None,
        };
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 50,
            total_tokens: 150,
            prompt_tokens_details: Some(PromptTokensDetails { cached_tokens: 40 }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: 20,
            }),
            cache_creation_input_tokens: Some(10),
            cache_read_input_tokens: Some(40),
        };
        // 50 plain prompt + 40 cached × 0.1 + 10 written × 1.25 + 50 completion × 2.
        assert!((cost(&prices, &usage, 3.0) - (50.0 + 4.0 + 12.5 + 100.0)).abs() < 1e-9);
        assert_eq!(cost(&Prices::default(), &usage, 3.0), 0.0);
        // Billed by time: the seconds of the answer at the price per second.
        let timed = Prices {
            per_second: Some(0.5),
            ..Prices::default()
        };
        assert!((cost(&timed, &usage, 3.0) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn events_queue_count_and_are_acknowledged() {
        let host = MemoryHost::at(0);
        let record_ = KeyRecord {
            token: "k".into(),
            team_id: Some("t".into()),
            ..KeyRecord::default()
        };
        store_key(
            &host,
            "k",
            Some(&record_),
            Snapshot::of(&host, &Holder::of_key(&record_)),
        );
        let event = SpendEvent {
            request_id: "r1".into(),
            key_hash: "k".into(),
            team_id: Some("t".into()),
            cost: 0.25,
            ..SpendEvent::default()
        };
        assert!(record(&host, &event));
        let Lookup::Known(entry) = lookup_key(&host, "k", 60_000) else {
            panic!()
        };
        assert_eq!(entry.unrecorded(&host, Holder::Key("k")), 0.25);
        assert_eq!(entry.unrecorded(&host, Holder::Team("t")), 0.25);
        let batch = drain(&host);
        assert_eq!(batch, [event]);
        assert!(drain(&host).is_empty());
        acknowledged(&host, &batch);
        // The cached record was asked for before: it does not include the spend yet.
        assert_eq!(entry.unrecorded(&host, Holder::Key("k")), 0.25);
        // A record asked for now does.
        store_key(
            &host,
            "k",
            Some(&record_),
            Snapshot::of(&host, &Holder::of_key(&record_)),
        );
        let Lookup::Known(fresh) = lookup_key(&host, "k", 60_000) else {
            panic!()
        };
        assert_eq!(fresh.unrecorded(&host, Holder::Key("k")), 0.0);
    }
}
