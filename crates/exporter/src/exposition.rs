//! `/metrics` content negotiation and the classic Prometheus text format (0.0.4).
//!
//! prometheus-client encodes OpenMetrics only. As the official client libraries do, `/metrics`
//! answers OpenMetrics when the scraper's `Accept` header asks for it (Prometheus's own header
//! does, ahead of `text/plain`) and the classic text format otherwise ([`Format::negotiate`]).
//! The classic text is written from the same OpenMetrics encoding ([`to_classic`]):
//!
//! * `# EOF` and `# UNIT` lines are dropped (the classic format has neither);
//! * a counter family is named with its `_total` suffix in `# HELP` / `# TYPE`, as its samples
//!   are (promtool: "counter metrics should have _total suffix"), and `_created` samples of
//!   counters and histograms are dropped;
//! * an `info` family becomes a gauge named `<name>_info`, `unknown` becomes `untyped`, other
//!   OpenMetrics-only types (`stateset`, `gaugehistogram`) become `untyped`;
//! * `# HELP` text is escaped as the classic format wants (`\\` and `\n` only, no `\"`);
//! * exemplars (` # {...}` after a sample's value) are dropped.
//!
//! Sample lines are otherwise kept as they are: both formats write `name{labels} value` alike.

use std::collections::HashMap;

/// `Content-Type` of `/metrics` in OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of `/metrics` in the classic Prometheus text format.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition format of one `/metrics` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4.
    Classic,
}

impl Format {
    /// The format for an `Accept` header, as the Go client's `expfmt.Negotiate` chooses: the
    /// media ranges by falling quality (ties in the order given); the first that is
    /// `application/openmetrics-text` (version 1.0.0, 0.0.1 or none) wins OpenMetrics, the first
    /// that is `text/plain` (version 0.0.4 or none) the classic format; anything else, or no
    /// header, the classic format.
    #[must_use]
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Classic;
        };
        let mut ranges: Vec<(f32, Option<Self>)> = accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next()?.to_ascii_lowercase();
                let mut quality = 1.0_f32;
                let mut version = None;
                for param in parts {
                    let Some((key, value)) = param.split_once('=') else {
                        continue;
                    };
                    let value = value.trim().trim_matches('"');
                    match key.trim().to_ascii_lowercase().as_str() {
                        "q" => quality = value.parse().unwrap_or(0.0),
                        "version" => version = Some(value.to_owned()),
                        _ => {}
                    }
                }
                let format = match (media.as_str(), version.as_deref()) {
                    ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => {
                        Some(Self::OpenMetrics)
                    }
                    ("text/plain", None | Some("0.0.4")) => Some(Self::Classic),
                    _ => None,
                };
                (quality > 0.0).then_some((quality, format))
            })
            .collect();
        // Stable: equal qualities keep the header's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, format)| format)
            .unwrap_or(Self::Classic)
    }

    /// The `Content-Type` of an answer in this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::Classic => CLASSIC_CONTENT_TYPE,
        }
    }
}

/// How a family is written in the classic format.
struct ClassicFamily {
    /// The name in `# HELP` / `# TYPE`.
    name: String,
    /// The type word in `# TYPE`.
    kind: &'static str,
    /// Whether `<family>_created` samples are dropped.
    drop_created: bool,
}

/// The classic text format 0.0.4 of `openmetrics` (an OpenMetrics text as prometheus-client
/// encodes it: `# HELP`, `# TYPE`, `# UNIT`, samples, `# EOF`); see the [module docs](self).
#[must_use]
pub fn to_classic(openmetrics: &str) -> String {
    let mut families: HashMap<&str, ClassicFamily> = HashMap::new();
    for line in openmetrics.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let Some((name, kind)) = rest.split_once(' ') else {
            continue;
        };
        let (classic_name, kind, drop_created) = match kind.trim() {
            "counter" => (format!("{name}_total"), "counter", true),
            "gauge" => (name.to_owned(), "gauge", false),
            "histogram" => (name.to_owned(), "histogram", true),
            "summary" => (name.to_owned(), "summary", true),
            "info" => (format!("{name}_info"), "gauge", false),
            _ => (name.to_owned(), "untyped", false),
        };
        families.insert(
            name,
            ClassicFamily {
                name: classic_name,
                kind,
                drop_created,
            },
        );
    }

    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            if let Some(rest) = comment.strip_prefix("HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = families.get(name).map_or(name, |f| f.name.as_str());
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                push_classic_help(&mut out, help);
                out.push('\n');
            } else if let Some(rest) = comment.strip_prefix("TYPE ") {
                let name = rest.split_once(' ').map_or(rest, |(name, _)| name);
                if let Some(family) = families.get(name) {
                    out.push_str("# TYPE ");
                    out.push_str(&family.name);
                    out.push(' ');
                    out.push_str(family.kind);
                    out.push('\n');
                }
            }
            // `# UNIT`, `# EOF` and anything else: no classic equivalent.
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let sample_name = line.split(['{', ' ']).next().unwrap_or(line);
        if let Some(family) = sample_name.strip_suffix("_created") {
            if families.get(family).is_some_and(|f| f.drop_created) {
                continue;
            }
        }
        out.push_str(strip_exemplar(line));
        out.push('\n');
    }
    out
}

/// `line` without an exemplar: the part before ` # ` outside label values.
fn strip_exemplar(line: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes && line[..i].ends_with(' ') => return line[..i].trim_end(),
            _ => {}
        }
    }
    line
}

/// Appends OpenMetrics `# HELP` text (escapes `\\`, `\n`, `\"`) escaped for the classic
/// format (`\\` and `\n` only).
fn push_classic_help(out: &mut String, help: &str) {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('n') => out.push_str("\\n"),
            Some('\\') | None => out.push_str("\\\\"),
            Some(other) => {
                out.push_str("\\\\");
                out.push(other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus 2.x/3.x's scrape `Accept` header (without protobuf).
    const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
        application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// The same with native histograms on (protobuf first, which uniqd does not offer).
    const PROMETHEUS_PROTOBUF_FIRST_ACCEPT: &str = "application/vnd.google.protobuf;\
        proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,\
        application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    #[test]
    fn negotiation_follows_the_accept_header() {
        use Format::{Classic, OpenMetrics};
        for (accept, format) in [
            (None, Classic),
            (Some(""), Classic),
            (Some("*/*"), Classic),
            (Some("text/plain"), Classic),
            (Some("text/plain; version=0.0.4"), Classic),
            (Some(PROMETHEUS_ACCEPT), OpenMetrics),
            (Some(PROMETHEUS_PROTOBUF_FIRST_ACCEPT), OpenMetrics),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; version=1.0.0"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text; version=2.0.0"), Classic),
            (Some("application/openmetrics-text;q=0"), Classic),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
                Classic,
            ),
            (
                Some("text/plain;q=0.5, application/openmetrics-text;q=0.9"),
                OpenMetrics,
            ),
            (Some("text/plain, application/openmetrics-text"), Classic),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
        assert_eq!(
            Format::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            Format::Classic.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn openmetrics_is_rewritten_to_the_classic_format() {
        let openmetrics = "\
# HELP requests Requests by \\\"outcome\\\".\n\
# TYPE requests counter\n\
requests_total{outcome=\"ok\"} 3\n\
requests_created{outcome=\"ok\"} 1700000000.0\n\
# HELP up Whether \\\\ it is up.\n\
# TYPE up gauge\n\
up 1\n\
# HELP duration_seconds Time.\n\
# TYPE duration_seconds histogram\n\
# UNIT duration_seconds seconds\n\
duration_seconds_sum 0.5\n\
duration_seconds_count 2\n\
duration_seconds_bucket{le=\"0.1\"} 1 # {trace=\"a # b\"} 0.05\n\
duration_seconds_bucket{le=\"+Inf\"} 2\n\
# HELP build Build.\n\
# TYPE build info\n\
build_info{version=\"1 # 2\"} 1\n\
# HELP odd Odd.\n\
# TYPE odd unknown\n\
odd 7\n\
# EOF\n";
        assert_eq!(
            to_classic(openmetrics),
            "\
# HELP requests_total Requests by \"outcome\".\n\
# TYPE requests_total counter\n\
requests_total{outcome=\"ok\"} 3\n\
# HELP up Whether \\\\ it is up.\n\
# TYPE up gauge\n\
up 1\n\
# HELP duration_seconds Time.\n\
# TYPE duration_seconds histogram\n\
duration_seconds_sum 0.5\n\
duration_seconds_count 2\n\
duration_seconds_bucket{le=\"0.1\"} 1\n\
duration_seconds_bucket{le=\"+Inf\"} 2\n\
# HELP build_info Build.\n\
# TYPE build_info gauge\n\
build_info{version=\"1 # 2\"} 1\n\
# HELP odd Odd.\n\
# TYPE odd untyped\n\
odd 7\n"
        );
    }
}
