//! Links the `shoulder` binary with packed relative relocations on Linux
//! with glibc (GNU ld 2.38 and glibc 2.36 or later, as on Debian 12; GNU
//! ld ignores a `-z` option it does not know, with a warning). At start
//! the loader then reads 21 KB of relocation entries rather than 1.2 MB,
//! whose pages stayed resident for as long as the server ran
//! (BENCHMARKS.md, item 25).

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
