fn main() -> std::process::ExitCode {
    congress::cli::run()
}
