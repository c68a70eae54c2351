//! Rebuilds this crate when a migration is added or edited: `sqlx::migrate!` embeds the
//! files at compile time but cannot tell cargo to watch the directory on stable Rust.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
