//! `fluorecon info`: the version, build features, devices found and threads used.

/// `fluorecon info`.
pub fn info() {
    print!("{}", fluorecon::info_text());
    println!("threads: {}", rayon::current_num_threads());
}
