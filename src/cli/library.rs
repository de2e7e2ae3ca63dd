//! `congress library`: the policy library, from a directory of `LibraryPolicy` manifests (the
//! project's `library/`) or from the cluster. `list` and `show` what it has, `activate` one
//! (the `Policy` manifest that pins it, its parameters checked by the model's loader, or
//! applied), `diff` a newer library against the installed one, and `reset` customised
//! LibraryPolicies to the shipped ones (the operator re-initialises them).

use congress_model::loader::{self, parameter_facts};
use congress_model::resources::library_policy::{
    ARCHIVE_OF_LABEL, REINITIALIZE_ANNOTATION, SHIPPED_DIGEST_ANNOTATION, archive_name,
};
use congress_model::resources::{
    API_VERSION, Enforcement, LibraryPolicy, LibraryPolicySpec, LibraryRef, Parameter, ParameterType, Policy,
    PolicySpec,
};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  # What the library has (./library, or --dir DIR, or --cluster)
  congress library list
  congress library list --cluster
  congress library show bad-flavors

  # A Policy that activates a library policy, with its own parameter rows
  congress library activate bad-flavors --set permitted_flavor=m1.small --set permitted_flavor=m1.medium
  congress library activate quota-limits --name tight-quotas --set max_limit=cores,4 --apply

  # What upgrading the installed library to ./library would change
  congress library diff --cluster

  # Put the shipped version back, discarding an administrator's changes
  congress library reset bad-flavors --cluster

The library is read from --dir DIR (LibraryPolicy manifests, found recursively; `tests/`
directories and other documents skipped), else ./library, or from the cluster with --cluster.";

/// Arguments of `congress library`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct LibraryArgs {
    /// Read the library from this directory (LibraryPolicy manifests, recursively; `tests/`
    /// directories skipped). Default: ./library. For `diff`, the newer library.
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Read the LibraryPolicies of the cluster of the current kubeconfig. For `diff`, the
    /// installed library.
    #[arg(long, global = true)]
    pub cluster: bool,
    #[command(subcommand)]
    pub command: LibraryCommand,
}

/// The subcommands of `congress library`.
#[derive(Debug, clap::Subcommand)]
pub enum LibraryCommand {
    /// One row per library policy: name, version, category, severity, the tables it reads.
    List(ListArgs),
    /// Everything about one library policy: description, example, parameters, rules.
    Show(ShowArgs),
    /// Print (or --apply) the Policy that activates a library policy, pinned to its version.
    Activate(ActivateArgs),
    /// What a newer library changes against the installed one (or another directory).
    Diff(DiffArgs),
    /// Ask the operator to re-initialise LibraryPolicies from the shipped library.
    Reset(ResetArgs),
}

/// Output formats of `list`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ListOutput {
    #[default]
    Table,
    Json,
    Yaml,
    /// A Markdown table (name, category, severity, version, first sentence of the
    /// description), as in library/README.md.
    Markdown,
}

/// Output formats of `show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowOutput {
    /// Human-readable.
    #[default]
    Text,
    /// The manifest.
    Yaml,
    /// The manifest, as JSON.
    Json,
}

/// Output formats of `activate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ManifestOutput {
    #[default]
    Yaml,
    Json,
}

/// `--enforcement`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EnforcementArg {
    Monitor,
    Proactive,
    Reactive,
}

impl From<EnforcementArg> for Enforcement {
    fn from(e: EnforcementArg) -> Enforcement {
        match e {
            EnforcementArg::Monitor => Enforcement::Monitor,
            EnforcementArg::Proactive => Enforcement::Proactive,
            EnforcementArg::Reactive => Enforcement::Reactive,
        }
    }
}

/// `congress library list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListOutput::Table)]
    pub output: ListOutput,
    /// With --cluster: also the archived versions (`NAME.vVERSION`).
    #[arg(long)]
    pub all: bool,
}

/// `congress library show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The library policy (its `metadata.name`).
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ShowOutput::Text)]
    pub output: ShowOutput,
}

/// `congress library activate`.
#[derive(Debug, clap::Args)]
#[command(
    disable_version_flag = true,
    after_help = "\
--set TABLE=ROW adds one row to a parameter table (repeatable; the first --set for a table
replaces its default rows). ROW is JSON when it is a JSON list, object (by column) or
quoted string; otherwise comma-separated values converted by the column types (so `port=22`
is a number for a number column and the text \"22\" for a string column):
  --set permitted_flavor=m1.small --set max_limit=cores,4 --set 'max_limit={\"resource\":\"ram\",\"limit\":8192}'

Exit status: 0 printed (or applied), 2 bad input (unknown library policy, a row that does not fit)."
)]
pub struct ActivateArgs {
    /// The library policy to activate.
    pub library: String,
    /// The Policy's name (default: the library policy's name).
    #[arg(long, value_name = "POLICY")]
    pub name: Option<String>,
    /// A parameter row, TABLE=ROW (repeatable).
    #[arg(long = "set", value_name = "TABLE=ROW")]
    pub set: Vec<String>,
    /// The version to activate (default: the library's; with --cluster an archived
    /// version `NAME.vVERSION` may be named).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// The enforcement (default: the one the library policy suggests, else monitor).
    #[arg(long, value_enum)]
    pub enforcement: Option<EnforcementArg>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ManifestOutput::Yaml)]
    pub output: ManifestOutput,
    /// Server-side apply the Policy to the cluster of the current kubeconfig (field manager
    /// `congress-cli`) instead of printing it.
    #[arg(long)]
    pub apply: bool,
}

/// `congress library diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Lines: `+ NAME VERSION (new)`, `- NAME VERSION (no longer shipped)`, `~ NAME OLD -> NEW` (changed),
`! NAME VERSION (customized ...)` (an installed LibraryPolicy an administrator changed: an
upgrade leaves it alone), `= NAME VERSION` (unchanged, with --all); then a unified diff of
the spec of each changed policy.

Exit status: 0 no differences, 1 differences, 2 bad input.

Examples:
  congress library diff --cluster
  congress library diff --dir library --against /tmp/congress-1.2/library")]
pub struct DiffArgs {
    /// The library to compare with: a directory.
    #[arg(long, value_name = "DIR", conflicts_with = "cluster")]
    pub against: Option<PathBuf>,
    /// Also list the unchanged policies.
    #[arg(long)]
    pub all: bool,
}

/// `congress library reset`.
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The LibraryPolicies to re-initialise.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Every LibraryPolicy (archived versions aside).
    #[arg(long)]
    pub all: bool,
}

// ------------------------------------------------------------------------- the library

/// One library policy as read from a directory or the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: String,
    pub spec: LibraryPolicySpec,
    /// From the cluster (archived versions aside): whether the spec differs from the one the
    /// library sync wrote (digest annotation), or was not written by it at all.
    pub customized: Option<bool>,
    /// From the cluster: the annotation `congress.dev/library-digest`.
    pub shipped_digest: Option<String>,
    /// From the cluster: the policy an archived version (`NAME.vVERSION`) is a version of.
    pub archive_of: Option<String>,
}

impl Entry {
    fn from_object(lp: LibraryPolicy) -> Entry {
        let shipped_digest = lp.metadata.annotations.as_ref().and_then(|a| a.get(SHIPPED_DIGEST_ANNOTATION)).cloned();
        let archive_of = lp.metadata.labels.as_ref().and_then(|l| l.get(ARCHIVE_OF_LABEL)).cloned();
        // An archived version is a copy the library sync keeps: never customised.
        let customized = archive_of.is_none().then(|| shipped_digest.as_deref() != Some(lp.spec.digest().as_str()));
        Entry { name: lp.metadata.name.unwrap_or_default(), spec: lp.spec, customized, shipped_digest, archive_of }
    }

    fn manifest(&self) -> LibraryPolicy {
        LibraryPolicy::new(&self.name, self.spec.clone())
    }
}

/// Where a library is read from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    Dir(PathBuf),
    Cluster,
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Cluster => "the cluster".to_string(),
        }
    }
}

/// A command failed: the message (printed after `error: `, unless empty) and the exit code.
#[derive(Debug)]
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn input(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), code: 2 }
    }
}

pub type Res<T> = Result<T, Failure>;

/// The directory holding the library: `dir`, else ./library.
fn library_dir(dir: Option<&Path>) -> Res<PathBuf> {
    let d = match dir {
        Some(d) => d.to_path_buf(),
        None if Path::new("library").is_dir() => PathBuf::from("library"),
        None => return Err(Failure::input("no library: ./library does not exist; pass --dir DIR or --cluster")),
    };
    if !d.is_dir() {
        return Err(Failure::input(format!("{}: no such directory", d.display())));
    }
    Ok(d)
}

/// The manifest files of a library directory: `*.yaml`, `*.yml`, `*.json`, recursively, in
/// sorted order, skipping hidden entries and `tests` directories.
fn manifest_files(dir: &Path) -> Res<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                if name != "tests" {
                    walk(&p, out)?;
                }
            } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

/// Every LibraryPolicy of a directory, checked by the model's manifest loader (unknown
/// fields, parameter tables, duplicate names: every problem at its `file:line:col`).
pub fn load_dir(dir: &Path) -> Res<Vec<Entry>> {
    let files = manifest_files(dir)?;
    if !files.is_empty()
        && let Err(errors) = congress_model::load::load_policies(&files)
    {
        let n = errors.len();
        let mut message = crate::cli::check::format_errors(&errors);
        let _ = write!(message, "error: cannot read the library in {} ({n} problem{})", dir.display(), plural(n));
        return Err(Failure::input(message.trim_start_matches("error: ").to_string()));
    }
    let mut out = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
        for doc in documents(file, &text)? {
            let is_library = doc.get("apiVersion").and_then(Json::as_str) == Some(API_VERSION)
                && doc.get("kind").and_then(Json::as_str) == Some("LibraryPolicy");
            if !is_library {
                continue;
            }
            let lp: LibraryPolicy = serde_json::from_value(doc)
                .map_err(|e| Failure::input(format!("{}: invalid LibraryPolicy: {e}", file.display())))?;
            out.push(Entry {
                name: lp.metadata.name.unwrap_or_default(),
                spec: lp.spec,
                customized: None,
                shipped_digest: None,
                archive_of: None,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The documents of a YAML (several, at `---`) or JSON file.
fn documents(file: &Path, text: &str) -> Res<Vec<Json>> {
    use serde::Deserialize;
    let bad = |e: &dyn std::fmt::Display| Failure::input(format!("{}: {e}", file.display()));
    if file.extension().and_then(|e| e.to_str()) == Some("json") {
        return serde_json::from_str(text).map(|v| vec![v]).map_err(|e| bad(&e));
    }
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = Json::deserialize(doc).map_err(|e| bad(&e))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Run a future on a runtime of its own.
fn block_on<T>(f: impl std::future::Future<Output = Res<T>>) -> Res<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::input(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(f)
}

async fn client() -> Res<kube::Client> {
    kube::Client::try_default().await.map_err(|e| Failure::input(format!("no cluster: {e}")))
}

fn api_error(what: &str, e: kube::Error) -> Failure {
    Failure::input(format!("{what}: {e}"))
}

/// Every LibraryPolicy of the cluster (archived versions with `archived`), by name.
async fn load_cluster(client: kube::Client, archived: bool) -> Res<Vec<Entry>> {
    let api: kube::Api<LibraryPolicy> = kube::Api::all(client);
    let list = api.list(&Default::default()).await.map_err(|e| api_error("cannot list LibraryPolicies", e))?;
    let mut out: Vec<Entry> =
        list.items.into_iter().map(Entry::from_object).filter(|e| archived || e.archive_of.is_none()).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The library of `--dir`/`--cluster` (one of them; default ./library).
fn load(args_dir: Option<&Path>, cluster: bool, archived: bool) -> Res<(Source, Vec<Entry>)> {
    if cluster {
        if args_dir.is_some() {
            return Err(Failure::input("pass one of --dir DIR, --cluster"));
        }
        let entries = block_on(async { load_cluster(client().await?, archived).await })?;
        return Ok((Source::Cluster, entries));
    }
    let dir = library_dir(args_dir)?;
    let entries = load_dir(&dir)?;
    Ok((Source::Dir(dir), entries))
}

fn find<'a>(entries: &'a [Entry], name: &str, source: &Source) -> Res<&'a Entry> {
    entries.iter().find(|e| e.name == name).ok_or_else(|| {
        let known: Vec<&str> = entries.iter().filter(|e| e.archive_of.is_none()).map(|e| e.name.as_str()).collect();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        Failure::input(format!("no library policy `{name}` in {} (it has: {known})", source.describe()))
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

// ------------------------------------------------------------------------- list

/// One row of `list -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    name: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    reads: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    datasources: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    customized: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive_of: Option<&'a str>,
}

/// By category (policies without one last), then name.
fn sorted(entries: &[Entry]) -> Vec<&Entry> {
    let mut out: Vec<&Entry> = entries.iter().collect();
    out.sort_by(|a, b| {
        let key = |e: &Entry| (e.spec.category.is_none(), e.spec.category.clone().unwrap_or_default(), e.name.clone());
        key(a).cmp(&key(b))
    });
    out
}

/// Columns padded to their widest cell, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{c:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

/// The first sentence of a text, on one line: up to the first `.` followed by a space or
/// the end.
pub fn first_sentence(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find(". ") {
        Some(i) => flat[..=i].to_string(),
        None => flat,
    }
}

/// The Markdown table of `list -o markdown` (what library/README.md holds).
pub fn markdown(entries: &[Entry]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from("| Name | Category | Severity | Version | Description |\n|---|---|---|---|---|\n");
    for e in sorted(entries) {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            e.name,
            cell(e.spec.category.as_deref().unwrap_or("")),
            e.spec.severity.map_or("", |s| s.as_str()),
            e.spec.version(),
            cell(&first_sentence(e.spec.description.as_deref().unwrap_or(""))),
        );
    }
    out
}

fn list(args: &LibraryArgs, a: &ListArgs) -> Res<String> {
    let (source, entries) = load(args.dir.as_deref(), args.cluster, a.all)?;
    let rows = sorted(&entries);
    Ok(match a.output {
        ListOutput::Table => {
            if rows.is_empty() {
                eprintln!("no library policies in {}", source.describe());
                return Ok(String::new());
            }
            let mut header = vec!["NAME", "VERSION", "CATEGORY", "SEVERITY", "READS"];
            if source == Source::Cluster {
                header.push("CUSTOMIZED");
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|e| {
                    let mut r = vec![
                        e.name.clone(),
                        e.spec.version().to_string(),
                        or_dash(e.spec.category.as_deref()),
                        or_dash(e.spec.severity.map(|s| s.as_str())),
                        or_dash(Some(&e.spec.reads.join(","))),
                    ];
                    if source == Source::Cluster {
                        r.push(
                            match e.customized {
                                Some(true) => "yes",
                                Some(false) => "no",
                                None => "-",
                            }
                            .to_string(),
                        );
                    }
                    r
                })
                .collect();
            table(&header, &cells)
        }
        ListOutput::Json | ListOutput::Yaml => {
            let out: Vec<Row> = rows
                .iter()
                .map(|e| Row {
                    name: &e.name,
                    version: e.spec.version(),
                    category: e.spec.category.as_deref(),
                    severity: e.spec.severity.map(|s| s.as_str()),
                    description: e.spec.description.as_deref(),
                    reads: &e.spec.reads,
                    datasources: &e.spec.datasources,
                    customized: e.customized,
                    archive_of: e.archive_of.as_deref(),
                })
                .collect();
            if a.output == ListOutput::Json { to_json(&out)? } else { to_yaml(&out)? }
        }
        ListOutput::Markdown => markdown(&entries),
    })
}

fn to_json<T: Serialize>(v: &T) -> Res<String> {
    serde_json::to_string_pretty(v).map(|s| s + "\n").map_err(|e| Failure::input(e.to_string()))
}

fn to_yaml<T: Serialize>(v: &T) -> Res<String> {
    serde_norway::to_string(v).map_err(|e| Failure::input(e.to_string()))
}

// ------------------------------------------------------------------------- show

/// `TABLE(col: type, ...)`.
fn signature(p: &Parameter) -> String {
    let cols: Vec<String> = p
        .columns
        .iter()
        .map(|c| {
            let t = match c.type_ {
                ParameterType::String => "string",
                ParameterType::Integer => "integer",
                ParameterType::Number => "number",
            };
            format!("{}: {t}", c.name)
        })
        .collect();
    format!("{}({})", p.table, cols.join(", "))
}

fn indented(out: &mut String, text: &str, indent: &str) {
    for line in text.trim_end().lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
}

/// The human-readable description of a library policy.
pub fn describe(e: &Entry) -> String {
    let s = &e.spec;
    let mut out = String::new();
    let field = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "{:<13} {v}", format!("{k}:"));
    };
    field(&mut out, "name", e.name.clone());
    field(&mut out, "version", s.version().to_string());
    field(&mut out, "category", or_dash(s.category.as_deref()));
    field(&mut out, "severity", or_dash(s.severity.map(|s| s.as_str())));
    if let Some(of) = &e.archive_of {
        field(&mut out, "archived", format!("a version of {of}"));
    }
    if let Some(c) = e.customized {
        field(&mut out, "customized", if c { "yes (upgrades leave it alone)" } else { "no" }.to_string());
    }
    field(&mut out, "reads", or_dash(Some(&s.reads.join(", "))));
    field(&mut out, "datasources", or_dash(Some(&s.datasources.join(", "))));
    field(&mut out, "depends on", or_dash(Some(&s.depends_on.join(", "))));
    if let Some(k) = s.kind {
        field(&mut out, "kind", json_word(&k));
    }
    let mut enforcement = json_word(&s.enforcement.unwrap_or_default());
    if let Some(a) = &s.actions {
        let _ = write!(enforcement, " (actions: approval {}", json_word(&a.approval));
        if a.dry_run {
            enforcement.push_str(", dry run");
        }
        enforcement.push(')');
    }
    field(&mut out, "enforcement", enforcement);
    if let Some(r) = &s.report {
        let ns = r.namespace_column.map_or(String::new(), |c| format!(", namespace column {c}"));
        field(&mut out, "report", format!("{} {} (name column {}{ns})", r.api_version, r.kind, r.name_column));
    }
    for (k, v) in [("description", &s.description), ("example", &s.example)] {
        if let Some(v) = v {
            let _ = writeln!(out, "\n{k}:");
            indented(&mut out, v, "  ");
        }
    }
    if !s.parameters.is_empty() {
        out.push_str("\nparameters:\n");
        for p in &s.parameters {
            let _ = writeln!(out, "  {}", signature(p));
            if let Some(d) = &p.description {
                indented(&mut out, d, "    ");
            }
            match parameter_facts(p, &p.default, "") {
                Ok(facts) if facts.is_empty() => out.push_str("    default: no rows\n"),
                Ok(facts) => {
                    out.push_str("    default:\n");
                    for f in facts {
                        let _ = writeln!(out, "      {}", f.text);
                    }
                }
                Err(err) => {
                    let _ = writeln!(out, "    default: {err}");
                }
            }
        }
    }
    out.push_str("\nrules:\n");
    match (&s.rules, &s.text) {
        (Some(rules), _) => {
            for r in rules {
                let head = match (&r.name, &r.comment) {
                    (Some(n), Some(c)) => Some(format!("{n}: {c}")),
                    (Some(n), None) => Some(n.clone()),
                    (None, Some(c)) => Some(c.clone()),
                    (None, None) => None,
                };
                if let Some(h) = head {
                    indented(&mut out, &h, "  // ");
                }
                indented(&mut out, r.rule.trim(), "  ");
            }
        }
        (None, Some(text)) => indented(&mut out, text.trim(), "  "),
        (None, None) => {}
    }
    out
}

/// A unit enum's serde name.
fn json_word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn show(args: &LibraryArgs, a: &ShowArgs) -> Res<String> {
    let (source, entries) = load(args.dir.as_deref(), args.cluster, true)?;
    let e = find(&entries, &a.name, &source)?;
    match a.output {
        ShowOutput::Text => Ok(describe(e)),
        ShowOutput::Yaml => to_yaml(&e.manifest()),
        ShowOutput::Json => to_json(&e.manifest()),
    }
}

// ------------------------------------------------------------------------- activate

/// The JSON row of `--set TABLE=ROW`'s ROW: JSON when it is a JSON list, object or quoted
/// string, else comma-separated values converted by the column types of `p` (strings when
/// the table is unknown; a value that does not convert stays a string, for the loader to
/// refuse). A bare number is converted by the column type, so `--set t=1234` is the text
/// "1234" for a string column.
pub fn parse_row(row: &str, p: Option<&Parameter>) -> Json {
    if let Ok(v @ (Json::Array(_) | Json::Object(_) | Json::String(_))) = serde_json::from_str::<Json>(row) {
        return v;
    }
    let values: Vec<Json> = row
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, v)| {
            let t = p.and_then(|p| p.columns.get(i)).map(|c| c.type_).unwrap_or_default();
            let number = match t {
                ParameterType::String => None,
                ParameterType::Integer => v.parse::<u64>().ok().map(Json::from),
                ParameterType::Number => v
                    .parse::<u64>()
                    .ok()
                    .map(Json::from)
                    .or_else(|| v.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Json::Number)),
            };
            number.unwrap_or_else(|| Json::String(v.to_string()))
        })
        .collect();
    match (values.len(), p.map(|p| p.columns.len())) {
        (1, Some(1) | None) => values.into_iter().next().unwrap_or(Json::Null),
        _ => Json::Array(values),
    }
}

/// The parameter rows of `--set` arguments, by table (the first for a table replaces its
/// defaults, the next ones add rows).
pub fn parameters(sets: &[String], lib: &LibraryPolicySpec) -> Res<BTreeMap<String, Vec<Json>>> {
    let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for s in sets {
        let Some((table, row)) = s.split_once('=') else {
            return Err(Failure::input(format!("--set `{s}`: expected TABLE=ROW")));
        };
        let table = table.trim();
        let p = lib.parameters.iter().find(|p| p.table == table);
        out.entry(table.to_string()).or_default().push(parse_row(row, p));
    }
    Ok(out)
}

/// The Policy that activates library policy `e` with `a`'s options, checked by the loader.
pub fn activation(e: &Entry, a: &ActivateArgs) -> Res<Policy> {
    let lib = &e.spec;
    let library_ref = LibraryRef {
        name: e.archive_of.clone().unwrap_or_else(|| e.name.clone()),
        version: Some(lib.version().to_string()),
        parameters: parameters(&a.set, lib)?,
    };
    let enforcement = a.enforcement.map(Enforcement::from).or(lib.enforcement).unwrap_or_default();
    let library_name = library_ref.name.clone();
    let spec = PolicySpec {
        enforcement,
        actions: if enforcement == Enforcement::Reactive { lib.actions.clone() } else { None },
        library_ref: Some(library_ref),
        ..Default::default()
    };
    loader::statements_from_spec(&spec, Some((&library_name, lib))).map_err(|err| Failure::input(err.to_string()))?;
    Ok(Policy::new(a.name.as_deref().unwrap_or(&library_name), spec))
}

fn activate(args: &LibraryArgs, a: &ActivateArgs) -> Res<String> {
    let (source, entries) = load(args.dir.as_deref(), args.cluster, true)?;
    let current = find(&entries, &a.library, &source)?;
    let e = match &a.version {
        Some(v) if v != current.spec.version() => {
            let archived = archive_name(&a.library, v);
            match entries.iter().find(|e| e.name == archived) {
                Some(e) => e,
                None => {
                    return Err(Failure::input(format!(
                        "library policy `{}` is version {} in {}, not {v}{}",
                        a.library,
                        current.spec.version(),
                        source.describe(),
                        if source == Source::Cluster {
                            format!(" (and there is no archived version `{archived}`)")
                        } else {
                            String::new()
                        }
                    )));
                }
            }
        }
        _ => current,
    };
    let policy = activation(e, a)?;
    if a.apply {
        let name = policy.metadata.name.clone().unwrap_or_default();
        return block_on(async {
            let api: kube::Api<Policy> = kube::Api::all(client().await?);
            let params = kube::api::PatchParams::apply("congress-cli");
            api.patch(&name, &params, &kube::api::Patch::Apply(&policy))
                .await
                .map_err(|e| api_error(&format!("cannot apply policy/{name}"), e))?;
            Ok(format!("policy/{name} applied\n"))
        });
    }
    match a.output {
        ManifestOutput::Yaml => to_yaml(&policy),
        ManifestOutput::Json => to_json(&policy),
    }
}

// ------------------------------------------------------------------------- diff

/// The result of comparing two libraries.
#[derive(Debug, Default, PartialEq)]
pub struct LibraryDiff {
    /// The summary lines, by name.
    pub lines: Vec<String>,
    /// The unified diffs of the changed policies' specs.
    pub patches: Vec<String>,
    /// Whether anything differs.
    pub differs: bool,
}

fn spec_yaml(spec: &LibraryPolicySpec) -> String {
    serde_norway::to_string(spec).unwrap_or_default()
}

/// Compare `new` (from `new_label`) against `old` (from `old_label`; entries from the
/// cluster know whether they were customised). With `all`, unchanged policies get a line.
pub fn compare(old: &[Entry], new: &[Entry], old_label: &str, new_label: &str, all: bool) -> LibraryDiff {
    let mut names: Vec<&str> = old.iter().chain(new).map(|e| e.name.as_str()).collect();
    names.sort();
    names.dedup();
    let mut d = LibraryDiff::default();
    for name in names {
        let o = old.iter().find(|e| e.name == name);
        let n = new.iter().find(|e| e.name == name);
        match (o, n) {
            (None, Some(n)) => {
                d.lines.push(format!("+ {name} {} (new)", n.spec.version()));
                d.differs = true;
            }
            (Some(o), None) => {
                d.lines.push(format!("- {name} {} (no longer shipped)", o.spec.version()));
                d.differs = true;
            }
            (Some(o), Some(n)) if o.spec == n.spec => {
                if all {
                    d.lines.push(format!("= {name} {}", o.spec.version()));
                }
            }
            (Some(o), Some(n)) => {
                let (ov, nv) = (o.spec.version(), n.spec.version());
                let line = if o.customized == Some(true) {
                    if o.shipped_digest.as_deref() == Some(n.spec.digest().as_str()) {
                        format!(
                            "! {name} {ov} (customized; the library has not changed it: congress library reset {name} discards the changes)"
                        )
                    } else {
                        format!(
                            "! {name} {ov} (customized: an upgrade leaves it alone; congress library reset {name} to take {nv})"
                        )
                    }
                } else if ov == nv {
                    format!("~ {name} {ov} -> {nv} (changed without a new version)")
                } else {
                    format!("~ {name} {ov} -> {nv}")
                };
                d.lines.push(line);
                d.differs = true;
                let (a, b) = (spec_yaml(&o.spec), spec_yaml(&n.spec));
                let patch = similar::TextDiff::from_lines(&a, &b)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("{name} {ov} ({old_label})"), &format!("{name} {nv} ({new_label})"))
                    .to_string();
                d.patches.push(patch);
            }
            (None, None) => {}
        }
    }
    d
}

fn diff(args: &LibraryArgs, a: &DiffArgs) -> Res<String> {
    let new_dir = library_dir(args.dir.as_deref())?;
    let new = load_dir(&new_dir)?;
    let (old_label, old) = match (&a.against, args.cluster) {
        (Some(dir), false) => {
            if !dir.is_dir() {
                return Err(Failure::input(format!("{}: no such directory", dir.display())));
            }
            (dir.display().to_string(), load_dir(dir)?)
        }
        (None, true) => ("installed".to_string(), block_on(async { load_cluster(client().await?, false).await })?),
        _ => return Err(Failure::input("pass --against DIR or --cluster: what to compare the library with")),
    };
    let d = compare(&old, &new, &old_label, &new_dir.display().to_string(), a.all);
    let mut out = String::new();
    for l in &d.lines {
        out.push_str(l);
        out.push('\n');
    }
    for p in &d.patches {
        out.push('\n');
        out.push_str(p);
    }
    if d.differs {
        print!("{out}");
        return Err(Failure { message: String::new(), code: 1 });
    }
    Ok(out)
}

// ------------------------------------------------------------------------- reset

fn reset(args: &LibraryArgs, a: &ResetArgs) -> Res<String> {
    if args.dir.is_some() {
        return Err(Failure::input("reset acts on the cluster's LibraryPolicies: pass --cluster, not --dir"));
    }
    block_on(async {
        let client = client().await?;
        let installed = load_cluster(client.clone(), true).await?;
        let names: Vec<String> = if a.all {
            installed.iter().filter(|e| e.archive_of.is_none()).map(|e| e.name.clone()).collect()
        } else {
            let mut problems = Vec::new();
            for n in &a.names {
                match installed.iter().find(|e| &e.name == n) {
                    None => problems.push(format!("no LibraryPolicy `{n}` in the cluster")),
                    Some(Entry { archive_of: Some(of), .. }) => {
                        problems.push(format!("`{n}` is an archived version of `{of}`: reset `{of}`"))
                    }
                    Some(_) => {}
                }
            }
            if !problems.is_empty() {
                return Err(Failure::input(format!("{} (nothing was reset)", problems.join("; "))));
            }
            a.names.clone()
        };
        let api: kube::Api<LibraryPolicy> = kube::Api::all(client);
        let patch = serde_json::json!({"metadata": {"annotations": {REINITIALIZE_ANNOTATION: "true"}}});
        // Each line as soon as its patch is done: a later failure leaves these asked.
        for n in &names {
            api.patch(n, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
                .await
                .map_err(|e| api_error(&format!("cannot annotate librarypolicy/{n}"), e))?;
            println!(
                "librarypolicy/{n}: asked the operator to re-initialise it from the shipped library ({REINITIALIZE_ANNOTATION}=true)"
            );
        }
        if names.is_empty() {
            println!("no LibraryPolicies in the cluster");
        }
        Ok(String::new())
    })
}

// ------------------------------------------------------------------------- run

pub fn run(args: LibraryArgs) -> ExitCode {
    let result = match &args.command {
        LibraryCommand::List(a) => list(&args, a),
        LibraryCommand::Show(a) => show(&args, a),
        LibraryCommand::Activate(a) => activate(&args, a),
        LibraryCommand::Diff(a) => diff(&args, a),
        LibraryCommand::Reset(a) => reset(&args, a),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_model::resources::{ParameterColumn, library_policy::ARCHIVE_VERSION_LABEL};

    fn spec(yaml: &str) -> LibraryPolicySpec {
        serde_norway::from_str(yaml).unwrap()
    }

    fn entry(name: &str, yaml: &str) -> Entry {
        Entry { name: name.into(), spec: spec(yaml), customized: None, shipped_digest: None, archive_of: None }
    }

    /// A LibraryPolicy as the cluster has it: written by the library sync from `shipped`
    /// (its digest annotation), its spec now `spec`.
    fn installed(name: &str, shipped: &str, now: &str) -> Entry {
        let mut lp = LibraryPolicy::new(name, spec(now));
        lp.metadata.annotations =
            Some([(SHIPPED_DIGEST_ANNOTATION.to_string(), spec(shipped).digest())].into_iter().collect());
        Entry::from_object(lp)
    }

    const V1: &str = "version: 1.0.0\ntext: p(1)\n";
    const V1_EDITED: &str = "version: 1.0.0\ntext: p(9)\n";
    const V2: &str = "version: 1.1.0\ntext: p(2)\n";

    #[test]
    fn customized_is_a_spec_that_is_not_the_one_written() {
        assert_eq!(installed("a", V1, V1).customized, Some(false));
        assert_eq!(installed("a", V1, V1_EDITED).customized, Some(true));
        // Made by hand, not by the library sync.
        assert_eq!(Entry::from_object(LibraryPolicy::new("a", spec(V1))).customized, Some(true));
        let mut archived = LibraryPolicy::new("a.v1.0.0", spec(V1));
        archived.metadata.labels = Some(
            [(ARCHIVE_OF_LABEL.to_string(), "a".to_string()), (ARCHIVE_VERSION_LABEL.to_string(), "1.0.0".into())]
                .into_iter()
                .collect(),
        );
        let archived = Entry::from_object(archived);
        assert_eq!((archived.archive_of.as_deref(), archived.customized), (Some("a"), None));
    }

    #[test]
    fn diff_against_the_cluster_names_customised_policies() {
        let old = [installed("a", V1, V1), installed("b", V1, V1_EDITED), installed("c", V1, V1_EDITED)];
        let new = [entry("a", V2), entry("b", V2), entry("c", V1)];
        let d = compare(&old, &new, "installed", "library", false);
        assert!(d.differs);
        assert_eq!(
            d.lines,
            [
                "~ a 1.0.0 -> 1.1.0",
                "! b 1.0.0 (customized: an upgrade leaves it alone; congress library reset b to take 1.1.0)",
                "! c 1.0.0 (customized; the library has not changed it: congress library reset c discards the changes)",
            ]
        );
        assert_eq!(d.patches.len(), 3);
        assert!(d.patches[0].contains("--- a 1.0.0 (installed)\n+++ a 1.1.0 (library)\n"), "{}", d.patches[0]);
        assert!(
            d.patches[0].contains("\n-text: p(1)\n") && d.patches[0].contains("\n+text: p(2)\n"),
            "{}",
            d.patches[0]
        );
    }

    #[test]
    fn diff_of_equal_libraries_is_empty_but_with_all() {
        let lib = [entry("a", V1), entry("b", V2)];
        assert_eq!(compare(&lib, &lib, "x", "y", false), LibraryDiff::default());
        let d = compare(&lib, &lib, "x", "y", true);
        assert!(!d.differs);
        assert_eq!(d.lines, ["= a 1.0.0", "= b 1.1.0"]);
        let d = compare(&lib[..1], &[entry("a", V1_EDITED)], "x", "y", false);
        assert_eq!(d.lines, ["~ a 1.0.0 -> 1.0.0 (changed without a new version)"]);
    }

    fn table(columns: &[(&str, ParameterType)]) -> Parameter {
        Parameter {
            table: "t".into(),
            columns: columns
                .iter()
                .map(|(n, t)| ParameterColumn { name: n.to_string(), type_: *t, description: None })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_are_json_or_values_by_column_type() {
        use serde_json::json;
        let one = table(&[("flavor", ParameterType::String)]);
        let two = table(&[("resource", ParameterType::String), ("limit", ParameterType::Integer)]);
        let num = table(&[("name", ParameterType::String), ("ratio", ParameterType::Number)]);
        assert_eq!(parse_row("m1.small", Some(&one)), json!("m1.small"));
        assert_eq!(parse_row("cores,4", Some(&two)), json!(["cores", 4]));
        assert_eq!(parse_row("cores, four", Some(&two)), json!(["cores", "four"]));
        assert_eq!(parse_row("x,0.5", Some(&num)), json!(["x", 0.5]));
        assert_eq!(parse_row("x,2", Some(&num)), json!(["x", 2]));
        assert_eq!(parse_row(r#"["cores", 4]"#, Some(&two)), json!(["cores", 4]));
        assert_eq!(parse_row(r#"{"resource": "ram", "limit": 1}"#, Some(&two)), json!({"resource": "ram", "limit": 1}));
        assert_eq!(parse_row("a,b", None), json!(["a", "b"]));
        // A bare number follows the column type; a quoted one is a string.
        assert_eq!(parse_row("1234", Some(&one)), json!("1234"));
        assert_eq!(parse_row(r#""1234""#, Some(&one)), json!("1234"));
        assert_eq!(parse_row("a", None), json!("a"));
    }

    #[test]
    fn the_first_set_for_a_table_replaces_its_defaults() {
        let lib =
            spec("version: 1.0.0\ntext: p(1)\nparameters:\n- table: t\n  columns: [{name: a}]\n  default: [x, y]\n");
        let rows = parameters(&["t=z".into(), "t=w".into()], &lib).unwrap();
        assert_eq!(rows["t"], [serde_json::json!("z"), serde_json::json!("w")]);
        assert!(parameters(&["t".into()], &lib).is_err());
    }

    #[test]
    fn first_sentences_and_markdown_cells() {
        assert_eq!(first_sentence("One thing.  Another."), "One thing.");
        assert_eq!(first_sentence("Version 1.2 of\nit"), "Version 1.2 of it");
        let md =
            markdown(&[entry("a", "version: 2.0.0\ncategory: X|Y\nseverity: high\ndescription: A | B.\ntext: p(1)\n")]);
        assert!(md.ends_with("| `a` | X\\|Y | high | 2.0.0 | A \\| B. |\n"), "{md}");
    }
}
