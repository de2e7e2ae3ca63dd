//! The `http` driver: a service described entirely in its `Datasource` (base URL or Keystone
//! catalog entry, auth, requests with pagination, and tables in the mapping language of
//! [`Translator`]). One [`HttpDriver::poll`] fetches every request a loaded policy needs, page
//! by page, and returns each table's complete rows; the poll loop ([`super::poll`]) diffs them
//! against the last poll and commits the difference in one transaction.
//!
//! Every way a service can fail is a [`PollError`] with a reason (timeouts, refused
//! connections, 5xx, a 401 after one fresh token, bodies that are not JSON or not the
//! expected shape, bodies over the size limit); none of them panics, and none carries a
//! credential (requests carry secrets in headers only, and no response body is quoted).

use super::TableChange;
use super::credentials::{Credentials, CredentialsError, SecretValue, check_config, setting};
use super::keystone::{Keystone, KeystoneError, Token};
use super::translate::{FieldPath, MappingError, Translator, field_path};
use congress_engine::Value;
use congress_model::resources::{HttpSource, Pagination};
use hashbrown::HashMap;
use reqwest::Url;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Default seconds one request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;
/// The credentials key of a CA bundle to trust (PEM).
pub const CA_KEY: &str = "ca.crt";
/// Default most pages of one listing per poll.
pub const DEFAULT_MAX_PAGES: u32 = 10_000;

/// Why an `http` datasource cannot run (its spec, not the service).
#[derive(Debug, thiserror::Error)]
pub enum HttpDriverError {
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Keystone(#[from] KeystoneError),
    #[error("driver `{0}` has no `http` configuration (set `spec.http`)")]
    NotHttp(String),
    #[error("`{field}`: `{url}` is not an absolute http(s) URL: {message}")]
    BadUrl { field: &'static str, url: String, message: String },
    #[error("no base URL: set `http.baseUrl`, `config.endpoint` or `http.catalog`")]
    NoBaseUrl,
    #[error("`http.catalog` needs `http.auth.type: keystone`")]
    CatalogNeedsKeystone,
    #[error("unknown auth type `{0}` (use none, bearer, basic or keystone)")]
    UnknownAuth(String),
    #[error("request `{path}`: `{field}`: {message}")]
    BadRequest { path: String, field: &'static str, message: String },
    #[error("action `{action}`: `{field}`: {message}")]
    BadAction { action: String, field: &'static str, message: String },
    #[error("header `{0}` is not a valid HTTP header")]
    BadHeader(String),
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
    #[error("the credentials' `ca.crt` is not a PEM certificate bundle: {0}")]
    BadCa(String),
}

/// Why one poll failed. The tables keep what the last good poll gave them.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("GET {url}: no answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("GET {url}: {message}")]
    Connect { url: String, message: String },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: HTTP {status} after a fresh token")]
    Unauthorized { url: String, status: u16 },
    #[error("GET {url}: the body is not JSON (line {line}, column {column}: {message})")]
    NotJson { url: String, line: usize, column: usize, message: String },
    #[error("GET {url}: {message}")]
    Shape { url: String, message: String },
    #[error("GET {url}: the body is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("GET {url}: more than {max} pages")]
    TooManyPages { url: String, max: u32 },
    #[error(transparent)]
    Keystone(#[from] KeystoneError),
}

impl PollError {
    /// The cause, as a status condition's reason and a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::Timeout { .. } => "Timeout",
            PollError::Connect { .. } => "ConnectionFailed",
            PollError::Status { status, .. } if *status >= 500 => "ServerError",
            PollError::Status { .. } => "RequestRefused",
            PollError::Unauthorized { .. } => "Unauthorized",
            PollError::NotJson { .. } => "NotJson",
            PollError::Shape { .. } => "WrongShape",
            PollError::TooLarge { .. } => "TooLarge",
            PollError::TooManyPages { .. } => "TooManyPages",
            PollError::Keystone(KeystoneError::Request { timeout: true, .. }) => "Timeout",
            PollError::Keystone(KeystoneError::Request { .. }) => "ConnectionFailed",
            PollError::Keystone(KeystoneError::Refused { .. }) => "Unauthorized",
            PollError::Keystone(KeystoneError::NoEndpoint { .. }) => "NoEndpoint",
            PollError::Keystone(_) => "AuthFailed",
        }
    }
}

/// The innermost cause of a client error (`Connection refused (os error 111)`), without
/// the URL, which the caller says once.
pub fn describe(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() { "timed out".into() } else { source.to_string() }
}

/// How requests authenticate.
#[derive(Debug)]
pub(crate) enum Auth {
    None,
    Bearer(SecretValue),
    Basic(String, SecretValue),
    Keystone(Arc<Keystone>),
}

/// Where the base URL comes from.
#[derive(Debug)]
pub(crate) enum Base {
    Fixed(Url),
    Catalog { service_type: String, interface: String, region: Option<String> },
}

/// One request of the source, validated.
#[derive(Debug)]
struct Plan {
    path: String,
    query: Vec<(String, String)>,
    items: Option<FieldPath>,
    pagination: Option<Paging>,
    translator: Arc<Translator>,
    tables: Vec<String>,
}

#[derive(Clone, Debug)]
enum Paging {
    Next { link: FieldPath, max_pages: u32 },
    Marker { param: String, field: FieldPath, limit: Option<u32>, max_pages: u32 },
}

/// Rows of every table, complete, by table name.
pub type Polled = Vec<(String, Vec<Vec<Value>>)>;

/// One page of a listing as last fetched: its URL, a digest of its bytes (hash and length),
/// the next page's URL, and the rows it gave, per table slot of its request.
#[derive(Clone, Debug)]
pub struct Page {
    url: Url,
    digest: (u64, usize),
    next: Option<Url>,
    rows: Arc<Vec<Vec<Vec<Value>>>>,
}

/// A page's rows per table slot, and the next page's URL.
type PageRead = (Vec<Vec<Vec<Value>>>, Option<Url>);

/// A row of a request's table: (request, table slot, row).
type RowKey = (usize, usize, Vec<Value>);

/// What the committed polls of a driver hold: each request's pages, and how many pages give
/// each row (a row is in its table while at least one page gives it).
#[derive(Debug, Default)]
pub struct PollState {
    pages: HashMap<usize, Vec<Page>>,
    /// The requests the last committed poll made.
    fresh: hashbrown::HashSet<usize>,
    counts: HashMap<RowKey, u32>,
    /// Keyed once per driver run, so page digests compare within it.
    hasher: hashbrown::DefaultHashBuilder,
}

impl PollState {
    /// Take what `pending` fetched (once its changes are committed).
    pub fn commit(&mut self, pending: PendingPoll) {
        for (key, delta) in pending.deltas {
            let count = self.counts.get(&key).copied().unwrap_or(0);
            let next = (i64::from(count) + delta).max(0) as u32;
            if next == 0 {
                self.counts.remove(&key);
            } else {
                self.counts.insert(key, next);
            }
        }
        self.fresh = pending.pages.iter().map(|(i, _)| *i).collect();
        self.pages.extend(pending.pages);
    }

    /// Rows per table, by the driver's table names.
    pub fn counts(&self, driver: &HttpDriver) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (i, plan) in driver.plans.iter().enumerate() {
            if self.pages.contains_key(&i) {
                for t in &plan.tables {
                    out.insert(t.clone(), 0);
                }
            }
        }
        for (plan, slot, _) in self.counts.keys() {
            if let Some(t) = driver.plans.get(*plan).and_then(|p| p.tables.get(*slot)) {
                *out.entry(t.clone()).or_default() += 1;
            }
        }
        out
    }
}

/// The outcome of a poll before it is committed: the changes per table, and the state
/// they lead to.
#[derive(Debug, Default)]
pub struct PendingPoll {
    pub changes: Vec<TableChange>,
    /// Rows added plus removed.
    pub changed: u64,
    pages: Vec<(usize, Vec<Page>)>,
    deltas: Vec<(RowKey, i64)>,
}

impl PendingPoll {
    /// Compare the new pages with the old ones: pages reused whole change nothing; the rows
    /// of the others are counted in (new) and out (old), and a row whose count goes from 0
    /// or to 0 is added or removed.
    fn diff(&mut self, state: &PollState, plans: &[Plan]) {
        let mut deltas: HashMap<RowKey, i64> = HashMap::new();
        for (index, pages) in &self.pages {
            let old = state.pages.get(index).map_or(&[][..], Vec::as_slice);
            for i in 0..pages.len().max(old.len()) {
                let (new, was) = (pages.get(i), old.get(i));
                if let (Some(n), Some(o)) = (new, was)
                    && Arc::ptr_eq(&n.rows, &o.rows)
                {
                    continue;
                }
                for (page, sign) in [(new, 1), (was, -1)] {
                    for (slot, rows) in page.iter().flat_map(|p| p.rows.iter().enumerate()) {
                        for row in rows {
                            *deltas.entry((*index, slot, row.clone())).or_default() += sign;
                        }
                    }
                }
            }
        }
        let mut changes: BTreeMap<(usize, usize), TableChange> = BTreeMap::new();
        for (key, delta) in deltas {
            if delta == 0 {
                continue;
            }
            let before = i64::from(state.counts.get(&key).copied().unwrap_or(0));
            let after = before + delta;
            let (plan, slot, row) = &key;
            let change = changes
                .entry((*plan, *slot))
                .or_insert_with(|| TableChange { table: plans[*plan].tables[*slot].clone(), ..Default::default() });
            if before == 0 && after > 0 {
                change.added.push(row.clone());
            } else if before > 0 && after <= 0 {
                change.removed.push(row.clone());
            }
            self.deltas.push((key, delta));
        }
        self.changes = changes.into_values().filter(|c| !c.added.is_empty() || !c.removed.is_empty()).collect();
        self.changed = self.changes.iter().map(|c| (c.added.len() + c.removed.len()) as u64).sum();
    }
}

/// A configured `http` datasource.
#[derive(Debug)]
pub struct HttpDriver {
    service: Service,
    plans: Vec<Plan>,
}

/// How to reach a service, shared by the poller ([`HttpDriver`]) and the executor
/// ([`super::http_actions::HttpExecutor`]): the client, the base URL, the auth, the headers
/// of every request, and the limits.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) client: reqwest::Client,
    pub(crate) base: Base,
    pub(crate) auth: Auth,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: u64,
    /// Keystone's URL from the settings (`config.auth_url`, `http.auth.url`), whatever the
    /// auth: the default of an `os.auth` context.
    pub(crate) auth_url: Option<String>,
}

impl Service {
    /// Validate the connection settings of `source` with the datasource's `config` and
    /// credentials.
    pub(crate) fn new(
        source: &HttpSource,
        config: &BTreeMap<String, String>,
        credentials: &Credentials,
    ) -> Result<Service, HttpDriverError> {
        check_config(config)?;
        let timeout = source.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(u64::from(s.max(1))));
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("congress/", env!("CARGO_PKG_VERSION")));
        // A private cloud's CA (the Secret's `ca.crt`, as Kubernetes names it), trusted
        // besides the system's roots.
        if let Some(ca) = credentials.get(CA_KEY) {
            let certs = reqwest::Certificate::from_pem_bundle(ca.expose().as_bytes())
                .map_err(|e| HttpDriverError::BadCa(describe(&e)))?;
            if certs.is_empty() {
                return Err(HttpDriverError::BadCa("no PEM certificate in it".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| HttpDriverError::Client(describe(&e)))?;
        let auth = match source.auth.type_.as_deref().unwrap_or("none") {
            "none" => Auth::None,
            "bearer" => Auth::Bearer(credentials.require("token", "bearer auth")?.clone()),
            "basic" => Auth::Basic(
                setting(config, credentials, "username")
                    .ok_or_else(|| CredentialsError::Missing { key: "username".into(), what: "basic auth" })?,
                credentials.require("password", "basic auth")?.clone(),
            ),
            "keystone" => Auth::Keystone(Arc::new(Keystone::new(config, credentials, source.auth.url.as_deref())?)),
            other => return Err(HttpDriverError::UnknownAuth(other.to_string())),
        };
        let base = match (config.get("endpoint").or(source.base_url.as_ref()), &source.catalog) {
            (Some(url), _) => Base::Fixed(absolute("baseUrl", url)?),
            (None, Some(c)) => {
                if !matches!(auth, Auth::Keystone(_)) {
                    return Err(HttpDriverError::CatalogNeedsKeystone);
                }
                Base::Catalog {
                    service_type: c.service_type.clone(),
                    interface: config.get("interface").or(c.interface.as_ref()).cloned().unwrap_or("public".into()),
                    region: config.get("region").or(c.region.as_ref()).cloned(),
                }
            }
            (None, None) => return Err(HttpDriverError::NoBaseUrl),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &source.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| HttpDriverError::BadHeader(k.clone()))?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| HttpDriverError::BadHeader(k.clone()))?;
            headers.insert(name, value);
        }
        Ok(Service {
            client,
            base,
            auth,
            headers,
            timeout,
            max_bytes: source.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            auth_url: setting(config, credentials, "auth_url").or_else(|| source.auth.url.clone()),
        })
    }

    /// The base URL: fixed, or the catalog's endpoint in `token` (default: the token of
    /// the service's own Keystone session).
    pub(crate) async fn base_url(&self, token: Option<&Token>) -> Result<Url, PollError> {
        let url = match &self.base {
            Base::Fixed(url) => return Ok(url.clone()),
            Base::Catalog { service_type, interface, region } => match token {
                Some(t) => t.endpoint(service_type, interface, region.as_deref())?,
                None => {
                    let Auth::Keystone(k) = &self.auth else { unreachable!("checked by Service::new") };
                    k.token(&self.client, false).await?.endpoint(service_type, interface, region.as_deref())?
                }
            },
        };
        absolute("catalog", &url).map_err(|e| PollError::Shape { url: url.clone(), message: e.to_string() })
    }
}

impl HttpDriver {
    /// Validate `source` with the datasource's `config` and credentials.
    pub fn new(
        source: &HttpSource,
        config: &BTreeMap<String, String>,
        credentials: &Credentials,
    ) -> Result<HttpDriver, HttpDriverError> {
        let service = Service::new(source, config, credentials)?;
        let translators = Translator::many(source.requests.iter().map(|r| &r.table))?;
        let plans = source
            .requests
            .iter()
            .zip(translators)
            .map(|(r, translator)| {
                let bad = |field: &'static str, message: String| HttpDriverError::BadRequest {
                    path: r.path.clone(),
                    field,
                    message,
                };
                let mut query: Vec<(String, String)> = r.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                query.extend(
                    r.config_query.iter().filter_map(|(param, key)| Some((param.clone(), config.get(key)?.clone()))),
                );
                let items = r.items.as_deref().map(field_path).transpose().map_err(|m| bad("items", m))?;
                let pagination = r.pagination.as_ref().map(paging).transpose().map_err(|m| bad("pagination", m))?;
                if let Some(Paging::Marker { limit: Some(limit), param, .. }) = &pagination {
                    query.retain(|(k, _)| k != "limit" && k != param);
                    query.push(("limit".into(), limit.to_string()));
                }
                Ok(Plan {
                    path: r.path.clone(),
                    query,
                    items,
                    pagination,
                    tables: translator.tables(),
                    translator: Arc::new(translator),
                })
            })
            .collect::<Result<_, HttpDriverError>>()?;
        Ok(HttpDriver { service, plans })
    }

    /// Every table, in request order (children after their parent).
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.plans.iter().flat_map(|p| p.tables.iter().map(String::as_str))
    }

    /// Fetch every request one of whose tables `needed` says a policy reads, and return what
    /// changed since `state` (the last committed poll), table by table. Any failure fails the
    /// whole poll and leaves `state` as it was.
    ///
    /// A page whose bytes are those of the same page last time is neither parsed nor
    /// translated: its rows are the ones it gave then, and it changes nothing. So a poll in
    /// which one object changed parses one page and diffs only its rows.
    pub async fn poll(
        &self,
        needed: &(dyn Fn(&str) -> bool + Sync),
        state: &PollState,
    ) -> Result<PendingPoll, PollError> {
        let mut pending = PendingPoll::default();
        let base = self.service.base_url(None).await?;
        for (index, plan) in self.plans.iter().enumerate() {
            if !plan.tables.iter().any(|t| needed(t)) {
                continue;
            }
            let old = state.pages.get(&index).map_or(&[][..], Vec::as_slice);
            let pages = self.fetch(&base, plan, old, &state.hasher).await?;
            pending.pages.push((index, pages));
        }
        pending.diff(state, &self.plans);
        Ok(pending)
    }

    /// Every row of every table as of `state`, by table (for `congress poll`).
    pub fn rows(&self, state: &PollState) -> Polled {
        let mut out: Polled = self.tables().map(|t| (t.to_string(), Vec::new())).collect();
        let position =
            |plan: usize, slot: usize| self.plans[..plan].iter().map(|p| p.tables.len()).sum::<usize>() + slot;
        for (plan, slot, row) in state.counts.keys() {
            out[position(*plan, *slot)].1.push(row.clone());
        }
        out
    }

    /// Whether a committed poll has fetched `table`.
    pub fn fetched(&self, state: &PollState, table: &str) -> bool {
        self.plans
            .iter()
            .position(|p| p.tables.iter().any(|t| t == table))
            .is_some_and(|i| state.pages.contains_key(&i))
    }

    /// Every page of one request, reusing the pages of `old` whose bytes did not change.
    async fn fetch(
        &self,
        base: &Url,
        plan: &Plan,
        old: &[Page],
        hasher: &hashbrown::DefaultHashBuilder,
    ) -> Result<Vec<Page>, PollError> {
        use std::hash::BuildHasher;
        let mut url = base.join(plan.path.trim_start_matches('/')).map_err(|e| PollError::Shape {
            url: format!("{base}{}", plan.path),
            message: format!("not a URL: {e}"),
        })?;
        if !plan.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&plan.query);
        }
        let mut pages: Vec<Page> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            // A next link back to a page already read would loop until `maxPages`.
            if !seen.insert(url.to_string()) {
                return Err(PollError::Shape {
                    url: url.to_string(),
                    message: "the pages link back to this one".into(),
                });
            }
            let bytes = self.get_bytes(&url).await?;
            let digest = (hasher.hash_one(&bytes[..]), bytes.len());
            let page = match old.get(pages.len()) {
                Some(p) if p.url == url && p.digest == digest => p.clone(),
                _ => {
                    let (rows, next) = self.read_page(base, &url, plan, bytes).await?;
                    Page { url: url.clone(), digest, next, rows: Arc::new(rows) }
                }
            };
            let next = page.next.clone();
            pages.push(page);
            match (next, &plan.pagination) {
                (Some(n), Some(Paging::Next { max_pages, .. } | Paging::Marker { max_pages, .. })) => {
                    check_pages(&url, pages.len() as u32, *max_pages)?;
                    url = n;
                }
                _ => return Ok(pages),
            }
        }
    }

    /// Parse and translate one page (on a blocking thread: a page may hold thousands of
    /// objects), and find the next page's URL.
    async fn read_page(&self, base: &Url, url: &Url, plan: &Plan, bytes: Vec<u8>) -> Result<PageRead, PollError> {
        let translator = plan.translator.clone();
        let items_path = plan.items.clone();
        let pagination = plan.pagination.clone();
        let (base, url) = (base.clone(), url.clone());
        let slots = plan.tables.len();
        let work = move || -> Result<PageRead, PollError> {
            let text = url.to_string();
            let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| PollError::NotJson {
                url: text.clone(),
                line: e.line(),
                column: e.column(),
                message: describe_json(&e),
            })?;
            let shape = |message: String| PollError::Shape { url: text.clone(), message };
            let where_ = items_path.as_ref().map_or_else(|| "the answer".to_string(), ToString::to_string);
            let list = match &items_path {
                Some(path) => path.get(&body).ok_or_else(|| shape(format!("no `{where_}` in the answer")))?,
                None => &body,
            };
            let serde_json::Value::Array(items) = list else {
                return Err(shape(format!("`{where_}` is {}, not a list", kind(list))));
            };
            let mut rows: Vec<Vec<Vec<Value>>> = vec![Vec::new(); slots];
            for item in items {
                translator.translate_with(item, &mut |slot, row| rows[slot].push(row));
            }
            let next = match &pagination {
                None => None,
                Some(Paging::Next { link, .. }) => {
                    next_link(link.get(&body)).map(|href| join_link(&base, &url, href).map_err(shape)).transpose()?
                }
                // Only an empty page ends a marker listing: services cap `limit` silently
                // (nova, neutron and cinder at 1,000), so a short page proves nothing.
                Some(Paging::Marker { param, field, .. }) => {
                    items.last().and_then(|last| field.get(last)).map(|marker| {
                        let marker = match marker {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let kept: Vec<(String, String)> =
                            url.query_pairs().filter(|(k, _)| k != param).map(|(k, v)| (k.into(), v.into())).collect();
                        let mut next = url.clone();
                        next.query_pairs_mut().clear().extend_pairs(kept).append_pair(param, &marker);
                        next
                    })
                }
            };
            // A next link may not send the credentials to another host.
            if let Some(n) = &next
                && n.origin() != base.origin()
            {
                return Err(shape(format!("the next page `{n}` is not on {}", base.origin().ascii_serialization())));
            }
            Ok((rows, next))
        };
        tokio::task::spawn_blocking(work).await.map_err(|e| PollError::Shape {
            url: plan.path.clone(),
            message: format!("the page could not be read: {e}"),
        })?
    }

    /// GET `url`, with the auth, one fresh Keystone token after a 401, and the size limit.
    async fn get_bytes(&self, url: &Url) -> Result<Vec<u8>, PollError> {
        let text = url.to_string();
        for attempt in 0..2 {
            let mut request = self.service.client.get(url.clone()).headers(self.service.headers.clone());
            request = match &self.service.auth {
                Auth::None => request,
                Auth::Bearer(token) => request.bearer_auth(token.expose()),
                Auth::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
                Auth::Keystone(k) => {
                    let token = k.token(&self.service.client, attempt > 0).await?;
                    request.header("X-Auth-Token", token.value.expose())
                }
            };
            let response = request.send().await.map_err(|e| self.request_error(&text, &e))?;
            let status = response.status().as_u16();
            if status == 401 {
                if attempt == 0 && matches!(self.service.auth, Auth::Keystone(_)) {
                    continue;
                }
                return Err(PollError::Unauthorized { url: text, status });
            }
            if !response.status().is_success() {
                return Err(PollError::Status { url: text, status });
            }
            return self.read_limited(&text, response).await;
        }
        Err(PollError::Unauthorized { url: text, status: 401 })
    }

    async fn read_limited(&self, url: &str, mut response: reqwest::Response) -> Result<Vec<u8>, PollError> {
        let too_large = || PollError::TooLarge { url: url.to_string(), limit: self.service.max_bytes };
        if response.content_length().is_some_and(|n| n > self.service.max_bytes) {
            return Err(too_large());
        }
        // The header is the service's word, not a fact: preallocate at most 1 MiB.
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0).min(1 << 20) as usize);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_error(url, &e))? {
            if (body.len() + chunk.len()) as u64 > self.service.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn request_error(&self, url: &str, e: &reqwest::Error) -> PollError {
        if e.is_timeout() {
            PollError::Timeout { url: url.to_string(), seconds: self.service.timeout.as_secs() }
        } else {
            PollError::Connect { url: url.to_string(), message: describe(e) }
        }
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A JSON error's message without the " at line L column C" serde_json appends (the
/// callers say the position once, as fields).
pub fn describe_json(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The next page's link: a string, or the `href` of the `rel: next` entry of a link list.
fn next_link(v: Option<&serde_json::Value>) -> Option<&str> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Array(links) => links
            .iter()
            .find(|l| l.get("rel").and_then(|r| r.as_str()) == Some("next"))
            .and_then(|l| l.get("href")?.as_str()),
        _ => None,
    }
}

/// Resolve a next link. A path from the root (glance's `/v2/images?marker=..`) is taken
/// relative to the endpoint when the endpoint has a path prefix the link lacks, as the
/// OpenStack clients do.
fn join_link(base: &Url, current: &Url, href: &str) -> Result<Url, String> {
    let prefixed = href.starts_with('/') && base.path() != "/" && !href.starts_with(base.path());
    if prefixed { base.join(href.trim_start_matches('/')) } else { current.join(href) }
        .map_err(|e| format!("next link `{href}`: {e}"))
}

fn check_pages(url: &Url, pages: u32, max: u32) -> Result<(), PollError> {
    if pages >= max { Err(PollError::TooManyPages { url: url.to_string(), max }) } else { Ok(()) }
}

fn paging(p: &Pagination) -> Result<Paging, String> {
    let max_pages = p.max_pages.unwrap_or(DEFAULT_MAX_PAGES).max(1);
    match (&p.next, &p.marker) {
        (Some(next), None) => Ok(Paging::Next { link: field_path(next)?, max_pages }),
        (None, Some(param)) => Ok(Paging::Marker {
            param: param.clone(),
            field: field_path(p.marker_field.as_deref().unwrap_or("id"))?,
            limit: p.limit,
            max_pages,
        }),
        _ => Err("give exactly one of `next` and `marker`".into()),
    }
}

/// An absolute http(s) URL, with a trailing `/` so relative paths append to it.
pub(crate) fn absolute(field: &'static str, url: &str) -> Result<Url, HttpDriverError> {
    let bad = |message: String| HttpDriverError::BadUrl { field, url: url.to_string(), message };
    let mut parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https are supported".into()));
    }
    // Credentials belong in the Secret, and a URL is printed in every error.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(HttpDriverError::BadUrl {
            field,
            url: "<a URL with a user name or password>".into(),
            message: "put credentials in the Secret, not in the URL".into(),
        });
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_come_as_strings_or_link_lists() {
        let j = serde_json::json!([{"rel": "self", "href": "a"}, {"rel": "next", "href": "b"}]);
        assert_eq!(next_link(Some(&j)), Some("b"));
        assert_eq!(next_link(Some(&serde_json::json!("/v2/images?marker=x"))), Some("/v2/images?marker=x"));
        assert_eq!(next_link(Some(&serde_json::json!(null))), None);
        assert_eq!(next_link(Some(&serde_json::json!([{"rel": "self", "href": "a"}]))), None);
        assert_eq!(next_link(None), None);
        let base = Url::parse("http://h/image/").unwrap();
        let page = base.join("v2/images").unwrap();
        assert_eq!(
            join_link(&base, &page, "/v2/images?marker=x").unwrap().as_str(),
            "http://h/image/v2/images?marker=x"
        );
        let root = Url::parse("http://h/").unwrap();
        assert_eq!(join_link(&root, &page, "/v2/images?marker=x").unwrap().as_str(), "http://h/v2/images?marker=x");
        assert_eq!(
            join_link(&base, &page, "http://h/image/v2/images?m=1").unwrap().as_str(),
            "http://h/image/v2/images?m=1"
        );
    }

    #[test]
    fn base_urls_are_absolute_and_end_in_a_slash() {
        assert_eq!(
            absolute("x", "http://h:1/v2.1").unwrap().join("servers/detail").unwrap().as_str(),
            "http://h:1/v2.1/servers/detail"
        );
        assert!(absolute("x", "ftp://h").is_err());
        assert!(absolute("x", "servers").is_err());
    }

    #[test]
    fn pagination_takes_one_style() {
        assert!(paging(&Pagination::default()).is_err());
        let both = Pagination { next: Some("n".into()), marker: Some("marker".into()), ..Default::default() };
        assert!(paging(&both).is_err());
    }
}
