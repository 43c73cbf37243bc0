//! Virtual keys at the gateway: the cache of key and end-user records in Envoy's shared data
//! (filled from the sidecar, dropped when the sidecar says a record changed), the spend this
//! Envoy made that a record does not include yet, and the checks LiteLLM makes before a
//! request goes out.
//!
//! A record is fresh for the configured time (general_settings.user_api_key_cache_ttl);
//! after that the gateway asks the sidecar again, and uses the stale record when the sidecar
//! cannot answer, so known keys keep working while it is down. A change (a key blocked,
//! deleted, its budget raised) reaches the cache at once through the sidecar's change feed.
//!
//! Spend: for every budget holder (key, user, team, end user) two counters only grow, the
//! spend this Envoy made and the part the sidecar acknowledged. A record remembers the
//! acknowledged count from just before it was asked for; what this Envoy spent beyond that is
//! not in the record's spend and is added to it. A request is checked against that sum, so
//! a budget is overshot by at most the requests already in flight when it is reached (and by
//! other Envoys' spend not yet flushed).

use serde::{Deserialize, Serialize};
use switchyard_config::{
    Budget, Changes, CustomerRecord, KeyRecord, CUSTOMER_CACHE_PREFIX, KEY_CACHE_PREFIX,
    PENDING_SPEND_PREFIX,
};

use crate::error::ApiError;
use crate::host::{update_shared, Host};

/// How long the sidecar's "no such key" is believed, so a stream of bad keys does not
/// become a stream of database reads. A key created since is announced by the change feed.
pub const UNKNOWN_TTL_MS: u64 = 10_000;

/// A cached record, when it was fetched, and the acknowledged spend of its holders just
/// before; `record: None` is a key the sidecar does not know.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached<T> {
    fetched_ms: u64,
    record: Option<T>,
    #[serde(default)]
    acked: Vec<(String, f64)>,
    /// The cache's generation when stored: a record of an older one is dropped.
    #[serde(default)]
    generation: u64,
}

/// Shared-data key of the cache's generation: raised to drop every cached record at once
/// (shared data cannot list its keys).
const GENERATION_KEY: &str = "switchyard.cache_generation";

fn generation(host: &dyn Host) -> u64 {
    host.shared_get(GENERATION_KEY)
        .and_then(|(b, _)| std::str::from_utf8(&b).ok()?.parse().ok())
        .unwrap_or(0)
}

/// Drops what the sidecar says changed.
pub fn apply_changes(host: &dyn Host, changes: &Changes) {
    if changes.all {
        let next = generation(host) + 1;
        let _ = host.shared_set(GENERATION_KEY, next.to_string().as_bytes(), None);
        return;
    }
    for token in &changes.keys {
        forget_key(host, token);
    }
    for id in &changes.customers {
        forget_customer(host, id);
    }
}

/// The acknowledged spend of a record's holders when it is asked for (see the module doc).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot(Vec<(String, f64)>);

impl Snapshot {
    pub fn of(host: &dyn Host, holders: &[Holder]) -> Snapshot {
        Snapshot(
            holders
                .iter()
                .map(|h| (h.id(), counter(host, &h.counter("acked"))))
                .collect(),
        )
    }
}

/// A record from the cache, and the spend of its holders it does not include.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    pub record: T,
    acked: Vec<(String, f64)>,
}

impl<T> Entry<T> {
    /// What this Envoy spent for `holder` that the record's spend does not include.
    pub fn unrecorded(&self, host: &dyn Host, holder: Holder) -> f64 {
        let id = holder.id();
        let spent = counter(host, &holder.counter("spent"));
        let acked = self
            .acked
            .iter()
            .find(|(h, _)| *h == id)
            .map_or_else(|| counter(host, &holder.counter("acked")), |(_, a)| *a);
        (spent - acked).max(0.0)
    }
}

/// What the cache holds for a key or an end user.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    /// Fresh: use it.
    Known(Entry<T>),
    /// Fresh: the sidecar does not know it.
    Unknown,
    /// Older than the TTL: ask the sidecar, and use it if the sidecar cannot answer.
    Stale(Entry<T>),
    /// Never fetched (or dropped by a change): ask the sidecar.
    Missing,
}

fn lookup<T: for<'de> Deserialize<'de>>(host: &dyn Host, key: &str, ttl_ms: u64) -> Lookup<T> {
    let Some(cached) = host
        .shared_get(key)
        .and_then(|(bytes, _)| serde_json::from_slice::<Cached<T>>(&bytes).ok())
    else {
        return Lookup::Missing;
    };
    if cached.generation != generation(host) {
        return Lookup::Missing;
    }
    let age = host.now_ms().saturating_sub(cached.fetched_ms);
    let entry = |record| Entry {
        record,
        acked: cached.acked.clone(),
    };
    match cached.record {
        Some(r) if age < ttl_ms => Lookup::Known(entry(r)),
        Some(r) => Lookup::Stale(entry(r)),
        None if age < UNKNOWN_TTL_MS.min(ttl_ms) => Lookup::Unknown,
        None => Lookup::Missing,
    }
}

fn store<T: Serialize>(host: &dyn Host, key: &str, record: Option<&T>, snapshot: Snapshot) {
    let cached = Cached {
        fetched_ms: host.now_ms(),
        record,
        acked: snapshot.0,
        generation: generation(host),
    };
    if let Ok(bytes) = serde_json::to_vec(&cached) {
        let _ = host.shared_set(key, &bytes, None);
    }
}

/// Shared data cannot delete a key: an empty value reads as missing.
fn forget(host: &dyn Host, key: &str) {
    let _ = host.shared_set(key, b"", None);
}

pub fn lookup_key(host: &dyn Host, token: &str, ttl_ms: u64) -> Lookup<KeyRecord> {
    lookup(host, &format!("{KEY_CACHE_PREFIX}{token}"), ttl_ms)
}

/// Caches the sidecar's answer for a key (None: unknown), with the snapshot taken when it
/// was asked for.
pub fn store_key(host: &dyn Host, token: &str, record: Option<&KeyRecord>, snapshot: Snapshot) {
    store(
        host,
        &format!("{KEY_CACHE_PREFIX}{token}"),
        record,
        snapshot,
    );
}

pub fn forget_key(host: &dyn Host, token: &str) {
    forget(host, &format!("{KEY_CACHE_PREFIX}{token}"));
}

pub fn lookup_customer(host: &dyn Host, id: &str, ttl_ms: u64) -> Lookup<CustomerRecord> {
    lookup(host, &format!("{CUSTOMER_CACHE_PREFIX}{id}"), ttl_ms)
}

pub fn store_customer(
    host: &dyn Host,
    id: &str,
    record: Option<&CustomerRecord>,
    snapshot: Snapshot,
) {
    store(
        host,
        &format!("{CUSTOMER_CACHE_PREFIX}{id}"),
        record,
        snapshot,
    );
}

pub fn forget_customer(host: &dyn Host, id: &str) {
    forget(host, &format!("{CUSTOMER_CACHE_PREFIX}{id}"));
}

/// Who a budget belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    Key(&'a str),
    User(&'a str),
    Team(&'a str),
    Customer(&'a str),
}

impl Holder<'_> {
    fn id(&self) -> String {
        match self {
            Holder::Key(id) => format!("key.{id}"),
            Holder::User(id) => format!("user.{id}"),
            Holder::Team(id) => format!("team.{id}"),
            Holder::Customer(id) => format!("customer.{id}"),
        }
    }

    fn counter(&self, which: &str) -> String {
        format!("{PENDING_SPEND_PREFIX}{which}.{}", self.id())
    }

    /// The holders of a key's budgets.
    pub fn of_key(r: &KeyRecord) -> Vec<Holder<'_>> {
        let mut out = vec![Holder::Key(&r.token)];
        out.extend(r.user_id.as_deref().map(Holder::User));
        out.extend(r.team_id.as_deref().map(Holder::Team));
        out
    }
}

fn counter(host: &dyn Host, key: &str) -> f64 {
    host.shared_get(key)
        .and_then(|(b, _)| std::str::from_utf8(&b).ok()?.parse().ok())
        .unwrap_or(0.0)
}

fn add_counter(host: &dyn Host, key: &str, delta: f64) {
    if delta <= 0.0 {
        return;
    }
    update_shared(host, key, |current| {
        let now: f64 = current
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
            .unwrap_or(0.0);
        Some((now + delta).to_string().into_bytes())
    });
}

/// This Envoy spent `cost` for `holder` (the sidecar does not know yet).
pub fn add_spent(host: &dyn Host, holder: Holder, cost: f64) {
    add_counter(host, &holder.counter("spent"), cost);
}

/// The sidecar acknowledged `cost` of `holder`'s spend.
pub fn add_acked(host: &dyn Host, holder: Holder, cost: f64) {
    add_counter(host, &holder.counter("acked"), cost);
}

/// The checks on a key before its request is read: blocked, expired, over a budget
/// (its own, its user's, its team's; spend acknowledged plus pending).
pub fn check_key(host: &dyn Host, entry: &Entry<KeyRecord>, now_ms: u64) -> Result<(), ApiError> {
    let r = &entry.record;
    let alias = r.key_alias.as_deref().unwrap_or("");
    if r.blocked {
        return Err(ApiError::unauthorized(format!(
            "Authentication Error, this key is blocked{}. Ask your admin to unblock it (/key/unblock).",
            named(alias)
        )));
    }
    if r.team_blocked {
        return Err(ApiError::unauthorized(format!(
            "Authentication Error, team {} is blocked. Ask your admin to unblock it.",
            r.team_id.as_deref().unwrap_or("")
        )));
    }
    if let Some(expires) = r.expires_ms.filter(|e| *e <= now_ms) {
        return Err(ApiError::unauthorized(format!(
            "Authentication Error - Expired Key{}. Key expiry time {} (ms since the epoch) has passed; ask your admin for a new key.",
            named(alias),
            expires
        )));
    }
    over_budget(
        "key",
        &r.key_budget,
        entry.unrecorded(host, Holder::Key(&r.token)),
    )?;
    if let Some(user) = &r.user_id {
        over_budget(
            "user",
            &r.user_budget,
            entry.unrecorded(host, Holder::User(user)),
        )?;
    }
    if let Some(team) = &r.team_id {
        over_budget(
            "team",
            &r.team_budget,
            entry.unrecorded(host, Holder::Team(team)),
        )?;
    }
    Ok(())
}

/// An end user's checks: blocked, over its budget.
pub fn check_customer(host: &dyn Host, entry: &Entry<CustomerRecord>) -> Result<(), ApiError> {
    let c = &entry.record;
    if c.blocked {
        return Err(ApiError::new(
            403,
            "permission_error",
            format!(
                "End user {} is blocked. Ask your admin to unblock them (/customer/unblock).",
                c.user_id
            ),
        ));
    }
    over_budget(
        "end user",
        &c.budget,
        entry.unrecorded(host, Holder::Customer(&c.user_id)),
    )
}

/// LiteLLM's budget error: 400, type `budget_exceeded`.
fn over_budget(whose: &str, b: &Budget, pending: f64) -> Result<(), ApiError> {
    match b.max_budget {
        Some(max) if b.exhausted(pending) => Err(ApiError::new(
            400,
            "budget_exceeded",
            format!(
                "Budget has been exceeded! The {whose}'s current cost: {:.6}, max budget: {max}.{}",
                b.spend + pending,
                b.resets_at_ms
                    .map(|t| format!(" The budget resets at {t} (ms since the epoch)."))
                    .unwrap_or_default()
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether the key (and its team) may call `model` (the name the client asked for) or the
/// group it resolves to. Empty lists allow everything; `*` suffixes match prefixes;
/// `all-proxy-models` is LiteLLM's "every model".
/// `access` is the group's access groups (model_info.access_groups), which a list may name.
pub fn check_model(
    r: &KeyRecord,
    requested: &str,
    group: &str,
    access: &[String],
) -> Result<(), ApiError> {
    let allowed = |list: &[String]| {
        list.is_empty()
            || list.iter().any(|m| {
                m == "all-proxy-models"
                    || m == requested
                    || m == group
                    || access.contains(m)
                    || m.strip_suffix('*')
                        .is_some_and(|p| requested.starts_with(p) || group.starts_with(p))
            })
    };
    if !allowed(&r.models) {
        return Err(ApiError::new(
            401,
            "key_model_access_denied",
            format!(
                "key not allowed to access model. This key can only access models={:?}. Tried to access {requested}",
                r.models
            ),
        )
        .with_param("model"));
    }
    if !allowed(&r.team_models) {
        return Err(ApiError::new(
            401,
            "team_model_access_denied",
            format!(
                "team not allowed to access model. Team={}, Model={requested}. Allowed team models = {:?}",
                r.team_id.as_deref().unwrap_or(""),
                r.team_models
            ),
        )
        .with_param("model"));
    }
    Ok(())
}

fn named(alias: &str) -> String {
    if alias.is_empty() {
        String::new()
    } else {
        format!(" (key_alias={alias})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::MemoryHost;

    fn record() -> KeyRecord {
        KeyRecord {
            token: "abc".into(),
            key_alias: Some("ci".into()),
            user_id: Some("u1".into()),
            team_id: Some("t1".into()),
            key_budget: Budget {
                max_budget: Some(1.0),
                spend: 0.5,
                resets_at_ms: None,
            },
            ..KeyRecord::default()
        }
    }

    fn entry(r: KeyRecord) -> Entry<KeyRecord> {
        Entry {
            record: r,
            acked: vec![],
        }
    }

    #[test]
    fn the_cache_is_fresh_then_stale_and_forgets() {
        let host = MemoryHost::at(1_000);
        assert_eq!(lookup_key(&host, "abc", 60_000), Lookup::Missing);
        store_key(&host, "abc", Some(&record()), Snapshot::default());
        assert_eq!(
            lookup_key(&host, "abc", 60_000),
            Lookup::Known(entry(record()))
        );
        host.now.set(62_000);
        assert_eq!(
            lookup_key(&host, "abc", 60_000),
            Lookup::Stale(entry(record()))
        );
        forget_key(&host, "abc");
        assert_eq!(lookup_key(&host, "abc", 60_000), Lookup::Missing);
        store_key(&host, "bad", None, Snapshot::default());
        assert_eq!(lookup_key(&host, "bad", 60_000), Lookup::Unknown);
        host.now.set(62_000 + UNKNOWN_TTL_MS);
        assert_eq!(
            lookup_key(&host, "bad", 60_000),
            Lookup::Missing,
            "asked again"
        );
    }

    #[test]
    fn changes_drop_records_one_by_one_or_all_at_once() {
        let host = MemoryHost::at(0);
        store_key(&host, "a", Some(&record()), Snapshot::default());
        store_key(&host, "b", Some(&record()), Snapshot::default());
        apply_changes(
            &host,
            &Changes {
                seq: 1,
                keys: vec!["a".into()],
                ..Changes::default()
            },
        );
        assert_eq!(lookup_key(&host, "a", 60_000), Lookup::Missing);
        assert!(matches!(lookup_key(&host, "b", 60_000), Lookup::Known(_)));
        apply_changes(
            &host,
            &Changes {
                seq: 2,
                all: true,
                ..Changes::default()
            },
        );
        assert_eq!(lookup_key(&host, "b", 60_000), Lookup::Missing);
        store_key(&host, "b", Some(&record()), Snapshot::default());
        assert!(matches!(lookup_key(&host, "b", 60_000), Lookup::Known(_)));
    }

    #[test]
    fn budgets_count_spend_the_record_does_not_include() {
        let host = MemoryHost::at(0);
        let r = record();
        let key = Holder::Key("abc");
        // 0.3 was spent and acknowledged before the record was asked for: it is in its spend.
        add_spent(&host, key, 0.3);
        add_acked(&host, key, 0.3);
        let snapshot = Snapshot::of(&host, &Holder::of_key(&r));
        store_key(&host, "abc", Some(&r), snapshot);
        let Lookup::Known(e) = lookup_key(&host, "abc", 60_000) else {
            panic!()
        };
        assert!(check_key(&host, &e, 0).is_ok());
        add_spent(&host, key, 0.4);
        assert!(check_key(&host, &e, 0).is_ok(), "0.5 + 0.4 < 1");
        // Acknowledged later: still counted, the record does not include it.
        add_acked(&host, key, 0.4);
        add_spent(&host, key, 0.2);
        let err = check_key(&host, &e, 0).unwrap_err();
        assert_eq!((err.status, err.kind), (400, "budget_exceeded"));
        assert!(err.message.contains("max budget: 1"), "{}", err.message);
        let mut team = record();
        team.team_budget = Budget {
            max_budget: Some(0.1),
            spend: 0.1,
            resets_at_ms: None,
        };
        assert!(check_key(&host, &entry(team), 0)
            .unwrap_err()
            .message
            .contains("team"));
    }

    #[test]
    fn blocked_expired_and_models() {
        let host = MemoryHost::at(0);
        let mut r = record();
        r.blocked = true;
        assert_eq!(check_key(&host, &entry(r), 0).unwrap_err().status, 401);
        let mut r = record();
        r.expires_ms = Some(10);
        assert!(check_key(&host, &entry(r.clone()), 9).is_ok());
        assert!(check_key(&host, &entry(r), 10)
            .unwrap_err()
            .message
            .contains("Expired"));
        let mut r = record();
        r.models = vec!["gpt-4o".into(), "claude-*".into()];
        assert!(check_model(&r, "gpt-4o", "gpt-4o", &[]).is_ok());
        // A list may name an access group of the model's group.
        let mut beta = r.clone();
        beta.models = vec!["beta".into()];
        assert!(check_model(&beta, "o3", "o3", &["beta".to_string()]).is_ok());
        assert!(check_model(&beta, "o3", "o3", &[]).is_err());
        assert!(check_model(&r, "claude-haiku", "claude-haiku", &[]).is_ok());
        let e = check_model(&r, "gpt-4", "gpt-4", &[]).unwrap_err();
        assert_eq!((e.status, e.kind), (401, "key_model_access_denied"));
        r.models.clear();
        r.team_models = vec!["fast".into()];
        assert!(
            check_model(&r, "alias-of-fast", "fast", &[]).is_ok(),
            "the group counts"
        );
        assert_eq!(
            check_model(&r, "slow", "slow", &[]).unwrap_err().kind,
            "team_model_access_denied"
        );
    }
}
