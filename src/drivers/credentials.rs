//! A driver's credentials: the keys of its Secret (or of a Secret manifest, or environment
//! variables for the CLI). A value is a [`SecretValue`], which prints as `<hidden>`, so a
//! credential cannot reach a log line, an event, a status or an error by formatting; the
//! only way to read one is [`SecretValue::expose`], at the point it is sent.

use std::collections::BTreeMap;
use std::fmt;

/// A secret string: `Debug` and `Display` print `<hidden>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// The value itself, to put in a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("Secret key `{key}` is not UTF-8")]
    NotUtf8 { key: String },
    #[error("`config.{key}` holds a secret: put it in the Secret named by `spec.credentialsSecretRef`")]
    SecretInConfig { key: String },
    #[error("the credentials have no `{key}` (needed by {what})")]
    Missing { key: String, what: &'static str },
}

/// Keys that are secret wherever they appear; `config` may not hold them.
pub const SECRET_KEYS: &[&str] = &["password", "token", "application_credential_secret"];

/// A driver's credentials by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, SecretValue>);

impl Credentials {
    /// From a Secret's decoded `data` (and `stringData`, for manifests read from files).
    pub fn from_bytes(data: impl IntoIterator<Item = (String, Vec<u8>)>) -> Result<Credentials, CredentialsError> {
        data.into_iter()
            .map(|(key, bytes)| match String::from_utf8(bytes) {
                Ok(v) => Ok((key, SecretValue(v))),
                Err(_) => Err(CredentialsError::NotUtf8 { key }),
            })
            .collect::<Result<_, _>>()
            .map(Credentials)
    }

    pub fn from_strings(data: impl IntoIterator<Item = (String, String)>) -> Credentials {
        Credentials(data.into_iter().map(|(k, v)| (k, SecretValue(v))).collect())
    }

    pub fn get(&self, key: &str) -> Option<&SecretValue> {
        self.0.get(key)
    }

    pub fn require(&self, key: &str, what: &'static str) -> Result<&SecretValue, CredentialsError> {
        self.get(key).ok_or_else(|| CredentialsError::Missing { key: key.to_string(), what })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Refuse a `config` that holds a secret key.
pub fn check_config(config: &BTreeMap<String, String>) -> Result<(), CredentialsError> {
    match config.keys().find(|k| SECRET_KEYS.contains(&k.as_str())) {
        Some(key) => Err(CredentialsError::SecretInConfig { key: key.clone() }),
        None => Ok(()),
    }
}

/// A setting that is not secret: from `config`, else from the credentials.
pub fn setting(config: &BTreeMap<String, String>, credentials: &Credentials, key: &str) -> Option<String> {
    config.get(key).cloned().or_else(|| credentials.get(key).map(|v| v.expose().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_print() {
        let c = Credentials::from_strings([("password".to_string(), "canary-9f2".to_string())]);
        assert!(!format!("{c:?}").contains("canary"));
        assert_eq!(c.get("password").unwrap().to_string(), "<hidden>");
        assert_eq!(c.get("password").unwrap().expose(), "canary-9f2");
        let e = c.require("token", "bearer auth").unwrap_err().to_string();
        assert!(e.contains("`token`"), "{e}");
    }

    #[test]
    fn config_may_not_hold_secrets() {
        let mut config = BTreeMap::from([("username".to_string(), "admin".to_string())]);
        assert!(check_config(&config).is_ok());
        config.insert("password".into(), "x".into());
        let e = check_config(&config).unwrap_err().to_string();
        assert!(e.contains("config.password") && !e.contains("\"x\""), "{e}");
        assert!(Credentials::from_bytes([("k".to_string(), vec![0xff])]).is_err());
    }
}
