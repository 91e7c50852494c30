//! Where signing credentials come from, and keeping them fresh.
//!
//! A route either has static keys (APISIX's `accesskey`/`secretkey`, optionally with a
//! `session_token`) that are used as they are, or it needs credentials that expire: the
//! AWS default chain (environment, profile, web identity, container, IMDSv2) when the
//! route has no keys, and/or a role assumed with STS. Those come from aws-config's
//! providers: the protocols (IMDSv2 tokens, container authorization, STS web identity,
//! regional STS endpoints) are subtle and aws-config implements them as AWS does, at a
//! rate (once per credential lifetime) where its cost does not matter.
//!
//! Each worker keeps one [`Cached`] per distinct source, shared by the routes that name
//! that source and freed with the last of them: a route holds its provider through its
//! [`Shared`], the worker's map only a weak reference, and the refresher stops when the
//! provider is dropped (route handles are freed by LuaJIT's GC). Credentials are
//! refreshed by a background task ahead of their expiry, so requests never wait while valid
//! credentials exist. Without valid credentials, at most one fetch per source runs, in
//! the background: the first request of a source waits for it up to [`FIRST_FETCH_WAIT`]
//! (or half the route's timeout), any later one up to [`OUTAGE_WAIT`], and then fails
//! with the last error instead of queueing behind the SDK's retries. Everything here
//! runs on the worker's runtime thread.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::Proxy;
use crate::sign::Credentials;

/// Refresh this long before expiry at most (or at half the remaining lifetime).
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// Refreshes are at least this far apart, even when a source keeps handing out the
/// same credentials close to their expiry (halving the wait would spin).
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// After a failed refresh, wait this long before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Without valid credentials, a failed fetch is not repeated for this long: requests in
/// that time fail at once instead of hammering a source that is down.
const FAILED_FETCH_HOLD: Duration = Duration::from_secs(1);
/// How long the first request of a source waits for its first fetch (at most half the
/// route's timeout): long enough for a cold STS call, short of the default 3 s timeout.
pub const FIRST_FETCH_WAIT: Duration = Duration::from_secs(2);
/// Once a source has had credentials or failed, a request without valid credentials
/// waits this long at most for a fetch under way, then answers 503.
pub const OUTAGE_WAIT: Duration = Duration::from_millis(100);
/// The `Retry-After` (seconds) of those 503s: a fetch may be tried again by then.
pub(crate) const RETRY_AFTER_SECS: u32 = 1;
/// A refresh failure while valid credentials remain is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// The session name used when a route sets none.
pub const DEFAULT_SESSION_NAME: &str = "apisix-aws-lambda";

/// A role to assume on top of the base credentials.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// The STS API's URL instead of the regional endpoint (`sts_endpoint`).
    pub sts_endpoint: Option<String>,
}

/// Base keys from the route. Compared whole, so that routes with the same keys share
/// one provider; never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StaticKeys {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

/// A source of expiring credentials: the key of a worker's provider cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Dynamic {
    /// None: the AWS default credential chain.
    pub base: Option<StaticKeys>,
    pub assume_role: Option<AssumeRole>,
    pub region: String,
    /// `proxy_url`: STS and the other credential endpoints through it (IMDS and the
    /// container endpoints, link-local, never). None: HTTPS_PROXY/NO_PROXY, as the SDKs.
    pub proxy: Option<Proxy>,
}

impl fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dynamic")
            .field(
                "base",
                &self.base.as_ref().map(|_| "static keys (redacted)"),
            )
            .field("assume_role", &self.assume_role)
            .field("region", &self.region)
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// Where a route's credentials come from.
#[derive(Debug)]
pub enum Source {
    Static(Credentials),
    Dynamic(Shared),
}

/// A route's hold on the worker's provider for its dynamic source. Routes with the same
/// source (compared whole, keys included, in memory only) hold the same provider, and
/// the provider with its refresher goes when the last of them is dropped.
pub struct Shared {
    key: Dynamic,
    /// Set at the route's first signed request, on the runtime thread: a route may be
    /// made before its worker's runtime exists.
    held: Mutex<Option<Arc<Cached>>>,
}

impl Shared {
    pub fn new(key: Dynamic) -> Self {
        Self {
            key,
            held: Mutex::new(None),
        }
    }

    /// The provider of `providers` for this source, looked up once per route (again
    /// only if the worker's providers were replaced).
    fn cached(&self, providers: &Arc<Providers>) -> Arc<Cached> {
        let mut held = self.held.lock();
        if let Some(cached) = held.as_ref() {
            if std::ptr::eq(cached.providers.as_ptr(), Arc::as_ptr(providers)) {
                return cached.clone();
            }
        }
        let cached = providers.provider(&self.key);
        let replaced = held.replace(cached.clone());
        drop(held);
        drop(replaced);
        cached
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
}

/// The worker's providers, one per distinct dynamic source in use.
#[derive(Default)]
pub struct Providers {
    /// Weak: the routes hold the providers; an entry goes when its provider is dropped.
    by_source: Mutex<HashMap<Dynamic, Weak<Cached>>>,
    /// Lines for nginx's error log, collected here because only the nginx thread can
    /// write it; the pump drains them when `log_ready` fires.
    log: Mutex<Vec<String>>,
    pub log_ready: Notify,
}

impl Providers {
    /// Credentials for `source`, waiting only when none are valid.
    /// `first_wait` bounds the wait for a source's very first fetch.
    pub async fn get(
        self: &Arc<Self>,
        source: &Source,
        first_wait: Duration,
    ) -> Result<Credentials, String> {
        match source {
            Source::Static(creds) => Ok(creds.clone()),
            Source::Dynamic(shared) => shared.cached(self).get(self, first_wait).await,
        }
    }

    /// The provider for `key`, shared with the routes that use it already.
    fn provider(self: &Arc<Self>, key: &Dynamic) -> Arc<Cached> {
        let mut by_source = self.by_source.lock();
        if let Some(cached) = by_source.get(key).and_then(Weak::upgrade) {
            return cached;
        }
        let cached = Arc::new(Cached::new(key.clone(), Arc::downgrade(self)));
        by_source.insert(key.clone(), Arc::downgrade(&cached));
        cached
    }

    /// Providers alive: distinct credential sources that routes use.
    pub fn live(&self) -> usize {
        self.by_source
            .lock()
            .values()
            .filter(|c| c.strong_count() > 0)
            .count()
    }

    fn log(&self, line: String) {
        self.log.lock().push(line);
        self.log_ready.notify_one();
    }

    /// Takes the pending log lines.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock())
    }
}

struct Current {
    creds: Credentials,
    expires: Option<SystemTime>,
    refresh_at: Option<SystemTime>,
    /// How long before `expires` a healthy source hands out new credentials: the
    /// refresh-ahead time these credentials were first given (at most REFRESH_AHEAD).
    window: Duration,
}

impl Current {
    fn valid(&self, now: SystemTime) -> Option<Credentials> {
        self.expires
            .is_none_or(|e| e > now)
            .then(|| self.creds.clone())
    }
}

#[derive(Default)]
struct State {
    provider: Option<SharedCredentialsProvider>,
    current: Option<Current>,
    fetching: bool,
    /// Whether the background refresh task runs.
    refresher: bool,
    last_error: Option<String>,
    last_failure: Option<Instant>,
    last_logged: Option<Instant>,
}

impl State {
    /// The 503's message: the last error, which may date from before the expiry.
    fn no_credentials(&self, err: &str) -> String {
        let expired = self.current.as_ref().and_then(|c| c.expires);
        match expired.and_then(|e| SystemTime::now().duration_since(e).ok()) {
            Some(ago) => format!(
                "no AWS credentials (the last expired {} s ago): {err}",
                ago.as_secs()
            ),
            None => format!("no AWS credentials: {err}"),
        }
    }
}

/// One source's credentials and their refresh.
pub struct Cached {
    source: Dynamic,
    state: Mutex<State>,
    fetched: Notify,
    /// The worker's providers, whose map has this one's entry.
    providers: Weak<Providers>,
    /// Ends the refresher's wait when this provider is dropped (a permit if it is not
    /// waiting at that moment).
    stop: Arc<Notify>,
}

impl Drop for Cached {
    /// The last route using this source is gone: the refresher stops, and the entry
    /// leaves the worker's map unless a new provider for the source replaced it.
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(providers) = self.providers.upgrade() {
            let mut by_source = providers.by_source.lock();
            if by_source
                .get(&self.source)
                .is_some_and(|c| c.strong_count() == 0)
            {
                by_source.remove(&self.source);
            }
        }
    }
}

impl Cached {
    fn new(source: Dynamic, providers: Weak<Providers>) -> Self {
        Self {
            source,
            state: Mutex::new(State::default()),
            fetched: Notify::new(),
            providers,
            stop: Arc::new(Notify::new()),
        }
    }

    /// Valid credentials, or else waits for a fetch (starting one in the background
    /// unless one runs or the last failed less than FAILED_FETCH_HOLD ago) for at most
    /// `first_wait` on a source never fetched, OUTAGE_WAIT otherwise.
    async fn get(
        self: &Arc<Self>,
        providers: &Arc<Providers>,
        first_wait: Duration,
    ) -> Result<Credentials, String> {
        let (notified, wait) = {
            let mut state = self.state.lock();
            if let Some(creds) = state
                .current
                .as_ref()
                .and_then(|c| c.valid(SystemTime::now()))
            {
                return Ok(creds);
            }
            if !state.fetching {
                if let (Some(failed), Some(err)) = (state.last_failure, &state.last_error) {
                    if failed.elapsed() < FAILED_FETCH_HOLD {
                        return Err(state.no_credentials(err));
                    }
                }
                state.fetching = true;
                tokio::spawn(self.clone().first_fetch(providers.clone()));
            }
            let first = state.current.is_none() && state.last_error.is_none();
            // Created under the lock: notify_waiters reaches it before it is polled.
            let notified = self.fetched.notified();
            (notified, if first { first_wait } else { OUTAGE_WAIT })
        };
        let finished = tokio::time::timeout(wait, notified).await.is_ok();
        let state = self.state.lock();
        if let Some(creds) = state
            .current
            .as_ref()
            .and_then(|c| c.valid(SystemTime::now()))
        {
            return Ok(creds);
        }
        Err(match (&state.last_error, finished) {
            (Some(err), _) => state.no_credentials(err),
            (None, false) if state.current.is_some() => state.no_credentials(&format!(
                "{} has not answered the refresh yet (still trying)",
                self.source.describe()
            )),
            (None, false) => format!(
                "no AWS credentials yet: {} gave none within {} ms (still trying)",
                self.source.describe(),
                wait.as_millis()
            ),
            (None, true) => "no AWS credentials: the source returned none".into(),
        })
    }

    /// Fetches new credentials, stores them and wakes the waiters (the caller set
    /// `fetching`). Returns when to refresh next: ahead of expiry, or after a failure
    /// while the current credentials are still valid, a retry.
    async fn refresh_once(&self, providers: &Providers) -> Option<SystemTime> {
        let result = self.fetch().await;
        // Its messages name the source and the cause, never a secret.
        crate::stats::WORKER.credential_fetch(result.as_ref().err().cloned());
        let now = SystemTime::now();
        let next = {
            let mut state = self.state.lock();
            state.fetching = false;
            match result {
                Ok(current) => {
                    let next = current.refresh_at;
                    state.current = Some(current);
                    state.last_error = None;
                    next
                }
                Err(e) => {
                    let still_valid = state
                        .current
                        .as_ref()
                        .and_then(|c| c.expires)
                        .filter(|expires| *expires > now);
                    if let Some(expires) = still_valid {
                        let due = state.last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY);
                        if due {
                            state.last_logged = Some(Instant::now());
                            let left = expires.duration_since(now).unwrap_or_default();
                            providers.log(format!(
                                "refreshing AWS credentials failed ({}): {e}; still signing \
                                 with the current ones, valid for {} more seconds",
                                self.source.describe(),
                                left.as_secs()
                            ));
                        }
                    }
                    state.last_error = Some(e);
                    state.last_failure = Some(Instant::now());
                    // Retried before they expire; after that, requests start fetches.
                    still_valid.map(|expires| (now + RETRY_AFTER).min(expires))
                }
            }
        };
        self.fetched.notify_waiters();
        next
    }

    /// The first fetch, then one background task per source that refreshes ahead of
    /// expiry for as long as the credentials expire and some route uses the source:
    /// between refreshes it holds the provider only weakly, and it ends when the
    /// provider is dropped.
    async fn first_fetch(self: Arc<Self>, providers: Arc<Providers>) {
        let mut next = self.refresh_once(&providers).await;
        {
            let mut state = self.state.lock();
            if state.refresher || next.is_none() {
                return;
            }
            state.refresher = true;
        }
        let (this, stop) = (Arc::downgrade(&self), self.stop.clone());
        drop(self);
        while let Some(at) = next {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.notified() => return,
            }
            let Some(cached) = this.upgrade() else {
                return;
            };
            let start = !std::mem::replace(&mut cached.state.lock().fetching, true);
            next = if start {
                cached.refresh_once(&providers).await
            } else {
                Some(SystemTime::now() + RETRY_AFTER)
            };
        }
        if let Some(cached) = this.upgrade() {
            cached.state.lock().refresher = false;
        }
    }

    async fn fetch(&self) -> Result<Current, String> {
        let existing = self.state.lock().provider.clone();
        let provider = match existing {
            Some(p) => p,
            None => {
                let p = build_provider(&self.source).await;
                self.state.lock().provider = Some(p.clone());
                p
            }
        };
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| describe_error(&self.source, &e))?;
        let now = SystemTime::now();
        let expires = creds.expiry();
        let previous = self.state.lock().current.as_ref().and_then(|c| {
            (c.creds.access_key_id() == creds.access_key_id() && c.expires == expires)
                .then_some(c.window)
        });
        let window = match expires {
            Some(e) => {
                let left = e.duration_since(now).unwrap_or_default();
                self.check_fresh(e, now, previous)?;
                previous.unwrap_or(REFRESH_AHEAD.min(left / 2))
            }
            None => Duration::ZERO,
        };
        let refresh_at = expires.map(|e| {
            let left = e.duration_since(now).unwrap_or_default();
            (e - REFRESH_AHEAD.min(left / 2)).max(now + MIN_REFRESH_INTERVAL)
        });
        Ok(Current {
            creds: Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                creds.session_token().map(str::to_string),
            ),
            expires,
            refresh_at,
            window,
        })
    }

    /// Credentials that are expired, expire before the next refresh could run, or are
    /// the ones we had, handed back inside their refresh window, are a failed fetch:
    /// aws-config's IMDS provider answers a failure with the last credentials it got
    /// (`last_retrieved_credentials`), hiding the cause. `previous` is the refresh
    /// window of the current credentials when these are the same ones.
    fn check_fresh(
        &self,
        expires: SystemTime,
        now: SystemTime,
        previous: Option<Duration>,
    ) -> Result<(), String> {
        let stale = match expires.duration_since(now) {
            Err(ago) => format!(
                "credentials that expired {} s ago",
                ago.duration().as_secs()
            ),
            Ok(left) if left < MIN_REFRESH_INTERVAL || previous.is_some_and(|w| left <= w) => {
                let which = if previous.is_some() {
                    "the credentials it already had"
                } else {
                    "credentials"
                };
                format!("{which}, expiring in {} s", left.as_secs())
            }
            Ok(_) => return Ok(()),
        };
        let hint = if self.source.base.is_none() {
            " (aws-config's instance metadata (IMDS) provider does this when IMDS fails, \
             and does not say why)"
        } else {
            ""
        };
        Err(format!(
            "{} handed back {stale}: it could not fetch new ones{hint}",
            self.source.describe()
        ))
    }
}

impl Dynamic {
    fn describe(&self) -> String {
        let base = if self.base.is_some() {
            "the route's keys"
        } else {
            "the AWS credential chain"
        };
        match &self.assume_role {
            Some(role) => format!("role {} assumed with {base}", role.role_arn),
            None => base.to_string(),
        }
    }
}

/// aws-config's errors name the providers tried and why each failed; they never carry
/// secrets (aws-config redacts credentials in Debug and Display).
fn describe_error(
    source: &Dynamic,
    err: &aws_credential_types::provider::error::CredentialsError,
) -> String {
    let mut message = format!("{} failed: {err}", source.describe());
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

/// The HTTP client of the credential providers (STS, IMDS, container, SSO): rustls on
/// ring, the crypto the function client uses, instead of the SDK's default client and
/// its aws-lc-sys C build. Providers are built rarely (per credential source), so each
/// gets its own client.
///
/// With the route's `proxy_url` every call but those to link-local addresses (IMDS,
/// the ECS and EKS container endpoints) goes through that proxy; without one,
/// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` from nginx's environment apply, as in the AWS
/// SDKs (the smithy client's default ignores them).
fn http_client(proxy: Option<&Proxy>) -> SharedHttpClient {
    let proxy_config = match proxy {
        None => ProxyConfig::from_env(),
        // Host and port came from a parsed `http::Uri`: this does not fail.
        Some(p) => match ProxyConfig::all(format!("http://{p}")) {
            Ok(config) => {
                let config = config.no_proxy(LINK_LOCAL);
                match &p.credentials {
                    Some((user, pass)) => config.with_basic_auth(user.as_str(), pass.as_str()),
                    None => config,
                }
            }
            Err(_) => ProxyConfig::from_env(),
        },
    };
    // The builder's `build_https` has no proxy setting: the connector is built here as
    // it builds it, with the proxy added.
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = aws_smithy_http_client::Connector::builder();
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder
            .proxy_config(proxy_config.clone())
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build()
    })
}

/// Never through a proxy: IMDS (169.254.169.254, fd00:ec2::254) and the ECS and EKS
/// container credential endpoints (169.254.170.2, 169.254.170.23, fd00:ec2::23) are
/// link-local, reachable only from the host itself.
const LINK_LOCAL: &str = "169.254.0.0/16,fe80::/10,fd00:ec2::/32";

async fn build_provider(source: &Dynamic) -> SharedCredentialsProvider {
    let region = Region::new(source.region.clone());
    let base = match &source.base {
        Some(keys) => SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            keys.access_key.clone(),
            keys.secret_key.clone(),
            keys.session_token.clone(),
            None,
            "route",
        )),
        None => SharedCredentialsProvider::new(
            DefaultCredentialsChain::builder()
                .region(region.clone())
                .configure(
                    ProviderConfig::default().with_http_client(http_client(source.proxy.as_ref())),
                )
                .build()
                .await,
        ),
    };
    let Some(role) = &source.assume_role else {
        return base;
    };
    // The STS client takes region, endpoint overrides (AWS_ENDPOINT_URL_STS) and
    // retries from the usual configuration sources; the base credentials sign its calls.
    // The route's sts_endpoint wins over the environment's override.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client(source.proxy.as_ref()))
        .region(region.clone())
        .credentials_provider(base);
    if let Some(url) = &role.sts_endpoint {
        loader = loader.endpoint_url(url.clone());
    }
    let sdk = loader.load().await;
    let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
        .region(region)
        .session_name(
            role.session_name
                .clone()
                .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
        )
        .configure(&sdk);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id.clone());
    }
    SharedCredentialsProvider::new(builder.build().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// The rules as the smithy client applies them (hyper-util's matcher): IMDS and the
    /// container endpoints direct, STS through the proxy.
    #[test]
    fn link_local_endpoints_bypass_the_proxy() {
        let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
            .all("http://127.0.0.1:3128".to_owned())
            .no(LINK_LOCAL.to_owned())
            .build();
        let via = |uri: &str| matcher.intercept(&uri.parse().unwrap()).is_some();
        assert!(!via("http://169.254.169.254/latest/api/token"));
        assert!(!via("http://169.254.170.2/v2/credentials"));
        assert!(!via("http://169.254.170.23/v1/credentials"));
        assert!(!via("http://[fd00:ec2::254]/latest/api/token"));
        assert!(via("https://sts.us-east-1.amazonaws.com/"));
        assert!(via("http://127.0.0.1:4566/"));
    }

    #[test]
    fn static_credentials_are_used_as_they_are() {
        let providers = Arc::new(Providers::default());
        let source = Source::Static(Credentials::new("AK", "SK", Some("TOKEN".into())));
        let creds = runtime()
            .block_on(providers.get(&source, FIRST_FETCH_WAIT))
            .expect("creds");
        assert_eq!(creds.access_key_id(), "AK");
        assert!(creds.has_session_token());
    }

    #[test]
    fn credentials_handed_back_stale_are_a_failed_fetch() {
        let cached = Cached::new(
            Dynamic {
                base: None,
                assume_role: None,
                region: "us-east-1".into(),
                proxy: None,
            },
            Weak::new(),
        );
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        assert!(cached.check_fresh(now + hour, now, None).is_ok());
        // the same credentials again, outside their refresh window: a healthy source
        assert!(cached
            .check_fresh(now + hour, now, Some(REFRESH_AHEAD))
            .is_ok());
        let again = cached.check_fresh(now + Duration::from_secs(200), now, Some(REFRESH_AHEAD));
        let err = again.expect_err("the same credentials inside their refresh window");
        assert!(err.starts_with("the AWS credential chain handed back the credentials it already had, expiring in 200 s"), "{err}");
        let err = cached
            .check_fresh(now - Duration::from_secs(30), now, None)
            .expect_err("expired");
        assert!(
            err.contains("credentials that expired 30 s ago: it could not fetch new ones"),
            "{err}"
        );
        assert!(cached
            .check_fresh(now + Duration::from_secs(2), now, None)
            .is_err());
    }

    fn role(arn: &str) -> Dynamic {
        Dynamic {
            base: Some(StaticKeys {
                access_key: "AK".into(),
                secret_key: "SK".into(),
                session_token: None,
            }),
            assume_role: Some(AssumeRole {
                role_arn: arn.into(),
                external_id: None,
                session_name: None,
                sts_endpoint: None,
            }),
            region: "us-east-1".into(),
            proxy: None,
        }
    }

    #[test]
    fn routes_with_one_source_share_a_provider_that_goes_with_the_last() {
        let providers = Arc::new(Providers::default());
        let a = Shared::new(role("arn:aws:iam::1:role/r"));
        let b = Shared::new(role("arn:aws:iam::1:role/r"));
        let other = Shared::new(role("arn:aws:iam::1:role/other"));
        let (pa, pb) = (a.cached(&providers), b.cached(&providers));
        assert!(Arc::ptr_eq(&pa, &pb));
        assert!(Arc::ptr_eq(&pa, &a.cached(&providers)), "held by the route");
        let po = other.cached(&providers);
        assert!(!Arc::ptr_eq(&pa, &po));
        assert_eq!(providers.live(), 2);
        drop((pa, pb, po));
        assert_eq!(providers.live(), 2, "the routes hold them");
        drop(a);
        assert_eq!(providers.live(), 2, "b still uses the role");
        drop(b);
        assert_eq!(providers.live(), 1);
        assert_eq!(providers.by_source.lock().len(), 1, "the entry went too");
        // A route of the same source made later gets a new provider.
        let again = Shared::new(role("arn:aws:iam::1:role/r"));
        let _held = again.cached(&providers);
        assert_eq!(providers.live(), 2);
        drop(other);
        drop(again);
        drop(_held);
        assert_eq!(providers.live(), 0);
        assert!(providers.by_source.lock().is_empty());
    }

    #[test]
    fn a_route_follows_a_new_set_of_providers() {
        let (old, new) = (
            Arc::new(Providers::default()),
            Arc::new(Providers::default()),
        );
        let route = Shared::new(role("arn:aws:iam::1:role/r"));
        drop(route.cached(&old));
        drop(route.cached(&new));
        assert_eq!((old.live(), new.live()), (0, 1));
    }

    #[test]
    fn the_refresher_stops_when_its_provider_is_dropped() {
        let cached = Arc::new(Cached::new(role("arn:aws:iam::1:role/r"), Weak::new()));
        let stop = cached.stop.clone();
        drop(cached);
        // a permit: the refresher stops at its next wait even if it was not waiting
        runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(5), stop.notified())
                .await
                .expect("stopped");
        });
    }

    #[test]
    fn debug_never_shows_keys() {
        let dynamic = Dynamic {
            base: Some(StaticKeys {
                access_key: "AKSECRETLOOKING".into(),
                secret_key: "SECRETKEY".into(),
                session_token: Some("TOKEN".into()),
            }),
            assume_role: None,
            region: "us-east-1".into(),
            proxy: None,
        };
        let shown = format!("{dynamic:?}");
        assert!(!shown.contains("SECRETKEY") && !shown.contains("TOKEN"));
    }
}
