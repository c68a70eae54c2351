#!/usr/bin/env node
// `make lint`: no module cycles inside a crate. For every `crate::`, `super::` and `self::` path in a crate's
// source (comments and unit tests left out), the edge between the two modules is lifted to the sibling modules
// under their common parent (`conn::vault` using `relay` is `conn` -> `relay`); a module and its own ancestors may
// use each other freely, and every module may use an `error` module (the crate's `Error` and `Result` are its common
// vocabulary, while `error` wraps other modules' errors). Siblings that reach each other in a loop are reported,
// with the edges of the loop, and the check fails.
//
// Usage: node script/check-module-cycles.mjs [crate-dir...]   (default: every workspace member with a src/)

import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;

function members() {
  const manifest = readFileSync(join(root, "Cargo.toml"), "utf8");
  const list = manifest.match(/members\s*=\s*\[([^\]]*)\]/);
  return [...list[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]).filter((d) => existsSync(join(root, d, "src")));
}

function rsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return rsFiles(path);
    return name.endsWith(".rs") ? [path] : [];
  });
}

/** `src/a/b.rs` and `src/a/b/mod.rs` are module a::b; `src/lib.rs` and `src/main.rs` the root. */
function modulePath(src, file) {
  const parts = relative(src, file).replace(/\.rs$/, "").split("/");
  const last = parts[parts.length - 1];
  if (last === "mod" || (parts.length === 1 && (last === "lib" || last === "main"))) parts.pop();
  return parts;
}

/** The code a module depends on: comments, strings and everything from the first top-level `#[cfg(test)]` out. */
function code(text) {
  const test = text.search(/^#\[cfg\(test\)\]/m);
  if (test >= 0) text = text.slice(0, test);
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (c === "r" && /^r#*"/.test(text.slice(i, i + 10)) && !/\w/.test(text[i - 1] ?? "")) {
      const hashes = text.slice(i + 1).match(/^#*/)[0];
      const end = text.indexOf('"' + hashes, i + 2 + hashes.length);
      i = end < 0 ? text.length : end + 1 + hashes.length;
      out += '""';
    } else if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      out += '""';
    } else if (c === "'" && (text[i + 2] === "'" || (next === "\\" && text.indexOf("'", i + 2) > 0))) {
      // A char literal ('"', '\''); a lifetime ('a) has no closing quote right after.
      i = next === "\\" ? text.indexOf("'", i + 3) + 1 : i + 3;
      out += "' '";
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`. */
function expand(tree) {
  tree = tree.replace(/\s+as\s+\w+/g, "").replace(/\s+/g, "");
  const open = tree.indexOf("{");
  if (open < 0) return [tree.replace(/::self$/, "")];
  const prefix = tree.slice(0, open);
  const inner = tree.slice(open + 1, tree.lastIndexOf("}"));
  const items = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === "{") depth++;
    else if (inner[i] === "}") depth--;
    else if (inner[i] === "," && depth === 0) {
      items.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  items.push(inner.slice(start));
  return items.filter((s) => s.length > 0).flatMap((item) => expand(prefix + item));
}

/** Every path the code names that starts at `crate`, `super` or `self`, as segments. */
function paths(text) {
  const found = [];
  for (const m of text.matchAll(/\buse\s+([^;]+);/g)) {
    for (const p of expand(m[1])) found.push(p.split("::"));
  }
  const withoutUse = text.replace(/\buse\s+[^;]+;/g, "");
  for (const m of withoutUse.matchAll(/\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+/g)) {
    found.push(m[0].split("::"));
  }
  return found.filter((p) => ["crate", "super", "self"].includes(p[0]));
}

function checkCrate(dir) {
  const src = join(root, dir, "src");
  const files = rsFiles(src);
  const modules = new Map(files.map((f) => [modulePath(src, f).join("::"), f]));
  const texts = new Map(files.map((f) => [f, code(readFileSync(f, "utf8"))]));

  // Names a module re-exports (`pub use a::b::Name;`), so `crate::Name` is charged to `a::b`.
  const reexports = new Map();
  for (const [name, file] of modules) {
    const at = name === "" ? [] : name.split("::");
    for (const m of texts.get(file).matchAll(/\bpub(?:\([^)]*\))?\s+use\s+([^;]+);/g)) {
      for (const p of expand(m[1])) {
        const segs = p.split("::");
        const item = segs[segs.length - 1];
        if (item === "*" || item === "self") continue;
        reexports.set([...at, item].join("::"), absolute(at, segs.slice(0, -1)));
      }
    }
  }

  function absolute(at, segs) {
    let base;
    if (segs[0] === "crate") base = [];
    else if (segs[0] === "self") base = [...at];
    else if (segs[0] === "super") base = at.slice(0, -1);
    else return [...at, ...segs]; // a child module named without `self::`
    let i = 1;
    while (segs[i] === "super") {
      base = base.slice(0, -1);
      i++;
    }
    return [...base, ...segs.slice(i)];
  }

  /** The deepest module a path lands in, following re-exports. */
  function resolve(segs, seen = 0) {
    let best = [];
    for (let n = segs.length; n > 0; n--) {
      if (modules.has(segs.slice(0, n).join("::"))) {
        best = segs.slice(0, n);
        break;
      }
    }
    const next = segs.slice(0, best.length + 1).join("::");
    if (seen < 8 && best.length < segs.length && reexports.has(next)) {
      return resolve([...reexports.get(next), ...segs.slice(best.length + 1)], seen + 1);
    }
    return best;
  }

  // Edges between siblings: module path -> set of sibling paths, with one example each.
  const edges = new Map();
  for (const [name, file] of modules) {
    const at = name === "" ? [] : name.split("::");
    for (const p of paths(texts.get(file))) {
      const target = resolve(absolute(at, p));
      let k = 0;
      while (k < at.length && k < target.length && at[k] === target[k]) k++;
      if (k === at.length || k === target.length) continue; // one is the other's ancestor
      if (target[k] === "error") continue; // the error type is everyone's
      const from = at.slice(0, k + 1).join("::");
      const to = target.slice(0, k + 1).join("::");
      if (!edges.has(from)) edges.set(from, new Map());
      if (!edges.get(from).has(to)) edges.get(from).set(to, `${relative(root, file)} uses ${p.join("::")}`);
    }
  }

  // Tarjan's strongly connected components.
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const cycles = [];
  let counter = 0;
  function visit(v) {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of (edges.get(v) ?? new Map()).keys()) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) cycles.push(component);
    }
  }
  for (const v of edges.keys()) if (!index.has(v)) visit(v);

  for (const component of cycles) {
    console.log(`${dir}: module cycle between ${component.sort().join(", ")}`);
    const members = new Set(component);
    for (const from of component) {
      for (const [to, why] of edges.get(from) ?? []) {
        if (members.has(to)) console.log(`  ${from} -> ${to}: ${why}`);
      }
    }
  }
  return cycles.length;
}

const crates = process.argv.length > 2 ? process.argv.slice(2) : members();
const found = crates.reduce((n, dir) => n + checkCrate(dir), 0);
if (found > 0) {
  console.error(`check-module-cycles: ${found} cycle(s) above; break each by moving what both sides need into one`);
  process.exit(1);
}
