//! Tests that hold the command line and its documentation together: every flag of every subcommand has its own
//! `BEATSTREAM_*` variable, and the flag tables of the docs name exactly the flags and variables that exist.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::cli::Cli;

/// Hidden arguments that are not settings, so they have no variable: the simulator's parent process passes them to
/// its worker processes, and a variable left in the environment must not turn a run into a worker.
const INTERNAL: &[(&str, &str)] =
    &[("simulate", "worker"), ("simulate", "workers"), ("simulate", "run-id")];

/// Where each command's flags are documented: its own table (file and the heading of the section holding it), and
/// the tables of flags it takes from a service (`beatstream node` takes every service's; every service takes the
/// shared Postgres and JSON-RPC flags). The root command (`""`) holds
/// the global flags.
const TABLES: &[(&str, &str, &str, &[&str])] = &[
    ("", "docs/CONFIGURATION.md", "## Every command", &[]),
    ("migrate", "docs/CONFIGURATION.md", "## `beatstream migrate`", &[]),
    (
        "node",
        "docs/CONFIGURATION.md",
        "## `beatstream node`",
        &["indexer", "keeper", "relay", "api", STUDIO, POSTGRES, RPC],
    ),
    ("indexer", "docs/INDEXER.md", "## Operations", &[POSTGRES, RPC]),
    ("relay", "docs/CONFIGURATION.md", "## `beatstream relay`", &[POSTGRES, RPC]),
    ("keeper", "docs/KEEPER.md", "## Settings", &[POSTGRES, RPC]),
    ("api", "docs/API.md", "## Settings", &[POSTGRES, RPC]),
    (STUDIO, "docs/STUDIO.md", "## Settings", &[]),
    (POSTGRES, "docs/CONFIGURATION.md", "## Postgres", &[]),
    (RPC, "docs/CONFIGURATION.md", "## JSON-RPC", &[]),
    ("simulate", "docs/CONFIGURATION.md", "## `beatstream simulate`", &[]),
    ("dev", "docs/CONFIGURATION.md", "## `beatstream dev`", &[]),
];

/// The studio's flags: not a command of its own, `beatstream node` serves it on the API's address.
const STUDIO: &str = "(studio)";
/// The table of the Postgres flags every service shares (not a command: it is only borrowed).
const POSTGRES: &str = "(postgres)";
/// The table of the JSON-RPC flags every service shares (borrowed, like [`POSTGRES`]).
const RPC: &str = "(rpc)";

/// Flags the docs name that belong to other programs (forge, cargo, git, sox), not to `beatstream`.
const OTHER_TOOLS: &[&str] =
    &["broadcast", "private-key", "bench", "release", "match-path", "detach", "no-dither"];

/// The command tree with global flags propagated to the subcommands, as clap builds it before parsing.
fn built() -> Command {
    let mut cli = Cli::command();
    cli.build();
    cli
}

/// Every command: the root (as `""`) and each subcommand, by name (clap's own `help` subcommand left out).
fn commands(cli: &Command) -> Vec<(String, &Command)> {
    let mut all = vec![(String::new(), cli)];
    all.extend(
        cli.get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| (c.get_name().to_owned(), c)),
    );
    all
}

/// The settings of a command: every argument but positionals and `--help`/`--version`.
fn settings(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_positional()
            && !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
    })
}

fn long(arg: &Arg) -> String {
    arg.get_long().map_or_else(|| arg.get_id().to_string(), str::to_owned)
}

fn env(arg: &Arg) -> Option<String> {
    arg.get_env().map(|e| e.to_string_lossy().into_owned())
}

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The rows of the flag table in the section of `file` under `heading`, as (flag without `--`, variable). A row is a
/// table line whose first cell is one backticked `--flag`; its second cell must be one backticked variable.
fn table(file: &str, heading: &str) -> Vec<(String, String)> {
    let text = read(file);
    let mut lines = text.lines().skip_while(|l| l.trim_end() != heading);
    assert!(lines.next().is_some(), "{file} has no section {heading:?}");
    let mut rows = Vec::new();
    for line in lines.take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.starts_with('|') || cells.len() < 3 || !cells[1].starts_with("`--") {
            continue;
        }
        let flag = cells[1]
            .strip_prefix("`--")
            .and_then(|c| c.strip_suffix('`'))
            .filter(|f| {
                f.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
            .unwrap_or_else(|| {
                panic!("{file} {heading}: one `--flag` per row, not {:?}", cells[1])
            });
        let var = cells[2]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .filter(|v| v.starts_with("BEATSTREAM_") && !v.contains('`'))
            .unwrap_or_else(|| {
                panic!(
                    "{file} {heading}: `--{flag}` needs its variable in the second cell, not {:?}",
                    cells[2]
                )
            });
        rows.push((flag.to_owned(), var.to_owned()));
    }
    assert!(!rows.is_empty(), "{file} {heading}: no flag table");
    rows
}

#[test]
fn every_flag_has_its_own_variable() {
    let cli = built();
    let mut missing = Vec::new();
    for (name, cmd) in commands(&cli) {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for arg in settings(cmd) {
            let flag = long(arg);
            if INTERNAL.contains(&(name.as_str(), flag.as_str())) {
                assert!(arg.is_hide_set(), "{name} --{flag} is internal but shown in --help");
                continue;
            }
            let Some(var) = env(arg) else {
                missing.push(format!("beatstream {name} --{flag}"));
                continue;
            };
            assert!(
                var.starts_with("BEATSTREAM_"),
                "beatstream {name} --{flag}: {var} is not BEATSTREAM_*"
            );
            if let Some(other) = seen.insert(var.clone(), flag.clone()) {
                panic!("beatstream {name}: --{other} and --{flag} both read {var}");
            }
        }
    }
    assert!(missing.is_empty(), "flags without an environment variable: {missing:?}");
}

#[test]
fn the_flag_tables_name_exactly_the_real_flags_and_variables() {
    let cli = built();
    let tables: BTreeMap<&str, Vec<(String, String)>> =
        TABLES.iter().map(|(name, file, heading, _)| (*name, table(file, heading))).collect();
    let mut problems = Vec::new();
    for (name, cmd) in commands(&cli) {
        let Some((_, file, heading, borrowed)) = TABLES.iter().find(|t| t.0 == name) else {
            problems.push(format!("beatstream {name} has no flag table in TABLES"));
            continue;
        };
        let own = &tables[name.as_str()];
        let real: BTreeMap<String, Option<String>> = settings(cmd)
            .filter(|a| name.is_empty() || !a.is_global_set())
            .map(|a| (long(a), env(a)))
            .collect();
        // No row twice, and every row is a real flag of this command read from that variable.
        let mut rows = BTreeSet::new();
        for (flag, var) in own {
            if !rows.insert(flag) {
                problems.push(format!("{file} {heading}: --{flag} twice"));
            }
            match real.get(flag) {
                None => {
                    problems.push(format!("{file} {heading}: beatstream {name} has no --{flag}"))
                }
                Some(real_var) if real_var.as_deref() != Some(var.as_str()) => problems.push(
                    format!("{file} {heading}: --{flag} reads {real_var:?}, the table says {var}"),
                ),
                Some(_) => {}
            }
        }
        // Every flag shown in --help is in this command's table, or in the table of the service it comes from.
        let documented: BTreeSet<(&str, &str)> = std::iter::once(name.as_str())
            .chain(borrowed.iter().copied())
            .flat_map(|t| tables[t].iter().map(|(f, v)| (f.as_str(), v.as_str())))
            .collect();
        for arg in settings(cmd).filter(|a| !a.is_hide_set()) {
            if !name.is_empty() && arg.is_global_set() {
                continue; // documented once, with the root's
            }
            let (flag, var) = (long(arg), env(arg).unwrap_or_default());
            if !documented.contains(&(flag.as_str(), var.as_str())) {
                problems.push(format!("beatstream {name} --{flag} ({var}) is in no flag table"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the docs' flag tables differ from the CLI:\n{}",
        problems.join("\n")
    );
}

/// The `--flag`s a markdown text names, as written (without `--`).
fn flags_named(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    for i in 0..bytes.len().saturating_sub(2) {
        let starts = bytes[i] == b'-'
            && bytes[i + 1] == b'-'
            && bytes[i + 2].is_ascii_lowercase()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-'));
        if starts {
            let rest = &text[i + 2..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            found.insert(rest[..end].trim_end_matches('-').to_owned());
        }
    }
    found
}

#[test]
fn every_flag_the_docs_name_exists() {
    let cli = built();
    let real: BTreeSet<String> =
        commands(&cli).iter().flat_map(|(_, cmd)| cmd.get_arguments().map(long)).collect();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut files = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(&docs).expect("docs/") {
        let name = entry.expect("docs/ entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            files.push(format!("docs/{name}"));
        }
    }
    files.sort();
    let mut unknown = Vec::new();
    for file in &files {
        for flag in flags_named(&read(file)) {
            if !real.contains(&flag) && !OTHER_TOOLS.contains(&flag.as_str()) {
                unknown.push(format!("{file}: --{flag}"));
            }
        }
    }
    assert!(unknown.is_empty(), "the docs name flags no beatstream command has: {unknown:?}");
}

#[test]
fn the_flag_scanner_finds_flags_in_prose_and_tables() {
    let text = "run `beatstream x --rpc-timeout-secs 5`; |---|---| a--b `--range-initial/min/max`";
    let found: Vec<String> = flags_named(text).into_iter().collect();
    assert_eq!(found, ["range-initial", "rpc-timeout-secs"]);
}
