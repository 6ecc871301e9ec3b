//! Redis key names. The keys of one token share a hash tag (`{…}`), so
//! on Redis Cluster they live in one slot and a script may touch them all.

/// The Redis keys of one store key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// A hash: `v` the version, `t` the stored token.
    pub(crate) token: String,
    /// A string: the lease holder's owner id, with a TTL.
    pub(crate) lease: String,
    /// A string: the last failed fetch shared with the fleet (JSON), with
    /// the holder's failure backoff as its TTL.
    pub(crate) failure: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, key: &str) -> Self {
        let tag = format!("{{{}:{}}}", escape(prefix).replace(':', "%3A"), escape(key));
        Self {
            token: format!("{tag}:token"),
            lease: format!("{tag}:lease"),
            failure: format!("{tag}:failure"),
        }
    }
}

/// The Redis key of the forget mark of a store with `prefix`: a string
/// written once (`SET NX`) that a Redis restarted without persistence no
/// longer holds. Its hash tag is the escaped prefix alone (its `:`
/// encoded), so it never equals a token's tag (`prefix:key`).
pub(crate) fn forget_mark(prefix: &str) -> String {
    format!("{{{}}}:forget-mark", escape(prefix).replace(':', "%3A"))
}

/// Braces would end the hash tag early, so they (and the escape character)
/// are percent-encoded; the prefix has its `:` encoded too, so no prefix
/// and key pair reads as another.
fn escape(part: &str) -> String {
    part.replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// The hash tag Redis Cluster hashes for `key`: the text between the first
/// `{` and the next `}`, when not empty; else the whole key.
#[cfg(test)]
fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(len) = key[open + 1..].find('}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_keys_of_a_token_hash_to_the_same_cluster_slot() {
        for key in ["mypos:client-1", "weird{key}", "}{", "", "%7B"] {
            let keys = Keys::new("payauth", key);
            assert_eq!(hash_tag(&keys.token), hash_tag(&keys.lease), "{key}");
            assert_eq!(hash_tag(&keys.token), hash_tag(&keys.failure), "{key}");
            assert!(hash_tag(&keys.token).ends_with(&escape(key)), "{key}");
        }
    }

    #[test]
    fn different_prefixes_and_keys_never_share_redis_keys() {
        let pairs = [
            (("p", "a}"), ("p", "a%7D")),
            (("p", "a{"), ("p", "a%7B")),
            (("p:q", "k"), ("p", "q:k")),
        ];
        for ((prefix, key), (other_prefix, other_key)) in pairs {
            assert_ne!(Keys::new(prefix, key), Keys::new(other_prefix, other_key));
        }
    }
}
