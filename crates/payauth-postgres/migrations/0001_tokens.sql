-- One row per token key: the token (JSON, or sealed JSON) with its
-- version, the fetch lease, and the last failure shared with the fleet.
-- Times are milliseconds on the database's clock, which every replica
-- shares.
CREATE TABLE IF NOT EXISTS payauth_tokens (
    prefix           text   NOT NULL,
    key              text   NOT NULL,
    -- Bumped by every write of the token; 0 for a row that only ever held
    -- a lease or a failure.
    version          bigint NOT NULL DEFAULT 0,
    token            bytea,
    -- When the token may be dropped (a token without refresh token);
    -- NULL: kept (it carries a refresh token).
    expires_at_ms    bigint,
    lease_owner      text,
    lease_until_ms   bigint,
    failure          bytea,
    failure_until_ms bigint,
    PRIMARY KEY (prefix, key)
);

-- For `PostgresStore::purge_expired`.
CREATE INDEX IF NOT EXISTS payauth_tokens_expires_at_ms
    ON payauth_tokens (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
