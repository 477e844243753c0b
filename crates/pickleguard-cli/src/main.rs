fn main() -> std::process::ExitCode {
    pickleguard_cli::run_process(std::env::args_os())
}
