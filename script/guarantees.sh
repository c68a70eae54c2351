#!/usr/bin/env bash
# `make guarantees`: every promise in docs/TESTING.md is held by a test that fails when its mechanism is removed.
#
# Each guarantees/<name>.patch removes one mechanism. Its header (the lines before the first `diff --git`, which
# `git apply` ignores) names the promise and the checks that must catch it:
#
#   Promise: <one line>
#   Check: cargo <package> <test target> <filter>...   # `cargo test -p <package> --test <target> -- <filter>...`
#   Check: forge <forge test arguments>...              # `forge test <arguments>`
#
# For each patch, in a scratch copy of this tree (target/guarantees/src, built into target/guarantees/target so the
# real target/ is never touched):
#   1. the checks pass on the unmutated copy (a check that fails there proves nothing);
#   2. the patch applies and the mutated copy builds (a mutation that does not compile is not "caught");
#   3. at least one check fails on the mutated copy: "caught". Otherwise "SURVIVED", and the run fails.
#
# Usage: script/guarantees.sh [name...]   (no names: every patch in guarantees/)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$root/target/guarantees/src"
export CARGO_TARGET_DIR="$root/target/guarantees/target"
# The scratch copy lies inside this repository: without a ceiling, `git apply` there would find this repository's
# .git, take the copy for a subdirectory and skip every path of the patch, silently.
export GIT_CEILING_DIRECTORIES="$root/target/guarantees"
export PATH="$root/node_modules/.beatstream/bin:$root/node_modules/.bin:$PATH"
log_dir="$root/target/guarantees/logs"
mkdir -p "$scratch" "$log_dir"

# One run at a time: the scratch copy is shared. Checks run with fd 9 closed, so a process a test leaves behind
# cannot hold the lock.
exec 9>"$root/target/guarantees/lock"
if ! flock -n 9; then
    echo "another make guarantees is running; waiting for it" >&2
    flock 9
fi

if cargo nextest --version >/dev/null 2>&1; then nextest=1; else nextest=0; fi

# The scratch copy: the working tree as it is (committed or not), without build outputs. Files are compared by
# content and only those that differ are rewritten, with a new time: unchanged files keep theirs, so cargo and forge
# rebuild only what changed, and a file a killed run left mutated is rebuilt from the original (with its original,
# older time, cargo would take the mutant's build as fresh).
rsync -rlpc --delete \
    --exclude '/target/' --exclude '/out/' --exclude '/cache/' --exclude '/node_modules/' --exclude '/.git/' \
    --exclude '/broadcast/' \
    "$root/" "$scratch/"
ln -sfn "$root/node_modules" "$scratch/node_modules"

patches=()
if [ "$#" -gt 0 ]; then
    for name in "$@"; do patches+=("$root/guarantees/${name%.patch}.patch"); done
else
    for patch in "$root"/guarantees/*.patch; do patches+=("$patch"); done
fi

# build_check <kind> <args...>: compile what the check runs.
build_check() {
    local kind="$1"
    shift
    case "$kind" in
    cargo) (cd "$scratch" && cargo test --quiet -p "$1" --test "$2" --no-run) 9>&- ;;
    forge) (cd "$scratch" && forge build) 9>&- ;;
    *)
        echo "unknown check kind '$kind'" >&2
        return 2
        ;;
    esac
}

# run_check <kind> <args...>: run it; the exit status is the verdict.
run_check() {
    local kind="$1"
    shift
    case "$kind" in
    cargo)
        local package="$1" target="$2"
        shift 2
        if [ "$nextest" = 1 ]; then
            (cd "$scratch" && cargo nextest run --no-fail-fast -p "$package" --test "$target" -- "$@") 9>&-
        else
            (cd "$scratch" && cargo test -p "$package" --test "$target" -- "$@") 9>&-
        fi
        ;;
    forge) (cd "$scratch" && forge test "$@") 9>&- ;;
    esac
}

# checks_of <patch>: its Check lines, one per line, without the prefix.
checks_of() { sed -n '/^diff --git/q; s/^Check: *//p' "$1"; }
promise_of() { sed -n '/^diff --git/q; s/^Promise: *//p' "$1" | head -n 1; }

caught=0
survived=0
broken=0
results=()
started=$SECONDS
for patch in "${patches[@]}"; do
    name="$(basename "$patch" .patch)"
    log="$log_dir/$name.log"
    : >"$log"
    if [ ! -f "$patch" ]; then
        echo "no such mutation: $patch" >&2
        exit 2
    fi
    mapfile -t checks < <(checks_of "$patch")
    if [ "${#checks[@]}" -eq 0 ]; then
        results+=("BROKEN   $name: no Check line")
        broken=$((broken + 1))
        continue
    fi
    echo "== $name: $(promise_of "$patch")"
    t0=$SECONDS

    # 1. The checks hold on the unmutated tree.
    verdict=""
    for check in "${checks[@]}"; do
        read -r -a words <<<"$check"
        if ! build_check "${words[@]}" >>"$log" 2>&1 || ! run_check "${words[@]}" >>"$log" 2>&1; then
            verdict="BROKEN   $name: check fails without the mutation: $check (see $log)"
            break
        fi
    done

    # 2. and 3. Mutate, build, expect a failure.
    if [ -z "$verdict" ]; then
        # Applied for certain: a reverse check succeeds only if every hunk is now in place.
        if ! (cd "$scratch" && git apply "$patch" && git apply -R --check "$patch") >>"$log" 2>&1; then
            verdict="BROKEN   $name: patch does not apply (see $log)"
        else
            failed_by=""
            for check in "${checks[@]}"; do
                read -r -a words <<<"$check"
                if ! build_check "${words[@]}" >>"$log" 2>&1; then
                    verdict="BROKEN   $name: mutated tree does not build for: $check (see $log)"
                    break
                fi
                if ! run_check "${words[@]}" >>"$log" 2>&1; then
                    failed_by="$check"
                    break
                fi
            done
            # Undo: rewriting the files gives them new times, so the next build sees the original again.
            (cd "$scratch" && git apply -R "$patch") >>"$log" 2>&1
            if [ -z "$verdict" ]; then
                if [ -n "$failed_by" ]; then
                    verdict="caught   $name  by  $failed_by"
                else
                    verdict="SURVIVED $name: every check passed with the mechanism removed (see $log)"
                fi
            fi
        fi
    fi
    case "$verdict" in
    caught*) caught=$((caught + 1)) ;;
    SURVIVED*) survived=$((survived + 1)) ;;
    *) broken=$((broken + 1)) ;;
    esac
    results+=("$verdict  [$((SECONDS - t0)) s]")
    echo "   ${verdict}  [$((SECONDS - t0)) s]"
done

echo
echo "make guarantees: ${#patches[@]} mutations in $((SECONDS - started)) s"
for line in "${results[@]}"; do echo "  $line"; done
echo "caught $caught, survived $survived, broken $broken"
[ "$survived" -eq 0 ] && [ "$broken" -eq 0 ]
