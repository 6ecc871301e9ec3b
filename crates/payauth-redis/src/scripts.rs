//! The Lua scripts: each runs atomically on the server, and each touches
//! only keys of one hash tag, so they run on Redis Cluster too.
//!
//! Token hash fields: `v` the version (bumped by every write), `t` the
//! stored bytes. The lease is a string holding its owner id, with a TTL.
//!
//! Every script checks every argument before it writes anything, so a
//! refused call changes nothing; and each reads what it finds in Redis
//! defensively: a version that is not a small integer counts as 0, a key of
//! the wrong type is no token (and is replaced by the next save), and a
//! lease that would never expire is given one TTL.

use std::sync::LazyLock;

use redis::Script;

use crate::encryption::MAX_VALUE_BYTES;
use crate::store::{LEASE_TTL_LIMITS, MAX_KEEP};

/// The largest version: beyond 2^53 a Lua number loses integers. A
/// version past it reads as 0 (and the next write makes it 1).
const MAX_VERSION: u64 = (1 << 53) - 1;
/// The longest lease owner id (ours are 32 hex digits).
const MAX_OWNER_BYTES: usize = 128;

/// The helpers every script starts with.
fn prelude() -> String {
    format!(
        r"
local MAX_VALUE = {MAX_VALUE_BYTES}
local MAX_VERSION = {MAX_VERSION}
local MAX_KEEP_MS = {max_keep}
local MAX_LEASE_MS = {max_lease}
local MAX_OWNER = {MAX_OWNER_BYTES}

-- The integer `arg` spells in decimal digits, within [low, high]; else nil.
local function integer(arg, low, high)
  if type(arg) ~= 'string' or #arg > 16 or not string.match(arg, '^%d+$') then
    return nil
  end
  local n = tonumber(arg)
  if n < low or n > high then
    return nil
  end
  return n
end

local function bad(what)
  return redis.error_reply('ERR payauth: invalid ' .. what)
end

local function owner_ok(owner)
  return #owner > 0 and #owner <= MAX_OWNER
end

local function value_ok(bytes)
  return #bytes > 0 and #bytes <= MAX_VALUE
end

-- The token's version: 0 when there is none or it is unreadable.
local function version(key)
  if redis.call('TYPE', key).ok ~= 'hash' then
    return 0
  end
  return integer(redis.call('HGET', key, 'v'), 0, MAX_VERSION) or 0
end

-- Whether `owner` holds the lease.
local function holds(lease, owner)
  return redis.call('TYPE', lease).ok == 'string' and redis.call('GET', lease) == owner
end

-- Writes the token hash, replacing a key of another type; `keep` ms
-- (0: for good).
local function write(key, v, bytes, keep)
  if redis.call('TYPE', key).ok ~= 'hash' then
    redis.call('DEL', key)
  end
  redis.call('HSET', key, 'v', v, 't', bytes)
  if keep == 0 then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, keep)
  end
end
",
        max_keep = MAX_KEEP.as_millis(),
        max_lease = LEASE_TTL_LIMITS.end().as_millis(),
    )
}

fn script(body: &str) -> Script {
    Script::new(&format!("{}{body}", prelude()))
}

/// `SET lease owner NX PX ttl`; on success the token's current version
/// (0 when none), else -1. A lease key without a TTL or with one no
/// replica could have set (planted, or left by a bug) is given `ttl`, so
/// it cannot lock the fleet out for good.
/// KEYS: lease, token. ARGV: owner, ttl ms.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local ttl = integer(ARGV[2], 1, MAX_LEASE_MS)
if not ttl or not owner_ok(ARGV[1]) then
  return bad('lease arguments')
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then
  return version(KEYS[2])
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 or left > MAX_LEASE_MS then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return -1
",
    )
});

/// Extends the lease if `owner` still holds it: 1, else 0.
/// KEYS: lease. ARGV: owner, ttl ms.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local ttl = integer(ARGV[2], 1, MAX_LEASE_MS)
if not ttl or not owner_ok(ARGV[1]) then
  return bad('lease arguments')
end
if holds(KEYS[1], ARGV[1]) then
  return redis.call('PEXPIRE', KEYS[1], ttl)
end
return 0
",
    )
});

/// Deletes the lease if `owner` still holds it: 1, else 0.
/// KEYS: lease. ARGV: owner.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if not owner_ok(ARGV[1]) then
  return bad('lease owner')
end
if holds(KEYS[1], ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Writes the token only if `owner` still holds the lease (fencing; else
/// -1) and the version is still the one seen when the lease was taken
/// (compare-and-set; else -2); returns the new version.
/// KEYS: lease, token. ARGV: owner, expected version, bytes, ms to keep
/// (0: for good).
pub(crate) static SAVE_LEASED: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local expected = integer(ARGV[2], 0, MAX_VERSION)
local keep = integer(ARGV[4], 0, MAX_KEEP_MS)
if not expected or not keep or not owner_ok(ARGV[1]) or not value_ok(ARGV[3]) then
  return bad('save arguments')
end
if not holds(KEYS[1], ARGV[1]) then
  return -1
end
local v = version(KEYS[2])
if v ~= expected then
  return -2
end
write(KEYS[2], v + 1, ARGV[3], keep)
return v + 1
",
    )
});

/// Writes the token unconditionally (a login, an operator); returns the new
/// version.
/// KEYS: token. ARGV: bytes, ms to keep (0: for good).
pub(crate) static SAVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local keep = integer(ARGV[2], 0, MAX_KEEP_MS)
if not keep or not value_ok(ARGV[1]) then
  return bad('save arguments')
end
local v = version(KEYS[1]) + 1
write(KEYS[1], v, ARGV[1], keep)
return v
",
    )
});

/// Writes the token only if the version is still `version` (0: none
/// stored); returns the new version, or -2 when the version moved.
/// KEYS: token. ARGV: expected version, bytes, ms to keep (0: for good).
pub(crate) static SAVE_IF_VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local expected = integer(ARGV[1], 0, MAX_VERSION)
local keep = integer(ARGV[3], 0, MAX_KEEP_MS)
if not expected or not keep or not value_ok(ARGV[2]) then
  return bad('save arguments')
end
local v = version(KEYS[1])
if v ~= expected then
  return -2
end
write(KEYS[1], v + 1, ARGV[2], keep)
return v + 1
",
    )
});

/// The token's version as every script reads it (0: none, unreadable,
/// or a key of another type). KEYS: token.
pub(crate) static VERSION: LazyLock<Script> = LazyLock::new(|| script("return version(KEYS[1])"));

/// Deletes the token if its version is still `version`: 1, else 0.
/// KEYS: token. ARGV: version.
pub(crate) static CLEAR_IF_VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local expected = integer(ARGV[1], 0, MAX_VERSION)
if not expected then
  return bad('version')
end
if version(KEYS[1]) == expected then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Reads the token without moving more than [`MAX_VALUE_BYTES`]:
/// `{status, n, bytes}` with status 0 none, 1 a token (`n` its version),
/// 2 too large (`n` its size), 3 a key of another type.
/// KEYS: token.
pub(crate) static LOAD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then
  return {0, 0, false}
end
if kind ~= 'hash' then
  return {3, 0, false}
end
local size = redis.call('HSTRLEN', KEYS[1], 't')
if size > MAX_VALUE then
  return {2, size, false}
end
local bytes = redis.call('HGET', KEYS[1], 't')
if not bytes then
  return {0, 0, false}
end
return {1, version(KEYS[1]), bytes}
",
    )
});

#[cfg(test)]
mod tests {
    use payauth_testkit::redis::Redis;
    use redis::AsyncCommands as _;

    use super::*;

    async fn conn(redis: &Redis) -> redis::aio::MultiplexedConnection {
        redis::Client::open(redis.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn run(
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<redis::Value> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        invocation.invoke_async(conn).await
    }

    #[tokio::test]
    async fn a_script_given_any_invalid_argument_refuses_and_writes_nothing() {
        let Some(redis) = Redis::get() else { return };
        let mut conn = conn(&redis).await;
        let (token, lease) = (
            format!("{{{}}}:token", redis.prefix),
            format!("{{{}}}:lease", redis.prefix),
        );
        let too_big = vec![b'j'; MAX_VALUE_BYTES + 1];
        let not_numbers: [&[u8]; 6] = [b"abc", b"-1", b"", b"1e3", b" 5", b"99999999999999999999"];
        // (script, whether it takes the lease key first, arguments)
        let mut calls: Vec<(&Script, bool, Vec<&[u8]>)> = Vec::new();
        for number in not_numbers {
            calls.push((&SAVE, false, vec![b"jv", number]));
            calls.push((&SAVE_LEASED, true, vec![b"owner", number, b"jv", b"0"]));
            calls.push((&SAVE_LEASED, true, vec![b"owner", b"0", b"jv", number]));
            calls.push((&ACQUIRE, true, vec![b"owner", number]));
            calls.push((&SAVE_IF_VERSION, false, vec![number, b"jv", b"0"]));
            calls.push((&SAVE_IF_VERSION, false, vec![b"0", b"jv", number]));
        }
        // Numbers, but out of range: a year and a day is the longest keep,
        // 10 minutes the longest lease, 2^53 - 1 the largest version.
        let keep = (MAX_KEEP.as_millis() + 1).to_string();
        let ttl = (LEASE_TTL_LIMITS.end().as_millis() + 1).to_string();
        calls.push((&SAVE, false, vec![b"jv", keep.as_bytes()]));
        calls.push((
            &SAVE_LEASED,
            true,
            vec![b"owner", b"0", b"jv", keep.as_bytes()],
        ));
        calls.push((
            &SAVE_LEASED,
            true,
            vec![b"owner", b"9007199254740992", b"jv", b"0"],
        ));
        calls.push((&ACQUIRE, true, vec![b"owner", ttl.as_bytes()]));
        calls.push((&SAVE_IF_VERSION, false, vec![b"0", b"jv", keep.as_bytes()]));
        for value in [&b""[..], &too_big] {
            calls.push((&SAVE_IF_VERSION, false, vec![b"0", value, b"1000"]));
            calls.push((&SAVE, false, vec![value, b"1000"]));
            calls.push((&SAVE_LEASED, true, vec![b"owner", b"0", value, b"1000"]));
        }
        calls.push((&ACQUIRE, true, vec![b"", b"1000"]));
        calls.push((&ACQUIRE, true, vec![b"owner", b"0"]));
        for (script, leased, args) in &calls {
            // Held, so that a leased save would get as far as writing.
            let _: () = conn.set(&lease, "owner").await.unwrap();
            let keys: &[&str] = if *leased {
                &[&lease, &token]
            } else {
                &[&token]
            };
            let outcome = run(script, keys, args, &mut conn).await;
            let shown: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(24)]).into_owned())
                .collect();
            assert!(outcome.is_err(), "{shown:?}: {outcome:?}");
            assert!(
                !conn.exists::<_, bool>(&token).await.unwrap(),
                "{shown:?} wrote"
            );
            let owner: Option<String> = conn.get(&lease).await.unwrap();
            assert_eq!(owner.as_deref(), Some("owner"), "{shown:?}");
            assert_eq!(conn.pttl::<_, i64>(&lease).await.unwrap(), -1, "{shown:?}");
        }
    }
}
