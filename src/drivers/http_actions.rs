//! The `http` driver's executor: the actions of `HttpSource.actions` (the shipped nova and
//! neutronv2 actions, and any webhook described in a manifest), each one request made from
//! its templates and the call's arguments, sent with the service's auth (or, for one call,
//! the `os.auth` credentials of the context) and the context's `header.NAME` headers.
//!
//! Everything that can be checked is checked before any request: the arity, every argument
//! a template names, the context's headers and credentials, the URL (on the service's
//! origin, under its base URL). Arguments cannot change a request's shape: they are
//! URL-encoded in paths and queries, and a body is built as JSON. Errors carry the service's
//! own message (clipped, and with every secret the call used replaced by `<hidden>`), never a
//! header or a token.

use super::credentials::{Credentials, SecretValue};
use super::execute::{ActionCall, ActionInfo, ActionOutcome, ExecError, Executor, HEADER_PREFIX, OS_AUTH};
use super::http::{Auth, Base, HttpDriverError, PollError, Service, absolute, describe, describe_json};
use super::keystone::{Keystone, KeystoneError};
use congress_model::resources::{HttpAction, HttpSource};
use futures::future::BoxFuture;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::collections::BTreeMap;

/// The longest service message quoted in an error, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;
/// The most of an error answer read to find its message.
const MAX_ERROR_BODY: usize = 64 << 10;
/// Headers a context may not set: the client's framing, and the auth (use `os.auth`).
const RESERVED_HEADERS: &[&str] =
    &["host", "content-length", "transfer-encoding", "connection", "authorization", "x-auth-token"];

/// A configured `http` datasource's actions.
#[derive(Debug)]
pub struct HttpExecutor {
    /// The Datasource's name, for errors (default `http`).
    name: String,
    service: Service,
    actions: Vec<Action>,
}

/// One action, its templates parsed.
#[derive(Debug)]
struct Action {
    info: ActionInfo,
    method: reqwest::Method,
    path: Template,
    query: Vec<(String, Template)>,
    body: Option<JsonTemplate>,
    conflict_is_success: bool,
    list_edit: Option<Edit>,
}

/// A read-modify-write of one list.
#[derive(Debug)]
struct Edit {
    field: Vec<String>,
    value: JsonTemplate,
    add: bool,
}

impl HttpExecutor {
    /// Validate the actions of `source` (and its connection settings, as [`super::http::HttpDriver::new`]
    /// does) with the datasource's `config` and credentials.
    pub fn new(
        source: &HttpSource,
        config: &BTreeMap<String, String>,
        credentials: &Credentials,
    ) -> Result<HttpExecutor, HttpDriverError> {
        let service = Service::new(source, config, credentials)?;
        let actions = source.actions.iter().map(Action::new).collect::<Result<_, _>>()?;
        Ok(HttpExecutor { name: "http".into(), service, actions })
    }

    /// Name the Datasource (in errors: "service `nova` offers no action ...").
    pub fn with_name(mut self, name: impl Into<String>) -> HttpExecutor {
        self.name = name.into();
        self
    }

    /// The action `name` is, and what a family's `*` matched: an exact name before a family,
    /// the longest family first.
    fn find<'n>(&self, name: &'n str) -> Option<(&Action, Option<&'n str>)> {
        if let Some(a) = self.actions.iter().find(|a| !a.info.name.ends_with('*') && a.info.name == name) {
            return Some((a, None));
        }
        self.actions
            .iter()
            .filter(|a| a.info.name.ends_with('*') && a.info.matches(name))
            .max_by_key(|a| a.info.name.len())
            .map(|a| (a, Some(&name[a.info.name.len() - 1..])))
    }

    async fn run(&self, call: ActionCall) -> Result<ActionOutcome, ExecError> {
        let (action, family) = self
            .find(&call.action)
            .ok_or_else(|| ExecError::UnknownAction { service: self.name.clone(), action: call.action.clone() })?;
        let bad = |message: String| ExecError::BadArguments { action: call.action.clone(), message };
        if let Some(suffix) = family
            && !suffix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        {
            return Err(bad(format!("`{suffix}` is not an action name (letters, digits, `-`, `_`, `:`, `.`)")));
        }
        let declared = &action.info.args;
        if !declared.is_empty() && call.positional.len() != declared.len() {
            return Err(bad(format!(
                "takes {} argument{} ({}), got {}",
                declared.len(),
                if declared.len() == 1 { "" } else { "s" },
                declared.join(", "),
                call.positional.len()
            )));
        }
        let args = Args { family, positional: &call.positional, named: &call.named };
        let path = render_path(&action.path, &args).map_err(bad)?;
        let query: Vec<(String, String)> = action
            .query
            .iter()
            .map(|(k, t)| Ok((k.clone(), render_text(t, &args)?)))
            .collect::<Result<_, String>>()
            .map_err(bad)?;
        let body = action.body.as_ref().map(|b| render_body(b, &args)).transpose().map_err(bad)?;
        let edit_value = action.list_edit.as_ref().map(|e| render_json(&e.value, &args)).transpose().map_err(bad)?;

        // The context: its headers, then its credentials, before anything is sent.
        let mut secrets: Vec<SecretValue> = self.service_secrets();
        let mut headers = self.service.headers.clone();
        for (name, value) in call.context.headers() {
            let key = format!("{HEADER_PREFIX}{name}");
            let bad = |message: &str| ExecError::BadContext { key: key.clone(), message: message.into() };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a valid header name"))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(bad("this header is set by the driver (credentials go in `os.auth`)"));
            }
            let mut v =
                HeaderValue::from_str(value.expose()).map_err(|_| bad("the value is not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(header, v);
            secrets.push(value.clone());
        }
        let session = match &call.context.os_auth {
            Some(auth) => {
                let (session, used) = self.os_auth(auth)?;
                secrets.extend(used);
                session
            }
            None => Session::Own,
        };

        // Auth and endpoint (resolved in a dry run too: they are part of what is checked).
        let token = self.token(&session, false).await?;
        if let Some(t) = &token {
            secrets.push(t.clone());
        }
        let catalog = match &session {
            Session::Keystone(k) => Some(k.token(&self.service.client, false).await.map_err(override_error)?),
            _ => None,
        };
        let base = self.service.base_url(catalog.as_ref()).await.map_err(|e| match e {
            PollError::Keystone(k) if catalog.is_some() => override_error(k),
            other => poll_error(other),
        })?;
        let url = join(&base, &path, &query).map_err(bad)?;
        let shown = shown(&base, &url);
        let method = &action.method;
        let request = Request { session: &session, headers: &headers, secrets: &secrets, first: token };

        if let (Some(edit), Some(value)) = (&action.list_edit, edit_value) {
            if call.dry_run {
                let (verb, prep) = if edit.add { ("adding", "to") } else { ("removing", "from") };
                return Ok(ActionOutcome {
                    summary: format!(
                        "dry run: would GET {shown} and {method} it back, {verb} {} {prep} {}",
                        short(&value),
                        edit.field.join(".")
                    ),
                });
            }
            return self.edit_list(&request, action, edit, value, &url, &shown).await;
        }
        let what = format!("{method} {shown}");
        if call.dry_run {
            return Ok(ActionOutcome { summary: format!("dry run: would {what}") });
        }
        let response = self.send(&request, method.clone(), &url, body.as_ref(), &what).await?;
        self.outcome(response, action.conflict_is_success, &what, &secrets).await
    }

    /// GET the list, change it, and send it back when it changed.
    async fn edit_list(
        &self,
        request: &Request<'_>,
        action: &Action,
        edit: &Edit,
        value: Value,
        url: &Url,
        shown: &str,
    ) -> Result<ActionOutcome, ExecError> {
        let get = format!("GET {shown}");
        let response = self.send(request, reqwest::Method::GET, url, None, &get).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.failure(response, &get, request.secrets).await);
        }
        let bytes = read_limited(response, self.service.max_bytes as usize)
            .await
            .map_err(|message| ExecError::Transient { summary: get.clone(), message })?
            .ok_or_else(|| ExecError::Transient {
                summary: get.clone(),
                message: format!("the answer is larger than {} bytes", self.service.max_bytes),
            })?;
        let field = edit.field.join(".");
        let shape = |message: String| ExecError::Transient { summary: get.clone(), message };
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| shape(format!("the answer is not JSON: {}", describe_json(&e))))?;
        let list = edit
            .field
            .iter()
            .try_fold(&answer, |v, key| v.get(key))
            .and_then(Value::as_array)
            .ok_or_else(|| shape(format!("the answer has no list at `{field}`")))?;
        let present = list.contains(&value);
        if present == edit.add {
            let state = if edit.add { "already in" } else { "not in" };
            return Ok(ActionOutcome {
                summary: format!("{get}: {} {state} {field}, nothing to change", short(&value)),
            });
        }
        let mut list = list.clone();
        if edit.add {
            list.push(value);
        } else {
            list.retain(|v| *v != value);
        }
        let body = edit.field.iter().rev().fold(Value::Array(list), |inner, key| {
            let mut object = serde_json::Map::new();
            object.insert(key.clone(), inner);
            Value::Object(object)
        });
        let what = format!("{} {shown}", action.method);
        let response = self.send(request, action.method.clone(), url, Some(&body), &what).await?;
        self.outcome(response, action.conflict_is_success, &what, request.secrets).await
    }

    /// Send one request with the session's auth; a 401 gets one fresh Keystone token.
    async fn send(
        &self,
        request: &Request<'_>,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<reqwest::Response, ExecError> {
        for attempt in 0..2 {
            let mut builder = self.service.client.request(method.clone(), url.clone()).headers(request.headers.clone());
            if let Some(b) = body {
                builder = builder.json(b);
            }
            let token = match (attempt, &request.first) {
                (0, Some(t)) => Some(t.clone()),
                _ => self.token(request.session, attempt > 0).await?,
            };
            builder = match (&token, request.session, &self.service.auth) {
                (Some(t), _, _) => builder.header("X-Auth-Token", sensitive(t)?),
                (None, Session::Own, Auth::Bearer(t)) => builder.bearer_auth(t.expose()),
                (None, Session::Own, Auth::Basic(user, password)) => builder.basic_auth(user, Some(password.expose())),
                (None, _, _) => builder,
            };
            let response = builder.send().await.map_err(|e| self.request_error(what, &e))?;
            if response.status().as_u16() == 401 && self.renewable(request.session) {
                if attempt == 0 {
                    continue;
                }
                let message = message_of(response, request.secrets).await;
                return Err(ExecError::Unauthorized(format!("{what}: HTTP 401 after a fresh token: {message}")));
            }
            return Ok(response);
        }
        Err(ExecError::Unauthorized(format!("{what}: HTTP 401 after a fresh token")))
    }

    /// What an answer means: success, an idempotent 409, or the error.
    async fn outcome(
        &self,
        response: reqwest::Response,
        conflict_is_success: bool,
        what: &str,
        secrets: &[SecretValue],
    ) -> Result<ActionOutcome, ExecError> {
        let status = response.status();
        if status.is_success() {
            return Ok(ActionOutcome { summary: format!("{what}: {}", status_text(status)) });
        }
        if status == reqwest::StatusCode::CONFLICT && conflict_is_success {
            return Ok(ActionOutcome { summary: format!("{what}: {} (already in that state)", status_text(status)) });
        }
        Err(self.failure(response, what, secrets).await)
    }

    /// The error of a failed answer, with the service's message.
    async fn failure(&self, response: reqwest::Response, what: &str, secrets: &[SecretValue]) -> ExecError {
        let status = response.status().as_u16();
        let message = message_of(response, secrets).await;
        match status {
            401 | 403 => ExecError::Unauthorized(format!("{what}: HTTP {status}: {message}")),
            408 | 429 | 500.. => {
                ExecError::Transient { summary: what.to_string(), message: format!("HTTP {status}: {message}") }
            }
            _ => ExecError::Refused { summary: what.to_string(), status, message },
        }
    }

    /// The token this request sends, if it sends one (`renew`: after a 401).
    async fn token(&self, session: &Session, renew: bool) -> Result<Option<SecretValue>, ExecError> {
        Ok(match session {
            Session::Own => match &self.service.auth {
                Auth::Keystone(k) => Some(k.token(&self.service.client, renew).await.map_err(keystone_error)?.value),
                _ => None,
            },
            Session::Keystone(k) => Some(k.token(&self.service.client, renew).await.map_err(override_error)?.value),
            Session::Token(t) => Some(t.clone()),
        })
    }

    fn renewable(&self, session: &Session) -> bool {
        match session {
            Session::Own => matches!(self.service.auth, Auth::Keystone(_)),
            Session::Keystone(k) => k.renewable(),
            Session::Token(_) => false,
        }
    }

    /// The secrets of the service's own auth (to hide them should a service quote them).
    fn service_secrets(&self) -> Vec<SecretValue> {
        match &self.service.auth {
            Auth::Bearer(t) => vec![t.clone()],
            Auth::Basic(_, p) => vec![p.clone()],
            _ => Vec::new(),
        }
    }

    /// A session for `os.auth`: a JSON object of Keystone credentials, or a `token`; and
    /// its secret values.
    fn os_auth(&self, value: &SecretValue) -> Result<(Session, Vec<SecretValue>), ExecError> {
        const KEYS: &[&str] = &[
            "auth_url",
            "username",
            "password",
            "project_name",
            "tenant_name",
            "user_domain_name",
            "project_domain_name",
            "application_credential_id",
            "application_credential_secret",
            "token",
        ];
        let bad = |message: String| ExecError::BadContext { key: OS_AUTH.into(), message };
        // serde_json's messages may quote the text: say where only.
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(value.expose())
            .map_err(|e| bad(format!("not a JSON object of credentials (line {}, column {})", e.line(), e.column())))?;
        let mut values = BTreeMap::new();
        for (key, v) in parsed {
            let Some(known) = KEYS.iter().find(|k| **k == key) else {
                return Err(bad(format!("a key is not one of {}", KEYS.join(", "))));
            };
            let Value::String(text) = v else { return Err(bad(format!("`{known}` is not a string"))) };
            values.insert(known.to_string(), text);
        }
        let secrets: Vec<SecretValue> = ["password", "application_credential_secret", "token"]
            .iter()
            .filter_map(|k| values.get(*k).map(SecretValue::new))
            .collect();
        let auth_url = match values.remove("auth_url") {
            Some(url) => {
                absolute("os.auth auth_url", &url)
                    .map_err(|_| bad("`auth_url` is not an absolute http(s) URL without user info".into()))?;
                Some(url)
            }
            None => self.service.auth_url.clone(),
        };
        if let Some(token) = values.remove("token") {
            if !values.is_empty() {
                return Err(bad("give `token` (and `auth_url`) alone, or credentials".into()));
            }
            let token = SecretValue::new(token);
            return match (&self.service.base, auth_url) {
                (_, Some(url)) => Ok((Session::Keystone(Keystone::with_token(&url, token)), secrets)),
                (Base::Fixed(_), None) => Ok((Session::Token(token), secrets)),
                (Base::Catalog { .. }, None) => {
                    Err(bad("no `auth_url`, and the datasource has none (needed for the catalog)".into()))
                }
            };
        }
        let url = auth_url.ok_or_else(|| bad("no `auth_url`, and the datasource has none".into()))?;
        let credentials = Credentials::from_strings(values);
        Keystone::new(&BTreeMap::new(), &credentials, Some(&url))
            .map(|k| (Session::Keystone(k), secrets))
            .map_err(|e| bad(e.to_string()))
    }

    fn request_error(&self, what: &str, e: &reqwest::Error) -> ExecError {
        let message =
            if e.is_timeout() { format!("no answer within {} s", self.service.timeout.as_secs()) } else { describe(e) };
        ExecError::Transient { summary: what.to_string(), message }
    }
}

impl Executor for HttpExecutor {
    fn actions(&self) -> Vec<ActionInfo> {
        self.actions.iter().map(|a| a.info.clone()).collect()
    }

    fn execute(&self, call: ActionCall) -> BoxFuture<'_, Result<ActionOutcome, ExecError>> {
        Box::pin(self.run(call))
    }
}

/// Whose credentials a call uses.
enum Session {
    /// The driver's.
    Own,
    /// `os.auth`'s, for this call only (the session is dropped with it).
    Keystone(Keystone),
    /// `os.auth`'s ready token, sent as it is (a fixed base URL needs no catalog).
    Token(SecretValue),
}

/// What every request of one call shares.
struct Request<'a> {
    session: &'a Session,
    headers: &'a HeaderMap,
    secrets: &'a [SecretValue],
    /// The token resolved before the first request.
    first: Option<SecretValue>,
}

fn sensitive(token: &SecretValue) -> Result<HeaderValue, ExecError> {
    let mut v = HeaderValue::from_str(token.expose())
        .map_err(|_| ExecError::Unauthorized("the token is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn keystone_error(e: KeystoneError) -> ExecError {
    match e {
        KeystoneError::Request { .. } | KeystoneError::BadAnswer { .. } => {
            ExecError::Transient { summary: "Keystone".into(), message: e.to_string() }
        }
        KeystoneError::Status { status, .. } if status >= 500 || status == 429 => {
            ExecError::Transient { summary: "Keystone".into(), message: e.to_string() }
        }
        KeystoneError::Refused { .. } | KeystoneError::Status { .. } => ExecError::Unauthorized(e.to_string()),
        KeystoneError::NoEndpoint { .. } | KeystoneError::Credentials(_) | KeystoneError::NoAuthUrl => {
            ExecError::Unavailable(e.to_string())
        }
    }
}

/// A Keystone error of the `os.auth` session: the context's fault where it is not Keystone's.
fn override_error(e: KeystoneError) -> ExecError {
    match e {
        KeystoneError::Refused { .. } => ExecError::Unauthorized(format!("`os.auth`: {e}")),
        KeystoneError::Credentials(_) | KeystoneError::NoAuthUrl | KeystoneError::NoEndpoint { .. } => {
            ExecError::BadContext { key: OS_AUTH.into(), message: e.to_string() }
        }
        other => keystone_error(other),
    }
}

fn poll_error(e: PollError) -> ExecError {
    match e {
        PollError::Keystone(k) => keystone_error(k),
        other => ExecError::Unavailable(other.to_string()),
    }
}

/// `202 Accepted`.
fn status_text(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A value as a summary shows it: a string bare, anything else as JSON, clipped.
fn short(v: &Value) -> String {
    clip(&match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The service's message in an error answer: found, clipped, its secrets hidden.
async fn message_of(response: reqwest::Response, secrets: &[SecretValue]) -> String {
    let plain = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let bytes = read_limited(response, MAX_ERROR_BODY).await.ok().flatten().unwrap_or_default();
    redact(&clip(&service_message(&bytes, plain)), secrets)
}

/// At most `limit` bytes of an answer (`None`: it is larger).
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Option<Vec<u8>>, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

impl Action {
    fn new(a: &HttpAction) -> Result<Action, HttpDriverError> {
        let bad = |field: &'static str, message: String| HttpDriverError::BadAction {
            action: a.name.clone(),
            field,
            message,
        };
        let family = a.name.ends_with('*');
        let prefix = a.name.trim_end_matches('*');
        if prefix.is_empty() || prefix.contains('*') {
            return Err(bad("name", "a name, with at most a trailing `*`".into()));
        }
        let method = match a.method.as_deref().unwrap_or("POST") {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| bad("method", e.to_string()))?
            }
            other => return Err(bad("method", format!("`{other}` is not GET, POST, PUT, PATCH or DELETE"))),
        };
        let check = |field: &'static str, t: &Template| -> Result<(), HttpDriverError> {
            if !family && t.keys().any(|k| *k == Key::Action) {
                return Err(bad(field, "`{action}` is only for a family (a name ending in `*`)".into()));
            }
            if !a.args.is_empty()
                && let Some(i) = t.keys().find_map(|k| match k {
                    Key::Position(i) if *i >= a.args.len() => Some(*i),
                    _ => None,
                })
            {
                return Err(bad(field, format!("`{{{i}}}`: the action has {} arguments", a.args.len())));
            }
            Ok(())
        };
        let path = Template::parse(&a.path).map_err(|m| bad("path", m))?;
        check("path", &path)?;
        check_absolute(&path).map_err(|m| bad("path", m))?;
        let mut query = Vec::new();
        for (k, v) in &a.query {
            let t = Template::parse(v).map_err(|m| bad("query", m))?;
            check("query", &t)?;
            query.push((k.clone(), t));
        }
        let body = a.body.as_ref().map(JsonTemplate::parse).transpose().map_err(|m| bad("body", m))?;
        if let Some(b) = &body {
            let mut templates = Vec::new();
            b.templates(&mut templates);
            for t in templates {
                check("body", t)?;
            }
        }
        let list_edit = match &a.list_edit {
            None => None,
            Some(e) => {
                if body.is_some() {
                    return Err(bad("listEdit", "an action with `listEdit` has no `body`".into()));
                }
                let field: Vec<String> = e.field.split('.').map(str::to_string).collect();
                if field.iter().any(String::is_empty) {
                    return Err(bad("listEdit", format!("`{}` is not a dotted path of keys", e.field)));
                }
                let (text, add) = match (&e.add, &e.remove) {
                    (Some(t), None) => (t, true),
                    (None, Some(t)) => (t, false),
                    _ => return Err(bad("listEdit", "give exactly one of `add` and `remove`".into())),
                };
                let value = JsonTemplate::parse(&Value::String(text.clone())).map_err(|m| bad("listEdit", m))?;
                let mut templates = Vec::new();
                value.templates(&mut templates);
                for t in templates {
                    check("listEdit", t)?;
                }
                Some(Edit { field, value, add })
            }
        };
        Ok(Action {
            info: ActionInfo {
                name: a.name.clone(),
                args: a.args.clone(),
                description: a.description.clone().unwrap_or_default(),
            },
            method,
            path,
            query,
            body,
            conflict_is_success: a.conflict_is_success,
            list_edit,
        })
    }
}

// ---- Templates: pure logic ----

/// What a placeholder names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Position(usize),
    Name(String),
    /// What a family's `*` matched.
    Action,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Position(i) => write!(f, "argument {i}"),
            Key::Name(n) => write!(f, "argument `{n}`"),
            Key::Action => f.write_str("the action"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Arg(Key),
}

/// A string with placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template(Vec<Part>);

impl Template {
    /// `{0}`, `{NAME}`, `{action}`; `{{` and `}}` are literal braces.
    fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(format!("`{text}`: a lone `}}` (write `}}}}` for a brace)")),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("`{text}`: a `{{` is not closed")),
                        }
                    }
                    let key = if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
                        Key::Position(name.parse().map_err(|_| format!("`{{{name}}}` is too large"))?)
                    } else if name == "action" {
                        Key::Action
                    } else if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        Key::Name(name)
                    } else {
                        return Err(format!(
                            "`{text}`: `{{{name}}}` is not a placeholder ({{0}}, {{NAME}}, {{action}})"
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Arg(key));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template(parts))
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.0.iter().filter_map(|p| match p {
            Part::Arg(k) => Some(k),
            Part::Text(_) => None,
        })
    }

    /// The key, when the template is exactly one placeholder.
    fn whole(&self) -> Option<&Key> {
        match self.0.as_slice() {
            [Part::Arg(k)] => Some(k),
            _ => None,
        }
    }

    /// The literal text, when there is no placeholder.
    fn literal(&self) -> Option<String> {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Arg(_) => None,
            })
            .collect()
    }
}

/// A JSON body with placeholders.
#[derive(Clone, Debug, PartialEq)]
enum JsonTemplate {
    Literal(Value),
    /// A string that is exactly one placeholder: the argument's JSON value.
    Whole(Key),
    /// A string with placeholders in text.
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(Template, JsonTemplate)>),
}

impl JsonTemplate {
    fn parse(v: &Value) -> Result<JsonTemplate, String> {
        Ok(match v {
            Value::String(s) => {
                let t = Template::parse(s)?;
                match (t.whole(), t.literal()) {
                    (Some(k), _) => JsonTemplate::Whole(k.clone()),
                    (None, Some(text)) => JsonTemplate::Literal(Value::String(text)),
                    (None, None) => JsonTemplate::Text(t),
                }
            }
            Value::Array(items) => {
                JsonTemplate::Array(items.iter().map(JsonTemplate::parse).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => JsonTemplate::Object(
                map.iter()
                    .map(|(k, v)| Ok((Template::parse(k)?, JsonTemplate::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => JsonTemplate::Literal(other.clone()),
        })
    }

    /// Every template in it (keys included), to check what they name.
    fn templates<'t>(&'t self, out: &mut Vec<&'t Template>) {
        match self {
            JsonTemplate::Text(t) => out.push(t),
            JsonTemplate::Array(items) => items.iter().for_each(|i| i.templates(out)),
            JsonTemplate::Object(entries) => {
                for (k, v) in entries {
                    out.push(k);
                    v.templates(out);
                }
            }
            JsonTemplate::Whole(_) | JsonTemplate::Literal(_) => {}
        }
    }
}

/// A call's arguments, as templates see them.
struct Args<'a> {
    family: Option<&'a str>,
    positional: &'a [Value],
    named: &'a BTreeMap<String, Value>,
}

impl Args<'_> {
    fn value(&self, key: &Key) -> Result<Value, String> {
        match key {
            Key::Position(i) => self.positional.get(*i).cloned().ok_or_else(|| format!("no {key}")),
            Key::Name(n) => self.named.get(n).cloned().ok_or_else(|| format!("no {key}")),
            Key::Action => self.family.map(|f| Value::String(f.to_string())).ok_or_else(|| format!("no {key}")),
        }
    }

    /// The argument as text: strings, numbers and booleans only.
    fn text(&self, key: &Key) -> Result<String, String> {
        match self.value(key)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err(format!("{key} is null, not text")),
            Value::Array(_) => Err(format!("{key} is a list, not text")),
            Value::Object(_) => Err(format!("{key} is an object, not text")),
        }
    }
}

fn render_text(t: &Template, args: &Args) -> Result<String, String> {
    let mut out = String::new();
    for part in &t.0 {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Arg(k) => out.push_str(&args.text(k)?),
        }
    }
    Ok(out)
}

/// A path: every argument one encoded piece of a segment; none empty, `.` or `..`.
fn render_path(t: &Template, args: &Args) -> Result<String, String> {
    let mut out = String::new();
    for part in &t.0 {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Arg(k) => {
                let text = args.text(k)?;
                if text.is_empty() || text == "." || text == ".." {
                    return Err(format!("{k} (`{text}`) cannot be part of a path"));
                }
                out.push_str(&encode(&text));
            }
        }
    }
    Ok(out)
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn render_json(t: &JsonTemplate, args: &Args) -> Result<Value, String> {
    Ok(match t {
        JsonTemplate::Literal(v) => v.clone(),
        JsonTemplate::Whole(k) => args.value(k)?,
        JsonTemplate::Text(t) => Value::String(render_text(t, args)?),
        JsonTemplate::Array(items) => {
            Value::Array(items.iter().map(|i| render_json(i, args)).collect::<Result<_, _>>()?)
        }
        JsonTemplate::Object(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let key = render_text(k, args)?;
                if map.insert(key.clone(), render_json(v, args)?).is_some() {
                    return Err(format!("the body has key `{key}` twice"));
                }
            }
            Value::Object(map)
        }
    })
}

/// A body: a body that is one placeholder takes an object, or a string holding one.
fn render_body(t: &JsonTemplate, args: &Args) -> Result<Value, String> {
    if let JsonTemplate::Whole(k) = t {
        return match args.value(k)? {
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(v @ Value::Object(_)) => Ok(v),
                Ok(_) => Err(format!("{k} is not a JSON object")),
                Err(e) => Err(format!("{k} is not JSON: {}", describe_json(&e))),
            },
            v @ Value::Object(_) => Ok(v),
            _ => Err(format!("{k} is not an object")),
        };
    }
    render_json(t, args)
}

/// An absolute path template names its origin literally.
fn check_absolute(path: &Template) -> Result<(), String> {
    let head = match path.0.first() {
        Some(Part::Text(t)) => t.to_ascii_lowercase(),
        _ => return Ok(()),
    };
    if !(head.starts_with("http://") || head.starts_with("https://")) {
        return Ok(());
    }
    let rest = head.split_once("://").map_or("", |(_, r)| r);
    if !rest.contains('/') {
        return Err("an absolute URL's host must be written out (no placeholder before its path)".into());
    }
    Ok(())
}

/// The URL of a rendered path: relative ones under `base`, absolute ones on its origin.
fn join(base: &Url, path: &str, query: &[(String, String)]) -> Result<Url, String> {
    let lower = path.to_ascii_lowercase();
    let url = if lower.starts_with("http://") || lower.starts_with("https://") {
        let url = Url::parse(path).map_err(|e| format!("`{path}` is not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a URL with a user name or password is refused".into());
        }
        if url.origin() != base.origin() {
            return Err(format!(
                "`{}` is not on {}",
                url.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            ));
        }
        url
    } else {
        let url = base.join(path.trim_start_matches('/')).map_err(|e| format!("`{path}` is not a path: {e}"))?;
        if !url.as_str().starts_with(base.as_str()) {
            return Err(format!("`{path}` leaves the service's URL"));
        }
        url
    };
    let mut url = url;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// The URL as summaries show it: its path under the base (`servers/vm1/action`).
fn shown(base: &Url, url: &Url) -> String {
    let path = url.path();
    match path.strip_prefix(base.path()) {
        Some(rest) if url.origin() == base.origin() => rest.to_string(),
        _ => path.to_string(),
    }
}

/// The message of an error answer: OpenStack's `{"itemNotFound": {"message": ..}}`,
/// neutron's `{"NeutronError": {"message": ..}}`, `{"error": {"message": ..}}`,
/// `{"message": ..}`, `{"detail": ..}`, `{"error": ".."}`; or a plain-text body.
fn service_message(body: &[u8], plain_text: bool) -> String {
    fn find(v: &Value, depth: u32) -> Option<&str> {
        let object = v.as_object()?;
        for key in ["message", "detail", "error_description", "error", "title", "faultstring"] {
            if let Some(Value::String(s)) = object.get(key) {
                return Some(s);
            }
        }
        if depth == 0 {
            return None;
        }
        object.values().find_map(|v| find(v, depth - 1))
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => find(&v, 2).map_or_else(|| "no message".to_string(), str::to_string),
        Err(_) if plain_text && !body.is_empty() => String::from_utf8_lossy(body).trim().to_string(),
        Err(_) => "no message".into(),
    }
}

/// One line of at most [`MAX_MESSAGE_CHARS`] characters.
fn clip(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

/// `text` with every secret of the call replaced by `<hidden>` (a service may quote them).
fn redact(text: &str, secrets: &[SecretValue]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        let value = s.expose();
        if value.len() >= 4 {
            out = out.replace(value, "<hidden>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args<'a>(positional: &'a [Value], named: &'a BTreeMap<String, Value>) -> Args<'a> {
        Args { family: None, positional, named }
    }

    const HOSTILE: &[&str] =
        &["a\"b", "x/../../admin", "q?x=1", "f#frag", "..", ".", "", "a b%2F", "\"}, \"evil\": {\""];

    #[test]
    fn templates_parse_placeholders_and_escaped_braces() {
        let t = Template::parse("servers/{0}/x{{y}}{name}{action}").unwrap();
        assert_eq!(
            t.0,
            vec![
                Part::Text("servers/".into()),
                Part::Arg(Key::Position(0)),
                Part::Text("/x{y}".into()),
                Part::Arg(Key::Name("name".into())),
                Part::Arg(Key::Action)
            ]
        );
        for bad in ["{", "a}", "{0", "{-x}", "{a b}", "{}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_arguments_are_one_encoded_segment_and_cannot_climb() {
        let named = BTreeMap::new();
        let t = Template::parse("servers/{0}/action").unwrap();
        for arg in HOSTILE {
            let positional = [json!(arg)];
            match render_path(&t, &args(&positional, &named)) {
                Ok(path) => {
                    let base = Url::parse("http://h/compute/v2.1/").unwrap();
                    let url = join(&base, &path, &[]).unwrap();
                    assert_eq!(url.path_segments().unwrap().count(), 5, "{arg} -> {url}");
                    assert!(url.path().starts_with("/compute/v2.1/servers/") && url.path().ends_with("/action"));
                    assert!(url.query().is_none() && url.fragment().is_none(), "{arg} -> {url}");
                }
                Err(e) => assert!(matches!(*arg, "" | "." | ".."), "{arg}: {e}"),
            }
        }
        let positional = [json!("x/../../admin?q#f")];
        assert_eq!(render_path(&t, &args(&positional, &named)).unwrap(), "servers/x%2F..%2F..%2Fadmin%3Fq%23f/action");
        let positional = [json!(7)];
        assert_eq!(render_path(&t, &args(&positional, &named)).unwrap(), "servers/7/action");
        let positional = [json!({"a": 1})];
        assert!(render_path(&t, &args(&positional, &named)).unwrap_err().contains("object"));
    }

    #[test]
    fn bodies_are_built_as_json_so_arguments_cannot_change_their_shape() {
        let t = JsonTemplate::parse(&json!({"metadata": {"{1}": "{2}"}, "note": "set by {1}", "n": 3})).unwrap();
        let named = BTreeMap::new();
        for arg in HOSTILE {
            let positional = [json!("vm"), json!(arg), json!(arg)];
            let body = render_body(&t, &args(&positional, &named)).unwrap();
            assert_eq!(body, json!({"metadata": {*arg: arg}, "note": format!("set by {arg}"), "n": 3}));
        }
        // A whole-string placeholder takes the argument's JSON value.
        let positional = [json!("vm"), json!("k"), json!({"deep": [1, 2]})];
        assert_eq!(render_body(&t, &args(&positional, &named)).unwrap()["metadata"]["k"], json!({"deep": [1, 2]}));
        // Keys that collide after substitution are refused.
        let dup = JsonTemplate::parse(&json!({"{0}": 1, "a": 2})).unwrap();
        let positional = [json!("a")];
        assert!(render_body(&dup, &args(&positional, &named)).unwrap_err().contains("twice"));
    }

    #[test]
    fn a_whole_body_placeholder_takes_an_object_or_a_json_string_of_one() {
        let t = JsonTemplate::parse(&json!("{1}")).unwrap();
        let named = BTreeMap::new();
        let positional = [json!("p1"), json!("{\"port\": {\"admin_state_up\": false}}")];
        assert_eq!(render_body(&t, &args(&positional, &named)).unwrap(), json!({"port": {"admin_state_up": false}}));
        let positional = [json!("p1"), json!({"port": {"name": "x"}})];
        assert_eq!(render_body(&t, &args(&positional, &named)).unwrap(), json!({"port": {"name": "x"}}));
        for not in [json!("[1]"), json!("nope"), json!(3)] {
            let positional = [json!("p1"), not.clone()];
            assert!(render_body(&t, &args(&positional, &named)).is_err(), "{not}");
        }
    }

    #[test]
    fn missing_arguments_are_named() {
        let t = JsonTemplate::parse(&json!({"a": "{0}", "b": "{who}"})).unwrap();
        let named = BTreeMap::from([("who".to_string(), json!("me"))]);
        assert_eq!(render_body(&t, &args(&[], &named)).unwrap_err(), "no argument 0");
        let empty = BTreeMap::new();
        assert_eq!(render_body(&t, &args(&[json!(1)], &empty)).unwrap_err(), "no argument `who`");
        let family = Args { family: Some("reboot"), positional: &[], named: &empty };
        let t = JsonTemplate::parse(&json!({"{action}": null})).unwrap();
        assert_eq!(render_json(&t, &family).unwrap(), json!({"reboot": null}));
    }

    #[test]
    fn absolute_urls_stay_on_the_base_origin_without_user_info() {
        let base = Url::parse("http://h:8/api/").unwrap();
        assert_eq!(join(&base, "http://h:8/other/x", &[]).unwrap().as_str(), "http://h:8/other/x");
        assert!(join(&base, "http://evil:8/x", &[]).unwrap_err().contains("not on"));
        assert!(join(&base, "https://h:8/x", &[]).is_err());
        assert!(join(&base, "http://u:p@h:8/x", &[]).unwrap_err().contains("user name"));
        assert!(join(&base, "../x", &[]).unwrap_err().contains("leaves"));
        let url = join(&base, "/hooks/a", &[("q".into(), "a&b=c#d".into())]).unwrap();
        assert_eq!(url.as_str(), "http://h:8/api/hooks/a?q=a%26b%3Dc%23d");
        assert_eq!(shown(&base, &url), "hooks/a");
        assert!(check_absolute(&Template::parse("http://{0}/x").unwrap()).is_err());
        assert!(check_absolute(&Template::parse("http://h/{0}").unwrap()).is_ok());
    }

    #[test]
    fn actions_are_checked_when_the_executor_is_made() {
        let action = |name: &str, path: &str, args: &[&str]| HttpAction {
            name: name.into(),
            path: path.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        };
        assert!(Action::new(&action("a", "x/{0}", &["id"])).is_ok());
        let e = Action::new(&action("a", "x/{1}", &["id"])).unwrap_err().to_string();
        assert!(e.contains("{1}") && e.contains("1 arguments"), "{e}");
        assert!(Action::new(&action("a", "x/{action}", &[])).unwrap_err().to_string().contains("family"));
        assert!(Action::new(&action("a.*", "x/{action}", &[])).is_ok());
        assert!(Action::new(&action("*", "x", &[])).is_err());
        let mut m = action("a", "x", &[]);
        m.method = Some("TRACE".into());
        assert!(Action::new(&m).is_err());
        let mut both = action("a", "x", &[]);
        both.list_edit = Some(congress_model::resources::ListEdit {
            field: "port.sg".into(),
            add: Some("x".into()),
            remove: Some("y".into()),
        });
        assert!(Action::new(&both).unwrap_err().to_string().contains("exactly one"));
    }

    #[test]
    fn service_messages_are_found_clipped_and_cleaned_of_secrets() {
        let nova = br#"{"conflictingRequest": {"code": 409, "message": "Cannot 'pause' instance"}}"#;
        assert_eq!(service_message(nova, false), "Cannot 'pause' instance");
        let neutron =
            br#"{"NeutronError": {"type": "PortNotFound", "message": "Port p could not be found.", "detail": ""}}"#;
        assert_eq!(service_message(neutron, false), "Port p could not be found.");
        assert_eq!(service_message(br#"{"error": "bad hook"}"#, false), "bad hook");
        assert_eq!(service_message(b"<html>oops</html>", false), "no message");
        assert_eq!(service_message(b"plain words\n", true), "plain words");
        let long = "x".repeat(1000);
        assert_eq!(clip(&long).chars().count(), MAX_MESSAGE_CHARS + 3);
        assert_eq!(clip("a\nb"), "a b");
        let text =
            redact("token tok-canary-1 was refused", &[SecretValue::new("tok-canary-1"), SecretValue::new("ab")]);
        assert_eq!(text, "token <hidden> was refused");
    }

    #[test]
    fn the_shipped_actions_are_valid_and_nova_pause_is_idempotent() {
        for (driver, _) in congress_model::resources::http::PRESETS {
            let source = congress_model::resources::http::preset(driver).unwrap().unwrap();
            for a in &source.actions {
                Action::new(a).unwrap_or_else(|e| panic!("{driver}: {e}"));
            }
        }
        let nova = congress_model::resources::http::preset("nova").unwrap().unwrap();
        let pause = nova.actions.iter().find(|a| a.name == "servers.pause").unwrap();
        assert!(pause.conflict_is_success);
        let pause = Action::new(pause).unwrap();
        let positional = [json!("vm1")];
        let named = BTreeMap::new();
        let body = render_body(pause.body.as_ref().unwrap(), &args(&positional, &named)).unwrap();
        assert_eq!(body, json!({"pause": null}));
    }
}
