//! The `http` driver's settings (a service described entirely in the manifest: where to ask,
//! how to authenticate, how answers become tables), and the configurations shipped for
//! OpenStack's services, which are `http` settings too: `driver: nova` runs `nova.yaml`.

use super::datasource::TableMapping;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A polled HTTP/JSON service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpSource {
    /// The URL requests are relative to (`config.endpoint` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Take the base URL from the Keystone service catalog instead (needs `auth.type: keystone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogEndpoint>,
    #[serde(default)]
    pub auth: HttpAuth,
    /// Seconds one request may take (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// The largest response body read, in bytes (default 64 MiB); a larger one fails the poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// Headers sent with every request (no secrets here: they belong in the Secret).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// One request (with its pages) per root table (none: a service that is only acted on).
    #[serde(default)]
    pub requests: Vec<HttpRequest>,
    /// The actions the service offers to `execute[...]` rules and ActionRequests: each one
    /// request, made from its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<HttpAction>,
}

/// One action as one request. Templates take the action's arguments: `{0}`, `{1}`, ... are
/// the positional arguments, `{NAME}` a named one, `{action}` the part of the action's name
/// that a trailing `*` matched; `{{` and `}}` are literal braces. In `path` and `query`
/// values are URL-encoded (a path argument cannot be empty, `.` or `..`). In `body` (any
/// JSON) a string that is exactly one placeholder becomes the argument's JSON value, and
/// placeholders inside longer strings (and keys) are replaced by the argument's text: the
/// body is built as JSON, never by pasting text, so an argument cannot change its shape. A
/// body that is exactly one placeholder is the whole body: its argument must be an object,
/// or a string holding a JSON object, which is parsed (a Datalog rule passes strings only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpAction {
    /// The action's name (`servers.pause`); a trailing `*` (`servers.*`) offers a family.
    #[schemars(length(min = 1), regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.\-]*\*?$"))]
    pub name: String,
    /// `POST` (default), `PUT`, `PATCH`, `DELETE` or `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(GET|POST|PUT|PATCH|DELETE)$"))]
    pub method: Option<String>,
    /// Relative to the service's base URL (`servers/{0}/action`), or an absolute URL on the
    /// same host.
    #[schemars(length(min = 1))]
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The JSON body (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// The names of the positional arguments, in order (documentation, and the arity check:
    /// a call with fewer fails before any request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// What the action does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A `409 Conflict` answer means the target already is in the state the action asks for
    /// (nova answers 409 to pausing a paused server): the call succeeds, and says so. Only for
    /// actions that set a state; a 409 of any other action is a refusal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conflict_is_success: bool,
    /// Read-modify-write of one list (neutron's port security groups): `GET` the action's
    /// URL, add or remove one value in the list at `field`, and send the list back with
    /// `method` to the same URL as `{"a": {"b": [...]}}` for `field: a.b`. When the list
    /// already is as asked (adding a value it holds, removing one it lacks) nothing is sent.
    /// `body` must be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_edit: Option<ListEdit>,
}

/// The list an action edits, and how (exactly one of `add` and `remove`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListEdit {
    /// Dotted object keys to the list in the `GET` answer (`port.security_groups`).
    #[schemars(length(min = 1))]
    pub field: String,
    /// The value to add, a template (`"{1}"`: the argument's JSON value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
    /// The value to remove, a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<String>,
}

/// Where a service is in the Keystone catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEndpoint {
    /// The service type (`compute`, `network`, `image`, `volumev3`, `identity`).
    #[schemars(length(min = 1))]
    pub service_type: String,
    /// `public` (default), `internal` or `admin` (`config.interface` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The region (`config.region` overrides it; default: the first endpoint of the type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// How requests authenticate. The secrets themselves are keys of the credentials Secret:
/// `token` (bearer); `username`, `password` (basic); for Keystone, `username`, `password`,
/// `project_name`, `user_domain_name`, `project_domain_name` (password auth) or
/// `application_credential_id`, `application_credential_secret`. Names that are not secret
/// (`username`, `project_name`, the domains, `auth_url`) may also be in `config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpAuth {
    /// `none` (default), `bearer`, `basic` or `keystone`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(none|bearer|basic|keystone)$"))]
    pub type_: Option<String>,
    /// Keystone's URL (`https://keystone:5000/v3`; `config.auth_url` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One listing: a path, its query, where the list is in the answer, how to get the next
/// page, and the table its items become.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// Relative to the base URL (`servers/detail`).
    #[schemars(length(min = 1))]
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Query parameters taken from `config` when it has the key (parameter -> config key):
    /// `{all_tenants: all_tenants}` lists every project's servers with admin credentials.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_query: BTreeMap<String, String>,
    /// Dotted path to the list in the answer (`servers`); absent: the answer is the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// The table each item becomes, with its child tables.
    #[serde(flatten)]
    pub table: TableMapping,
}

/// How to ask for the next page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Dotted path to the next page's URL in the answer: a string (`next`, `links.next`), or a
    /// list of `{rel, href}` links whose `rel: next` is taken (`servers_links`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Or: the query parameter that carries the last item's id (`marker`); the listing ends
    /// at an empty page or one shorter than `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    /// The item field whose value is the marker (default `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_field: Option<String>,
    /// Page size sent as `limit` (absent: the service's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// At most this many pages per poll (default 10,000): a service that always answers
    /// with a next link fails the poll instead of looping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
}

/// A shipped configuration that does not parse (a bug of the product, caught by a test).
#[derive(Debug, thiserror::Error)]
#[error("the shipped configuration of driver `{driver}` is invalid: {message}")]
pub struct PresetError {
    pub driver: String,
    pub message: String,
}

/// The drivers shipped as `http` configurations, and their files.
pub const PRESETS: &[(&str, &str)] = &[
    ("nova", include_str!("openstack/nova.yaml")),
    ("neutronv2", include_str!("openstack/neutronv2.yaml")),
    ("glancev2", include_str!("openstack/glancev2.yaml")),
    ("cinder", include_str!("openstack/cinder.yaml")),
    ("keystonev3", include_str!("openstack/keystonev3.yaml")),
];

/// The shipped configuration of `driver`, if it is one of [`PRESETS`].
pub fn preset(driver: &str) -> Result<Option<HttpSource>, PresetError> {
    let Some((_, text)) = PRESETS.iter().find(|(name, _)| *name == driver) else {
        return Ok(None);
    };
    serde_norway::from_str(text)
        .map(Some)
        .map_err(|e| PresetError { driver: driver.to_string(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_has_congress_tables() {
        for (driver, _) in PRESETS {
            let source = preset(driver).unwrap().unwrap();
            assert!(!source.requests.is_empty(), "{driver}");
            assert_eq!(source.auth.type_.as_deref(), Some("keystone"), "{driver}");
            assert!(source.catalog.is_some(), "{driver}");
        }
        assert!(preset("kubernetes").unwrap().is_none());
    }
}
