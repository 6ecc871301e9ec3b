//! The Lua scripts: each runs atomically on the server, and each touches
//! only keys of one hash tag, so they run on Redis Cluster too.
//!
//! Token hash fields: `v` the version (bumped by every write), `t` the
//! stored bytes. The lease is a string holding its owner id, with a TTL.

use std::sync::LazyLock;

use redis::Script;

/// `SET lease owner NX PX ttl`; on success the token's current version
/// (0 when none), else -1.
/// KEYS: lease, token. ARGV: owner, ttl ms.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
end
return -1
",
    )
});

/// Extends the lease if `owner` still holds it: 1, else 0.
/// KEYS: lease. ARGV: owner, ttl ms.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Deletes the lease if `owner` still holds it: 1, else 0.
/// KEYS: lease. ARGV: owner.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Writes the token only if `owner` still holds the lease (fencing; else
/// -1) and the version is still the one seen when the lease was taken
/// (compare-and-set; else -2); returns the new version.
/// KEYS: lease, token. ARGV: owner, expected version, bytes, expire-at ms
/// (0: keep).
pub(crate) static SAVE_LEASED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if v ~= tonumber(ARGV[2]) then
  return -2
end
redis.call('HSET', KEYS[2], 'v', v + 1, 't', ARGV[3])
if ARGV[4] == '0' then
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIREAT', KEYS[2], ARGV[4])
end
return v + 1
",
    )
});

/// Writes the token unconditionally (a login, an operator); returns the new
/// version.
/// KEYS: token. ARGV: bytes, expire-at ms (0: keep).
pub(crate) static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 't', ARGV[1])
if ARGV[2] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return v
",
    )
});

/// Writes the token only if the version is still `version` (0: none
/// stored), checking the expiry argument before writing; returns the new
/// version, or -2 when the version moved.
/// KEYS: token. ARGV: expected version, bytes, expire-at ms (0: keep).
pub(crate) static SAVE_IF_VERSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local at = tonumber(ARGV[3])
if not at then
  return redis.error_reply('expire-at is not a number')
end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then
  return -2
end
redis.call('HSET', KEYS[1], 'v', v + 1, 't', ARGV[2])
if at == 0 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], at)
end
return v + 1
",
    )
});

/// Deletes the token if its version is still `version`: 1, else 0.
/// KEYS: token. ARGV: version.
pub(crate) static CLEAR_IF_VERSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') == tonumber(ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});
