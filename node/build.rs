//! Records the commit the binary is built from as `BUILD_GIT_SHA`, for the `git_sha` label of
//! `beatstream_build_info`: `$BUILD_GIT_SHA` when the build is given one (a container build without `.git`),
//! else `git rev-parse HEAD`, else `unknown` (a source tarball, or no git installed). Only this crate rebuilds when
//! the commit moves. Not a `BEATSTREAM_*` name: cargo also sets it when running the tests, whose CLI checks refuse
//! any `BEATSTREAM_*` variable.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_GIT_SHA");
    let sha = std::env::var("BUILD_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names (a commit), packed refs.
    for path in ["HEAD", "packed-refs"]
        .into_iter()
        .map(str::to_owned)
        .chain(git(&["symbolic-ref", "-q", "HEAD"]))
        .filter_map(|name| git(&["rev-parse", "--git-path", &name]))
    {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=BUILD_GIT_SHA={sha}");
}

/// The trimmed output of a successful `git` command, if git is there and this is a repository.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
