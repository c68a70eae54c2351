//! Rebuilds the crate when the app's build changes: `include_dir!` embeds `web/dist` but does not tell cargo to
//! watch it.

fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
}
