fn main() -> std::process::ExitCode {
    switchyard_sidecar::cli::main()
}
