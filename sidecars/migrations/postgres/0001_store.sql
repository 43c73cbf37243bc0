-- The sidecar's store, PostgreSQL. SQLite has the same tables in ../sqlite (same names,
-- columns and indexes; only the types are spelled differently).
--
-- Types the Any driver reads the same on both databases: BIGINT (ms since the epoch, counts,
-- flags 0/1), DOUBLE PRECISION (USD), TEXT (ids, JSON). Absent dimensions of spend_daily are '' (a
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
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_email ON users (user_email);

CREATE TABLE teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',
    max_budget_in_team DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    created_at BIGINT NOT NULL,
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
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    expires BIGINT,
    blocked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX keys_user ON keys (user_id);
CREATE INDEX keys_team ON keys (team_id);
CREATE INDEX keys_alias ON keys (key_alias);

CREATE TABLE end_users (
    user_id TEXT PRIMARY KEY,
    alias TEXT,
    blocked BIGINT NOT NULL DEFAULT 0,
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    allowed_model_region TEXT,
    default_model TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
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
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    start_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    status TEXT NOT NULL,
    http_status BIGINT NOT NULL DEFAULT 0,
    cache_hit BIGINT NOT NULL DEFAULT 0,
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
    spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0,
    failed_requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, api_key, team_id, user_id, end_user, model_group)
);

-- The change log the gateways long-poll. An identity (a sequence): a number is never reused,
-- even after old rows are pruned, so a gateway's `after` stays meaningful across restarts.
CREATE TABLE changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    at BIGINT NOT NULL
);
