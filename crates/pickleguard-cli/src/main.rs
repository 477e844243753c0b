fn main() -> std::process::ExitCode {
    pickleguard_cli::run(std::env::args_os())
}
