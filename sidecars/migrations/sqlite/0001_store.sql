-- The sidecar's store, SQLite. PostgreSQL has the same tables in ../postgres (same names,
-- columns and indexes; only the types are spelled differently).
--
-- Types the Any driver reads the same on both databases: INTEGER (ms since the epoch, counts,
-- flags 0/1), REAL (USD), TEXT (ids, JSON). Absent dimensions of spend_daily are '' (a
-- primary key column cannot be NULL).
--
-- What is read per request, and how nothing scans:
--   * the gateway's key lookup (GET /internal/v1/keys/{sha256}): keys by primary key (token),
--     then its user and team by primary key;
--   * an end user (GET /internal/v1/customers/{id}): end_users by primary key;
--   * a spend batch: spend_logs' primary key request_id makes a replayed event a no-op
--     (ON CONFLICT DO NOTHING); keys, users, teams, team_members and end_users are updated by
--     primary key; spend_daily is upserted by its primary key (day, key, team, user, end user,
--     model group), so reports read the aggregates, never the logs;
--   * the changes long-poll: changes by primary key (seq > N).
-- Management lists: keys by user_id, team_id and key_alias, memberships by user_id, spend
-- logs by time, key and user (the indexes below).

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    user_email TEXT,
    user_alias TEXT,
    user_role TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget REAL,
    soft_budget REAL,
    spend REAL NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    tpm_limit INTEGER,
    rpm_limit INTEGER,
    max_parallel_requests INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX users_email ON users (user_email);

CREATE TABLE teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget REAL,
    soft_budget REAL,
    spend REAL NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    tpm_limit INTEGER,
    rpm_limit INTEGER,
    max_parallel_requests INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',
    max_budget_in_team REAL,
    spend REAL NOT NULL DEFAULT 0.0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE keys (
    token TEXT PRIMARY KEY,
    key_name TEXT,
    key_alias TEXT,
    user_id TEXT,
    team_id TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    max_budget REAL,
    soft_budget REAL,
    spend REAL NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    tpm_limit INTEGER,
    rpm_limit INTEGER,
    max_parallel_requests INTEGER,
    expires INTEGER,
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX keys_user ON keys (user_id);
CREATE INDEX keys_team ON keys (team_id);
CREATE INDEX keys_alias ON keys (key_alias);

CREATE TABLE end_users (
    user_id TEXT PRIMARY KEY,
    alias TEXT,
    blocked INTEGER NOT NULL DEFAULT 0,
    max_budget REAL,
    soft_budget REAL,
    spend REAL NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    tpm_limit INTEGER,
    rpm_limit INTEGER,
    allowed_model_region TEXT,
    default_model TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE spend_logs (
    request_id TEXT PRIMARY KEY,
    api_key TEXT NOT NULL DEFAULT '',
    key_alias TEXT,
    user_id TEXT,
    team_id TEXT,
    end_user TEXT,
    requested_model TEXT NOT NULL,
    model_group TEXT NOT NULL,
    model_id TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    endpoint TEXT NOT NULL DEFAULT '',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    spend REAL NOT NULL DEFAULT 0.0,
    start_time INTEGER NOT NULL,
    end_time INTEGER NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0,
    cache_hit INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX spend_logs_time ON spend_logs (start_time);
CREATE INDEX spend_logs_key ON spend_logs (api_key, start_time);
CREATE INDEX spend_logs_user ON spend_logs (user_id, start_time);

CREATE TABLE spend_daily (
    day TEXT NOT NULL,
    api_key TEXT NOT NULL,
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    end_user TEXT NOT NULL,
    model_group TEXT NOT NULL,
    spend REAL NOT NULL DEFAULT 0.0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    failed_requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, api_key, team_id, user_id, end_user, model_group)
);

-- The change log the gateways long-poll. AUTOINCREMENT: a sequence number is never reused,
-- even after old rows are pruned, so a gateway's `after` stays meaningful across restarts.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    at INTEGER NOT NULL
);
