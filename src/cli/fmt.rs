//! `congress fmt`: rule text in canonical form.
//!
//! `.congress` files are rewritten with one statement per line in the engine's canonical
//! printing; comment lines between statements are kept (a comment inside a statement is
//! refused rather than dropped). In Policy and LibraryPolicy manifests only the rule
//! strings change (`rule:` values and literal `text: |` blocks); the rest of the file is
//! kept byte for byte. Values whose exact extent in the file cannot be found are left alone.

use congress_engine::syntax;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `congress fmt`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status with --check: 0 formatted, 1 some file would change, 2 on errors.

Examples:
  congress fmt policies/
  congress fmt --check policies/ rules.congress")]
pub struct FmtArgs {
    /// Files or directories (`.congress`, `.yaml`, `.yml`; directories recursively).
    #[arg(value_name = "FILE|DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// Do not write: list the files that would change and exit 1 if any.
    #[arg(long)]
    pub check: bool,
}

/// Run `congress fmt`.
pub fn run(args: FmtArgs) -> ExitCode {
    let mut files = Vec::new();
    let mut failed = false;
    for p in &args.paths {
        collect(p, &mut files, &mut failed);
    }
    let mut changed = Vec::new();
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", f.display());
                failed = true;
                continue;
            }
        };
        let result = if is_congress(f) { format_congress(&text) } else { format_manifest(&text) };
        match result {
            Ok(new) if new != text => {
                changed.push(f.clone());
                if !args.check
                    && let Err(e) = std::fs::write(f, new)
                {
                    eprintln!("error: {}: {e}", f.display());
                    failed = true;
                }
            }
            Ok(_) => {}
            Err(m) => {
                eprintln!("error: {}: {m}", f.display());
                failed = true;
            }
        }
    }
    for f in &changed {
        if args.check {
            println!("would reformat {}", f.display());
        } else {
            println!("formatted {}", f.display());
        }
    }
    if failed {
        ExitCode::from(2)
    } else if args.check && !changed.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn is_congress(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "congress")
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, failed: &mut bool) {
    if p.is_dir() {
        let Ok(rd) = std::fs::read_dir(p) else {
            eprintln!("error: {}: cannot read directory", p.display());
            *failed = true;
            return;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                collect(&e, out, failed);
            } else if e.extension().is_some_and(|x| x == "congress" || x == "yaml" || x == "yml") {
                out.push(e);
            }
        }
    } else if p.exists() {
        out.push(p.to_path_buf());
    } else {
        eprintln!("error: {}: no such file or directory", p.display());
        *failed = true;
    }
}

/// Whether a stretch of policy text holds a comment (`//` or `#` outside strings).
fn has_comment(s: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut prev = '\0';
    for c in s.chars() {
        match quote {
            Some(q) if c == q && prev != '\\' => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' || (c == '/' && prev == '/') => return true,
            None => {}
        }
        prev = if prev == '\\' && c == '\\' { '\0' } else { c };
    }
    false
}

/// One statement per line, canonical; comment lines and paragraph breaks kept.
pub fn format_congress(text: &str) -> Result<String, String> {
    let parsed = syntax::parse(text);
    if !parsed.is_ok() {
        let d = parsed.diagnostics.iter().find(|d| d.is_error()).map(|d| d.short(text)).unwrap_or_default();
        return Err(format!("does not parse ({d}); run `congress check` for every diagnostic"));
    }
    let mut out = String::new();
    let mut prev_end = 0usize;
    for (i, r) in parsed.rules.iter().enumerate() {
        let (s, e) = (r.span.start as usize, r.span.end as usize);
        if has_comment(&text[s..e]) {
            let (l, c) = r.span.line_col(text);
            return Err(format!("{l}:{c}: a comment inside a statement would be lost: move it above the statement"));
        }
        gap(&text[prev_end..s], i == 0, &mut out);
        out.push_str(&r.to_string());
        prev_end = e;
    }
    let tail = &text[prev_end..];
    gap(tail, parsed.rules.is_empty(), &mut out);
    let trimmed = out.trim_end().to_string();
    Ok(if trimmed.is_empty() { String::new() } else { trimmed + "\n" })
}

/// The text between two statements: a comment on the previous statement's line stays
/// there; comment lines keep their own lines; blank lines collapse to one.
fn gap(g: &str, first: bool, out: &mut String) {
    let mut lines = g.split('\n');
    let same_line = lines.next().unwrap_or("").trim();
    if !same_line.is_empty() {
        if first {
            out.push_str(same_line);
            out.push('\n');
        } else {
            out.push_str("  ");
            out.push_str(same_line);
        }
    }
    let mut rest: Vec<&str> = lines.collect();
    // The last piece is the indentation before the next statement (or trailing space).
    rest.pop();
    if !first {
        out.push('\n');
    }
    let mut blank = false;
    for l in rest {
        let t = l.trim();
        if t.is_empty() {
            blank = true;
            continue;
        }
        if blank && !out.is_empty() {
            out.push('\n');
        }
        blank = false;
        out.push_str(t);
        out.push('\n');
    }
    if blank && !first && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// One statement's canonical text, if it parses as exactly one statement.
fn canonical_rule(s: &str) -> Option<String> {
    syntax::parse_one(s.trim()).ok().map(|r| r.to_string())
}

/// A value emitted as a YAML scalar: plain when safe, else double-quoted.
fn yaml_scalar(s: &str) -> String {
    let plain_ok = !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain_ok { s.to_string() } else { serde_json::to_string(s).unwrap_or_else(|_| s.to_string()) }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Rewrite `rule:` values and `text: |` blocks of Policy/LibraryPolicy documents.
pub fn format_manifest(text: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut in_policy = false;
    let mut i = 0;
    // Which documents are policies: decided by a `kind:` line at column 0.
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            in_policy = false;
        }
        if let Some(k) = t.strip_prefix("kind:") {
            let k = k.trim();
            in_policy = k == "Policy" || k == "LibraryPolicy";
        }
        if !in_policy && !doc_is_policy(&lines[i..]) {
            out.push_str(line);
            i += 1;
            continue;
        }
        let body = line.trim_start();
        let key_col = indent_of(line) + if body.starts_with("- ") { 2 } else { 0 };
        let after_dash = body.strip_prefix("- ").unwrap_or(body);
        let key = ["rule:", "text:"].into_iter().find(|k| after_dash.starts_with(k));
        let Some(key) = key else {
            out.push_str(line);
            i += 1;
            continue;
        };
        let value_start = line.len() - after_dash.len() + key.len();
        let rest = line[value_start..].trim();
        let nl = if line.ends_with('\n') { "\n" } else { "" };
        if rest.starts_with('|') && !rest.contains('>') {
            // Literal block: following lines indented more than the key, or blank.
            let mut j = i + 1;
            let mut content = Vec::new();
            while j < lines.len() {
                let l = lines[j];
                if l.trim().is_empty() || indent_of(l) > key_col {
                    content.push(l);
                    j += 1;
                } else {
                    break;
                }
            }
            while content.last().is_some_and(|l| l.trim().is_empty()) {
                content.pop();
                j -= 1;
            }
            let ind =
                content.iter().filter(|l| !l.trim().is_empty()).map(|l| indent_of(l)).min().unwrap_or(key_col + 2);
            let block: String =
                content.iter().map(|l| if l.len() > ind { &l[ind..] } else { l.trim_start_matches(' ') }).collect();
            let formatted =
                if key == "rule:" { canonical_rule(&block).map(|r| r + "\n") } else { format_congress(&block).ok() };
            out.push_str(line);
            match formatted {
                Some(f) => {
                    for l in f.lines() {
                        if l.is_empty() {
                            out.push('\n');
                        } else {
                            out.push_str(&" ".repeat(ind));
                            out.push_str(l);
                            out.push('\n');
                        }
                    }
                    if !content.last().is_some_and(|l| l.ends_with('\n')) && !content.is_empty() {
                        out.pop();
                    }
                }
                None => content.iter().for_each(|l| out.push_str(l)),
            }
            i = j;
            continue;
        }
        if key == "rule:" && !rest.is_empty() && !rest.starts_with('|') && !rest.starts_with('>') {
            // Single-line scalar, unless the next line continues it.
            let continues = lines.get(i + 1).is_some_and(|l| {
                let b = l.trim_start();
                !l.trim().is_empty() && indent_of(l) > key_col && !b.starts_with('#')
            });
            let value: Option<String> = match rest.chars().next() {
                Some('"') => serde_json::from_str::<String>(rest).ok(),
                Some('\'') if rest.ends_with('\'') && rest.len() >= 2 => {
                    Some(rest[1..rest.len() - 1].replace("''", "'"))
                }
                _ if rest.contains(" #") => None,
                _ => Some(rest.to_string()),
            };
            if let (false, Some(v)) = (continues, value)
                && let Some(c) = canonical_rule(&v)
            {
                out.push_str(&line[..value_start]);
                out.push(' ');
                out.push_str(&yaml_scalar(&c));
                out.push_str(nl);
                i += 1;
                continue;
            }
        }
        out.push_str(line);
        i += 1;
    }
    Ok(out)
}

/// Whether the document starting here (up to the next `---`) is a Policy or LibraryPolicy.
fn doc_is_policy(lines: &[&str]) -> bool {
    for l in lines {
        let t = l.trim_end();
        if t == "---" || t.starts_with("--- ") {
            return false;
        }
        if let Some(k) = t.strip_prefix("kind:") {
            let k = k.trim();
            return k == "Policy" || k == "LibraryPolicy";
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn congress_files_get_one_canonical_statement_per_line() {
        let src = "// classification\np(x):-q(x),\n   not r(x)\n\n\nq( 1 )   // one\nr(2)\n";
        let out = format_congress(src).unwrap();
        assert_eq!(out, "// classification\np(x) :- q(x), not r(x)\n\nq(1)  // one\nr(2)\n");
        assert_eq!(format_congress(&out).unwrap(), out, "idempotent");
    }

    #[test]
    fn comment_inside_a_statement_is_refused() {
        let err = format_congress("p(x) :- // why\n  q(x)\n").unwrap_err();
        assert!(err.contains("comment inside a statement"), "{err}");
    }

    #[test]
    fn manifests_change_only_rule_strings() {
        let src = "\
# keep me
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: p}   # and me
spec:
  rules:
    - name: a
      rule: p(x):-q(x)
    - rule: \"error(x) :- q(x),r(x)\"
    - rule: |
        s(x) :-
          q(x)
  enforcement: monitor
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: t}
spec:
  text: |
    a(x):-b(x)
    b(1)
";
        let out = format_manifest(src).unwrap();
        assert!(out.contains("      rule: p(x) :- q(x)\n"), "{out}");
        assert!(out.contains("    - rule: error(x) :- q(x), r(x)\n"), "{out}");
        assert!(out.contains("    - rule: |\n        s(x) :- q(x)\n  enforcement"), "{out}");
        assert!(out.contains("  text: |\n    a(x) :- b(x)\n    b(1)\n"), "{out}");
        assert!(out.contains("# keep me\n") && out.contains("metadata: {name: p}   # and me\n"));
        assert_eq!(format_manifest(&out).unwrap(), out, "idempotent");
    }

    #[test]
    fn other_documents_are_untouched() {
        let src = "kind: Datasource\nspec:\n  rule: p(x):-q(x)\n";
        assert_eq!(format_manifest(src).unwrap(), src);
    }
}
