//! `shoal`: the command-line entry point; everything else lives in the library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let status = shoal::cli::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(status)
}
