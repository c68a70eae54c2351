//! Where a setting comes from, in order of precedence: the command line, then its `BEATSTREAM_*` variable, then the
//! TOML file named by `--config` (or `BEATSTREAM_CONFIG`), then its default. `--print-config` shows the outcome.
//!
//! The file's keys are flag names (`database_url` or `database-url` for `--database-url`). Keys at the top apply to
//! every command that has the flag; a table named after a command (`[node]`, `[relay]`, ...) applies to that command
//! and wins over the top. A key no command has, or that its command does not have, is an error: a typo must not be
//! ignored. The file's settings are handed to clap as if given on the command line, so they are parsed and checked
//! exactly as flags are.

use std::{collections::BTreeMap, ffi::OsString, path::PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};
use eyre::{WrapErr, bail, eyre};

/// The variable of the global `--config` flag.
const CONFIG_ENV: &str = "BEATSTREAM_CONFIG";
/// Global flags that take a value, so the subcommand is found after them.
const GLOBAL_WITH_VALUE: &[&str] = &["--config", "--log-format"];

/// The command line with the file's settings added after the subcommand name, where neither the command line nor
/// the environment gives them; and which flags came from the file.
pub(crate) struct Layered {
    /// What clap parses.
    pub(crate) args: Vec<OsString>,
    /// The long names of the flags the file gave.
    pub(crate) from_file: Vec<String>,
}

/// Adds the settings of the `--config` file (if any) to `args` for the subcommand they name.
pub(crate) fn layer(cli: &Command, args: Vec<OsString>) -> eyre::Result<Layered> {
    let strings: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let Some(path) = config_path(&strings) else {
        return Ok(Layered { args, from_file: Vec::new() });
    };
    let Some((at, name)) = subcommand(&strings) else {
        return Ok(Layered { args, from_file: Vec::new() });
    };
    let Some(sub) = cli.get_subcommands().find(|c| c.get_name() == name) else {
        return Ok(Layered { args, from_file: Vec::new() });
    };
    let text = std::fs::read_to_string(&path)
        .wrap_err_with(|| format!("reading the config file {}", path.display()))?;
    let settings = settings_for(cli, sub, &text)
        .wrap_err_with(|| format!("in the config file {}", path.display()))?;
    let given = &strings[at + 1..];
    let mut added = Vec::new();
    let mut from_file = Vec::new();
    for (flag, value) in settings {
        let arg =
            sub.get_arguments().find(|a| a.get_long() == Some(flag.as_str())).expect("checked");
        let on_command_line =
            given.iter().any(|a| a == &format!("--{flag}") || a.starts_with(&format!("--{flag}=")));
        let in_environment = arg.get_env().is_some_and(|var| std::env::var_os(var).is_some());
        if on_command_line || in_environment {
            continue;
        }
        let before = added.len();
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, Value::Bool(true)) => added.push(format!("--{flag}")),
            (ArgAction::SetTrue, Value::Bool(false)) => {}
            (ArgAction::SetTrue, _) => bail!("`{flag}` is a switch: give true or false"),
            (_, Value::Bool(b)) => added.push(format!("--{flag}={b}")),
            (_, Value::One(v)) => added.push(format!("--{flag}={v}")),
            (_, Value::Many(values)) => {
                added.extend(values.into_iter().map(|v| format!("--{flag}={v}")));
            }
        }
        if added.len() > before {
            from_file.push(flag);
        }
    }
    let mut args = args;
    args.splice(at + 1..at + 1, added.into_iter().map(OsString::from));
    Ok(Layered { args, from_file })
}

/// A setting's value as the file gives it.
enum Value {
    Bool(bool),
    One(String),
    Many(Vec<String>),
}

/// The `--config` path: the flag's value, else `BEATSTREAM_CONFIG`.
fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(a) = iter.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The subcommand's position and name: the first argument that is not a global flag or its value.
fn subcommand(args: &[String]) -> Option<(usize, String)> {
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if GLOBAL_WITH_VALUE.contains(&a.as_str()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some((i, a.clone()));
        }
    }
    None
}

/// The file's settings for `sub`: its table's over the top level's, by long flag name, checked against the CLI.
fn settings_for(cli: &Command, sub: &Command, text: &str) -> eyre::Result<BTreeMap<String, Value>> {
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e| eyre!("{e}"))?;
    let commands: Vec<&str> = cli.get_subcommands().map(Command::get_name).collect();
    let has = |cmd: &Command, flag: &str| {
        cmd.get_arguments().any(|a| a.get_long() == Some(flag) && !a.is_global_set())
    };
    let mut top = BTreeMap::new();
    let mut own = BTreeMap::new();
    for (key, item) in doc.iter() {
        if let Some(table) = item.as_table() {
            if !commands.contains(&key) {
                bail!("[{key}]: no such command (the tables are {})", commands.join(", "));
            }
            let cmd = cli.get_subcommands().find(|c| c.get_name() == key).expect("listed");
            for (k, v) in table.iter() {
                let flag = k.replace('_', "-");
                if !has(cmd, &flag) {
                    bail!("[{key}] {k}: `beatstream {key}` has no --{flag}");
                }
                if key == sub.get_name() {
                    own.insert(flag, value(k, v)?);
                }
            }
            continue;
        }
        let flag = key.replace('_', "-");
        if !cli.get_subcommands().any(|c| has(c, &flag)) {
            bail!("{key}: no command has --{flag}");
        }
        if has(sub, &flag) {
            top.insert(flag, value(key, item)?);
        }
    }
    top.extend(own);
    Ok(top)
}

fn value(key: &str, item: &toml_edit::Item) -> eyre::Result<Value> {
    let scalar = |v: &toml_edit::Value| -> eyre::Result<String> {
        Ok(match v {
            toml_edit::Value::String(s) => s.value().clone(),
            toml_edit::Value::Integer(i) => i.value().to_string(),
            toml_edit::Value::Float(f) => f.value().to_string(),
            toml_edit::Value::Boolean(b) => b.value().to_string(),
            _ => bail!("{key}: give a string, a number, a boolean or a list of them"),
        })
    };
    let v = item.as_value().ok_or_else(|| eyre!("{key}: give a value, not a table"))?;
    Ok(match v {
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Array(items) => {
            Value::Many(items.iter().map(scalar).collect::<eyre::Result<_>>()?)
        }
        other => Value::One(scalar(other)?),
    })
}

/// The effective settings of the subcommand `name` as TOML under `[name]`, each with where it came from; secrets
/// (flags whose variables are hidden in `--help`) are redacted, and so is a password in a URL.
pub(crate) fn render(sub: &Command, matches: &ArgMatches, from_file: &[String]) -> String {
    let mut out = format!(
        "# beatstream {}: the effective configuration (secrets redacted)\n[{}]\n",
        sub.get_name(),
        sub.get_name()
    );
    for arg in sub.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set()
            || arg.is_global_set()
            || matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpLong | ArgAction::HelpShort | ArgAction::Version
            )
        {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        let key = long.replace('-', "_");
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) if from_file.iter().any(|f| f == long) => "config file",
            Some(ValueSource::CommandLine) => "command line",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => "unset",
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let shown = |v: &str| -> String {
            if is_secret(arg) {
                "<redacted>".to_owned()
            } else if long.contains("rpc-url") || long.contains("yellow-url") {
                redact_endpoint(v)
            } else {
                redact_password(v)
            }
        };
        let line = match (arg.get_action(), values.as_slice()) {
            (ArgAction::SetTrue, [v]) => format!("{key} = {v}"),
            (_, []) => format!("# {key} ="),
            (ArgAction::Append, many) => format!(
                "{key} = [{}]",
                many.iter().map(|v| quote(&shown(v))).collect::<Vec<_>>().join(", ")
            ),
            (_, [one]) => format!("{key} = {}", quote(&shown(one))),
            (_, many) => format!(
                "{key} = [{}]",
                many.iter().map(|v| quote(&shown(v))).collect::<Vec<_>>().join(", ")
            ),
        };
        out.push_str(&format!("{line:<60} # {source}\n"));
    }
    out
}

/// Keys and passwords: flags whose values `--help` hides.
fn is_secret(arg: &Arg) -> bool {
    arg.is_hide_env_values_set() && !arg.get_long().is_some_and(|l| l.ends_with("url"))
}

/// `scheme://user:password@host/...` with the password replaced.
fn redact_password(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => value.to_owned(),
    }
}

/// A JSON-RPC endpoint's scheme, host and port: providers put API keys in the path or the query.
fn redact_endpoint(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(u) => {
            let hidden = u.password().is_some()
                || !u.username().is_empty()
                || !matches!(u.path(), "" | "/")
                || u.query().is_some();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let host = u.host_str().unwrap_or("");
            format!("{}://{host}{port}{}", u.scheme(), if hidden { "/<redacted>" } else { "" })
        }
        Err(_) => "<redacted>".to_owned(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn the_file_fills_what_the_command_line_does_not_give() {
        let f = file(
            "database_url = \"postgres://file/db\"\nrpc-url = \"http://file:8545\"\n\
             [node]\nbatch_events = 7\nno_api = true\nno_relay = false\n[relay]\nrelay_max_sessions = 9\n",
        );
        let path = f.path().to_str().unwrap();
        let cli = Cli::command();
        let layered = layer(
            &cli,
            args(&["beatstream", "--config", path, "node", "--rpc-url", "http://flag:8545"]),
        )
        .unwrap();
        let got: Vec<String> =
            layered.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            got,
            [
                "beatstream",
                "--config",
                path,
                "node",
                "--batch-events=7",
                "--database-url=postgres://file/db",
                "--no-api",
                "--rpc-url",
                "http://flag:8545"
            ]
        );
        assert_eq!(layered.from_file, ["batch-events", "database-url", "no-api"]);
    }

    #[test]
    fn print_config_shows_sources_and_hides_secrets() {
        use clap::FromArgMatches;
        let f = file("[node]\nbatch_events = 7\n");
        let cli = Cli::command();
        let layered = layer(
            &cli,
            args(&[
                "beatstream",
                "--config",
                f.path().to_str().unwrap(),
                "node",
                "--database-url",
                "postgres://app:s3cret@db.example.com/beatstream",
                "--rpc-url",
                "https://eth.example.com/v2/APIKEY123",
                "--keeper-private-key",
                "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            ]),
        )
        .unwrap();
        let matches = Cli::command().try_get_matches_from(layered.args).unwrap();
        Cli::from_arg_matches(&matches).unwrap();
        let (_, sub) = matches.subcommand().unwrap();
        let node = Cli::command();
        let out = render(node.find_subcommand("node").unwrap(), sub, &layered.from_file);
        for secret in ["s3cret", "APIKEY123", "59c6995e"] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        let line = |key: &str| {
            out.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or_default().to_owned()
        };
        assert!(line("batch_events").ends_with("# config file"), "{out}");
        assert!(line("database_url").contains("db.example.com"), "{out}");
        assert!(line("database_url").ends_with("# command line"), "{out}");
        assert!(line("keeper_private_key").contains("<redacted>"), "{out}");
        assert!(line("confirmations").ends_with("# default"), "{out}");
        // What it prints (secrets left out) is a config file that reads back.
        let printed =
            out.lines().filter(|l| !l.contains("redacted")).collect::<Vec<_>>().join("\n");
        let printed = file(&printed);
        let back = ["beatstream", "--config", printed.path().to_str().unwrap(), "node"];
        layer(&Cli::command(), args(&back)).expect("the printed configuration reads back");
    }

    #[test]
    fn a_key_no_command_has_is_an_error() {
        let cli = Cli::command();
        for (text, says) in [
            ("databse_url = \"x\"", "no command has --databse-url"),
            ("[relay]\nbatch_events = 1", "`beatstream relay` has no --batch-events"),
            ("[nodes]\nx = 1", "no such command"),
        ] {
            let f = file(text);
            let err =
                layer(&cli, args(&["beatstream", "--config", f.path().to_str().unwrap(), "node"]))
                    .err()
                    .expect("an error");
            assert!(format!("{err:#}").contains(says), "{text}: {err:#}");
        }
    }
}
