//! Keeping secrets out of what payauth shows.
//!
//! - [`Redactor`]: the secrets of one request, masked in text a provider
//!   sent back, in every form a server can echo them. Every answer to a
//!   request sent through [`execute_capped`](crate::http::execute_capped)
//!   (the exec hook of every generated client) is redacted with the
//!   secrets of that request before anything reads it, so no flow has to
//!   remember to.
//! - [`url()`]: the one way a URL is shown (errors, environment labels,
//!   `Debug`): never its userinfo or query.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use reqwest::header::HeaderValue;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::secret::Secret;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";
/// Values shorter than this (in characters) are not registered: masking
/// them would mask ordinary words, and no credential is this short.
const MIN_SECRET: usize = 4;
/// A prefix of a secret at least this long, at the end of a text or
/// before an ellipsis (where a server cut its message), is masked.
const MIN_PARTIAL: usize = 6;
/// The most characters of a URL [`url`] shows.
const MAX_URL: usize = 200;

/// Names of request fields and headers whose values are not secret
/// (compared lowercase, without `_` and `-`): every other value a request
/// carries is registered as a secret, so a field a future flow adds is
/// masked unless it is named here.
const PUBLIC_NAMES: &[&str] = &[
    "granttype",
    "clientid",
    "scope",
    "redirecturi",
    "responsetype",
    "tokentypehint",
    "resource",
    "locale",
    "conversationid",
    "username",
    "memberidentifier",
    "codechallenge",
    "codechallengemethod",
    "accept",
    "acceptencoding",
    "contenttype",
    "contentlength",
    "useragent",
    "host",
    "connection",
    "xrequestid",
    "date",
];

/// The secrets of a request, and how to mask them in text.
///
/// Each secret is masked as it is and in each form a server may echo it:
/// percent-encoded (`%20` or form-encoded `+` for a space, upper- or
/// lowercase hex, once or twice: a form body echoed percent-encoded), JSON-escaped (with `\/` and `\uXXXX` escapes), base64
/// (standard or URL-safe, padded or not, and inside a longer base64 text
/// such as `Basic base64(id:secret)` at any alignment), and a prefix of it
/// cut off at the end of a message or before an ellipsis.
///
/// ```
/// use payauth_core::redact::Redactor;
///
/// let mut redactor = Redactor::new();
/// redactor.add("s3cr3t value");
/// assert_eq!(redactor.redact("got client_secret=s3cr3t+value"), "got client_secret=[REDACTED]");
/// assert_eq!(redactor.redact("Basic aWQ6czNjcjN0IHZhbHVl"), "Basic aWQ6[REDACTED]");
/// assert_eq!(redactor.redact("you sent s3cr3t va…"), "you sent [REDACTED]…");
/// assert!(!format!("{redactor:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    /// The secrets as registered.
    secrets: Vec<String>,
    /// Every form of every secret, longest first: built when first needed
    /// (an error answer, a 2xx body that may hold one), so a request
    /// answered with a plain token costs no more than a few searches.
    patterns: std::sync::OnceLock<Vec<String>>,
    /// The starts of the forms a 2xx answer can hold unescaped ([`probes`]).
    probes: std::sync::OnceLock<Vec<String>>,
    /// The [`PlainProbes`] of the secrets above: built once, each text then
    /// scanned once.
    plain: std::sync::OnceLock<PlainProbes>,
    /// The redactor of the request's `Authorization` value, shared by the
    /// requests of one [`HttpClient`](crate::http::HttpClient) that send
    /// the same value (a client's fixed credentials), so that its forms
    /// are built once: see [`CredentialsMemo`].
    fixed: Option<Arc<Redactor>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.all_secrets().count())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor that knows no secret.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it knows no secret.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.fixed.as_ref().is_none_or(|fixed| fixed.is_empty())
    }

    /// Its own secrets and those of [`fixed`](Self::fixed).
    fn all_secrets(&self) -> impl Iterator<Item = &String> {
        let fixed = self.fixed.as_deref().map(|fixed| &fixed.secrets);
        self.secrets.iter().chain(fixed.into_iter().flatten())
    }

    /// Every form of every secret, longest first.
    fn patterns(&self) -> &[String] {
        self.patterns.get_or_init(|| {
            let mut patterns: Vec<String> = Vec::new();
            for secret in self.all_secrets() {
                for form in forms(secret) {
                    if form.chars().count() >= MIN_SECRET && !patterns.contains(&form) {
                        patterns.push(form);
                    }
                }
            }
            patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
            patterns
        })
    }

    /// Registers `secret` in every form (see the type's docs); a value
    /// shorter than 4 characters is ignored.
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.chars().count() < MIN_SECRET || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_owned());
        self.patterns = std::sync::OnceLock::new();
        self.probes = std::sync::OnceLock::new();
        self.plain = std::sync::OnceLock::new();
    }

    /// Registers a [`Secret`]'s value.
    pub fn add_secret(&mut self, secret: &Secret) {
        self.add(secret.expose_secret());
    }

    /// Registers the value of a header or field named `name`, unless the
    /// name is one of the public ones (`grant_type`, `client_id`, `scope`,
    /// `content-type`, …). An `Authorization` or `Proxy-Authorization`
    /// value (`Basic …`, `IYZWSv2 …`) is registered without its scheme,
    /// and decoded from base64 with each of its parts (`id:secret`, whose
    /// id is public; `apiKey:…&…`).
    pub fn add_named(&mut self, name: &str, value: &str) {
        if is_public(name) {
            return;
        }
        let credentials_header = matches!(
            normalized(name).as_ref().map(Normalized::as_bytes),
            Some(b"authorization" | b"proxyauthorization")
        );
        let Some((scheme, credentials)) =
            value.trim().split_once(' ').filter(|_| credentials_header)
        else {
            self.add(value);
            return;
        };
        // `Basic …`: the credentials alone (the scheme is no secret, and a
        // text holding the whole value holds them).
        self.add(credentials);
        self.add_decoded(scheme.eq_ignore_ascii_case("basic"), credentials.trim());
    }

    fn add_decoded(&mut self, basic: bool, credentials: &str) {
        let Some(decoded) = [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(credentials).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
        else {
            return;
        };
        if !basic {
            // `id:secret` whole would start with the public client id.
            self.add(&decoded);
        }
        let parts: Vec<&str> = if basic {
            // `id:secret`: the client id is public; the secret may itself
            // be form-encoded (RFC 6749 §2.3.1).
            decoded
                .split_once(':')
                .map(|(_, s)| vec![s])
                .unwrap_or_default()
        } else {
            decoded
                .split(['&', ','])
                .map(|piece| piece.split_once([':', '=']).map_or(piece, |(_, v)| v))
                .collect()
        };
        for part in parts {
            self.add(part);
            let decoded: String = form_urlencoded::parse(format!("x={part}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
            self.add(&decoded);
        }
    }

    /// The secrets of `request`: every header value but the public ones
    /// (with credentials headers decoded, see [`add_named`](Self::add_named)),
    /// the URL's userinfo and query values, and every value of a form or
    /// JSON body whose name is not public.
    #[must_use]
    pub fn from_request(request: &reqwest::Request) -> Self {
        Self::from_request_with(request, None)
    }

    /// [`from_request`](Self::from_request), with the `Authorization`
    /// value's redactor taken from `memo` when it saw that value last.
    pub(crate) fn from_request_with(
        request: &reqwest::Request,
        memo: Option<&CredentialsMemo>,
    ) -> Self {
        let mut redactor = Self::new();
        for (name, value) in request.headers() {
            if let Some(memo) = memo
                && name == reqwest::header::AUTHORIZATION
            {
                redactor.fixed = Some(memo.redactor_of(value));
                continue;
            }
            if let Ok(value) = value.to_str() {
                redactor.add_named(name.as_str(), value);
            }
        }
        let url = request.url();
        redactor.add(url.username());
        if let Some(password) = url.password() {
            redactor.add(password);
        }
        for (name, value) in url.query_pairs() {
            redactor.add_named(&name, &value);
        }
        if let Some(body) = request.body().and_then(reqwest::Body::as_bytes) {
            redactor.add_body(body);
        }
        redactor
    }

    /// Registers the values of a form or JSON body (see
    /// [`from_request`](Self::from_request)).
    pub fn add_body(&mut self, body: &[u8]) {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            self.add_json(None, &value);
        } else {
            for (name, value) in form_urlencoded::parse(body) {
                self.add_named(&name, &value);
            }
        }
    }

    fn add_json(&mut self, name: Option<&str>, value: &Value) {
        match value {
            Value::String(text) => self.add_named(name.unwrap_or(""), text),
            Value::Array(items) => items.iter().for_each(|item| self.add_json(name, item)),
            Value::Object(fields) => fields
                .iter()
                .for_each(|(name, field)| self.add_json(Some(name), field)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// `text` with every secret masked (see the type's docs).
    #[must_use]
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut hidden: Vec<(usize, usize)> = Vec::new();
        for pattern in self.patterns() {
            let mut from = 0;
            while let Some(at) = text[from..].find(pattern.as_str()) {
                let start = from + at;
                hidden.push((start, start + pattern.len()));
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        self.cut_prefixes(text, &mut hidden);
        if hidden.is_empty() {
            return Cow::Borrowed(text);
        }
        hidden.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut shown = 0;
        for (start, end) in hidden {
            if end <= shown {
                continue;
            }
            if start >= shown {
                out.push_str(&text[shown..start]);
                out.push_str(MASK);
            }
            shown = end;
        }
        out.push_str(&text[shown..]);
        Cow::Owned(out)
    }

    /// Marks a prefix of a secret (at least [`MIN_PARTIAL`] characters)
    /// that ends the text or comes right before an ellipsis.
    fn cut_prefixes(&self, text: &str, hidden: &mut Vec<(usize, usize)>) {
        let mut ends = vec![text.trim_end().len()];
        for ellipsis in ["…", "..."] {
            ends.extend(text.match_indices(ellipsis).map(|(at, _)| at));
        }
        for end in ends {
            let before = &text[..end];
            let Some(last) = before.chars().next_back() else {
                continue;
            };
            for pattern in self.patterns() {
                // Only a prefix ending in the text's last character can be
                // the text's end: few candidates, checked from the longest.
                let longest = pattern
                    .match_indices(last)
                    .map(|(at, _)| at + last.len_utf8())
                    .filter(|&len| {
                        len < pattern.len() && pattern[..len].chars().count() >= MIN_PARTIAL
                    })
                    .rev()
                    .find(|&len| before.ends_with(&pattern[..len]));
                if let Some(len) = longest {
                    hidden.push((end - len, end));
                }
            }
        }
    }

    /// Whether `body` may show a secret: it holds the first characters of
    /// one of the forms (so a whole form or a cut one), or an escape that
    /// could hide one. False for nearly every token answer, which is then
    /// not parsed a second time.
    pub(crate) fn may_hold_one(&self, body: &[u8]) -> bool {
        if body.contains(&b'\\') {
            return true;
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return true;
        };
        if !text.contains('%') {
            // No escape and no percent sign (nearly every token answer):
            // only a raw, `+`-for-space or base64 form can be in it,
            // probed without building the forms.
            return self
                .fixed
                .as_ref()
                .is_some_and(|fixed| fixed.plain().found_in(body))
                || (!self.secrets.is_empty() && self.plain().found_in(body));
        }
        self.full_probes()
            .iter()
            .any(|probe| text.contains(probe.as_str()))
    }

    /// The [`PlainProbes`] of its own secrets.
    fn plain(&self) -> &PlainProbes {
        self.plain.get_or_init(|| PlainProbes::of(&self.secrets))
    }

    /// The [`probes`] of every secret.
    fn full_probes(&self) -> &[String] {
        self.probes.get_or_init(|| {
            let mut all: Vec<String> = self.all_secrets().flat_map(|s| probes(s)).collect();
            all.sort_unstable();
            all.dedup();
            all
        })
    }

    /// Masks the secrets in every string (and member name) of `value`,
    /// except strings under a member whose name ends in `token`
    /// (`access_token`, `refreshToken`): a token answer's own tokens, which
    /// are read into [`Secret`]s, never shown, and may rightly equal one
    /// sent (a refresh token that is not rotated). Whether anything
    /// changed.
    pub(crate) fn redact_json(&self, value: &mut Value, keep_tokens: bool) -> bool {
        match value {
            Value::String(text) => match self.redact(text) {
                Cow::Owned(masked) => {
                    *text = masked;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
                self.redact_json(item, keep_tokens) | changed
            }),
            Value::Object(fields) => {
                let mut changed = false;
                let old = std::mem::take(fields);
                for (name, mut field) in old {
                    let token = keep_tokens && names_a_token(&name);
                    if !token {
                        changed |= self.redact_json(&mut field, keep_tokens);
                    }
                    let name = match self.redact(&name) {
                        Cow::Owned(masked) => {
                            changed = true;
                            masked
                        }
                        Cow::Borrowed(_) => name,
                    };
                    fields.insert(name, field);
                }
                changed
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }

    /// `body` with every secret masked: in each string of a JSON body (see
    /// `redact_json`), else in the text; `None` when nothing is masked.
    pub(crate) fn redact_body(&self, body: &[u8], keep_tokens: bool) -> Option<Vec<u8>> {
        if self.is_empty() || !self.may_hold_one(body) {
            return None;
        }
        if let Ok(mut value) = serde_json::from_slice::<Value>(body) {
            return self
                .redact_json(&mut value, keep_tokens)
                .then(|| serde_json::to_vec(&value).ok())
                .flatten();
        }
        if keep_tokens {
            // A 2xx body that is no JSON is never quoted: keep it as sent.
            return None;
        }
        let text = String::from_utf8_lossy(body);
        match self.redact(&text) {
            Cow::Owned(masked) => Some(masked.into_bytes()),
            Cow::Borrowed(_) => None,
        }
    }
}

/// The redactor of the `Authorization` value an
/// [`HttpClient`](crate::http::HttpClient) sent last. A client's fixed
/// credentials (`Basic …`, built once per client) go on every one of its
/// requests: their secrets and probes are then derived once, not per
/// request. A value that changes per request (a signature with a nonce)
/// only replaces the one kept.
#[derive(Default)]
pub(crate) struct CredentialsMemo(Mutex<Option<(HeaderValue, Arc<Redactor>)>>);

impl fmt::Debug for CredentialsMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialsMemo")
    }
}

impl CredentialsMemo {
    /// The redactor of an `Authorization` header holding `value`.
    fn redactor_of(&self, value: &HeaderValue) -> Arc<Redactor> {
        let kept = self.0.lock().ok().and_then(|kept| {
            kept.as_ref()
                .filter(|(seen, _)| seen == value)
                .map(|(_, redactor)| Arc::clone(redactor))
        });
        if let Some(redactor) = kept {
            return redactor;
        }
        let mut redactor = Redactor::new();
        if let Ok(text) = value.to_str() {
            redactor.add_named(reqwest::header::AUTHORIZATION.as_str(), text);
        }
        let redactor = Arc::new(redactor);
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some((value.clone(), Arc::clone(&redactor)));
        }
        redactor
    }
}

/// Every form a server may show `secret` in (see [`Redactor`]).
fn forms(secret: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    // Encoded twice: a form body's value, echoed percent-encoded.
    let twice: String = form_urlencoded::byte_serialize(form.as_bytes()).collect();
    let mut forms = vec![secret.to_owned(), form.clone(), form.replace('+', "%20")];
    forms.push(lower_hex(&form));
    forms.push(lower_hex(&form.replace('+', "%20")));
    forms.push(lower_hex(&twice));
    forms.push(twice);
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json[1..json.len() - 1].to_owned();
    forms.push(json.replace('/', "\\/"));
    forms.push(ascii_json(&json));
    forms.push(json);
    let mut encoded = Vec::new();
    for text in [secret, form.as_str()] {
        for offset in 0..3 {
            encoded.extend(base64_cores(text.as_bytes(), offset));
        }
        for engine in [&STANDARD, &URL_SAFE] {
            encoded.push(engine.encode(text));
        }
    }
    forms.extend(encoded);
    forms
}

/// The starts of the forms of `secret` a 2xx body can hold unescaped:
/// raw, percent-encoded (once or twice, either hex case), base64 at each
/// alignment. A body holding none of them (and no `\\` escape) cannot
/// show the secret, whole or cut.
fn probes(secret: &str) -> Vec<String> {
    let head = head(secret);
    let form: String = form_urlencoded::byte_serialize(head.as_bytes()).collect();
    let twice: String = form_urlencoded::byte_serialize(form.as_bytes()).collect();
    let mut probes = vec![
        lower_hex(&form),
        lower_hex(&twice),
        form.replace('+', "%20"),
        form,
        twice,
    ];
    let (start, form_start) = starts(secret);
    let starts: &[&[u8]] = match &form_start {
        None => &[start],
        Some(form_start) => &[start, form_start.as_bytes()],
    };
    for bytes in starts {
        for offset in 0..3 {
            probes.extend(
                base64_cores(bytes, offset)
                    .into_iter()
                    .map(|core| core.chars().take(MIN_PARTIAL).collect()),
            );
        }
    }
    for bytes in starts {
        for engine in [&STANDARD, &URL_SAFE] {
            probes.push(engine.encode(bytes).chars().take(MIN_PARTIAL).collect());
        }
    }
    probes.push(head.to_owned());
    // Most forms of most secrets start alike: search each start once.
    probes.sort_unstable();
    probes.dedup();
    probes
}

/// The first [`MIN_PARTIAL`] characters of `secret`: the least of it a
/// cut text shows that is masked.
fn head(secret: &str) -> &str {
    let len = secret
        .char_indices()
        .nth(MIN_PARTIAL)
        .map_or(secret.len(), |(at, _)| at);
    &secret[..len]
}

/// The first 9 bytes of `secret` (whose base64 forms give every probe's
/// start at each alignment), and their form-encoded text when that
/// differs (anything but ASCII alphanumerics and `*-._` is encoded).
fn starts(secret: &str) -> (&[u8], Option<String>) {
    let start = &secret.as_bytes()[..secret.len().min(9)];
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"*-._".contains(b);
    let form_start =
        (!start.iter().all(plain)).then(|| form_urlencoded::byte_serialize(start).collect());
    (start, form_start)
}

/// The [`probes`] without a `%`, all a text with no `%` and no `\\` can
/// hold: a secret's head raw or with `+` for a space, and the starts of its
/// base64 forms (of the secret and of its form-encoded self, at each
/// alignment, in each alphabet). Kept as their first [`MIN_PARTIAL`]
/// bytes, so that a text is scanned once however many there are: a text
/// that holds a probe holds its first bytes.
#[derive(Clone)]
struct PlainProbes {
    /// The first `MIN_PARTIAL` bytes of each probe at least that long,
    /// sorted.
    windows: Vec<[u8; MIN_PARTIAL]>,
    /// The probes shorter than that (a secret of 4 or 5 characters).
    short: Vec<Vec<u8>>,
    /// A bit per [`pair_bit`] of the first two bytes of each window: most
    /// of a text's positions are passed over on one bit.
    pairs: [u64; PAIR_WORDS],
}

const PAIR_WORDS: usize = 16;

/// The bit of [`PlainProbes::pairs`] for a window starting with `a`, `b`.
fn pair_bit(a: u8, b: u8) -> (usize, u64) {
    let bit = (usize::from(a) * 31 + usize::from(b)) % (PAIR_WORDS * 64);
    (bit / 64, 1 << (bit % 64))
}

impl PlainProbes {
    fn of(secrets: &[String]) -> Self {
        let mut probes = Self {
            windows: Vec::new(),
            short: Vec::new(),
            pairs: [0; PAIR_WORDS],
        };
        for secret in secrets {
            probes.add(secret);
        }
        probes.windows.sort_unstable();
        probes.windows.dedup();
        for window in &probes.windows {
            let (word, bit) = pair_bit(window[0], window[1]);
            probes.pairs[word] |= bit;
        }
        probes
    }

    fn push(&mut self, probe: &[u8]) {
        match probe.first_chunk::<MIN_PARTIAL>() {
            Some(window) => self.windows.push(*window),
            None if !probe.is_empty() => self.short.push(probe.to_vec()),
            None => {}
        }
    }

    fn add(&mut self, secret: &str) {
        let head = head(secret);
        self.push(head.as_bytes());
        if head.contains(' ') {
            self.push(head.replace(' ', "+").as_bytes());
        }
        let (start, form_start) = starts(secret);
        let starts: &[&[u8]] = match &form_start {
            None => &[start],
            Some(form_start) => &[start, form_start.as_bytes()],
        };
        let mut padded = [0u8; 32];
        let mut encoded = [0u8; 64];
        for bytes in starts {
            for offset in 0..3 {
                // As `base64_cores`: the whole groups, less the first one
                // when it mixes in what came before; at offset 0, the
                // whole encoding, whose start that core's is.
                padded[..offset].fill(0);
                padded[offset..offset + bytes.len()].copy_from_slice(bytes);
                let (input, skip) = if offset == 0 {
                    (bytes.len(), 0)
                } else {
                    ((offset + bytes.len()) / 3 * 3, 4)
                };
                let len = STANDARD_NO_PAD
                    .encode_slice(&padded[..input], &mut encoded)
                    .unwrap_or(0);
                if offset == 0 || len > skip + 4 {
                    let probe = &mut encoded[skip..skip + (len - skip).min(MIN_PARTIAL)];
                    self.push(probe);
                    // The URL-safe alphabet differs in two characters.
                    if probe.iter().any(|b| matches!(b, b'+' | b'/')) {
                        for b in probe.iter_mut() {
                            *b = match *b {
                                b'+' => b'-',
                                b'/' => b'_',
                                other => other,
                            };
                        }
                        self.push(probe);
                    }
                }
            }
        }
    }

    /// Whether `text` holds one of the probes.
    fn found_in(&self, text: &[u8]) -> bool {
        text.windows(MIN_PARTIAL).any(|window| {
            let (word, bit) = pair_bit(window[0], window[1]);
            self.pairs[word] & bit != 0
                && self.windows.binary_search_by(|w| w[..].cmp(window)).is_ok()
        }) || self
            .short
            .iter()
            .any(|probe| text.windows(probe.len()).any(|w| w == probe.as_slice()))
    }
}

/// `name` lowercase without `_` and `-`, on the stack: `None` when it is
/// longer than any name payauth compares it with or not ASCII (neither can
/// be one of them).
fn normalized(name: &str) -> Option<Normalized> {
    let mut out = Normalized([0; 32], 0);
    for byte in name.bytes().filter(|b| !matches!(b, b'_' | b'-')) {
        if !byte.is_ascii() || out.1 == out.0.len() {
            return None;
        }
        out.0[out.1] = byte.to_ascii_lowercase();
        out.1 += 1;
    }
    Some(out)
}

/// What [`normalized`] gives.
struct Normalized([u8; 32], usize);

impl Normalized {
    fn as_bytes(&self) -> &[u8] {
        &self.0[..self.1]
    }
}

/// Whether `name`, lowercase without `_` and `-`, ends in `token`
/// (`access_token`, `refreshToken`).
fn names_a_token(name: &str) -> bool {
    let mut last = name
        .bytes()
        .rev()
        .filter(|b| !matches!(b, b'_' | b'-'))
        .map(|b| b.to_ascii_lowercase());
    b"nekot".iter().all(|&c| last.next() == Some(c))
}

fn is_public(name: &str) -> bool {
    normalized(name).is_some_and(|name| {
        PUBLIC_NAMES
            .iter()
            .any(|public| public.as_bytes() == name.as_bytes())
    })
}

/// `encoded` with the hex digits of its `%XX` escapes lowercase.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut escape = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON-escaped text with every non-ASCII character as `\uXXXX`.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// The base64 characters that `bytes` always encode to when they start at
/// `offset` (mod 3) of a longer text, in each alphabet: the whole groups
/// made of `bytes` alone.
fn base64_cores(bytes: &[u8], offset: usize) -> Vec<String> {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    let whole = padded.len() / 3 * 3;
    let skip = if offset == 0 { 0 } else { 4 };
    let mut cores = Vec::new();
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        let encoded = engine.encode(&padded[..whole]);
        if encoded.len() > skip + 4 {
            cores.push(encoded[skip..].to_owned());
        }
    }
    cores
}

/// `text` (a URL, or what should have been one) as payauth shows it:
/// scheme, host, port and path; never the userinfo (`user:password@`), the
/// query or the fragment, even when the text is no valid URL; control
/// characters removed and cut to 200 characters.
///
/// ```
/// use payauth_core::redact::url;
///
/// assert_eq!(url("https://id:SECRET@api.example:8443/v1?client_secret=x#f"), "https://api.example:8443/v1");
/// assert_eq!(url("https://id:SECRET@api.example:99999/"), "https://api.example:99999/");
/// assert_eq!(url("htps://host/t?client_secret=SECRET"), "htps://host/t");
/// assert_eq!(url("https://user:p?w#d@host/x"), "https://host/x");
/// ```
#[must_use]
pub fn url(text: &str) -> String {
    if let Ok(mut parsed) = reqwest::Url::parse(text)
        && !parsed.cannot_be_a_base()
    {
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_query(None);
        parsed.set_fragment(None);
        let shown = parsed.as_str();
        // The parser adds a `/` path to a bare host; show what was given.
        let shown = if text.ends_with('/') || parsed.path() != "/" {
            shown
        } else {
            shown.trim_end_matches('/')
        };
        return crate::text::printable(shown, MAX_URL);
    }
    // Not a URL: drop everything between the scheme and the last `@`
    // (a password may hold `/`, `?` or `#`), then the query and fragment.
    let (scheme, rest) = text
        .split_once("://")
        .map_or(("", text), |(scheme, rest)| (scheme, rest));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let shown = if scheme.is_empty() && !text.contains("://") {
        rest.to_owned()
    } else {
        format!("{scheme}://{rest}")
    };
    crate::text::printable(&shown, MAX_URL)
}

/// Whether `text` carries userinfo (`user[:password]@`) before its host.
pub(crate) fn has_userinfo(text: &str) -> bool {
    match reqwest::Url::parse(text) {
        Ok(parsed) => !parsed.username().is_empty() || parsed.password().is_some(),
        Err(_) => text
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .contains('@'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Cl13nt/S3cret+with space:ü";

    fn redactor() -> Redactor {
        let mut redactor = Redactor::new();
        redactor.add(SECRET);
        redactor
    }

    /// Every form a server can echo `secret` in, embedded in a sentence.
    fn echoes(secret: &str) -> Vec<String> {
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let json = serde_json::to_string(secret).unwrap();
        let basic = STANDARD.encode(format!("client-id:{secret}"));
        let basic_form = STANDARD.encode(format!("client-id:{form}"));
        vec![
            secret.to_owned(),
            form.clone(),
            form.replace('+', "%20"),
            lower_hex(&form),
            json[1..json.len() - 1].to_owned(),
            ascii_json(&json[1..json.len() - 1]),
            json[1..json.len() - 1].replace('/', "\\/"),
            STANDARD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            format!("Basic {basic}"),
            format!("Basic {basic_form}"),
            URL_SAFE.encode(format!("x{secret}")),
            STANDARD.encode(format!("xy{secret}tail")),
        ]
    }

    #[test]
    fn a_secret_is_masked_in_every_form_a_server_echoes_it() {
        let redactor = redactor();
        for echo in echoes(SECRET) {
            let text = format!("invalid request: you sent {echo} here");
            let shown = redactor.redact(&text);
            assert!(!shown.contains(&echo), "{echo} in {shown}");
            assert!(shown.contains(MASK), "{shown}");
            assert!(shown.starts_with("invalid request: you sent "), "{shown}");
        }
    }

    #[test]
    fn a_prefix_of_a_secret_cut_at_the_end_or_before_an_ellipsis_is_masked() {
        let redactor = redactor();
        let cut = &SECRET[..10];
        for text in [
            format!("client_secret={cut}"),
            format!("client_secret={cut}…"),
            format!("client_secret={cut}... (truncated)"),
        ] {
            let shown = redactor.redact(&text);
            assert!(!shown.contains(cut), "{shown}");
            assert!(shown.starts_with("client_secret=[REDACTED]"), "{shown}");
        }
        // A short prefix is an ordinary word.
        assert_eq!(redactor.redact("Cl13n"), "Cl13n");
    }

    #[test]
    fn overlapping_secrets_are_masked_as_one_and_short_values_are_ignored() {
        let mut redactor = Redactor::new();
        redactor.add("abcdefgh");
        redactor.add("efghijkl");
        redactor.add("abc");
        assert_eq!(
            redactor.redact("x abcdefghijkl y abc"),
            "x [REDACTED] y abc"
        );
    }

    #[test]
    fn a_requests_secrets_are_its_non_public_values_and_decoded_credentials() {
        let client = reqwest::Client::new();
        let basic = crate::oauth2::basic_authorization("my-client", &Secret::new("b4sic secret"));
        let request = client
            .post("https://user:proxyp4ss@x.example/token?api_key=querys3cret&locale=tr")
            .header("authorization", basic)
            .header("x-api-key", "h3ader-key")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&client_id=my-client&refresh_token=r3fresh%2Btoken&code_verifier=v3rifier")
            .build()
            .unwrap();
        let redactor = Redactor::from_request(&request);
        let text =
            "b4sic secret b4sic%20secret querys3cret h3ader-key r3fresh+token v3rifier proxyp4ss";
        assert_eq!(redactor.redact(text), [MASK; 7].join(" "), "{redactor:?}");
        let public = "grant_type refresh_token my-client tr application/x-www-form-urlencoded";
        assert_eq!(redactor.redact(public), public);

        let json = client
            .post("https://x.example/pwi")
            .body(r#"{"sessionToken":"s3ssion","memberIdentifier":"member-1","nested":[{"password":"p4ssword"}]}"#)
            .build()
            .unwrap();
        let redactor = Redactor::from_request(&json);
        assert_eq!(
            redactor.redact("s3ssion member-1 p4ssword"),
            "[REDACTED] member-1 [REDACTED]"
        );
    }

    #[test]
    fn a_basic_header_masks_the_secret_never_the_public_client_id() {
        let basic =
            crate::oauth2::BasicEncoding::Plain.authorization("client", &Secret::new("secret"));
        let request = reqwest::Client::new()
            .post("https://x.example/token")
            .header("authorization", basic)
            .build()
            .unwrap();
        let redactor = Redactor::from_request(&request);
        assert_eq!(redactor.redact("invalid_client"), "invalid_client");
        assert_eq!(redactor.redact("client secret"), "client [REDACTED]");
        assert_eq!(
            redactor.redact("Basic Y2xpZW50OnNlY3JldA=="),
            "Basic [REDACTED]"
        );
    }

    #[test]
    fn the_probes_find_every_form_of_a_short_or_long_secret_in_a_body() {
        for secret in ["abcd", "ab de", SECRET] {
            let mut redactor = Redactor::new();
            redactor.add(secret);
            for form in forms(secret) {
                let body = format!("{{\"error_description\":\"x {form} y\"}}");
                assert!(redactor.may_hold_one(body.as_bytes()), "{secret}: {form}");
            }
            assert!(!redactor.may_hold_one(b"{\"access_token\":\"t\",\"scope\":\"webhooks\"}"));
        }
    }

    proptest::proptest! {
        /// The quick probe of a body with no `%` and no `\\` finds
        /// whatever the full probe list finds in it.
        #[test]
        fn the_quick_probe_finds_whatever_the_full_probes_find(
            secret in "[ -~ü]{4,24}",
            cut in 0usize..40,
            offset in 0usize..3,
            base64 in proptest::bool::ANY,
        ) {
            let mut redactor = Redactor::new();
            redactor.add(&secret);
            let secret = secret.trim().to_owned();
            for form in forms(&secret) {
                let shown = if base64 {
                    STANDARD.encode(format!("{}{form}", "x".repeat(offset)))
                } else {
                    form
                };
                let at = shown.char_indices().nth(cut).map_or(shown.len(), |(at, _)| at);
                let body = format!("{{\"error\":\"{} y\"}}", &shown[at..]);
                if body.contains(['%', '\\']) {
                    continue;
                }
                let full = redactor
                    .full_probes()
                    .iter()
                    .any(|probe| body.contains(probe.as_str()));
                proptest::prop_assert!(!full || redactor.may_hold_one(body.as_bytes()), "{body}");
            }
        }
    }

    #[test]
    fn a_clients_credentials_are_derived_once_and_a_changed_value_is_never_served_stale() {
        let memo = CredentialsMemo::default();
        let request = |secret: &str| {
            reqwest::Client::new()
                .post("https://x.example/token")
                .header(
                    "authorization",
                    crate::oauth2::basic_authorization("client", &Secret::new(secret)),
                )
                .body("grant_type=refresh_token&refresh_token=r3fresh-token")
                .build()
                .unwrap()
        };
        let first = Redactor::from_request_with(&request("first-s3cret"), Some(&memo));
        let again = Redactor::from_request_with(&request("first-s3cret"), Some(&memo));
        let fixed = |r: &Redactor| Arc::clone(r.fixed.as_ref().unwrap());
        assert!(Arc::ptr_eq(&fixed(&first), &fixed(&again)), "derived once");
        let other = Redactor::from_request_with(&request("other-s3cret"), Some(&memo));
        assert!(!Arc::ptr_eq(&fixed(&first), &fixed(&other)));
        for (redactor, secret) in [(&first, "first-s3cret"), (&other, "other-s3cret")] {
            let text = format!("bad {secret} and r3fresh-token");
            assert_eq!(redactor.redact(&text), "bad [REDACTED] and [REDACTED]");
            assert!(redactor.may_hold_one(format!("{{\"e\":\"{secret}\"}}").as_bytes()));
            assert!(redactor.may_hold_one(b"{\"e\":\"r3fresh-token\"}"));
            assert!(!redactor.may_hold_one(b"{\"access_token\":\"t\"}"));
            assert!(!redactor.is_empty());
        }
        assert_eq!(format!("{memo:?}"), "CredentialsMemo");
        assert_eq!(format!("{first:?}"), "Redactor { secrets: 3, .. }");
    }

    #[test]
    fn the_pair_filter_passes_over_most_positions_of_a_token_answer() {
        let mut redactor = Redactor::new();
        redactor.add("a-client-secret-of-32-characters");
        redactor.add("YS1jbGllbnQtc2VjcmV0LW9mLTMyLWNoYXJhY3RlcnM=");
        let probes = PlainProbes::of(&redactor.secrets);
        let answer = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let passed = answer
            .as_bytes()
            .windows(MIN_PARTIAL)
            .filter(|w| {
                let (word, bit) = pair_bit(w[0], w[1]);
                probes.pairs[word] & bit != 0
            })
            .count();
        assert!(
            passed * 10 < answer.len(),
            "{passed} of {} positions",
            answer.len()
        );
        assert!(!probes.found_in(answer.as_bytes()));
    }

    #[test]
    fn names_are_compared_lowercase_without_underscores_or_dashes() {
        for token in [
            "access_token",
            "refreshToken",
            "REFRESH-TOKEN",
            "token",
            "t_o-k_e_n",
        ] {
            assert!(names_a_token(token), "{token}");
        }
        for other in ["tokens", "oken", "", "token_type", "tokén"] {
            assert!(!names_a_token(other), "{other}");
        }
        for public in [
            "Client_ID",
            "client-id",
            "GRANT_TYPE",
            "X-Request-Id",
            "codeChallengeMethod",
        ] {
            assert!(is_public(public), "{public}");
        }
        let long = format!("client_id{}", "_".repeat(40));
        for secret in [
            "client_secret",
            "clientıd",
            "x".repeat(40).as_str(),
            "",
            "client_i",
        ] {
            assert!(!is_public(secret), "{secret}");
        }
        assert!(
            is_public(&long),
            "underscores are dropped before the length counts"
        );
    }

    #[test]
    fn a_json_body_is_masked_in_its_strings_and_a_token_answer_keeps_its_tokens() {
        let redactor = redactor();
        let body = serde_json::json!({
            "error_description": format!("bad secret {SECRET}"),
            "refresh_token": SECRET,
            "list": [SECRET],
            (SECRET): 1,
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let masked: Value =
            serde_json::from_slice(&redactor.redact_body(&bytes, true).unwrap()).unwrap();
        assert_eq!(masked["error_description"], "bad secret [REDACTED]");
        assert_eq!(
            masked["refresh_token"], SECRET,
            "a token answer's own token"
        );
        assert_eq!(masked["list"][0], MASK);
        assert_eq!(masked[MASK], 1);
        let masked: Value =
            serde_json::from_slice(&redactor.redact_body(&bytes, false).unwrap()).unwrap();
        assert_eq!(masked["refresh_token"], MASK);
        assert_eq!(redactor.redact_body(b"{\"a\":\"b\"}", true), None);
    }

    #[test]
    fn a_url_is_shown_without_userinfo_query_or_fragment_whatever_its_shape() {
        for (text, shown) in [
            ("https://api.example", "https://api.example"),
            ("https://api.example/", "https://api.example/"),
            ("https://u:p@api.example/v1/?a=b", "https://api.example/v1/"),
            (
                "https://id:SECRET@api.example:99999/",
                "https://api.example:99999/",
            ),
            (
                "htps://x.example/t?client_secret=SECRET",
                "htps://x.example/t",
            ),
            ("https://user:pa/ss@host", "https://host"),
            ("https://user:pa?ss@host/p", "https://host/p"),
            ("user:SECRET@host", "host"),
            ("http://[::1:8080/x?y=SECRET", "http://[::1:8080/x"),
            (
                "https://h.example/\n\u{1b}[2Jx",
                "https://h.example/%1B[2Jx",
            ),
        ] {
            assert_eq!(url(text), shown, "{text}");
        }
        assert!(
            url(&format!("https://h.example/{}", "x".repeat(500)))
                .chars()
                .count()
                <= MAX_URL
        );
        assert!(has_userinfo("https://u@h"));
        assert!(has_userinfo("https://:p@h"));
        assert!(has_userinfo("https://u:p@h:99999"));
        assert!(!has_userinfo("https://h/?mail=a@b"));
    }
}

#[cfg(test)]
mod cost {
    use super::*;

    #[test]
    #[ignore = "a measurement: cargo test -p payauth-core --release redact::cost -- --ignored --nocapture"]
    fn what_redaction_costs_a_token_exchange() {
        let basic = crate::oauth2::basic_authorization(
            "client-id",
            &Secret::new("a-client-secret-of-32-characters"),
        );
        let request = reqwest::Client::new()
            .post("https://x.example/token")
            .header("authorization", basic)
            .header("x-request-id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
            .body("grant_type=client_credentials&scope=webhooks")
            .build()
            .unwrap();
        let answer = br#"{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c","token_type":"Bearer","expires_in":86400,"scope":"webhooks"}"#;
        let rounds = 10_000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let redactor = Redactor::from_request(&request);
            assert!(redactor.redact_body(answer, true).is_none());
        }
        eprintln!("{:?} per exchange", started.elapsed() / rounds);
        let redactor = Redactor::from_request(&request);
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            assert!(redactor.redact_body(answer, true).is_none());
        }
        eprintln!(
            "{:?} of it reading the answer ({} forms)",
            started.elapsed() / rounds,
            redactor.patterns().len()
        );
    }
}
