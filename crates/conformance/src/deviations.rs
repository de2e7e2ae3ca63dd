//! The deviations document (`docs/deviations.md`): which recorded cases we differ on
//! on purpose, and why.

use super::Error;

/// One deliberate difference from Congress (`## id` in docs/deviations.md).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deviation {
    pub id: String,
    pub cases: Vec<String>,
    pub reason: String,
    pub test: String,
}

/// The parsed deviations document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deviations {
    pub list: Vec<Deviation>,
}

impl Deviations {
    /// Parse the document: each `## <id>` heading opens a deviation, whose
    /// `- cases: a, b`, `- reason: ...` and `- test: name` lines are required. Any other
    /// text is prose and ignored.
    pub fn parse(text: &str) -> Result<Deviations, Error> {
        let mut list: Vec<(usize, Deviation)> = Vec::new();
        // Deviations (by position in `list`) with a `- cases:` line; `- cases: none` is a
        // deviation no recorded case shows yet.
        let mut with_cases: Vec<usize> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if let Some(id) = line.strip_prefix("## ") {
                let id = id.trim();
                if id.is_empty() || id.contains(char::is_whitespace) {
                    return Err(Error::Deviations {
                        line: i + 1,
                        message: format!("a deviation id is one word, got `{id}`"),
                    });
                }
                list.push((i + 1, Deviation { id: id.to_string(), ..Deviation::default() }));
                continue;
            }
            let index = list.len().wrapping_sub(1);
            let Some((_, current)) = list.last_mut() else {
                continue;
            };
            let field = |key: &str| line.strip_prefix("- ").and_then(|l| l.strip_prefix(key)).map(str::trim);
            if let Some(cases) = field("cases:") {
                with_cases.push(index);
                if cases == "none" {
                    continue;
                }
                current.cases.extend(
                    cases.split(',').map(str::trim).filter(|c| !c.is_empty()).map(|c| c.trim_matches('`').to_string()),
                );
            } else if let Some(reason) = field("reason:") {
                current.reason = reason.to_string();
            } else if let Some(test) = field("test:") {
                current.test = test.trim_matches('`').to_string();
            }
        }
        for (i, (line, d)) in list.iter().enumerate() {
            let no_cases = d.cases.is_empty() && !with_cases.contains(&i);
            let missing = [("cases", no_cases), ("reason", d.reason.is_empty()), ("test", d.test.is_empty())];
            if let Some((what, _)) = missing.iter().find(|(_, m)| *m) {
                return Err(Error::Deviations {
                    line: *line,
                    message: format!("deviation `{}` has no `- {what}:` line", d.id),
                });
            }
        }
        Ok(Deviations { list: list.into_iter().map(|(_, d)| d).collect() })
    }

    /// The ids of the deviations that list a case.
    pub fn ids_for(&self, case: &str) -> Vec<String> {
        self.list.iter().filter(|d| d.cases.iter().any(|c| c == case)).map(|d| d.id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEVIATIONS_MD;

    const DOC: &str = "# Deviations\n\nProse.\n\n## alpha\n- cases: a, b\n- reason: because\n- test: `alpha_test`\n\n## beta\n- cases: b\n- reason: r\n- test: t\n";

    #[test]
    fn parses_the_deviations_document() {
        let d = Deviations::parse(DOC).expect("parses");
        assert_eq!(d.list.len(), 2);
        assert_eq!(d.list[0].cases, vec!["a", "b"]);
        assert_eq!(d.list[0].test, "alpha_test");
        assert_eq!(d.ids_for("b"), vec!["alpha", "beta"]);
        assert!(d.ids_for("c").is_empty());
    }

    #[test]
    fn a_deviation_without_a_test_is_an_error() {
        let err = Deviations::parse("## x\n- cases: a\n- reason: r\n").expect_err("no test line");
        let none = Deviations::parse("## x\n- cases: none\n- reason: r\n- test: t\n").expect("cases: none");
        assert!(none.list[0].cases.is_empty());
        Deviations::parse("## x\n- reason: r\n- test: t\n").expect_err("no cases line");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn the_shipped_deviations_document_parses() {
        let d = Deviations::parse(DEVIATIONS_MD).expect("docs/deviations.md parses");
        assert!(!d.list.is_empty());
    }
}
