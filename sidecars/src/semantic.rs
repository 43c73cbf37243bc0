//! The semantic cache: a prompt close enough in meaning to one answered before gets that
//! answer. Prompts are embedded by the gateway itself (`POST {gateway}/v1/embeddings` with
//! the config's `embedding_model` group and the master key), so every provider Switchyard
//! serves can embed, and the embedding is counted like any other request. Vectors are kept
//! unit-length, so cosine similarity is a dot product; the nearest neighbour is found by
//! scanning the group, which at the bound below takes a few milliseconds.
//!
//! What is indexed is `(cache key, vector, stored, expires)`, per (namespace, model group,
//! embedding model); the answer itself stays in the response cache ([`Answers`]) under its
//! key, so it is stored once, expires once and is bounded with the others. At most
//! [`MAX_PER_GROUP`] entries per group are kept, the oldest dropped first, expired ones
//! dropped as new ones come.
//!
//! With Redis, each put is also appended to a Redis stream per group
//! (`switchyard:semantic:{namespace}:{group}:{embedding model}`, each part percent-encoded;
//! one field `e` holding the entry as JSON; `XADD MAXLEN ~ 10000`; the stream expires with
//! its longest-lived entry). Each sidecar reads the entries it has not seen yet (`XRANGE
//! (last-id + COUNT 1000`, one round trip) into its own index before it searches, so every
//! sidecar of a fleet finds every other's answers, and the search itself stays local.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use switchyard_config::{percent_encode, CachePut, CachedAnswer, SemanticEntry, SemanticLookup};

use crate::cache::Answers;
use crate::http::{https, Https};
use crate::redis::{Redis, GET_TIMEOUT, OP_TIMEOUT};

/// Entries kept per (namespace, group, embedding model).
pub const MAX_PER_GROUP: usize = 10_000;
/// How long an embedding call to the gateway may take.
const EMBED_TIMEOUT: Duration = Duration::from_secs(2);
/// Recent prompts' embeddings, so the put after a miss does not embed again.
const EMBEDDINGS_KEPT: u64 = 2_000;
const EMBEDDING_TTL: Duration = Duration::from_secs(600);
/// Entries read from a group's Redis stream per lookup.
const SYNC_BATCH: usize = 1_000;
/// The nearest answers tried, in order, when the nearest has left the response cache.
const CANDIDATES: usize = 3;

/// Where prompts are embedded.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// `http://host:port` of the gateway's public listener.
    pub url: String,
    /// The master key, sent as `Authorization: Bearer` when the gateway has one.
    pub master_key: Option<String>,
}

/// A unit vector.
type Vector = Arc<[f32]>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupId {
    namespace: String,
    group: String,
    model: String,
}

impl GroupId {
    fn of(e: &SemanticEntry) -> GroupId {
        GroupId {
            namespace: e.namespace.clone().unwrap_or_default(),
            group: e.group.clone(),
            model: e.embedding_model.clone(),
        }
    }

    fn stream(&self) -> String {
        format!(
            "switchyard:semantic:{}:{}:{}",
            percent_encode(&self.namespace),
            percent_encode(&self.group),
            percent_encode(&self.model)
        )
    }
}

/// One indexed answer, as kept in memory and in the Redis stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    /// The response cache's key of the answer.
    key: String,
    stored_ms: u64,
    expires_ms: u64,
    vector: Vector,
}

#[derive(Default)]
struct Group {
    items: VecDeque<Item>,
    /// The last Redis stream id read into `items`.
    seen: Option<String>,
}

impl Group {
    /// Adds `item`, replacing an older one under the same key, dropping expired ones and
    /// the oldest past the bound.
    fn insert(&mut self, item: Item, now_ms: u64) {
        self.items
            .retain(|i| i.key != item.key && i.expires_ms > now_ms);
        self.items.push_back(item);
        while self.items.len() > MAX_PER_GROUP {
            self.items.pop_front();
        }
    }

    /// The keys of the live entries at least `threshold` similar to `query`, most similar
    /// first (at most [`CANDIDATES`]).
    fn nearest(
        &self,
        query: &[f32],
        threshold: f64,
        max_age_s: Option<u64>,
        now_ms: u64,
    ) -> Vec<(f64, String)> {
        let max_age_ms = max_age_s.map(|s| s.saturating_mul(1000));
        let mut found: Vec<(f64, String)> = self
            .items
            .iter()
            .filter(|i| i.expires_ms > now_ms)
            .filter(|i| max_age_ms.is_none_or(|age| now_ms.saturating_sub(i.stored_ms) <= age))
            .filter_map(|i| {
                let s = similarity(query, &i.vector)?;
                (s >= threshold).then(|| (s, i.key.clone()))
            })
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found.truncate(CANDIDATES);
        found
    }
}

/// Cosine similarity of two unit vectors; None when their dimensions differ (another
/// embedding model answered under the same name).
fn similarity(a: &[f32], b: &[f32]) -> Option<f64> {
    (a.len() == b.len() && !a.is_empty()).then(|| {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    })
}

/// `v` scaled to length 1; None for a zero or non-finite vector.
fn unit(v: Vec<f32>) -> Option<Vector> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    (norm.is_finite() && norm > 0.0)
        .then(|| v.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a str,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingData>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    embedding: Vec<f32>,
}

/// The semantic index and what it needs to embed prompts.
pub struct Semantic {
    gateway: Option<Gateway>,
    http: Option<Https>,
    embeddings: moka::sync::Cache<(String, String), Vector>,
    groups: Mutex<HashMap<GroupId, Group>>,
    /// Whether the missing gateway URL was logged.
    told_no_gateway: AtomicBool,
}

impl Default for Semantic {
    fn default() -> Self {
        Semantic::new(None)
    }
}

impl Semantic {
    /// Embeds through `gateway`; without one every lookup misses.
    pub fn new(gateway: Option<Gateway>) -> Semantic {
        Semantic {
            http: gateway.as_ref().and_then(|_| https()),
            gateway,
            embeddings: moka::sync::Cache::builder()
                .max_capacity(EMBEDDINGS_KEPT)
                .time_to_live(EMBEDDING_TTL)
                .build(),
            groups: Mutex::new(HashMap::new()),
            told_no_gateway: AtomicBool::new(false),
        }
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Group>> {
        match self.groups.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The answer to the most similar prompt at or above the threshold, if any. Anything
    /// that fails on the way (no gateway, the embedding, Redis) is a miss.
    pub async fn lookup(
        &self,
        q: &SemanticLookup,
        answers: &Answers,
        redis: Option<&Redis>,
        now_ms: u64,
    ) -> Option<CachedAnswer> {
        if !self.can_embed() {
            return None;
        }
        let query = match self.embed(&q.entry).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("semantic cache lookup missed: {e}");
                return None;
            }
        };
        let id = GroupId::of(&q.entry);
        if let Some(redis) = redis {
            self.read_stream(redis, &id, now_ms).await;
        }
        let candidates = self
            .groups()
            .get(&id)
            .map(|g| g.nearest(&query, q.similarity_threshold, q.max_age_s, now_ms))
            .unwrap_or_default();
        for (similarity, key) in candidates {
            if let Some(answer) = answers.get(&key, q.max_age_s, now_ms).await {
                tracing::debug!("semantic cache hit at similarity {similarity:.3}");
                return Some(answer);
            }
        }
        None
    }

    /// Indexes a stored answer by its prompt (the caller has stored the answer under
    /// `put.key`). Embedding failures are logged: the answer is then only found by its key.
    pub async fn index(&self, put: &CachePut, redis: Option<&Redis>, now_ms: u64) {
        let Some(entry) = &put.semantic else {
            return;
        };
        if put.ttl_s == 0 || put.key.is_empty() || !self.can_embed() {
            return;
        }
        let vector = match self.embed(entry).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("semantic cache: an answer is not indexed: {e}");
                return;
            }
        };
        let item = Item {
            key: put.key.clone(),
            stored_ms: now_ms,
            expires_ms: now_ms.saturating_add(put.ttl_s.saturating_mul(1000)),
            vector,
        };
        let id = GroupId::of(entry);
        if let Some(redis) = redis {
            append_stream(redis, &id, &item, put.ttl_s).await;
        }
        self.groups().entry(id).or_default().insert(item, now_ms);
    }

    /// Whether prompts can be embedded; says once why not.
    fn can_embed(&self) -> bool {
        let can = self.gateway.is_some() && self.http.is_some();
        if !can && !self.told_no_gateway.swap(true, Ordering::Relaxed) {
            tracing::warn!("the semantic cache misses every lookup: this sidecar does not know the gateway's URL to embed prompts with (start it with --gateway-url or SWITCHYARD_GATEWAY_URL)");
        }
        can
    }

    /// The prompt's unit vector: from the recent ones, else from the gateway.
    async fn embed(&self, e: &SemanticEntry) -> Result<Vector, String> {
        let cache_key = (e.embedding_model.clone(), e.prompt.clone());
        if let Some(v) = self.embeddings.get(&cache_key) {
            return Ok(v);
        }
        let (Some(gateway), Some(http)) = (&self.gateway, &self.http) else {
            return Err("no gateway URL to embed prompts with".into());
        };
        let url = format!("{}/v1/embeddings", gateway.url.trim_end_matches('/'));
        let body = serde_json::to_vec(&EmbeddingRequest {
            model: &e.embedding_model,
            input: &e.prompt,
        })
        .map_err(|e| format!("cannot write the embedding request: {e}"))?;
        let mut request = hyper::Request::post(&url).header("content-type", "application/json");
        if let Some(key) = &gateway.master_key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad gateway URL {url}: {e}"))?;
        let (status, body) = crate::http::call(http, request, EMBED_TIMEOUT).await?;
        if !status.is_success() {
            return Err(format!(
                "embedding with {} failed ({status}): {}",
                e.embedding_model,
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        let parsed: EmbeddingResponse = serde_json::from_slice(&body).map_err(|err| {
            format!(
                "{url} answered no embedding for {}: {err}",
                e.embedding_model
            )
        })?;
        let vector = parsed
            .data
            .into_iter()
            .next()
            .and_then(|d| unit(d.embedding))
            .ok_or_else(|| format!("{} answered an empty or zero embedding", e.embedding_model))?;
        self.embeddings.insert(cache_key, vector.clone());
        Ok(vector)
    }

    /// Reads the group's stream entries this sidecar has not seen into its index.
    async fn read_stream(&self, redis: &Redis, id: &GroupId, now_ms: u64) {
        let start = match self.groups().get(id).and_then(|g| g.seen.clone()) {
            Some(seen) => format!("({seen}"),
            None => "-".to_string(),
        };
        let stream = id.stream();
        // On a lookup's way, so bounded like a cache lookup.
        let read = redis
            .run(GET_TIMEOUT, |mut c| async move {
                redis::cmd("XRANGE")
                    .arg(&stream)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(SYNC_BATCH)
                    .query_async::<Vec<(String, Vec<String>)>>(&mut c)
                    .await
            })
            .await;
        let entries = match read {
            Ok(entries) => entries,
            Err(e) => {
                tracing::debug!("semantic cache: the shared vectors are not read: {e}");
                return;
            }
        };
        let mut groups = self.groups();
        let group = groups.entry(id.clone()).or_default();
        for (stream_id, fields) in entries {
            // Fields come as [name, value]; ours has one, `e`.
            if let Some(item) = fields
                .get(1)
                .and_then(|json| serde_json::from_str::<Item>(json).ok())
            {
                if item.expires_ms > now_ms {
                    group.insert(item, now_ms);
                }
            }
            group.seen = Some(stream_id);
        }
    }
}

/// Shares an indexed answer with the fleet (best effort: a failure only means other
/// sidecars do not find it by meaning).
async fn append_stream(redis: &Redis, id: &GroupId, item: &Item, ttl_s: u64) {
    let Ok(json) = serde_json::to_string(item) else {
        return;
    };
    let stream = id.stream();
    let mut pipe = redis::pipe();
    pipe.cmd("XADD")
        .arg(&stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(MAX_PER_GROUP)
        .arg("*")
        .arg("e")
        .arg(json)
        .ignore();
    // A new stream takes this TTL; an existing one keeps its own unless this one is longer.
    pipe.cmd("EXPIRE")
        .arg(&stream)
        .arg(ttl_s)
        .arg("NX")
        .ignore();
    pipe.cmd("EXPIRE")
        .arg(&stream)
        .arg(ttl_s)
        .arg("GT")
        .ignore();
    if let Err(e) = redis
        .run(
            OP_TIMEOUT,
            |mut c| async move { pipe.exec_async(&mut c).await },
        )
        .await
    {
        tracing::debug!("semantic cache: an answer is not shared with the fleet: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[f32]) -> Vector {
        unit(x.to_vec()).expect("non-zero")
    }

    fn item(key: &str, vector: Vector, stored_ms: u64, expires_ms: u64) -> Item {
        Item {
            key: key.into(),
            stored_ms,
            expires_ms,
            vector,
        }
    }

    #[test]
    fn cosine_of_unit_vectors() {
        let a = v(&[1.0, 0.0]);
        assert!((similarity(&a, &v(&[2.0, 0.0])).expect("same dims") - 1.0).abs() < 1e-6);
        assert!(similarity(&a, &v(&[0.0, 3.0])).expect("same dims").abs() < 1e-6);
        let s = similarity(&a, &v(&[1.0, 1.0])).expect("same dims");
        assert!((s - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{s}");
        assert_eq!(
            similarity(&a, &v(&[1.0, 0.0, 0.0])),
            None,
            "other dimensions"
        );
        assert!(unit(vec![0.0, 0.0]).is_none());
        assert!(unit(vec![f32::NAN]).is_none());
    }

    #[test]
    fn the_nearest_live_entries_above_the_threshold_come_first() {
        let mut g = Group::default();
        g.insert(item("far", v(&[0.0, 1.0]), 0, 10_000), 0);
        g.insert(item("near", v(&[1.0, 0.1]), 0, 10_000), 0);
        g.insert(item("nearer", v(&[1.0, 0.01]), 0, 10_000), 0);
        g.insert(item("expired", v(&[1.0, 0.0]), 0, 500), 0);
        g.insert(item("young", v(&[1.0, 0.05]), 900, 10_000), 0);
        let keys =
            |found: Vec<(f64, String)>| found.into_iter().map(|(_, k)| k).collect::<Vec<_>>();
        let q = v(&[1.0, 0.0]);
        assert_eq!(
            keys(g.nearest(&q, 0.9, None, 1_000)),
            ["nearer", "young", "near"]
        );
        assert_eq!(
            keys(g.nearest(&q, 0.9, Some(1), 1_500)),
            ["young"],
            "max_age_s"
        );
        assert!(g.nearest(&q, 0.9, None, 20_000).is_empty(), "all expired");
        assert!(g.nearest(&v(&[-1.0, 0.0]), 0.5, None, 1_000).is_empty());
    }

    #[test]
    fn a_group_is_bounded_oldest_first_and_replaces_a_key() {
        let mut g = Group::default();
        for i in 0..MAX_PER_GROUP + 5 {
            g.insert(item(&format!("k{i}"), v(&[1.0]), 0, 1_000), 0);
        }
        assert_eq!(g.items.len(), MAX_PER_GROUP);
        assert_eq!(g.items.front().map(|i| i.key.as_str()), Some("k5"));
        g.insert(item("k5", v(&[1.0]), 1, 1_000), 0);
        assert_eq!(g.items.len(), MAX_PER_GROUP);
        assert_eq!(
            g.items.back().map(|i| (i.key.as_str(), i.stored_ms)),
            Some(("k5", 1))
        );
        // Expired entries go as new ones come.
        g.insert(item("new", v(&[1.0]), 2_000, 9_000), 2_000);
        assert_eq!(g.items.len(), 1);
    }
}
