//! The state every simulated provider keeps: issued codes and tokens.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::config::{Behaviour, SandboxCredentials};
use crate::endpoint::Endpoint;
use crate::fault::{Faults, XorShift};
use crate::util::base64url;

/// An iyzico Terminal API auth code.
#[derive(Debug)]
pub(crate) struct IyzicoCode {
    pub(crate) client_id: String,
    pub(crate) expires: Instant,
}

/// A VakıfBank authorization code and what it was issued for.
#[derive(Debug)]
pub(crate) struct VakifbankCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    /// `(code_challenge, code_challenge_method)` when PKCE was used.
    pub(crate) pkce: Option<(String, String)>,
    pub(crate) expires: Instant,
}

/// A VakıfBank refresh token.
#[derive(Debug)]
pub(crate) struct VakifbankRefresh {
    pub(crate) client_id: String,
    pub(crate) scope: String,
}

/// A Pay-with-iyzico access token the sandbox issued: whose session it
/// opens, and until when.
#[derive(Debug)]
pub(crate) struct PwiAccess {
    pub(crate) session_token: String,
    pub(crate) member_identifier: String,
    pub(crate) expires: Instant,
}

/// What the providers remember between requests. `Debug` shows counts,
/// never codes or tokens.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) iyzico_codes: HashMap<String, IyzicoCode>,
    /// Live refresh token -> client id.
    pub(crate) iyzico_refresh: HashMap<String, String>,
    /// Session token -> member identifier.
    pub(crate) pwi_sessions: HashMap<String, String>,
    /// Issued access token -> what it opens.
    pub(crate) pwi_access: HashMap<String, PwiAccess>,
    pub(crate) vakifbank_codes: HashMap<String, VakifbankCode>,
    pub(crate) vakifbank_refresh: HashMap<String, VakifbankRefresh>,
    pub(crate) mypos_active: HashSet<String>,
    pub(crate) mypos_revoked: HashSet<String>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("iyzico_codes", &self.iyzico_codes.len())
            .field("iyzico_refresh", &self.iyzico_refresh.len())
            .field("pwi_sessions", &self.pwi_sessions.len())
            .field("pwi_access", &self.pwi_access.len())
            .field("vakifbank_codes", &self.vakifbank_codes.len())
            .field("vakifbank_refresh", &self.vakifbank_refresh.len())
            .field("mypos_active", &self.mypos_active.len())
            .field("mypos_revoked", &self.mypos_revoked.len())
            .finish()
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) credentials: SandboxCredentials,
    behaviour: Mutex<Behaviour>,
    store: Mutex<Store>,
    counters: [AtomicU64; Endpoint::COUNT],
    pub(crate) faults: Faults,
    mint: Mutex<Mint>,
}

#[derive(Debug)]
struct Mint {
    serial: u64,
    rng: XorShift,
}

impl Shared {
    pub(crate) fn new(credentials: SandboxCredentials, behaviour: Behaviour, seed: u64) -> Self {
        let store = Store {
            pwi_sessions: credentials
                .pwi_sessions
                .iter()
                .map(|s| (s.session_token.clone(), s.member_identifier.clone()))
                .collect(),
            ..Store::default()
        };
        Self {
            credentials,
            behaviour: Mutex::new(behaviour),
            store: Mutex::new(store),
            counters: Default::default(),
            faults: Faults::new(seed),
            // A different stream from the faults' one, so issuing tokens
            // does not shift which requests a `Rate` fault hits.
            mint: Mutex::new(Mint {
                serial: 0,
                rng: XorShift::new(seed ^ 0x70CE_0000_0000_0000),
            }),
        }
    }

    pub(crate) fn behaviour(&self) -> Behaviour {
        *self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count(&self, endpoint: Endpoint) {
        self.counters[endpoint.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn requests(&self, endpoint: Endpoint) -> u64 {
        self.counters[endpoint.index()].load(Ordering::Relaxed)
    }

    pub(crate) fn reset_counters(&self) {
        for counter in &self.counters {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// `len` pseudo-random bytes.
    fn random_bytes(&self, len: usize) -> Vec<u8> {
        let mut mint = self.mint.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&mint.rng.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A fresh opaque token: `prefix`, a serial number (so tokens never
    /// repeat within one sandbox) and 128 pseudo-random bits.
    pub(crate) fn token(&self, prefix: &str) -> String {
        let mut mint = self.mint.lock().unwrap_or_else(PoisonError::into_inner);
        mint.serial += 1;
        let serial = mint.serial;
        let (a, b) = (mint.rng.next_u64(), mint.rng.next_u64());
        format!("{prefix}{serial:06x}{a:016x}{b:016x}")
    }

    /// A JWT-shaped string: `base64url(header).base64url(claims).signature`,
    /// where the signature is random bytes of the size `alg` gives (not a
    /// real signature: clients must not verify these tokens, only read `exp`).
    pub(crate) fn jwt(&self, alg: &str, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({ "alg": alg, "typ": "JWT" });
        let signature_len = if alg.starts_with("RS") { 256 } else { 32 };
        format!(
            "{}.{}.{}",
            base64url(header.to_string()),
            base64url(claims.to_string()),
            base64url(self.random_bytes(signature_len))
        )
    }
}
