//! The flag tables of `docs/operations.md` and the README against
//! `uniqd --help` (and `uniqd healthcheck --help`): the same flags, each
//! with the same environment variable and default, in both directions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::repo_path;

const BIN: &str = env!("CARGO_BIN_EXE_uniqd");

/// What the documentation says about one flag: environment variable and
/// default (`None` where there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FlagDoc {
    env: Option<String>,
    default: Option<String>,
}

/// Flags as `uniqd <args> --help` prints them, keyed `--flag`, or
/// `healthcheck --flag` for the subcommand's. `--help`/`--version` are left
/// out (clap adds them everywhere).
fn help_flags(subcommand: Option<&str>) -> BTreeMap<String, FlagDoc> {
    let mut command = Command::new(BIN);
    command.args(subcommand).arg("--help");
    // The help shows the current value of a set variable; make it show none.
    for (name, _) in std::env::vars() {
        if name.starts_with("UNIQD_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run uniqd --help");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8(output.stdout).unwrap();

    // Split into one block per option: a line whose first non-blank text is
    // `-x, --flag` or `--flag` starts a block.
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let option = trimmed
            .strip_prefix("-")
            .filter(|_| line.starts_with("  "))
            .and_then(|_| trimmed.split_whitespace().find(|w| w.starts_with("--")));
        match option {
            Some(flag) => blocks.push((flag.trim_end_matches(',').to_owned(), line.to_owned())),
            None => {
                if let Some((_, text)) = blocks.last_mut() {
                    text.push(' ');
                    text.push_str(trimmed);
                }
            }
        }
    }
    let prefix = subcommand.map(|s| format!("{s} ")).unwrap_or_default();
    blocks
        .into_iter()
        .filter(|(flag, _)| flag != "--help" && flag != "--version")
        .map(|(flag, text)| {
            let env = bracketed(&text, "[env: ").map(|e| e.trim_end_matches('=').to_owned());
            let default = bracketed(&text, "[default: ");
            (format!("{prefix}{flag}"), FlagDoc { env, default })
        })
        .collect()
}

/// The text between the last `open` and the following `]`.
fn bracketed(text: &str, open: &str) -> Option<String> {
    let start = text.rfind(open)? + open.len();
    let end = text[start..].find(']')? + start;
    Some(text[start..end].to_owned())
}

/// Rows `| `--flag` | `ENV` or none | default | meaning |` of a Markdown
/// file, keyed like [`help_flags`].
fn documented_flags(relative: &str) -> BTreeMap<String, FlagDoc> {
    let text = std::fs::read_to_string(repo_path(relative)).unwrap();
    let mut flags = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, flag, env, default, ..] = cells.as_slice() else {
            continue;
        };
        let flag = flag.trim_matches('`');
        let is_flag = flag
            .trim_start_matches("healthcheck ")
            .strip_prefix("--")
            .is_some_and(|name| name.starts_with(|c: char| c.is_ascii_lowercase()));
        if !is_flag {
            continue;
        }
        let plain = |cell: &str| cell.replace('`', "");
        let env = Some(plain(env)).filter(|e| e.starts_with("UNIQD_"));
        let doc = FlagDoc {
            env,
            default: Some(plain(default)),
        };
        let previous = flags.insert(flag.to_owned(), doc);
        assert!(previous.is_none(), "{relative}: {flag} is listed twice");
    }
    flags
}

#[test]
fn operations_md_lists_every_flag_of_help_and_nothing_else() {
    let mut help = help_flags(None);
    help.extend(help_flags(Some("healthcheck")));
    assert!(help.len() >= 16, "suspiciously few flags parsed: {help:?}");
    assert!(help.values().filter(|f| f.env.is_some()).count() >= 14);
    let documented = documented_flags("docs/operations.md");
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        help.keys().collect::<Vec<_>>(),
        "docs/operations.md and uniqd --help list different flags"
    );
    for (flag, doc) in &help {
        let documented = &documented[flag];
        assert_eq!(documented.env, doc.env, "{flag}: environment variable");
        if let Some(default) = &doc.default {
            assert_eq!(
                documented.default.as_ref(),
                Some(default),
                "{flag}: default"
            );
        }
    }
}

#[test]
fn readme_configuration_table_matches_help() {
    let help = help_flags(None);
    let documented = documented_flags("README.md");
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        help.keys().collect::<Vec<_>>(),
        "README.md and uniqd --help list different flags"
    );
    for (flag, doc) in &help {
        assert_eq!(
            documented[flag].env, doc.env,
            "{flag}: environment variable"
        );
        if let Some(default) = &doc.default {
            assert_eq!(
                documented[flag].default.as_ref(),
                Some(default),
                "{flag}: default"
            );
        }
    }
}

#[test]
fn every_service_flag_has_an_environment_variable_named_after_it() {
    for (flag, doc) in help_flags(None) {
        let expected = format!(
            "UNIQD_{}",
            flag.trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        assert_eq!(doc.env.as_deref(), Some(expected.as_str()), "{flag}");
    }
}
